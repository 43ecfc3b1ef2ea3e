//! Records of collections: reading rows into typed JSON, casting and validating input, and the
//! statements that write them. (The full query grammar and API rules live in `query/`.)

mod cast;
pub mod expand;
pub mod modifiers;
pub mod ops;

pub use cast::{cast_input, prepare_auth_fields};

use std::sync::Arc;

use sea_query::{Alias, Expr, ExprTrait, Query, SqliteQueryBuilder};
use serde_json::{Map, Value, json};

use crate::db::{self, Conn, DbError, SqlValueRef as ValueRef, value_ref_to_json};
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
    /// The record before an update (for plugins' after-commit events).
    pub old: Option<Record>,
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
        let view = self.client_view(collection, superuser, show_email);
        let mut out = Map::new();
        for (k, v) in view.entries() {
            let v = match v {
                Shown::Str(s) => Value::String(s.to_string()),
                Shown::Value(v) => v.clone(),
            };
            out.insert(k.to_string(), v);
        }
        Value::Object(out)
    }

    /// The same JSON as [`Record::to_client_json`], serialised straight from the record (no
    /// intermediate `Value`, no clone of each value): the records API's responses without
    /// `expand` or `fields` are written this way.
    pub fn client_view<'a>(
        &'a self,
        collection: &'a Collection,
        superuser: bool,
        show_email: bool,
    ) -> ClientView<'a> {
        ClientView {
            record: self,
            collection,
            superuser,
            show_email,
        }
    }
}

/// A record as one client may see it; see [`Record::client_view`].
pub struct ClientView<'a> {
    record: &'a Record,
    collection: &'a Collection,
    superuser: bool,
    show_email: bool,
}

impl<'a> ClientView<'a> {
    /// The visible keys and values, in schema order. (Field names never collide with the two
    /// system keys: `schema::RESERVED_FIELD_NAMES`.)
    fn entries(&self) -> Vec<(&'a str, Shown<'a>)> {
        let (record, collection) = (self.record, self.collection);
        let mut out = Vec::with_capacity(collection.fields.len() + 2);
        out.push(("collectionId", Shown::Str(&record.collection_id)));
        out.push(("collectionName", Shown::Str(&record.collection_name)));
        let auth = collection.is_auth();
        for f in &collection.fields {
            if matches!(f.kind, FieldKind::Password { .. }) || (auth && f.name == "tokenKey") {
                continue;
            }
            if f.hidden && !self.superuser {
                continue;
            }
            if auth && f.name == "email" {
                let visible = self.superuser
                    || self.show_email
                    || record
                        .data
                        .get("emailVisibility")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                if !visible {
                    continue;
                }
            }
            let v = record.data.get(&f.name).unwrap_or(&Value::Null);
            out.push((f.name.as_str(), Shown::Value(v)));
        }
        out
    }
}

/// One value of a [`ClientView`].
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Shown<'a> {
    Str(&'a str),
    Value(&'a Value),
}

impl serde::Serialize for ClientView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Sorted by key as a `serde_json::Map` orders them, so both ways of writing a record
        // give the same bytes.
        let mut entries = self.entries();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, &v)?;
        }
        map.end()
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

fn row_to_record(c: &Collection, row: db::ScanRow<'_>) -> Result<Record, DbError> {
    let mut data = Map::new();
    for (i, f) in c.fields.iter().enumerate() {
        data.insert(f.name.clone(), decode(f, row.value(i)?));
    }
    Ok(Record {
        collection_id: c.id.clone(),
        collection_name: c.name.clone(),
        data,
    })
}

/// Reads one record by id.
pub fn find_by_id(conn: &Conn, c: &Collection, id: &str) -> Result<Option<Record>, DbError> {
    let sql = format!("{} WHERE \"m\".\"id\" = ? LIMIT 1", select_prefix(c));
    Ok(
        db::scan_sql(conn, &sql, vec![id.into()], |r| row_to_record(c, r))?
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
    conn: &Conn,
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
        db::scan_rows_limit(conn, &q, 1, 0, |r| row_to_record(c, r))?
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
    conn: &Conn,
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
    let items = db::scan_rows_limit(conn, &q, limit, offset, |r| row_to_record(c, r))?;
    let total = if count {
        let mut cq = Query::select();
        cq.expr(Expr::cust("COUNT(*)"))
            .from_as(col(&c.name), col("m"));
        if let Some(cond) = cond {
            cq.and_where(cond.clone().into_expr());
        }
        db::query_rows(conn, &cq, |r| Ok(r.try_get_by_index::<i64>(0)?))?
            .first()
            .map(|n| std::cmp::max(*n, 0) as u64)
    } else {
        None
    };
    Ok((items, total))
}

/// Reads records of `c` matching `cond` (rows aliased `m`), e.g. a rule check on one id.
pub fn find_where(
    conn: &Conn,
    c: &Collection,
    cond: crate::query::compile::Frag,
    limit: u64,
) -> Result<Vec<Record>, DbError> {
    // The limit is an integer literal, not bound (see `db::query_rows_limit`, which
    // `db::scan_rows_limit` shares).
    let sql = format!("{} WHERE {} LIMIT {limit}", select_prefix(c), cond.sql);
    db::scan_sql(conn, &sql, cond.values, |r| row_to_record(c, r))
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
///
/// When every field is given and SQLite would store each value exactly as bound (see
/// [`stored_as_bound`]), the record is built from the values and the `INSERT` has no
/// `RETURNING`: SQLite fills an ephemeral table for `RETURNING` (a pager opened and closed per
/// insert), about 5 % of the writer's time per create. Otherwise the row is read back.
pub fn insert(conn: &Conn, c: &Collection, values: &Map<String, Value>) -> Result<Record, DbError> {
    let (mask, vals) = present(c, values);
    if let Some(record) = record_as_stored(c, &mask, &vals) {
        let sql = c.statements.get_or_build(c, &StatementKey::InsertAll, || {
            let mut q = Query::insert();
            q.into_table(col(&c.name))
                .columns(c.fields.iter().map(|f| col(&f.name)))
                .values_panic(vals.iter().cloned().map(sea_query::SimpleExpr::from));
            q.build(SqliteQueryBuilder).0
        });
        db::execute_sql(conn, &sql, vals)?;
        return Ok(record);
    }
    let key = StatementKey::Insert(mask);
    let sql = c.statements.get_or_build(c, &key, || {
        let mut q = Query::insert();
        q.into_table(col(&c.name))
            .columns(set_columns(c, mask_of(&key)))
            .values_panic(vals.iter().cloned().map(sea_query::SimpleExpr::from))
            .returning(returning_all(c));
        q.build(SqliteQueryBuilder).0
    });
    db::scan_sql(conn, &sql, vals, |r| row_to_record(c, r))?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::Internal("INSERT returned no row".into()))
}

fn mask_of(key: &StatementKey) -> &[bool] {
    match key {
        StatementKey::Insert(m) | StatementKey::Update(m) => m,
        StatementKey::SelectPrefix | StatementKey::InsertAll => &[],
    }
}

/// The record a row inserted with `vals` (every field, in field order) reads back as, or `None`
/// when some field is missing or SQLite might store its value differently from how it is
/// bound. Columns declared `TEXT` store text as given; the others (`NUMERIC`, `BOOLEAN`,
/// `JSON`) have numeric affinity: integers stay, a real that is a whole number within ±2^51
/// becomes an integer, text that looks like a number becomes one (only text starting with
/// `[`, `{` or `"` is accepted here, which never does), and NULL stays NULL.
fn record_as_stored(c: &Collection, mask: &[bool], vals: &[sea_query::Value]) -> Option<Record> {
    if vals.len() != c.fields.len() || mask.iter().any(|m| !m) {
        return None;
    }
    let mut data = Map::new();
    for (f, v) in c.fields.iter().zip(vals) {
        let stored = stored_as_bound(f, v)?;
        data.insert(f.name.clone(), decode(f, ValueRef::from(&stored)));
    }
    Some(Record {
        collection_id: c.id.clone(),
        collection_name: c.name.clone(),
        data,
    })
}

/// What SQLite stores for `v` bound to `f`'s column, where that is certain (see
/// [`record_as_stored`]).
fn stored_as_bound(f: &Field, v: &sea_query::Value) -> Option<db::SqlValue> {
    use db::SqlValue as Sql;
    use sea_query::Value as Q;
    let text_column = crate::schema::ddl::declared_type(&f.kind) == "TEXT";
    match v {
        Q::String(Some(s)) if text_column => Some(Sql::Text(s.clone())),
        Q::String(Some(s)) => s
            .trim_start()
            .starts_with(['[', '{', '"'])
            .then(|| Sql::Text(s.clone())),
        Q::String(None) if !text_column => Some(Sql::Null),
        Q::Bool(Some(b)) if !text_column => Some(Sql::Integer(i64::from(*b))),
        Q::BigInt(Some(i)) if !text_column => Some(Sql::Integer(*i)),
        Q::Double(Some(r)) if !text_column => {
            const LIMIT: f64 = 2_251_799_813_685_248.0; // 2^51, SQLite's sqlite3RealSameAsInt
            if *r == 0.0 {
                Some(Sql::Integer(0))
            } else if r.fract() == 0.0 && *r >= -LIMIT && *r < LIMIT {
                Some(Sql::Integer(*r as i64))
            } else {
                Some(Sql::Real(*r))
            }
        }
        _ => None,
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
    conn: &Conn,
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
        q.build(SqliteQueryBuilder).0
    });
    // SET values first, then the id of the WHERE, as the text was built.
    vals.push(id.into());
    Ok(db::scan_sql(conn, &sql, vals, |r| row_to_record(c, r))?
        .into_iter()
        .next())
}

pub fn delete(conn: &Conn, c: &Collection, id: &str) -> Result<usize, DbError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::cast::cast_input;

    /// Every kind of field, so each column affinity is covered.
    fn kitchen_sink() -> (Conn, Collection) {
        let (mut c, errs) = Collection::from_json(&json!({
            "name": "sink", "type": "base",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "n", "type": "number"},
                {"name": "flag", "type": "bool"},
                {"name": "data", "type": "json"},
                {"name": "where", "type": "geoPoint"},
                {"name": "one", "type": "select", "values": ["a", "b", "12"], "maxSelect": 1},
                {"name": "many", "type": "select", "values": ["a", "b", "12"], "maxSelect": 3},
                {"name": "day", "type": "date"},
                {"name": "mail", "type": "email"},
                {"name": "site", "type": "url"},
                {"name": "html", "type": "editor"},
                {"name": "created", "type": "autodate", "onCreate": true},
                {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}
            ]
        }))
        .expect("collection");
        assert!(errs.is_empty(), "{errs:?}");
        c.normalize();
        let conn = Conn::open_in_memory().expect("sqlite");
        for sql in crate::schema::ddl::create_statements(&c).expect("ddl") {
            conn.execute_batch(&sql).expect("create table");
        }
        (conn, c)
    }

    #[test]
    fn a_record_built_without_returning_equals_the_stored_row() {
        let (conn, c) = kitchen_sink();
        let numbers = [
            json!(0),
            json!(-0.0),
            json!(2.0),
            json!(1.5),
            json!(-7),
            json!(1e20),
            json!(2_251_799_813_685_248.0_f64),
            json!(2_251_799_813_685_247.0_f64),
            json!(-2_251_799_813_685_248.0_f64),
            json!(i64::MAX),
            json!(0.1),
            json!("12"),
        ];
        let jsons = [
            json!(null),
            json!({"a": 1}),
            json!([1, "x"]),
            json!("12"),
            json!("text"),
            json!(123),
            json!(1.5),
            json!(true),
            json!(" 7"),
        ];
        let texts = ["", "123", "  4.5 ", "hello", "[1]", "{\"a\":1}", "1e3"];
        let mut fast = 0;
        for (i, n) in numbers.iter().enumerate() {
            for (j, data) in jsons.iter().enumerate() {
                let text = texts[(i + j) % texts.len()];
                let one = ["a", "b", "12"][j % 3];
                let body = json!({
                    "title": text, "n": n, "flag": (i + j) % 2 == 0, "data": data,
                    "where": {"lon": i as f64 * 1.5, "lat": -(j as f64)},
                    "one": one, "many": ["12", "a"],
                    "day": "2026-12-02 10:00:00.000Z", "mail": "a@example.com",
                    "site": "https://example.com", "html": text,
                });
                let values = cast_input(
                    &c,
                    body.as_object().unwrap(),
                    None,
                    true,
                    &Default::default(),
                )
                .expect("valid input");
                let (mask, vals) = present(&c, &values);
                if record_as_stored(&c, &mask, &vals).is_some() {
                    fast += 1;
                }
                let made = insert(&conn, &c, &values).expect("insert");
                let id = made.data["id"].as_str().expect("id").to_string();
                let stored = find_by_id(&conn, &c, &id).expect("read").expect("row");
                assert_eq!(made.data, stored.data, "input {body}");
            }
        }
        assert!(fast >= 40, "the fast path was taken {fast} times");
    }

    /// Record rows are read in place (`db::scan_sql`), not through SeaORM's driver, which
    /// panics on text that is not UTF-8: such text (written by another tool) reads lossily.
    #[test]
    fn text_that_is_not_utf8_reads_lossily() {
        let (conn, c) = kitchen_sink();
        conn.execute_batch(
            "INSERT INTO sink (id, title) VALUES ('badtext0000000', CAST(x'61ff62' AS TEXT))",
        )
        .expect("insert");
        let r = find_by_id(&conn, &c, "badtext0000000")
            .expect("read")
            .expect("row");
        assert_eq!(r.data["title"], json!("a\u{fffd}b"));
    }

    #[test]
    fn values_sqlite_would_convert_take_the_returning_path() {
        let (_, c) = kitchen_sink();
        let data = c.fields.iter().find(|f| f.name == "data").unwrap();
        for v in ["123", " 4.5", "true", "-1"] {
            assert_eq!(stored_as_bound(data, &v.to_string().into()), None, "{v}");
        }
        let title = c.fields.iter().find(|f| f.name == "title").unwrap();
        assert!(stored_as_bound(title, &"123".to_string().into()).is_some());
        assert_eq!(stored_as_bound(title, &1i64.into()), None);
    }

    #[test]
    fn a_client_view_writes_what_the_client_json_holds() {
        let mut users = crate::schema::defaults::users();
        let (secret, _) =
            Field::from_json(&json!({"name": "secret", "type": "text", "hidden": true}))
                .expect("field");
        users.fields.push(secret);
        let mut data = Map::new();
        for (k, v) in [
            ("id", json!("u1")),
            ("email", json!("a@example.com")),
            ("emailVisibility", json!(false)),
            ("verified", json!(true)),
            ("password", json!("$2a$10$hash")),
            ("tokenKey", json!("key")),
            ("name", json!("A \"quoted\" name")),
            ("secret", json!("s")),
        ] {
            data.insert(k.into(), v);
        }
        let r = Record {
            collection_id: users.id.clone(),
            collection_name: users.name.clone(),
            data,
        };
        for (superuser, own) in [(false, false), (false, true), (true, false)] {
            let direct = serde_json::to_string(&r.client_view(&users, superuser, own)).unwrap();
            let value = r.to_client_json(&users, superuser, own);
            assert_eq!(direct, serde_json::to_string(&value).unwrap());
            assert!(value.get("password").is_none() && value.get("tokenKey").is_none());
            assert_eq!(value.get("email").is_some(), superuser || own, "{value}");
            assert_eq!(value.get("secret").is_some(), superuser, "{value}");
            assert_eq!(value["collectionName"], json!("users"));
            // Fields missing from the row are written as null, like the Value form.
            assert_eq!(value["avatar"], Value::Null);
        }
    }
}
