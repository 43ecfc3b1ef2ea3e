//! Decoding of SQLite values (from SeaORM's rows) into JSON.

use rusqlite::types::ValueRef;
use serde_json::Value;

use super::{DbError, Row};

/// One SQLite value with its storage class (NULL, INTEGER, REAL, TEXT or BLOB).
pub type SqlValue = rusqlite::types::Value;
/// A borrowed [`SqlValue`].
pub type SqlValueRef<'a> = rusqlite::types::ValueRef<'a>;

/// Column `i` of `row` with the storage class SQLite returned it in.
///
/// SeaORM's rows only hand out typed values, so the class is found by asking for TEXT, then
/// INTEGER, then REAL, then BLOB: a wrong guess is a cheap type error, and TEXT (ids, dates,
/// text fields, JSON) is what nearly every column of a collection holds. `integer_first` asks
/// INTEGER first, for columns that usually hold numbers.
pub fn sql_value(row: &Row, i: usize, integer_first: bool) -> Result<SqlValue, DbError> {
    if integer_first && let Ok(v) = row.try_get_by_index::<Option<i64>>(i) {
        return Ok(v.map_or(SqlValue::Null, SqlValue::Integer));
    }
    if let Ok(v) = row.try_get_by_index::<Option<String>>(i) {
        return Ok(v.map_or(SqlValue::Null, SqlValue::Text));
    }
    if let Ok(v) = row.try_get_by_index::<i64>(i) {
        return Ok(SqlValue::Integer(v));
    }
    if let Ok(v) = row.try_get_by_index::<f64>(i) {
        return Ok(SqlValue::Real(v));
    }
    Ok(SqlValue::Blob(row.try_get_by_index::<Vec<u8>>(i)?))
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
