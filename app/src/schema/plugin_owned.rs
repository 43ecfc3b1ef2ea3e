//! Collections and fields plugins declare, brought into the database at start
//! (`plugin::start`): created when missing, brought up to date when the declaration changed,
//! never through automigrate files (the plugin is their source and declares them again on a
//! fresh database).

use serde_json::{Map, Value};

use super::{Collection, Field, SchemaError};
use crate::App;

fn describe(e: SchemaError) -> String {
    match e {
        SchemaError::Validation(v) => format!("invalid declaration: {}", v.into_value()),
        other => other.to_string(),
    }
}

/// The declared collection's JSON merged into the stored one: declared fields (by id)
/// replace or join the stored ones, fields a user added stay; declared rules and options win;
/// declared indexes are added to the stored ones.
fn desired(stored: &Collection, declared: &Map<String, Value>) -> Value {
    let mut out = stored.to_json_with_secrets();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    for (k, v) in declared {
        match k.as_str() {
            "fields" => {
                let mut fields: Vec<Value> = obj
                    .get("fields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for df in v.as_array().into_iter().flatten() {
                    let id = df.get("id").and_then(Value::as_str).unwrap_or("");
                    match fields
                        .iter_mut()
                        .find(|f| f.get("id").and_then(Value::as_str) == Some(id))
                    {
                        Some(slot) => {
                            let mut merged = slot.clone();
                            super::collection::merge_json(&mut merged, df);
                            *slot = merged;
                        }
                        None => fields.push(df.clone()),
                    }
                }
                obj.insert("fields".into(), Value::Array(fields));
            }
            "indexes" => {
                let mut idx: Vec<Value> = obj
                    .get("indexes")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for i in v.as_array().into_iter().flatten() {
                    if !idx.contains(i) {
                        idx.push(i.clone());
                    }
                }
                obj.insert("indexes".into(), Value::Array(idx));
            }
            "id" | "created" | "updated" => {}
            _ => {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Comparable form of a collection (what a declaration can change).
fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("created");
        m.remove("updated");
    }
    v
}

/// Creates or upgrades a plugin's collection; returns its id.
pub async fn ensure_owned(app: &App, plugin: &str, def: Value) -> Result<String, String> {
    let declared = def
        .as_object()
        .ok_or("a collection declaration must be a JSON object")?
        .clone();
    let id = declared
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("a collection declaration needs a fixed \"id\"")?
        .to_string();
    let name = declared
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a collection declaration needs a \"name\"")?
        .to_string();
    let store = app.collections();
    let stored = store.get(&id);
    match stored {
        None => {
            if store.get(&name).is_some() {
                return Err(format!(
                    "a collection named {name} exists with another id; rename it or delete it"
                ));
            }
            store.create_quiet(def).await.map_err(describe)?;
            tracing::info!(plugin, collection = %name, "created the plugin's collection");
        }
        Some(c) => {
            let want = desired(&c, &declared);
            if comparable(&want) != comparable(&c.to_json_with_secrets()) {
                store.update_quiet(&id, want).await.map_err(describe)?;
                tracing::info!(plugin, collection = %name, "brought the plugin's collection up to date");
            }
        }
    }
    store.protect_collection(&id, plugin);
    Ok(id)
}

/// Adds a plugin's field to an existing collection (if missing) and protects it.
pub async fn ensure_field(
    app: &App,
    plugin: &str,
    collection: &str,
    field: Value,
) -> Result<(), String> {
    let (f, errs) = Field::from_json(&field).map_err(|e| format!("invalid field: {}", e.0))?;
    if !errs.is_empty() {
        return Err(format!("invalid field: {}", errs.into_value()));
    }
    if f.id.is_empty() {
        return Err("a field declaration needs a fixed \"id\"".into());
    }
    let store = app.collections();
    let c = store
        .get(collection)
        .ok_or_else(|| format!("no collection {collection} to add the field {} to", f.name))?;
    if !c.fields.iter().any(|x| x.id == f.id) {
        if c.fields.iter().any(|x| x.name == f.name) {
            return Err(format!(
                "the collection {collection} has a field {} already (with another id)",
                f.name
            ));
        }
        let mut fields: Vec<Value> = c.fields.iter().map(Field::to_json).collect();
        fields.push(field);
        store
            .update_quiet(&c.id, serde_json::json!({ "fields": fields }))
            .await
            .map_err(describe)?;
        tracing::info!(plugin, collection, field = %f.name, "added the plugin's field");
    }
    let stored = store
        .get(&c.id)
        .and_then(|c| c.fields.iter().find(|x| x.id == f.id).cloned())
        .ok_or("the field vanished")?;
    store.protect_field(&c.id, stored, plugin);
    Ok(())
}
