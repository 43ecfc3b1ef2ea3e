//! SQLite values and their decoding into JSON.

use rusqlite::types::ValueRef;
use serde_json::Value;

/// One SQLite value with its storage class (NULL, INTEGER, REAL, TEXT or BLOB).
pub type SqlValue = rusqlite::types::Value;
/// A borrowed [`SqlValue`].
pub type SqlValueRef<'a> = rusqlite::types::ValueRef<'a>;

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
