//! Exporting and importing schemas. *Full* is exactly what the collections API returns (ids,
//! timestamps, relations by collection id); *portable* drops ids and timestamps and names
//! relation targets by collection name (`collectionName`), to recreate a schema elsewhere.
//! The import endpoint accepts both.

use serde_json::{Map, Value};

use super::Registry;
use super::ids;

/// The user collections (system ones excluded) in the chosen format.
pub fn export(registry: &Registry, portable: bool) -> Vec<Value> {
    registry
        .all()
        .iter()
        .filter(|c| !c.system)
        .map(|c| {
            let mut v = c.to_json();
            if portable && let Value::Object(o) = &mut v {
                {
                    for k in ["id", "created", "updated"] {
                        o.remove(k);
                    }
                    if let Some(Value::Array(fields)) = o.get_mut("fields") {
                        for f in fields.iter_mut() {
                            if let Value::Object(fo) = f {
                                fo.remove("id");
                                if let Some(Value::String(target)) = fo.remove("collectionId") {
                                    let name = registry
                                        .get(&target)
                                        .map(|t| t.name.clone())
                                        .unwrap_or(target);
                                    fo.insert("collectionName".into(), Value::String(name));
                                }
                            }
                        }
                    }
                    // The auth indexes name the collection id; they are recreated on import.
                    if let Some(Value::Array(idx)) = o.get_mut("indexes") {
                        idx.retain(|i| {
                            let s = i.as_str().unwrap_or("");
                            !(s.contains("idx_tokenKey_") || s.contains("idx_email_"))
                        });
                    }
                }
            }
            v
        })
        .collect()
}

/// Resolves `collectionName` relation targets of imported collections to ids: a collection
/// of the import (its given id, or the id PocketBase's scheme gives it) or an existing one.
pub fn resolve_portable(items: &mut [Value], registry: &Registry) {
    let ids_of: Vec<(String, String)> = items
        .iter()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?.to_string();
            let id = match c
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(id) => id.to_string(),
                None => match registry.get(&name) {
                    Some(existing) => existing.id.clone(),
                    None => ids::collection_id(
                        c.get("type").and_then(Value::as_str).unwrap_or("base"),
                        &name,
                    ),
                },
            };
            Some((name, id))
        })
        .collect();
    for c in items.iter_mut() {
        let Some(Value::Array(fields)) = c.get_mut("fields") else {
            continue;
        };
        for f in fields.iter_mut() {
            let Value::Object(fo) = f else { continue };
            if fo.contains_key("collectionId") {
                continue;
            }
            let Some(Value::String(name)) = fo.remove("collectionName") else {
                continue;
            };
            let id = ids_of
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, id)| id.clone())
                .or_else(|| registry.get(&name).map(|c| c.id.clone()))
                .unwrap_or(name);
            fo.insert("collectionId".into(), Value::String(id));
        }
    }
}

/// Marks a portable document so tools can tell the formats apart.
pub fn wrap(items: Vec<Value>, portable: bool) -> Value {
    let mut m = Map::new();
    m.insert(
        "format".into(),
        Value::String(if portable { "portable" } else { "full" }.into()),
    );
    m.insert("collections".into(), Value::Array(items));
    Value::Object(m)
}
