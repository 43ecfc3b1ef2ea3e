//! The `fields` query parameter: picking which keys of a response object to return.
//! (`:excerpt` and nested `expand.*` picking arrive with the records query work.)

use serde_json::{Map, Value};

/// Keeps only the listed top-level keys of `v` (all when `fields` is empty or has `*`).
pub fn pick(v: Value, fields: Option<&str>) -> Value {
    let Some(spec) = fields.map(str::trim).filter(|s| !s.is_empty()) else {
        return v;
    };
    let keys: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.split(':').next().unwrap_or(s))
        .collect();
    if keys.contains(&"*") {
        return v;
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for k in keys {
                let top = k.split('.').next().unwrap_or(k);
                if let Some(val) = m.get(top) {
                    out.insert(top.to_string(), val.clone());
                }
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Applies [`pick`] to each item of a list.
pub fn pick_all(items: Vec<Value>, fields: Option<&str>) -> Vec<Value> {
    items.into_iter().map(|i| pick(i, fields)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_keys() {
        let v = json!({"a":1,"b":2,"c":3});
        assert_eq!(pick(v.clone(), Some("a,c")), json!({"a":1,"c":3}));
        assert_eq!(pick(v.clone(), Some("*")), v);
        assert_eq!(pick(v.clone(), None), v);
        assert_eq!(pick(v, Some("zzz")), json!({}));
    }
}
