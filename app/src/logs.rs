//! Request logs in `auxiliary.db` (PocketBase's `_logs` table, so a PocketBase data directory's
//! logs stay readable), written off the request path.
//!
//! A request hands a small [`Entry`] to a bounded channel and goes on; one task collects
//! entries for up to [`FLUSH_EVERY`] or [`BATCH`] entries and writes them in one transaction
//! on the auxiliary database's own writer thread, so logging never waits on, nor slows, the
//! main database's writer. When the channel is full (the log writer cannot keep up) entries
//! are dropped and counted, never queued without bound; the count is logged.
//!
//! The settings' `logs` section applies: `maxDays` 0 turns request logging off (and the
//! cleanup job deletes rows older than `maxDays` days), `minLevel` drops lower levels,
//! `logIP` and `logAuthId` add the client's IPs and the auth record's id.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, Iterable, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use sea_query::{Alias, Expr, ExprTrait, Func, Order, Query};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::db::entities::{Text, log};
use crate::db::{self, Conn, Db, DbError, DbOptions};
use crate::query::compile::{self, CompileError, Env, RequestInfo};
use crate::query::fexpr;
use crate::schema::{Collection, Registry, ids};

/// Entries written per transaction, at most.
pub const BATCH: usize = 500;
/// How long the first entry of a batch waits for more.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Entries waiting to be written before new ones are dropped.
const QUEUE: usize = 20_000;

/// slog's levels, as PocketBase stores them.
pub const LEVEL_INFO: i64 = 0;
pub const LEVEL_ERROR: i64 = 8;

/// One log entry: the level, the message and the `data` object.
#[derive(Debug, Clone)]
pub struct Entry {
    pub level: i64,
    pub message: String,
    pub data: Map<String, Value>,
    pub created: String,
    /// `logs.maxDataSize` (bytes of the JSON of `data`; 0 means PocketBase's 16 KiB).
    pub max_data: usize,
}

/// PocketBase's cap on `data` when `logs.maxDataSize` is 0.
const DEFAULT_MAX_DATA: usize = 16 * 1024;

/// `data` as stored: its JSON, or, when that is over the cap, PocketBase's truncated form:
/// keys in order, each kept while the total stays under the cap and `null` past it, and
/// `"__pb_truncated__": true`.
fn data_json(e: &Entry) -> String {
    let max = if e.max_data == 0 {
        DEFAULT_MAX_DATA
    } else {
        e.max_data
    };
    let full = serde_json::to_string(&e.data).unwrap_or_else(|_| "{}".into());
    if full.len() <= max {
        return full;
    }
    let mut keys: Vec<&String> = e.data.keys().collect();
    keys.sort();
    let mut out = Map::new();
    out.insert("__pb_truncated__".into(), Value::Bool(true));
    let mut size = 2 + "\"__pb_truncated__\":true".len();
    for k in keys {
        let v = &e.data[k];
        let len = k.len() + 4 + v.to_string().len();
        if size + len <= max {
            size += len;
            out.insert(k.clone(), v.clone());
        } else {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out).to_string()
}

enum Cmd {
    Entry(Box<Entry>),
    Flush(oneshot::Sender<()>),
}

/// The request logs (cheap to clone).
#[derive(Clone)]
pub struct Logs {
    db: Db,
    tx: mpsc::Sender<Cmd>,
    dropped: Arc<AtomicU64>,
}

/// Errors of the logs layer.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Creates `_logs` as PocketBase does (nothing if it exists), but without its index on
/// `message`: messages hold URLs with record ids, so every insert landed on a random page of
/// that index (most of the log writer's WAL traffic), and the dashboards search messages with
/// `~` (`LIKE '%…%'`), which no index serves. A PocketBase data directory keeps its own.
fn migrate(conn: &Conn) -> Result<(), DbError> {
    db::execute_ddl(
        conn,
        r#"CREATE TABLE IF NOT EXISTS "_logs" (
            "id"      TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL,
            "level"   INTEGER DEFAULT 0 NOT NULL,
            "message" TEXT DEFAULT '' NOT NULL,
            "data"    JSON DEFAULT '{}' NOT NULL,
            "created" TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_logs_level on "_logs" ("level");
        CREATE INDEX IF NOT EXISTS idx_logs_created_hour on "_logs" (strftime('%Y-%m-%d %H:00:00', "created"));"#,
    )
}

fn t(name: &str) -> Alias {
    Alias::new(name)
}

/// A log id: 15 characters of `[a-z0-9]` like PocketBase's, but in time order (the
/// microseconds since 1970 in base 36, then random characters), so new rows append to the
/// primary key's index instead of touching a random page of it on every insert.
fn log_id() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut micros = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
    let mut stamp = Vec::with_capacity(11);
    while micros > 0 {
        stamp.push(DIGITS[(micros % 36) as usize]);
        micros /= 36;
    }
    while stamp.len() < 11 {
        stamp.push(b'0');
    }
    stamp.reverse();
    let mut id = String::from_utf8(stamp).unwrap_or_default();
    id.push_str(&ids::random_id(15 - id.len().min(15)));
    id
}

/// The log insert's SQL: one row, every column of the `_logs` entity in [`log::Column`]'s
/// order, built by sea-query once and then run through SeaORM's cached query path.
///
/// Profiled on a create run (`docs/performance.md`, 2026-12-07): SeaORM's
/// `insert_many(..).exec(..)` built the statement text anew and prepared it uncached on every
/// batch (its `execute` bypasses the statement cache), and cost about 44 % as much of the
/// writer's CPU as the record inserts the logs describe.
fn insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        Query::insert()
            .into_table(log::Entity)
            .columns(log::Column::iter())
            .values_panic(log::Column::iter().map(|_| Expr::val(0)))
            .build(sea_query::SqliteQueryBuilder)
            .0
    })
}

/// Writes a batch of entries (inside the caller's transaction): each is an `ActiveModel`,
/// whose values are bound in column order to [`insert_sql`].
fn insert_all(conn: &Conn, entries: &[Entry]) -> Result<(), DbError> {
    for e in entries {
        let row = log::ActiveModel {
            id: Set(log_id()),
            level: Set(e.level),
            message: Set(e.message.clone()),
            data: Set(Text(data_json(e))),
            created: Set(e.created.clone()),
        };
        let values = log::Column::iter()
            .map(|c| row.get(c).into_value())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| DbError::Internal("a log entry left a column unset".into()))?;
        db::execute_sql(conn, insert_sql(), values)?;
    }
    Ok(())
}

impl Logs {
    /// Opens (creating) `auxiliary.db` and starts the log writer.
    pub async fn open(path: &Path) -> Result<Logs, DbError> {
        let db = Db::open(
            path,
            DbOptions {
                readers: 1,
                cache_kib: 2_000,
                ..DbOptions::default()
            },
        )?;
        db.write(migrate).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let logs = Logs {
            db,
            tx,
            dropped: Arc::default(),
        };
        tokio::spawn(writer(logs.db.clone(), rx, logs.dropped.clone()));
        Ok(logs)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Queues an entry; never waits (a full queue drops it).
    pub fn record(&self, e: Entry) {
        if self.tx.try_send(Cmd::Entry(Box::new(e))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes everything queued so far; returns when it is committed (or the writer is gone).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Deletes every entry (`DELETE /api/logs`).
    pub async fn delete_all(&self) -> Result<usize, DbError> {
        self.db
            .write(|conn| Ok(log::Entity::delete_many().exec(conn)?.rows_affected as usize))
            .await
    }

    /// Deletes entries created before `max_days` days ago and, with `min_level`, entries
    /// below it. Returns how many went.
    pub async fn cleanup(&self, max_days: i64, min_level: Option<i64>) -> Result<usize, DbError> {
        let before = crate::schema::ids::format_datetime(
            chrono::Utc::now() - chrono::Duration::days(Ord::max(max_days, 0)),
        );
        self.db
            .write(move |conn| {
                let mut cond = log::Column::Created.lte(before);
                if let Some(l) = min_level {
                    cond = cond.or(log::Column::Level.lt(l));
                }
                let gone = log::Entity::delete_many().filter(cond).exec(conn)?;
                Ok(gone.rows_affected as usize)
            })
            .await
    }
}

/// Collects entries into batches and writes each in one transaction.
async fn writer(db: Db, mut rx: mpsc::Receiver<Cmd>, dropped: Arc<AtomicU64>) {
    let mut reported = 0u64;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        let take =
            |cmd: Cmd, batch: &mut Vec<Entry>, waiters: &mut Vec<oneshot::Sender<()>>| match cmd {
                Cmd::Entry(e) => batch.push(*e),
                Cmd::Flush(w) => waiters.push(w),
            };
        take(first, &mut batch, &mut waiters);
        if waiters.is_empty() {
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
            while batch.len() < BATCH && waiters.is_empty() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(cmd)) => take(cmd, &mut batch, &mut waiters),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        // A flush also takes whatever is queued behind it.
        while batch.len() < BATCH * 4 {
            match rx.try_recv() {
                Ok(cmd) => take(cmd, &mut batch, &mut waiters),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            let res = db.write(move |conn| insert_all(conn, &batch)).await;
            if let Err(e) = res {
                tracing::warn!(error = %e, entries = n, "could not write request logs");
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
        let d = dropped.load(Ordering::Relaxed);
        if d > reported {
            tracing::warn!(
                dropped = d - reported,
                "request log entries dropped: the log writer could not keep up"
            );
            reported = d;
        }
    }
}

/// `_logs` seen as a collection with PocketBase's filterable columns (`data.*` is a JSON
/// path), and its registry: built once.
fn meta() -> &'static (Collection, Registry) {
    static META: std::sync::OnceLock<(Collection, Registry)> = std::sync::OnceLock::new();
    META.get_or_init(|| {
        let c = crate::query::collections::table_as_collection(
            "_logs",
            json!([
                {"name": "level", "type": "number"},
                {"name": "message", "type": "text"},
                {"name": "data", "type": "json"},
                {"name": "created", "type": "text"},
            ]),
        );
        let registry = Registry::from_list(vec![c.clone()]);
        (c, registry)
    })
}

/// Runs `f` with the compile environment of a superuser's filter on `_logs`.
fn with_env<T>(f: impl FnOnce(&Collection, &Env<'_>) -> T) -> T {
    let (c, registry) = meta();
    let request = RequestInfo::default();
    let env = Env {
        registry,
        request: &request,
        trusted: false,
        superuser: true,
    };
    f(c, &env)
}

/// The `WHERE` condition of a filter (superusers only reach it).
fn filter_cond(filter: &str) -> Result<Option<sea_query::SimpleExpr>, LogsError> {
    if filter.trim().is_empty() {
        return Ok(None);
    }
    let expr = fexpr::parse(filter).map_err(|e| CompileError::Invalid(e.to_string()))?;
    Ok(Some(
        with_env(|c, env| compile::compile(&expr, c, "_logs", env))?.into_expr(),
    ))
}

fn entry_json(r: log::Model) -> Value {
    json!({
        "id": r.id,
        "level": r.level,
        "message": r.message,
        "data": serde_json::from_str::<Value>(&r.data.0).unwrap_or_else(|_| json!({})),
        "created": r.created,
    })
}

/// One page of entries: (items, total unless skipped).
pub fn list(
    conn: &Conn,
    filter: &str,
    sort: &str,
    offset: u64,
    limit: u64,
    with_total: bool,
) -> Result<(Vec<Value>, Option<u64>), LogsError> {
    let cond = filter_cond(filter)?;
    let order = with_env(|c, env| compile::compile_sort(sort, c, "_logs", env))?;
    let mut q = log::Entity::find();
    if let Some(c) = &cond {
        q = q.filter(c.clone());
    }
    // No sort given: oldest first, as PocketBase (its dashboard asks for `-@rowid`).
    if order.is_empty() {
        q = q.order_by_asc(Expr::col((t("_logs"), t("rowid"))));
    }
    for (o, desc) in order {
        q = q.order_by(o.into_expr(), if desc { Order::Desc } else { Order::Asc });
    }
    let total = if with_total {
        Some(q.clone().count(conn).map_err(DbError::from)?)
    } else {
        None
    };
    let items = q
        .offset(offset)
        .limit(limit)
        .all(conn)
        .map_err(DbError::from)?;
    Ok((items.into_iter().map(entry_json).collect(), total))
}

/// One entry by id.
pub fn view(conn: &Conn, id: &str) -> Result<Option<Value>, LogsError> {
    let row = log::Entity::find_by_id(id)
        .one(conn)
        .map_err(DbError::from)?;
    Ok(row.map(entry_json))
}

/// Entries per hour (`[{date, total}]`, oldest first), for the matching entries.
pub fn stats(conn: &Conn, filter: &str) -> Result<Vec<Value>, LogsError> {
    let cond = filter_cond(filter)?;
    let hour = Expr::cust("strftime('%Y-%m-%d %H:00:00', \"created\")");
    let mut q = Query::select()
        .expr_as(Func::count(Expr::col(t("id"))), t("total"))
        .expr_as(hour, t("date"))
        .from(t("_logs"))
        .group_by_col(t("date"))
        .order_by(t("date"), Order::Asc)
        .to_owned();
    if let Some(c) = cond {
        q.and_where(c);
    }
    Ok(db::query_rows(conn, &q, |r| {
        let date: String = r.try_get_by_index(1)?;
        let total: i64 = r.try_get_by_index(0)?;
        Ok(json!({"total": total, "date": format!("{date}.000Z")}))
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_look_like_pocketbase_ids_and_sort_by_time() {
        let a = log_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = log_id();
        assert_eq!(a.len(), 15);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
            "{a}"
        );
        assert!(a < b, "{a} {b}");
    }

    #[test]
    fn oversized_data_is_truncated_as_pocketbase_does() {
        let mut data = Map::new();
        data.insert("a".into(), json!("x"));
        data.insert("url".into(), json!("y".repeat(500)));
        let e = Entry {
            level: 0,
            message: String::new(),
            data,
            created: String::new(),
            max_data: 120,
        };
        let v: Value = serde_json::from_str(&data_json(&e)).unwrap();
        assert_eq!(v["__pb_truncated__"], true);
        assert_eq!(v["a"], "x");
        assert_eq!(v["url"], Value::Null);
        assert!(!data_json(&Entry { max_data: 0, ..e }).contains("__pb_truncated__"));
    }

    #[tokio::test]
    async fn entries_are_written_listed_filtered_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(&dir.path().join("auxiliary.db")).await.unwrap();
        let old =
            crate::schema::ids::format_datetime(chrono::Utc::now() - chrono::Duration::days(10));
        for (i, created) in [ids::now(), ids::now(), old].into_iter().enumerate() {
            let mut data = Map::new();
            data.insert("status".into(), json!(200 + i as i64 * 100));
            data.insert("type".into(), json!("request"));
            logs.record(Entry {
                level: if i == 1 { LEVEL_ERROR } else { LEVEL_INFO },
                message: format!("GET /api/{i}"),
                data,
                created,
                max_data: 0,
            });
        }
        logs.flush().await;
        let all = logs
            .db()
            .read(|c| list(c, "", "", 0, 30, true))
            .await
            .unwrap();
        assert_eq!(all.1, Some(3));
        // Oldest first by default; `-@rowid` newest first.
        assert_eq!(all.0[0]["message"], "GET /api/0");
        let newest = logs
            .db()
            .read(|c| list(c, "", "-@rowid", 0, 1, false))
            .await
            .unwrap();
        assert_eq!(newest.0[0]["message"], "GET /api/2");
        assert_eq!(newest.1, None);
        let errors = logs
            .db()
            .read(|c| list(c, "level > 0 && data.status >= 300", "", 0, 30, true))
            .await
            .unwrap();
        assert_eq!(errors.1, Some(1));
        assert_eq!(errors.0[0]["data"]["status"], 300);
        let id = errors.0[0]["id"].as_str().unwrap().to_string();
        let one = logs.db().read(move |c| view(c, &id)).await.unwrap();
        assert_eq!(one.unwrap()["message"], "GET /api/1");
        let s = logs.db().read(|c| stats(c, "")).await.unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.iter().map(|x| x["total"].as_i64().unwrap()).sum::<i64>(),
            3
        );
        assert!(
            logs.db()
                .read(|c| list(c, "nope ~", "", 0, 30, true))
                .await
                .is_err()
        );
        assert_eq!(logs.cleanup(5, None).await.unwrap(), 1);
        let left = logs
            .db()
            .read(|c| list(c, "", "", 0, 30, true))
            .await
            .unwrap();
        assert_eq!(left.1, Some(2));
    }
}
