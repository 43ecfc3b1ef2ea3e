//! `expand=`: loading related records into `"expand"`, up to 6 levels deep. Every hop applies
//! the related collection's **view rule** for the caller (with `@request.context = "expand"`);
//! records the caller may not view are simply left out.

use std::collections::BTreeMap;

use crate::db::Conn;
use serde_json::{Map, Value};

use super::Record;
use super::ops::{Access, Caller, RecordError, rule_access};
use crate::query::compile::Frag;
use crate::schema::{Collection, FieldKind, Registry};

/// Deepest expand nesting, as in PocketBase.
pub const MAX_DEPTH: usize = 6;
/// Most back-related records loaded per parent.
const MAX_BACK_RELATIONS: usize = 1000;
/// Most records one response may hold through `expand` (every copy counted: a record expanded
/// under ten parents counts ten times). Without a cap, a self-relation expanded six levels deep
/// grows as the sixth power of its fan-out: nine records made 155 MB in one response.
pub const MAX_EXPANDED: usize = 20_000;

fn too_large() -> RecordError {
    RecordError::BadRequest(format!(
        "The expand would put more than {MAX_EXPANDED} records in one response; expand fewer levels or relations, or ask for a smaller page."
    ))
}

/// How many records `e` holds in its expand, all levels counted.
fn expanded_count(e: &Expanded) -> usize {
    e.expand.as_ref().map_or(0, |m| {
        m.values()
            .map(|v| match v {
                ExpandValue::One(one) => 1 + expanded_count(one),
                ExpandValue::Many(items) => items.iter().map(|i| 1 + expanded_count(i)).sum(),
            })
            .sum()
    })
}

#[derive(Debug, Default, Clone)]
pub struct Tree {
    children: BTreeMap<String, Tree>,
}

impl Tree {
    pub fn parse(spec: &str) -> Tree {
        let mut root = Tree::default();
        for path in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let mut node = &mut root;
            for seg in path.split('.').take(MAX_DEPTH) {
                node = node.children.entry(seg.to_string()).or_default();
            }
        }
        root
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

/// A record with its expanded relations, ready to serialise.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub record: Record,
    /// `None`: no expand key applies to this collection (no `"expand"` in the JSON).
    pub expand: Option<BTreeMap<String, ExpandValue>>,
}

#[derive(Debug, Clone)]
pub enum ExpandValue {
    One(Box<Expanded>),
    Many(Vec<Expanded>),
}

fn with_rule(access: &Access, cond: Frag) -> Frag {
    match access {
        Access::All => cond,
        Access::Where(rule) => Frag {
            sql: format!("({}) AND ({})", cond.sql, rule.sql),
            values: cond
                .values
                .into_iter()
                .chain(rule.values.iter().cloned())
                .collect(),
        },
    }
}

fn ids_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// Loads `tree`'s relations for `records` of `c`.
pub fn expand(
    conn: &Conn,
    registry: &Registry,
    caller: &Caller,
    c: &Collection,
    records: Vec<Record>,
    tree: &Tree,
) -> Result<Vec<Expanded>, RecordError> {
    let mut caller = caller.clone();
    caller.context = "expand".into();
    let mut out: Vec<Expanded> = records
        .into_iter()
        .map(|record| Expanded {
            record,
            expand: None,
        })
        .collect();
    for (key, child) in &tree.children {
        if let Some(f) = c.field(key)
            && let FieldKind::Relation { collection_id, .. } = &f.kind
        {
            let Some(target) = registry.get(collection_id) else {
                continue;
            };
            let access =
                match rule_access(registry, &target, &target.rules.view, &caller, &Map::new()) {
                    Ok(a) => a,
                    Err(RecordError::Forbidden(_)) => {
                        for e in &mut out {
                            e.expand.get_or_insert_with(BTreeMap::new);
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            let mut wanted: Vec<String> = out
                .iter()
                .flat_map(|e| ids_of(e.record.data.get(key)))
                .collect();
            wanted.sort();
            wanted.dedup();
            let cond = Frag {
                sql: "\"m\".\"id\" IN (SELECT value FROM json_each(?))".into(),
                values: vec![serde_json::to_string(&wanted).unwrap_or_default().into()],
            };
            let found =
                super::find_where(conn, &target, with_rule(&access, cond), wanted.len() as u64)?;
            let found = expand(conn, registry, &caller, &target, found, child)?;
            let by_id: BTreeMap<String, (usize, Expanded)> = found
                .into_iter()
                .map(|e| (e.record.id().to_string(), (1 + expanded_count(&e), e)))
                .collect();
            // The copies this level makes, counted before any is made.
            let mut total = out.iter().map(expanded_count).sum::<usize>();
            for e in &out {
                for id in ids_of(e.record.data.get(key)) {
                    total += by_id.get(&id).map_or(0, |(n, _)| *n);
                    if total > MAX_EXPANDED {
                        return Err(too_large());
                    }
                }
            }
            let by_id: BTreeMap<String, Expanded> =
                by_id.into_iter().map(|(k, (_, e))| (k, e)).collect();
            for e in &mut out {
                let map = e.expand.get_or_insert_with(BTreeMap::new);
                let ids = ids_of(e.record.data.get(key));
                if f.kind.is_multiple() {
                    let items: Vec<Expanded> =
                        ids.iter().filter_map(|id| by_id.get(id).cloned()).collect();
                    if !items.is_empty() {
                        map.insert(key.clone(), ExpandValue::Many(items));
                    }
                } else if let Some(one) = ids.first().and_then(|id| by_id.get(id)) {
                    map.insert(key.clone(), ExpandValue::One(Box::new(one.clone())));
                }
            }
        } else if let Some((coll_name, via)) = key.split_once("_via_") {
            let Some(target) = registry.get(coll_name) else {
                continue;
            };
            let Some(rel) = target.field(via).filter(|rf| {
                matches!(&rf.kind, FieldKind::Relation { collection_id, .. } if *collection_id == c.id)
            }) else {
                continue;
            };
            let access =
                match rule_access(registry, &target, &target.rules.view, &caller, &Map::new()) {
                    Ok(a) => a,
                    Err(RecordError::Forbidden(_)) => {
                        for e in &mut out {
                            e.expand.get_or_insert_with(BTreeMap::new);
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            let parents: Vec<String> = out.iter().map(|e| e.record.id().to_string()).collect();
            let column = format!("\"m\".\"{}\"", rel.name);
            let cond = if rel.kind.is_multiple() {
                Frag {
                    sql: format!(
                        "EXISTS (SELECT 1 FROM json_each({column}) WHERE value IN (SELECT value FROM json_each(?)))"
                    ),
                    values: vec![serde_json::to_string(&parents).unwrap_or_default().into()],
                }
            } else {
                Frag {
                    sql: format!("{column} IN (SELECT value FROM json_each(?))"),
                    values: vec![serde_json::to_string(&parents).unwrap_or_default().into()],
                }
            };
            let limit = (MAX_BACK_RELATIONS * parents.len().max(1)) as u64;
            let found = super::find_where(conn, &target, with_rule(&access, cond), limit)?;
            let found = expand(conn, registry, &caller, &target, found, child)?;
            let mut total = out.iter().map(expanded_count).sum::<usize>();
            let parent_ids: std::collections::HashSet<&str> =
                parents.iter().map(String::as_str).collect();
            for x in &found {
                let n = 1 + expanded_count(x);
                let under = ids_of(x.record.data.get(&rel.name))
                    .iter()
                    .filter(|p| parent_ids.contains(p.as_str()))
                    .count();
                total += n * under;
                if total > MAX_EXPANDED {
                    return Err(too_large());
                }
            }
            for e in &mut out {
                let id = e.record.id().to_string();
                let items: Vec<Expanded> = found
                    .iter()
                    .filter(|x| ids_of(x.record.data.get(&rel.name)).contains(&id))
                    .take(MAX_BACK_RELATIONS)
                    .cloned()
                    .collect();
                let map = e.expand.get_or_insert_with(BTreeMap::new);
                if !items.is_empty() {
                    map.insert(key.clone(), ExpandValue::Many(items));
                }
            }
        }
    }
    Ok(out)
}

/// A record (with its expanded relations) as `caller` may see it: hidden fields only for
/// superusers, auth emails only when visible, never passwords or token keys.
pub fn render(registry: &Registry, e: &Expanded, caller: &Caller) -> Value {
    let Some(c) = registry.get(&e.record.collection_id) else {
        return Value::Null;
    };
    let own = caller.is_record(&c, e.record.id());
    let mut v = e.record.to_client_json(&c, caller.is_superuser(), own);
    if let (Some(map), Value::Object(obj)) = (&e.expand, &mut v) {
        let mut out = Map::new();
        for (k, ev) in map {
            let val = match ev {
                ExpandValue::One(one) => render(registry, one, caller),
                ExpandValue::Many(items) => {
                    Value::Array(items.iter().map(|i| render(registry, i, caller)).collect())
                }
            };
            out.insert(k.clone(), val);
        }
        obj.insert("expand".into(), Value::Object(out));
    }
    v
}
