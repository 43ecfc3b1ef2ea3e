//! The collections API (`/api/collections`), superusers only.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Superuser};
use super::list::Paging;
use crate::App;
use crate::schema::{Collection, CollectionType};

type QueryPairs = Query<Vec<(String, String)>>;

async fn list(
    State(app): State<App>,
    _su: Superuser,
    Query(q): QueryPairs,
) -> ApiResult<Json<Value>> {
    let paging = Paging::from_query(&q)?;
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let (filter, sort) = (
        get("filter").unwrap_or("").to_string(),
        get("sort").unwrap_or("").to_string(),
    );
    let ids = app
        .db()
        .read(move |conn| crate::query::collections::filter_ids(conn, &filter, &sort))
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "invalid collections filter or sort");
            ApiError::bad_request("Something went wrong while processing your request.")
        })?;
    let snapshot = app.collections().snapshot();
    let docs: Vec<Value> = ids
        .iter()
        .filter_map(|id| snapshot.get(id))
        .map(|c| c.to_json())
        .collect();
    let total = docs.len() as u64;
    let items: Vec<Value> = docs
        .into_iter()
        .skip(paging.offset() as usize)
        .take(paging.per_page as usize)
        .collect();
    let items = super::fields::pick_all(items, get("fields"));
    Ok(Json(paging.envelope(items, Some(total))))
}

async fn view(
    State(app): State<App>,
    _su: Superuser,
    Path(id): Path<String>,
    Query(q): QueryPairs,
) -> ApiResult<Json<Value>> {
    let c = app.collections().get(&id).ok_or_else(ApiError::not_found)?;
    let fields = q
        .iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str());
    Ok(Json(super::fields::pick(c.to_json(), fields)))
}

/// A collection body; malformed JSON gets PocketBase's message for collections.
struct CollectionBody(serde_json::Map<String, Value>);

impl axum::extract::FromRequest<App> for CollectionBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, app: &App) -> Result<Self, ApiError> {
        match JsonBody::from_request(req, app).await {
            Ok(JsonBody(m)) => Ok(CollectionBody(m)),
            Err(e) if e.status == axum::http::StatusCode::BAD_REQUEST => {
                Err(ApiError::bad_request(
                    "Failed to load the collection type data due to invalid formatting.",
                ))
            }
            Err(e) => Err(e),
        }
    }
}

async fn create(
    State(app): State<App>,
    _su: Superuser,
    CollectionBody(body): CollectionBody,
) -> ApiResult<Json<Value>> {
    let c = app
        .collections()
        .create(Value::Object(body))
        .await
        .map_err(|e| ApiError::from_schema(e, "Failed to create collection."))?;
    Ok(Json(c.to_json()))
}

async fn update(
    State(app): State<App>,
    _su: Superuser,
    Path(id): Path<String>,
    CollectionBody(body): CollectionBody,
) -> ApiResult<Json<Value>> {
    let c = app
        .collections()
        .update(&id, Value::Object(body))
        .await
        .map_err(|e| ApiError::from_schema(e, "Failed to update collection."))?;
    Ok(Json(c.to_json()))
}

/// Deletes a collection (the API and the dashboard), then its stored files.
pub(crate) async fn delete_collection(app: &App, id_or_name: &str) -> ApiResult<()> {
    let cid = app.collections().get(id_or_name).map(|c| c.id.clone());
    app.collections()
        .delete(id_or_name)
        .await
        .map_err(|e| ApiError::from_schema(e, "Failed to delete collection."))?;
    remove_files(app, cid).await;
    Ok(())
}

async fn remove(
    State(app): State<App>,
    _su: Superuser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    delete_collection(&app, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the stored files of a deleted or truncated collection (after its commit).
async fn remove_files(app: &App, collection_id: Option<String>) {
    if let Some(cid) = collection_id
        && let Err(e) = app.storage().delete_prefix(&cid).await
    {
        tracing::warn!(error = %e, collection = %cid, "could not remove the collection's files");
    }
}

async fn truncate(
    State(app): State<App>,
    _su: Superuser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let cid = app.collections().get(&id).map(|c| c.id.clone());
    app.collections()
        .truncate(&id)
        .await
        .map_err(|e| ApiError::from_schema(e, "Failed to truncate collection."))?;
    remove_files(&app, cid).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn import(
    State(app): State<App>,
    _su: Superuser,
    JsonBody(body): JsonBody,
) -> ApiResult<impl IntoResponse> {
    let items = match body.get("collections") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        _ => {
            let mut errs = crate::validation::ValidationErrors::new();
            errs.add(
                &["collections"],
                "validation_required",
                crate::validation::msg::REQUIRED,
            );
            return Err(ApiError::validation(
                "An error occurred while validating the submitted data.",
                errs,
            ));
        }
    };
    let delete_missing = body
        .get("deleteMissing")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    app.collections()
        .import(items, delete_missing)
        .await
        .map_err(|e| ApiError::from_schema(e, "Failed to import collections."))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn scaffolds(_su: Superuser) -> Json<Value> {
    let blank = |k: CollectionType| {
        let mut c = Collection::scaffold(k);
        if k == CollectionType::Auth {
            // PocketBase shows the auth indexes with a placeholder name and empty table.
            c.indexes = vec![
                "CREATE UNIQUE INDEX `idx_tokenKey_scaffold` ON `` (`tokenKey`)".into(),
                "CREATE UNIQUE INDEX `idx_email_scaffold` ON `` (`email`) WHERE `email` != ''"
                    .into(),
            ];
        }
        c.to_json()
    };
    Json(json!({
        "auth": blank(CollectionType::Auth),
        "base": blank(CollectionType::Base),
        "view": blank(CollectionType::View),
    }))
}

/// `GET /api/collections/export?format=full|portable`: the user collections, ready for
/// `PUT /api/collections/import` on another server.
async fn export(State(app): State<App>, _su: Superuser, Query(q): QueryPairs) -> Json<Value> {
    let portable = q.iter().any(|(k, v)| k == "format" && v == "portable");
    let items = crate::schema::export::export(&app.collections().snapshot(), portable);
    Json(crate::schema::export::wrap(items, portable))
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/collections/export", get(export))
        .route("/api/collections", get(list).post(create))
        .route("/api/collections/import", put(import))
        .route("/api/collections/meta/scaffolds", get(scaffolds))
        .route(
            "/api/collections/{id}",
            get(view).patch(update).delete(remove),
        )
        .route("/api/collections/{id}/truncate", delete(truncate))
}
