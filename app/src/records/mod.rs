//! Records of collections: reading rows into typed JSON, casting and validating input, and the
//! statements that write them. (The full query grammar and API rules live in `query/`.)

mod cast;
pub mod expand;
pub mod modifiers;
pub mod ops;

pub use cast::{cast_input, prepare_auth_fields};

use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sea_query::{Alias, Expr, ExprTrait, Query, SqliteQueryBuilder};
use sea_query_rusqlite::RusqliteBinder;
use serde_json::{Map, Value, json};

use crate::db::{self, DbError, value_ref_to_json};
use crate::schema::collection::StatementKey;
use crate::schema::{Collection, Field, FieldKind};

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// A committed change to a record (after the write for create/update, the last state for
/// delete), published to realtime subscribers after the transaction commits.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: Action,
    pub collection: Arc<Collection>,
    pub record: Record,
}

/// A record as read from its table, keyed by field name, with values decoded by field type.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub collection_id: String,
    pub collection_name: String,
    pub data: Map<String, Value>,
}

impl Record {
    pub fn id(&self) -> &str {
        self.get_str("id").unwrap_or("")
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }

    /// The record's JSON for a client: every field except hidden ones (unless `superuser`),
    /// never `password` or `tokenKey`; auth `email` only when visible (`show_email`).
    pub fn to_client_json(
        &self,
        collection: &Collection,
        superuser: bool,
        show_email: bool,
    ) -> Value {
        let mut out = Map::new();
        out.insert("collectionId".into(), json!(self.collection_id));
        out.insert("collectionName".into(), json!(self.collection_name));
        for f in &collection.fields {
            if matches!(f.kind, FieldKind::Password { .. })
                || (collection.is_auth() && f.name == "tokenKey")
            {
                continue;
            }
            if f.hidden && !superuser {
                continue;
            }
            if collection.is_auth() && f.name == "email" {
                let visible = superuser
                    || show_email
                    || self
                        .data
                        .get("emailVisibility")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                if !visible {
                    continue;
                }
            }
            out.insert(
                f.name.clone(),
                self.data.get(&f.name).cloned().unwrap_or(Value::Null),
            );
        }
        Value::Object(out)
    }
}

/// Decodes one column by the field's declared type (not by what SQLite happens to store).
pub fn decode(field: &Field, v: ValueRef<'_>) -> Value {
    match &field.kind {
        FieldKind::Number { .. } => match v {
            ValueRef::Integer(i) => json!(i),
            ValueRef::Real(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(json!(0)),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(json!(0)),
            _ => json!(0),
        },
        FieldKind::Bool => match v {
            ValueRef::Integer(i) => json!(i != 0),
            ValueRef::Real(f) => json!(f != 0.0),
            ValueRef::Text(t) => json!(matches!(t, b"1" | b"true" | b"TRUE" | b"True")),
            _ => json!(false),
        },
        FieldKind::Json { .. } => match v {
            ValueRef::Null => Value::Null,
            ValueRef::Text(t) | ValueRef::Blob(t) => serde_json::from_slice(t)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(t).into_owned())),
            other => value_ref_to_json(other),
        },
        FieldKind::GeoPoint => match v {
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                serde_json::from_slice(t).unwrap_or(json!({"lon":0,"lat":0}))
            }
            _ => json!({"lon":0,"lat":0}),
        },
        k if k.is_multiple() => match v {
            ValueRef::Text(t) | ValueRef::Blob(t) => match serde_json::from_slice::<Value>(t) {
                Ok(Value::Array(a)) => Value::Array(a),
                Ok(Value::String(s)) if !s.is_empty() => json!([s]),
                _ if !t.is_empty() && serde_json::from_slice::<Value>(t).is_err() => {
                    json!([String::from_utf8_lossy(t)])
                }
                _ => json!([]),
            },
            _ => json!([]),
        },
        _ => match v {
            ValueRef::Null => json!(""),
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                Value::String(String::from_utf8_lossy(t).into_owned())
            }
            ValueRef::Integer(i) => Value::String(i.to_string()),
            ValueRef::Real(f) => Value::String(f.to_string()),
        },
    }
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

fn select_all(c: &Collection) -> sea_query::SelectStatement {
    Query::select()
        .columns(c.fields.iter().map(|f| col(&f.name)))
        .from(col(&c.name))
        .to_owned()
}

fn row_to_record(c: &Collection, row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let mut data = Map::new();
    for (i, f) in c.fields.iter().enumerate() {
        data.insert(f.name.clone(), decode(f, row.get_ref(i)?));
    }
    Ok(Record {
        collection_id: c.id.clone(),
        collection_name: c.name.clone(),
        data,
    })
}

/// Reads one record by id.
pub fn find_by_id(conn: &Connection, c: &Collection, id: &str) -> Result<Option<Record>, DbError> {
    let sql = format!("{} WHERE \"m\".\"id\" = ? LIMIT 1", select_prefix(c));
    Ok(
        db::query_sql(conn, &sql, vec![id.into()], |r| row_to_record(c, r))?
            .into_iter()
            .next(),
    )
}

/// `SELECT "m".<every field> FROM <table> AS "m"` (what [`row_to_record`] reads), built once
/// per collection.
fn select_prefix(c: &Collection) -> Arc<str> {
    c.statements
        .get_or_build(c, &StatementKey::SelectPrefix, || {
            let mut q = Query::select();
            q.columns(c.fields.iter().map(|f| (col("m"), col(&f.name))))
                .from_as(col(&c.name), col("m"));
            q.to_string(SqliteQueryBuilder)
        })
}

/// Reads the first record whose `field` equals `value` (case-insensitively for emails, as
/// PocketBase matches identities).
pub fn find_by_field(
    conn: &Connection,
    c: &Collection,
    field: &str,
    value: &str,
) -> Result<Option<Record>, DbError> {
    if c.field(field).is_none() {
        return Ok(None);
    }
    let cond = if field == "email" {
        Expr::col(col(field)).like(sea_query::LikeExpr::new(escape_like(value)).escape('\\'))
    } else {
        Expr::col(col(field)).eq(value)
    };
    let q = select_all(c).and_where(cond).to_owned();
    Ok(
        db::query_rows_limit(conn, &q, 1, 0, |r| row_to_record(c, r))?
            .into_iter()
            .next(),
    )
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One page of records of `c` (aliased `m` in `cond` and `order`), and the total when asked
/// for. Without `order`, rows come in rowid order.
pub fn list(
    conn: &Connection,
    c: &Collection,
    cond: Option<&crate::query::compile::Frag>,
    order: &[(crate::query::compile::Frag, bool)],
    offset: u64,
    limit: u64,
    count: bool,
) -> Result<(Vec<Record>, Option<u64>), DbError> {
    let mut q = Query::select();
    q.columns(c.fields.iter().map(|f| (col("m"), col(&f.name))))
        .from_as(col(&c.name), col("m"));
    if let Some(cond) = cond {
        q.and_where(cond.clone().into_expr());
    }
    if order.is_empty() {
        q.order_by((col("m"), col("rowid")), sea_query::Order::Asc);
    }
    for (o, desc) in order {
        let dir = if *desc {
            sea_query::Order::Desc
        } else {
            sea_query::Order::Asc
        };
        q.order_by_expr(o.clone().into_expr(), dir);
    }
    let items = db::query_rows_limit(conn, &q, limit, offset, |r| row_to_record(c, r))?;
    let total = if count {
        let mut cq = Query::select();
        cq.expr(Expr::cust("COUNT(*)"))
            .from_as(col(&c.name), col("m"));
        if let Some(cond) = cond {
            cq.and_where(cond.clone().into_expr());
        }
        db::query_rows(conn, &cq, |r| r.get::<_, i64>(0))?
            .first()
            .map(|n| std::cmp::max(*n, 0) as u64)
    } else {
        None
    };
    Ok((items, total))
}

/// Reads records of `c` matching `cond` (rows aliased `m`), e.g. a rule check on one id.
pub fn find_where(
    conn: &Connection,
    c: &Collection,
    cond: crate::query::compile::Frag,
    limit: u64,
) -> Result<Vec<Record>, DbError> {
    // The limit is an integer literal, not bound (see `db::query_rows_limit`).
    let sql = format!("{} WHERE {} LIMIT {limit}", select_prefix(c), cond.sql);
    db::query_sql(conn, &sql, cond.values, |r| row_to_record(c, r))
}

/// Which fields of `c` `values` sets, and their storage values in field order.
fn present(c: &Collection, values: &Map<String, Value>) -> (Vec<bool>, Vec<sea_query::Value>) {
    let mut mask = Vec::with_capacity(c.fields.len());
    let mut vals = Vec::new();
    for f in &c.fields {
        let v = values.get(&f.name);
        mask.push(v.is_some());
        if let Some(v) = v {
            vals.push(storage_value(f, v));
        }
    }
    (mask, vals)
}

/// Inserts a record from storage values (already cast; see [`cast_input`]) and returns it as
/// stored (`INSERT … RETURNING`, so no second statement reads it back).
pub fn insert(
    conn: &Connection,
    c: &Collection,
    values: &Map<String, Value>,
) -> Result<Record, DbError> {
    let (mask, vals) = present(c, values);
    let key = StatementKey::Insert(mask);
    let sql = c.statements.get_or_build(c, &key, || {
        let mut q = Query::insert();
        q.into_table(col(&c.name))
            .columns(set_columns(c, mask_of(&key)))
            .values_panic(vals.iter().cloned().map(sea_query::SimpleExpr::from))
            .returning(returning_all(c));
        q.build_rusqlite(SqliteQueryBuilder).0
    });
    db::query_sql(conn, &sql, vals, |r| row_to_record(c, r))?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::Internal("INSERT returned no row".into()))
}

fn mask_of(key: &StatementKey) -> &[bool] {
    match key {
        StatementKey::Insert(m) | StatementKey::Update(m) => m,
        StatementKey::SelectPrefix => &[],
    }
}

fn set_columns(c: &Collection, mask: &[bool]) -> Vec<Alias> {
    c.fields
        .iter()
        .zip(mask)
        .filter(|(_, set)| **set)
        .map(|(f, _)| col(&f.name))
        .collect()
}

/// Every field of `c`, in field order (what [`row_to_record`] reads).
fn returning_all(c: &Collection) -> sea_query::ReturningClause {
    Query::returning().columns(c.fields.iter().map(|f| col(&f.name)))
}

/// Updates the given columns of a record and returns it as stored (`UPDATE … RETURNING`), or
/// `None` when no such record exists. With no columns to change, the record is read as it is.
pub fn update(
    conn: &Connection,
    c: &Collection,
    id: &str,
    values: &Map<String, Value>,
) -> Result<Option<Record>, DbError> {
    let (mask, mut vals) = present(c, values);
    if vals.is_empty() {
        return find_by_id(conn, c, id);
    }
    let key = StatementKey::Update(mask);
    let sql = c.statements.get_or_build(c, &key, || {
        let mut q = Query::update();
        q.table(col(&c.name));
        for (name, v) in set_columns(c, mask_of(&key)).into_iter().zip(&vals) {
            q.value(name, v.clone());
        }
        q.and_where(Expr::col(col("id")).eq(id));
        q.returning(returning_all(c));
        q.build_rusqlite(SqliteQueryBuilder).0
    });
    // SET values first, then the id of the WHERE, as the text was built.
    vals.push(id.into());
    Ok(db::query_sql(conn, &sql, vals, |r| row_to_record(c, r))?
        .into_iter()
        .next())
}

pub fn delete(conn: &Connection, c: &Collection, id: &str) -> Result<usize, DbError> {
    let q = Query::delete()
        .from_table(col(&c.name))
        .and_where(Expr::col(col("id")).eq(id))
        .to_owned();
    db::execute(conn, &q)
}

/// The SQL value stored for a field's JSON value.
pub fn storage_value(f: &Field, v: &Value) -> sea_query::Value {
    match (&f.kind, v) {
        (FieldKind::Bool, Value::Bool(b)) => (*b).into(),
        (FieldKind::Number { .. }, Value::Number(n)) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        (FieldKind::Json { .. }, Value::Null) => sea_query::Value::String(None),
        (FieldKind::Json { .. } | FieldKind::GeoPoint, v) => v.to_string().into(),
        (k, v) if k.is_multiple() => v.to_string().into(),
        (_, Value::String(s)) => s.clone().into(),
        (_, Value::Null) => "".into(),
        (_, other) => other.to_string().into(),
    }
}

/// Shared handle type for collections in records code.
pub type CollectionRef = Arc<Collection>;
