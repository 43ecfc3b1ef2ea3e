//! Field-level validation errors in PocketBase's shape.
//!
//! PocketBase reports every failing field at once, as nested objects keyed by field name (and by
//! index for lists): `{"fields":{"2":{"name":{"code":"validation_required","message":"Cannot
//! be blank."}}}}`. This type collects such errors by path.

use serde_json::{Map, Value, json};

/// A set of validation errors keyed by path.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ValidationErrors {
    tree: Map<String, Value>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Records an error at `path` unless one is already recorded there (the first error of a
    /// field wins, as in PocketBase).
    pub fn add(&mut self, path: &[&str], code: &str, message: &str) {
        self.add_with_params(path, code, message, None);
    }

    /// Like [`ValidationErrors::add`], with PocketBase's optional `params` object.
    pub fn add_with_params(
        &mut self,
        path: &[&str],
        code: &str,
        message: &str,
        params: Option<Value>,
    ) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = &mut self.tree;
        for p in parents {
            let entry = node
                .entry((*p).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                // A leaf error already sits on a parent: keep it.
                return;
            }
            let Value::Object(next) = entry else { return };
            node = next;
        }
        if node.contains_key(*last) {
            return;
        }
        let mut err = json!({ "code": code, "message": message });
        if let (Some(params), Value::Object(m)) = (params, &mut err) {
            m.insert("params".into(), params);
        }
        node.insert((*last).to_string(), err);
    }

    /// Adds `other`'s errors under `prefix`.
    pub fn merge_under(&mut self, prefix: &str, other: ValidationErrors) {
        if other.is_empty() {
            return;
        }
        let entry = self
            .tree
            .entry(prefix.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            for (k, v) in other.tree {
                m.entry(k).or_insert(v);
            }
        }
    }

    /// Adds every error of `other` that has no error at its path yet.
    pub fn extend(&mut self, other: ValidationErrors) {
        fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
            for (k, v) in from {
                match (into.get_mut(&k), v) {
                    (None, v) => {
                        into.insert(k, v);
                    }
                    (Some(Value::Object(a)), Value::Object(b))
                        if !a.contains_key("code") && !b.contains_key("code") =>
                    {
                        merge(a, b)
                    }
                    _ => {}
                }
            }
        }
        merge(&mut self.tree, other.tree);
    }

    /// True when an error is recorded at exactly `key` at the top level.
    pub fn has(&self, key: &str) -> bool {
        self.tree.contains_key(key)
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.tree)
    }

    /// Returns `Err(self)` when any error was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// PocketBase's standard messages for the common codes.
pub mod msg {
    pub const REQUIRED: &str = "Cannot be blank.";
    pub const INVALID_VALUE: &str = "Invalid value.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_and_keeps_first_error() {
        let mut e = ValidationErrors::new();
        e.add(
            &["fields", "1", "name"],
            "validation_required",
            msg::REQUIRED,
        );
        e.add(&["fields", "1", "name"], "other", "ignored");
        e.add(&["name"], "validation_x", "X.");
        assert_eq!(
            e.into_value(),
            json!({"fields":{"1":{"name":{"code":"validation_required","message":"Cannot be blank."}}},
                   "name":{"code":"validation_x","message":"X."}})
        );
    }
}
