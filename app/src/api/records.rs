//! The records API (`/api/collections/{collection}/records`).
//!
//! This is the foundation version: CRUD with casting, validation and auth-record handling.
//! API rules are enforced for the two constant forms — `null` (superusers only) and `""`
//! (everyone). Expression rules need the rule engine (`query/`); until it is wired in, they are
//! enforced fail-closed: only superusers pass them. `filter`, `sort` and `expand` likewise
//! answer 400 rather than being silently ignored.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{MaybeAuth, RecordBody};
use super::list::Paging;
use crate::App;
use crate::records;
use crate::schema::{Collection, CollectionType};

type QueryPairs = Query<Vec<(String, String)>>;

fn collection(app: &App, key: &str) -> ApiResult<Arc<Collection>> {
    app.collections()
        .get(key)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Missing collection context."))
}

/// Whether the requester passes a rule; `Err` for a locked rule (403).
fn check_rule(rule: &Option<String>, auth: &MaybeAuth) -> ApiResult<bool> {
    if auth.is_superuser() {
        return Ok(true);
    }
    match rule.as_deref() {
        None => Err(ApiError::forbidden(
            "Only superusers can perform this action.",
        )),
        Some("") => Ok(true),
        Some(_) => Ok(false),
    }
}

fn reject_unsupported(q: &[(String, String)]) -> ApiResult<()> {
    for key in ["filter", "sort", "expand"] {
        if q.iter().any(|(k, v)| k == key && !v.trim().is_empty()) {
            return Err(ApiError::bad_request(format!(
                "The {key} parameter is not supported by this server build yet"
            )));
        }
    }
    Ok(())
}

fn fields_param(q: &[(String, String)]) -> Option<&str> {
    q.iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
}

fn client_json(c: &Collection, r: &records::Record, auth: &MaybeAuth) -> Value {
    let own = auth
        .0
        .as_ref()
        .is_some_and(|a| a.collection.id == c.id && a.record.id() == r.id());
    r.to_client_json(c, auth.is_superuser(), own)
}

async fn list(
    State(app): State<App>,
    Path(coll): Path<String>,
    Query(q): QueryPairs,
    auth: MaybeAuth,
) -> ApiResult<Json<Value>> {
    let c = collection(&app, &coll)?;
    reject_unsupported(&q)?;
    let paging = Paging::from_query(&q)?;
    if !check_rule(&c.rules.list, &auth)? {
        return Ok(Json(paging.envelope(vec![], Some(0))));
    }
    let (c2, p2) = (c.clone(), paging.clone());
    let (items, total) = app
        .db()
        .read(move |conn| records::list(conn, &c2, p2.offset(), p2.per_page, !p2.skip_total))
        .await?;
    let items = items
        .iter()
        .map(|r| super::fields::pick(client_json(&c, r, &auth), fields_param(&q)))
        .collect();
    Ok(Json(paging.envelope(items, total)))
}

async fn view(
    State(app): State<App>,
    Path((coll, id)): Path<(String, String)>,
    Query(q): QueryPairs,
    auth: MaybeAuth,
) -> ApiResult<Json<Value>> {
    let c = collection(&app, &coll)?;
    reject_unsupported(&q)?;
    if !check_rule(&c.rules.view, &auth)? {
        return Err(ApiError::not_found());
    }
    let c2 = c.clone();
    let r = app
        .db()
        .read(move |conn| records::find_by_id(conn, &c2, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(super::fields::pick(
        client_json(&c, &r, &auth),
        fields_param(&q),
    )))
}

async fn create(
    State(app): State<App>,
    Path(coll): Path<String>,
    Query(q): QueryPairs,
    auth: MaybeAuth,
    RecordBody(body): RecordBody,
) -> ApiResult<Json<Value>> {
    let c = collection(&app, &coll)?;
    if c.kind == CollectionType::View {
        return Err(ApiError::bad_request("Unsupported collection type."));
    }
    reject_unsupported(&q)?;
    if !check_rule(&c.rules.create, &auth)? {
        return Err(ApiError::bad_request("Failed to create record."));
    }
    let su = auth.is_superuser();
    let auth_values = if c.is_auth() {
        let (c2, body2) = (c.clone(), body.clone());
        tokio::task::spawn_blocking(move || records::prepare_auth_fields(&c2, &body2, None, su))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|e| ApiError::validation("Failed to create record.", e))?
    } else {
        Default::default()
    };
    let c2 = c.clone();
    let r = app
        .db()
        .write(move |conn| {
            let body = records::modifiers::resolve(&c2, &body, None);
            let mut values = records::cast_input(&c2, &body, None, su)
                .map_err(|e| ApiError::validation("Failed to create record.", e))?;
            values.extend(auth_values);
            let id = values
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            records::insert(conn, &c2, &values).map_err(|e| write_error(e, &c2, &values))?;
            records::find_by_id(conn, &c2, &id)?.ok_or_else(ApiError::internal)
        })
        .await?;
    Ok(Json(super::fields::pick(
        client_json(&c, &r, &auth),
        fields_param(&q),
    )))
}

/// Maps a failed write: unique violations become `validation_not_unique` on the field(s) of
/// the violated index, never a 500.
fn write_error(
    e: crate::db::DbError,
    c: &Collection,
    values: &serde_json::Map<String, Value>,
) -> ApiError {
    if e.is_unique_violation() {
        let detail = e.to_string();
        let mut errs = crate::validation::ValidationErrors::new();
        for f in &c.fields {
            if values.contains_key(&f.name) && detail.contains(&format!("{}.{}", c.name, f.name)) {
                errs.add(&[&f.name], "validation_not_unique", "Value must be unique.");
            }
        }
        if errs.is_empty() {
            errs.add(&["id"], "validation_not_unique", "Value must be unique.");
        }
        return ApiError::validation("Failed to save record.", errs);
    }
    e.into()
}

async fn update(
    State(app): State<App>,
    Path((coll, id)): Path<(String, String)>,
    Query(q): QueryPairs,
    auth: MaybeAuth,
    RecordBody(body): RecordBody,
) -> ApiResult<Json<Value>> {
    let c = collection(&app, &coll)?;
    if c.kind == CollectionType::View {
        return Err(ApiError::bad_request("Unsupported collection type."));
    }
    reject_unsupported(&q)?;
    if !check_rule(&c.rules.update, &auth)? {
        return Err(ApiError::not_found());
    }
    let su = auth.is_superuser();
    let auth_values = if c.is_auth() {
        // Password checks run bcrypt: off the async workers, and before the writer.
        let (c2, id2) = (c.clone(), id.clone());
        let existing = app
            .db()
            .read(move |conn| records::find_by_id(conn, &c2, &id2))
            .await?
            .ok_or_else(ApiError::not_found)?;
        let (c2, body2) = (c.clone(), body.clone());
        tokio::task::spawn_blocking(move || {
            records::prepare_auth_fields(&c2, &body2, Some(&existing), su)
        })
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| ApiError::validation("Failed to update record.", e))?
    } else {
        Default::default()
    };
    let c2 = c.clone();
    let r = app
        .db()
        .write(move |conn| {
            // Read-modify-write inside the writer: modifiers see the latest committed value.
            let existing = records::find_by_id(conn, &c2, &id)?.ok_or_else(ApiError::not_found)?;
            let body = records::modifiers::resolve(&c2, &body, Some(&existing));
            let mut values = records::cast_input(&c2, &body, Some(&existing), su)
                .map_err(|e| ApiError::validation("Failed to update record.", e))?;
            values.extend(auth_values);
            records::update(conn, &c2, &id, &values).map_err(|e| write_error(e, &c2, &values))?;
            records::find_by_id(conn, &c2, &id)?.ok_or_else(ApiError::not_found)
        })
        .await?;
    Ok(Json(super::fields::pick(
        client_json(&c, &r, &auth),
        fields_param(&q),
    )))
}

async fn remove(
    State(app): State<App>,
    Path((coll, id)): Path<(String, String)>,
    auth: MaybeAuth,
) -> ApiResult<impl IntoResponse> {
    let c = collection(&app, &coll)?;
    if c.kind == CollectionType::View {
        return Err(ApiError::bad_request("Unsupported collection type."));
    }
    if !check_rule(&c.rules.delete, &auth)? {
        return Err(ApiError::not_found());
    }
    let n = app
        .db()
        .write(move |conn| records::delete(conn, &c, &id).map_err(ApiError::from))
        .await?;
    if n == 0 {
        return Err(ApiError::not_found());
    }
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
