//! Filtering and sorting the collections list. There are few collections and they live in
//! memory, so the list is filtered in memory instead of in SQL.

use serde_json::Value;

/// Fields the collections list can be filtered and sorted by (PocketBase's set).
pub const SORTABLE: &[&str] = &["id", "created", "updated", "name", "system", "type"];

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("invalid sort field {0:?}")]
    Sort(String),
    #[error("invalid filter: {0}")]
    Filter(String),
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// Applies `filter` and `sort` to collection JSON documents.
pub fn filter_and_sort(
    mut docs: Vec<Value>,
    filter: &str,
    sort: &str,
) -> Result<Vec<Value>, ListError> {
    if !filter.trim().is_empty() {
        return Err(ListError::Filter("filters are not supported yet".into()));
    }
    let mut keys = Vec::new();
    for part in sort.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (desc, name) = match part.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, part.strip_prefix('+').unwrap_or(part)),
        };
        if !SORTABLE.contains(&name) {
            return Err(ListError::Sort(name.to_string()));
        }
        keys.push((name.to_string(), desc));
    }
    if !keys.is_empty() {
        docs.sort_by(|a, b| {
            for (k, desc) in &keys {
                let o = compare(&a[k], &b[k]);
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    Ok(docs)
}
