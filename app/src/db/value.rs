//! Decoding of SQLite values into JSON.

use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

/// A row as a JSON object keyed by column name.
pub type RowMap = Map<String, Value>;

/// Decodes a row by SQLite's storage classes. Record reads decode by declared field types
/// instead (`records`); this is for system tables and diagnostics.
pub fn row_to_json(row: &rusqlite::Row<'_>) -> rusqlite::Result<RowMap> {
    let stmt = row.as_ref();
    let mut map = Map::with_capacity(stmt.column_count());
    for i in 0..stmt.column_count() {
        let name = stmt.column_name(i)?.to_string();
        map.insert(name, value_ref_to_json(row.get_ref(i)?));
    }
    Ok(map)
}

/// Converts one SQLite value to JSON by its storage class.
pub fn value_ref_to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}
