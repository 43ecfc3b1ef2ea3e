//! PocketBase's field modifiers in create/update bodies: `n+`/`n-` on numbers, `f+` (append),
//! `+f` (prepend) and `f-` (remove) on select/relation/file fields, and `f:autogenerate` on
//! text fields. They are resolved against the stored record inside the write transaction, so
//! concurrent `views+: 1` requests never lose an increment.

use serde_json::{Map, Value, json};

use super::Record;
use crate::schema::{Collection, FieldKind};

fn to_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a.clone(),
        Value::String(s) if s.is_empty() => vec![],
        other => vec![other.clone()],
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Rewrites modifier keys of `body` into plain field values, using `existing` (the stored
/// record; `None` on create) as the base. Keys that name no field are left for the caller to
/// ignore. A modifier whose operand has the wrong type is left as the plain key's invalid
/// value so casting reports it on the field.
pub fn resolve(
    c: &Collection,
    body: &Map<String, Value>,
    existing: Option<&Record>,
) -> Map<String, Value> {
    let mut out = body.clone();
    for f in &c.fields {
        let name = &f.name;
        let current = |out: &Map<String, Value>| -> Value {
            out.get(name.as_str())
                .cloned()
                .or_else(|| existing.and_then(|r| r.data.get(name).cloned()))
                .unwrap_or(Value::Null)
        };
        match &f.kind {
            FieldKind::Number { .. } => {
                for (suffix, sign) in [("+", 1.0), ("-", -1.0)] {
                    if let Some(delta) = body.get(&format!("{name}{suffix}")) {
                        let base = as_f64(&current(&out)).unwrap_or(0.0);
                        let v = match as_f64(delta) {
                            Some(d) => {
                                let n = base + sign * d;
                                if n.fract() == 0.0 && n.abs() < 9e15 {
                                    json!(n as i64)
                                } else {
                                    json!(n)
                                }
                            }
                            None => delta.clone(),
                        };
                        out.insert(name.clone(), v);
                    }
                }
            }
            FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. } => {
                if let Some(v) = body.get(&format!("+{name}")) {
                    let mut list = to_list(v);
                    list.extend(to_list(&current(&out)));
                    out.insert(name.clone(), Value::Array(list));
                }
                if let Some(v) = body.get(&format!("{name}+")) {
                    let mut list = to_list(&current(&out));
                    list.extend(to_list(v));
                    out.insert(name.clone(), Value::Array(list));
                }
                if let Some(v) = body.get(&format!("{name}-")) {
                    let remove = to_list(v);
                    let list: Vec<Value> = to_list(&current(&out))
                        .into_iter()
                        .filter(|x| !remove.contains(x))
                        .collect();
                    out.insert(name.clone(), Value::Array(list));
                }
                if !f.kind.is_multiple()
                    && let Some(Value::Array(list)) = out.get(name.as_str())
                    && list.len() <= 1
                {
                    let single = list.last().cloned().unwrap_or(json!(""));
                    out.insert(name.clone(), single);
                }
            }
            FieldKind::Text {
                autogenerate_pattern,
                ..
            } => {
                if let Some(v) = body.get(&format!("{name}:autogenerate")) {
                    let prefix = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    let generated =
                        crate::schema::pattern::generate(autogenerate_pattern).unwrap_or_default();
                    out.insert(name.clone(), json!(format!("{prefix}{generated}")));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll() -> Collection {
        let (mut c, _) = Collection::from_json(&json!({"name":"t","fields":[
            {"name":"views","type":"number"},
            {"name":"tags","type":"select","values":["a","b","c"],"maxSelect":3},
            {"name":"code","type":"text","autogeneratePattern":"[0-9]{4}"}]}))
        .unwrap();
        c.normalize();
        c
    }

    fn rec(views: i64, tags: Value) -> Record {
        let mut data = Map::new();
        data.insert("views".into(), json!(views));
        data.insert("tags".into(), tags);
        Record {
            collection_id: "x".into(),
            collection_name: "t".into(),
            data,
        }
    }

    #[test]
    fn pocketbase_example() {
        // {"views+":5,"tags-":"a","+tags":"c"} turned 12,[a,b] into 17,[c,b] in PocketBase.
        let body = json!({"views+":5,"tags-":"a","+tags":"c"});
        let out = resolve(
            &coll(),
            body.as_object().unwrap(),
            Some(&rec(12, json!(["a", "b"]))),
        );
        assert_eq!(out["views"], json!(17));
        assert_eq!(out["tags"], json!(["c", "b"]));
    }

    #[test]
    fn decrement_and_autogenerate() {
        let body = json!({"views-":2.5,"code:autogenerate":"INV-"});
        let out = resolve(&coll(), body.as_object().unwrap(), Some(&rec(1, json!([]))));
        assert_eq!(out["views"], json!(-1.5));
        let code = out["code"].as_str().unwrap();
        assert!(code.starts_with("INV-") && code.len() == 8, "{code}");
    }
}
