//! The records API (`/api/collections/{collection}/records`). Handlers parse the request and
//! ship one closure to the database; the work and the rule checks live in `records::ops`,
//! shared with the batch endpoint.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{MaybeAuth, RecordBody};
use super::files::{Staged, stage};
use super::list::{Envelope, Paging};
use crate::App;
use crate::db::Isolation;
use crate::records::expand::{self, Expanded};
use crate::records::ops::{self, Caller};
use crate::records::{self, Record};
use crate::schema::Collection;

pub(crate) type QueryPairs = Query<Vec<(String, String)>>;

pub(crate) fn collection(app: &App, key: &str) -> ApiResult<Arc<Collection>> {
    app.collections()
        .get(key)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Missing collection context."))
}

/// Records ready to be written as a response, as the caller may see them.
pub(crate) enum Items {
    /// No `expand` and no `fields`: serialised straight from the records (no intermediate
    /// JSON value per record). Each record carries whether the caller is that record
    /// (`Caller::is_record`: it may see its own email).
    Plain {
        c: Arc<Collection>,
        superuser: bool,
        records: Vec<(Record, bool)>,
    },
    Values(Vec<Value>),
}

impl Items {
    fn plain(c: &Arc<Collection>, caller: &Caller, records: Vec<Record>) -> Items {
        let records = records
            .into_iter()
            .map(|r| {
                let own = caller.is_record(c, r.id());
                (r, own)
            })
            .collect();
        Items::Plain {
            c: c.clone(),
            superuser: caller.is_superuser(),
            records,
        }
    }

    /// The first item alone (a view, create or update response).
    fn first(self) -> First {
        First(self)
    }
}

fn plain_view<'a>(
    c: &'a Collection,
    superuser: bool,
    (r, own): &'a (Record, bool),
) -> records::ClientView<'a> {
    r.client_view(c, superuser, *own)
}

impl serde::Serialize for Items {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Items::Plain {
                c,
                superuser,
                records,
            } => s.collect_seq(records.iter().map(|r| plain_view(c, *superuser, r))),
            Items::Values(v) => v.serialize(s),
        }
    }
}

/// The first of some [`Items`] (`null` if there is none).
pub(crate) struct First(Items);

impl serde::Serialize for First {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Items::Plain {
                c,
                superuser,
                records,
            } => match records.first() {
                Some(r) => plain_view(c, *superuser, r).serialize(s),
                None => s.serialize_none(),
            },
            Items::Values(v) => v.first().unwrap_or(&Value::Null).serialize(s),
        }
    }
}

/// Expands `records` per the `expand` parameter (on a reader) and picks `fields`; without
/// either the records are written as they are.
pub(crate) async fn render(
    app: &App,
    c: &Arc<Collection>,
    records: Vec<Record>,
    caller: &Caller,
    q: &[(String, String)],
) -> ApiResult<Items> {
    let spec = param(q, "expand").to_string();
    let fields = fields_param(q).filter(|f| !f.trim().is_empty());
    if spec.trim().is_empty() && fields.is_none() {
        return Ok(Items::plain(c, caller, records));
    }
    let registry = app.collections().snapshot();
    let expanded = if spec.trim().is_empty() {
        records
            .into_iter()
            .map(|record| Expanded {
                record,
                expand: None,
            })
            .collect()
    } else {
        let (reg2, c2, caller2) = (registry.clone(), c.clone(), caller.clone());
        app.db()
            .read(move |conn| {
                expand::expand(
                    conn,
                    &reg2,
                    &caller2,
                    &c2,
                    records,
                    &expand::Tree::parse(&spec),
                )
            })
            .await?
    };
    let items = expanded
        .iter()
        .map(|e| expand::render(&registry, e, caller))
        .collect();
    Ok(Items::Values(super::fields::pick_all(items, fields)))
}

async fn render_one(
    app: &App,
    c: &Arc<Collection>,
    record: Record,
    caller: &Caller,
    q: &[(String, String)],
) -> ApiResult<Json<First>> {
    Ok(Json(render(app, c, vec![record], caller, q).await?.first()))
}

/// The caller of a request: its auth and the request data rules can read.
pub(crate) fn caller(
    auth: MaybeAuth,
    method: &axum::http::Method,
    headers: &axum::http::HeaderMap,
    q: &[(String, String)],
) -> Caller {
    Caller {
        auth: auth.0,
        query: q.to_vec(),
        headers: headers
            .iter()
            .filter(|(k, _)| *k != axum::http::header::AUTHORIZATION)
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    // `http` keeps header names lowercase already.
                    .map(|v| (k.as_str().replace('-', "_"), v.to_string()))
            })
            .collect(),
        method: method.as_str().to_string(),
        context: "default".into(),
        system: false,
    }
}

/// The value of query parameter `key` (`""` when absent).
pub(crate) fn param<'a>(q: &'a [(String, String)], key: &str) -> &'a str {
    q.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn fields_param(q: &[(String, String)]) -> Option<&str> {
    q.iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
}

/// A record as this caller may see it.
pub(crate) fn client_json(c: &Collection, r: &Record, caller: &Caller) -> Value {
    r.to_client_json(c, caller.is_superuser(), caller.is_record(c, r.id()))
}

/// Runs a record write on the writer with the request's staged uploads: after commit the
/// changes go to realtime and files no longer referenced are removed; if the write fails the
/// staged uploads are removed instead.
pub(crate) async fn write_records<T, F>(app: &App, staged: Staged, f: F) -> ApiResult<T>
where
    F: FnOnce(&mut ops::Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    write_records_isolated(app, staged, Isolation::Savepoint, f).await
}

/// [`write_records`] with the writer's [`Isolation`] for the job.
async fn write_records_isolated<T, F>(
    app: &App,
    staged: Staged,
    isolation: Isolation,
    f: F,
) -> ApiResult<T>
where
    F: FnOnce(&mut ops::Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let registry = app.collections().snapshot();
    let (broker, cleaner) = (app.realtime().clone(), app.cleaner().clone());
    let plugins = app.plugins();
    let hooks = (!plugins.before.is_empty()).then(|| plugins.before.clone());
    let events = plugins.events.clone();
    let uploaded = staged.names.clone();
    let result = app
        .db()
        .write_isolated(isolation, move |conn, after| {
            let mut tx = ops::Tx::new(conn, &registry);
            tx.uploaded = uploaded;
            tx.hooks = hooks;
            let out = f(&mut tx)?;
            let cleanup = crate::files::Cleaner::plan(&tx.changes, &tx.previous_files);
            let changes = tx.changes;
            after.push(move || {
                // Only with a plugin handling events is each change copied for them.
                if let Some(events) = events {
                    events.committed(changes.clone());
                }
                broker.publish(changes);
                cleaner.send(cleanup);
            });
            Ok::<_, ApiError>(out)
        })
        .await;
    if result.is_err() {
        staged.discard(app).await;
    }
    result
}

/// The id a new record will get, fixed before the write so uploads can be stored under it.
fn new_record_id(body: &mut Map<String, Value>) -> String {
    match body.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => {
            let id = crate::schema::ids::record_id();
            body.insert("id".into(), Value::String(id.clone()));
            id
        }
    }
}

/// Prepares auth fields (bcrypt) off the async workers, before the write transaction.
pub(crate) async fn auth_values(
    app: &App,
    c: &Arc<Collection>,
    body: &Map<String, Value>,
    update_id: Option<&str>,
    caller: &Caller,
) -> ApiResult<Map<String, Value>> {
    if !c.is_auth() {
        return Ok(Map::new());
    }
    // The update rule first: a caller it refuses gets the same answer whatever the body holds
    // (no old-password oracle). The write checks it again in its transaction.
    let existing = match update_id {
        Some(id) => {
            let registry = app.collections().snapshot();
            let (c2, id2, caller2, body2) =
                (c.clone(), id.to_string(), caller.clone(), body.clone());
            Some(
                app.db()
                    .read(move |conn| {
                        ops::check_update(conn, &registry, &c2, &caller2, &id2, &body2)
                            .map(|(r, _)| r)
                    })
                    .await?,
            )
        }
        None => None,
    };
    let message = if update_id.is_some() {
        "Failed to update record."
    } else {
        "Failed to create record."
    };
    // Managers (the collection's manageRule) may change other records' email, password and
    // verified state without the old password, like superusers.
    let mut su = caller.is_superuser();
    if !su
        && let (Some(id), Some(rule)) = (update_id, c.auth.as_ref().map(|a| a.manage_rule.clone()))
        && rule.is_some()
    {
        let registry = app.collections().snapshot();
        let (c2, caller2, id2) = (c.clone(), caller.clone(), id.to_string());
        su = app
            .db()
            .read(move |conn| {
                Ok::<_, ApiError>(
                    ops::view_with_rule(conn, &registry, &c2, &rule, &caller2, &id2).is_ok(),
                )
            })
            .await?;
    }
    let (c2, body2) = (c.clone(), body.clone());
    tokio::task::spawn_blocking(move || {
        records::prepare_auth_fields(&c2, &body2, existing.as_ref(), su)
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|e| ApiError::validation(message, e))
}

async fn list(
    State(app): State<App>,
    Path(coll): Path<String>,
    Query(q): QueryPairs,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    auth: MaybeAuth,
) -> ApiResult<Json<Envelope<Items>>> {
    let c = collection(&app, &coll)?;
    let paging = Paging::from_query(&q)?;
    let caller = caller(auth, &method, &headers, &q);
    let (filter, sort) = (
        param(&q, "filter").to_string(),
        param(&q, "sort").to_string(),
    );
    ops::check_client_expression(&filter, &caller)?;
    ops::check_client_expression(&sort, &caller)?;
    let registry = app.collections().snapshot();
    let (c2, p2, caller2) = (c.clone(), paging.clone(), caller.clone());
    let (items, total) = app
        .db()
        .read(move |conn| {
            let lq = ops::ListQuery {
                filter: &filter,
                sort: &sort,
                offset: p2.offset(),
                limit: p2.per_page,
                count: !p2.skip_total,
            };
            ops::list(conn, &registry, &c2, &caller2, &lq)
        })
        .await?;
    let items = render(&app, &c, items, &caller, &q).await?;
    Ok(Json(paging.page_of(items, total)))
}

async fn view(
    State(app): State<App>,
    Path((coll, id)): Path<(String, String)>,
    Query(q): QueryPairs,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    auth: MaybeAuth,
) -> ApiResult<Json<First>> {
    let c = collection(&app, &coll)?;
    let caller = caller(auth, &method, &headers, &q);
    let registry = app.collections().snapshot();
    let (c2, caller2) = (c.clone(), caller.clone());
    let r = app
        .db()
        .read(move |conn| ops::view(conn, &registry, &c2, &caller2, &id))
        .await?;
    render_one(&app, &c, r, &caller, &q).await
}

/// Creates a record in `c` for `caller` from a parsed body and its uploads: stages the
/// uploads, prepares auth fields, then writes (the same path for the API and the dashboard).
pub(crate) async fn create_record(
    app: &App,
    c: &Arc<Collection>,
    caller: &Caller,
    mut body: Map<String, Value>,
    uploads: Vec<super::extract::Upload>,
) -> ApiResult<Record> {
    let staged = if uploads.is_empty() {
        Staged::none()
    } else {
        // Refusals that need no row come before any file is written.
        ops::check_create_allowed(c, caller)?;
        let id = new_record_id(&mut body);
        stage(app, c, &id, &mut body, uploads, "Failed to create record.").await?
    };
    // Rule compilation, modifiers and casting need no database: done here, on the async
    // worker, so the single writer only runs what needs the transaction.
    let registry = app.collections().snapshot();
    let prepared = match auth_values(app, c, &body, None, caller)
        .await
        .and_then(|auth| {
            Ok(ops::prepare_create(
                &registry,
                c,
                caller,
                &body,
                auth,
                &staged.names,
                app.plugins().before.has(&c.name),
            )?)
        }) {
        Ok(p) => p,
        Err(e) => {
            staged.discard(app).await;
            return Err(e);
        }
    };
    let isolation = if prepared.is_single_statement() {
        Isolation::SingleStatement
    } else {
        Isolation::Savepoint
    };
    let (c2, caller2) = (c.clone(), caller.clone());
    write_records_isolated(app, staged, isolation, move |tx| {
        Ok(ops::insert_prepared(tx, &c2, &caller2, prepared)?)
    })
    .await
}

/// Updates record `id` of `c` for `caller` (see [`create_record`]).
pub(crate) async fn update_record(
    app: &App,
    c: &Arc<Collection>,
    caller: &Caller,
    id: &str,
    mut body: Map<String, Value>,
    uploads: Vec<super::extract::Upload>,
) -> ApiResult<Record> {
    let staged = if uploads.is_empty() {
        Staged::none()
    } else {
        // The update rule before any file is written (checked again in the write).
        let registry = app.collections().snapshot();
        let (c2, id2, caller2, body2) = (c.clone(), id.to_string(), caller.clone(), body.clone());
        app.db()
            .read(move |conn| {
                ops::check_update(conn, &registry, &c2, &caller2, &id2, &body2).map(|_| ())
            })
            .await?;
        stage(app, c, id, &mut body, uploads, "Failed to update record.").await?
    };
    let prepared = match auth_values(app, c, &body, Some(id), caller).await {
        Ok(p) => p,
        Err(e) => {
            staged.discard(app).await;
            return Err(e);
        }
    };
    let (c2, caller2, id2) = (c.clone(), caller.clone(), id.to_string());
    write_records_isolated(app, staged, Isolation::SingleStatement, move |tx| {
        Ok(ops::update(tx, &c2, &caller2, &id2, &body, prepared)?)
    })
    .await
}

/// Deletes record `id` of `c` for `caller`, with its cascades, files and events.
pub(crate) async fn delete_record(
    app: &App,
    c: &Arc<Collection>,
    caller: &Caller,
    id: &str,
) -> ApiResult<()> {
    let (c2, caller2, id2) = (c.clone(), caller.clone(), id.to_string());
    write_records(app, Staged::none(), move |tx| {
        Ok(ops::delete(tx, &c2, &caller2, &id2)?)
    })
    .await
}

async fn create(
    State(app): State<App>,
    Path(coll): Path<String>,
    Query(q): QueryPairs,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    auth: MaybeAuth,
    RecordBody(body, uploads): RecordBody,
) -> ApiResult<Json<First>> {
    let c = collection(&app, &coll)?;
    let caller = caller(auth, &method, &headers, &q);
    let r = create_record(&app, &c, &caller, body, uploads).await?;
    render_one(&app, &c, r, &caller, &q).await
}

async fn update(
    State(app): State<App>,
    Path((coll, id)): Path<(String, String)>,
    Query(q): QueryPairs,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    auth: MaybeAuth,
    RecordBody(body, uploads): RecordBody,
) -> ApiResult<Json<First>> {
    let c = collection(&app, &coll)?;
    let caller = caller(auth, &method, &headers, &q);
    let r = update_record(&app, &c, &caller, &id, body, uploads).await?;
    render_one(&app, &c, r, &caller, &q).await
}

async fn remove(
    State(app): State<App>,
    Path((coll, id)): Path<(String, String)>,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    auth: MaybeAuth,
) -> ApiResult<impl IntoResponse> {
    let c = collection(&app, &coll)?;
    let caller = caller(auth, &method, &headers, &[]);
    delete_record(&app, &c, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/api/collections/{collection}/records",
            get(list).post(create),
        )
        .route(
            "/api/collections/{collection}/records/{id}",
            get(view).patch(update).delete(remove),
        )
}
