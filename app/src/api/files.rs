//! Files over HTTP: storing uploads before a record write, serving stored files (with
//! thumbnails, ranges and PocketBase's headers), and file tokens for protected files.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use super::error::{ApiError, ApiResult};
use super::extract::{MaybeAuth, Upload};
use crate::App;
use crate::auth::{AuthRecord, token};
use crate::files::{self, names, thumbs};
use crate::records::{self, ops};
use crate::schema::{Collection, FieldKind};
use crate::validation::ValidationErrors;

/// Default `maxSize` of a file field (5 MiB).
pub const DEFAULT_MAX_SIZE: i64 = 5 << 20;

/// Files written for a request that is still to be committed; removed again if the write
/// fails.
pub struct Staged {
    pub keys: Vec<String>,
    pub names: HashSet<String>,
}

impl Staged {
    pub fn none() -> Staged {
        Staged {
            keys: vec![],
            names: HashSet::new(),
        }
    }

    /// Removes the staged files (the write did not happen).
    pub async fn discard(self, app: &App) {
        for k in &self.keys {
            let _ = app.storage().delete(k).await;
        }
        for k in &self.keys {
            app.storage().prune(k).await;
        }
    }
}

fn sniff(data: &[u8]) -> String {
    match infer::get(data) {
        Some(t) => t.mime_type().to_string(),
        None if std::str::from_utf8(data).is_ok() => "text/plain".to_string(),
        None => "application/octet-stream".to_string(),
    }
}

/// Validates uploads against their file fields, writes them to storage under the record, and
/// rewrites `body` so the file fields reference the new stored names (`f` replaces, keeping
/// names of existing files sent alongside; `f+` appends; `+f` prepends).
pub async fn stage(
    app: &App,
    c: &Collection,
    record_id: &str,
    body: &mut Map<String, Value>,
    uploads: Vec<Upload>,
    message: &str,
) -> ApiResult<Staged> {
    let mut staged = Staged::none();
    if uploads.is_empty() {
        return Ok(staged);
    }
    let mut errs = ValidationErrors::new();
    // Nothing is written before every check that needs no database has passed: a storage
    // path from a safe id, and no more files per field than it can hold.
    if !valid_record_id(record_id) {
        errs.add(
            &["id"],
            "validation_invalid_format",
            "Invalid value format.",
        );
        return Err(ApiError::validation(message, errs));
    }
    let mut per_field: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for up in &uploads {
        let name = up.field.trim_start_matches('+').trim_end_matches('+');
        *per_field.entry(name).or_default() += 1;
    }
    for (name, n) in per_field {
        if let Some(f) = c.field(name)
            && let FieldKind::File { max_select, .. } = &f.kind
        {
            let limit = if f.kind.is_multiple() { *max_select } else { 1 }.max(1);
            if n > limit {
                errs.add_with_params(
                    &[name],
                    "validation_max_select_constraint",
                    &format!("Select no more than {limit}."),
                    Some(json!({"max": limit})),
                );
            }
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(message, errs));
    }
    let mut planned: Vec<(String, String, String, bytes::Bytes)> = Vec::new(); // (body key, field, name, data)
    for up in uploads {
        let (field_name, key) = if let Some(f) = up.field.strip_prefix('+') {
            (f.to_string(), up.field.clone())
        } else if let Some(f) = up.field.strip_suffix('+') {
            (f.to_string(), up.field.clone())
        } else {
            (up.field.clone(), up.field.clone())
        };
        let Some(f) = c.field(&field_name) else {
            continue;
        };
        let FieldKind::File {
            max_size,
            mime_types,
            ..
        } = &f.kind
        else {
            continue;
        };
        let limit = if *max_size > 0 {
            *max_size
        } else {
            DEFAULT_MAX_SIZE
        };
        if up.data.len() as i64 > limit {
            errs.add_with_params(
                &[&field_name],
                "validation_file_size_limit",
                &format!(
                    "Failed to upload {:?} - the maximum allowed file size is {limit} bytes.",
                    up.filename
                ),
                Some(json!({"maxSize": limit})),
            );
            continue;
        }
        let mime = sniff(&up.data);
        if !mime_types.is_empty() && !mime_types.iter().any(|m| m == &mime) {
            errs.add_with_params(
                &[&field_name],
                "validation_invalid_mime_type",
                &format!(
                    "{:?} mime type must be one of: {}.",
                    up.filename,
                    mime_types.join(", ")
                ),
                Some(json!({"mimeTypes": mime_types})),
            );
            continue;
        }
        planned.push((key, field_name, names::stored_name(&up.filename), up.data));
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(message, errs));
    }
    for (key, _field, name, data) in planned {
        let storage_key = files::key(&c.id, record_id, &name);
        if let Err(e) = app.storage().put(&storage_key, data).await {
            tracing::error!(error = %e, "could not store an uploaded file");
            staged.discard(app).await;
            return Err(ApiError::internal());
        }
        staged.keys.push(storage_key);
        staged.names.insert(name.clone());
        // Plain `f`: kept existing names (sent as text parts) plus the new files.
        let entry = body.entry(key).or_insert(Value::Array(vec![]));
        let mut list = match entry.take() {
            Value::Array(a) => a,
            Value::String(s) if s.is_empty() => vec![],
            Value::Null => vec![],
            other => vec![other],
        };
        list.push(Value::String(name));
        *entry = Value::Array(list);
    }
    Ok(staged)
}

fn valid_record_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The file token's record, if the `token` query parameter holds a valid one.
pub(crate) async fn file_token_auth(app: &App, token_str: &str) -> Option<AuthRecord> {
    let claims = token::peek(token_str)?;
    if claims.kind != token::TokenType::File {
        return None;
    }
    let c = app.collections().get(&claims.collection_id)?;
    let secret = c.auth.as_ref()?.file_token.secret.clone();
    let c2 = c.clone();
    let id = claims.id.clone();
    let record = app
        .db()
        .read(move |conn| records::find_by_id(conn, &c2, &id))
        .await
        .ok()??;
    let key = record.get_str("tokenKey")?.to_string();
    token::verify(token_str, &key, &secret, token::TokenType::File).ok()?;
    Some(AuthRecord {
        collection: c,
        record,
        refreshable: false,
    })
}

const INLINE_PREFIXES: &[&str] = &["image/", "video/", "audio/", "application/pdf"];

async fn serve(
    State(app): State<App>,
    Path((coll, record_id, filename)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> ApiResult<Response> {
    let get = |k: &str| {
        q.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let c: Arc<Collection> = app
        .collections()
        .get(&coll)
        .ok_or_else(ApiError::not_found)?;
    if !valid_record_id(&record_id) || !names::is_valid_stored_name(&filename) {
        return Err(ApiError::not_found());
    }
    let (c2, id2) = (c.clone(), record_id.clone());
    let record = app
        .db()
        .read(move |conn| records::find_by_id(conn, &c2, &id2))
        .await?
        .ok_or_else(ApiError::not_found)?;
    // The name must be one the record holds: request parts never reach storage unchecked.
    let field = c
        .fields
        .iter()
        .find(|f| {
            matches!(f.kind, FieldKind::File { .. })
                && match record.data.get(&f.name) {
                    Some(Value::String(s)) => s == &filename,
                    Some(Value::Array(a)) => {
                        a.iter().any(|v| v.as_str() == Some(filename.as_str()))
                    }
                    _ => false,
                }
        })
        .ok_or_else(ApiError::not_found)?
        .clone();
    let FieldKind::File {
        protected,
        thumbs: allowed_thumbs,
        ..
    } = &field.kind
    else {
        return Err(ApiError::not_found());
    };
    if *protected {
        let auth = file_token_auth(&app, get("token"))
            .await
            .ok_or_else(ApiError::not_found)?;
        let caller = ops::Caller {
            auth: Some(auth),
            method: "GET".into(),
            context: "protectedFile".into(),
            ..ops::Caller::default()
        };
        let registry = app.collections().snapshot();
        let (c2, id2) = (c.clone(), record_id.clone());
        app.db()
            .read(move |conn| ops::view(conn, &registry, &c2, &caller, &id2))
            .await
            .map_err(|_| ApiError::not_found())?;
    }
    let mut key = files::key(&c.id, &record_id, &filename);
    let thumb = get("thumb");
    if !thumb.is_empty()
        && let (Some(format), Some(t)) = (thumbs::format_of(&filename), thumbs::Thumb::parse(thumb))
        && (thumb == "100x100" || allowed_thumbs.iter().any(|x| x == thumb))
    {
        let tkey = files::thumb_key(&c.id, &record_id, &filename, thumb);
        let exists = app.storage().local_path(&tkey).is_some_and(|p| p.exists());
        if exists {
            key = tkey;
        } else if let Ok(Some(original)) = app.storage().get(&key).await {
            let made =
                tokio::task::spawn_blocking(move || thumbs::make(&original, format, t)).await;
            // A failed thumbnail falls back to the original, as in PocketBase.
            match made {
                Ok(Ok(bytes)) => {
                    if app.storage().put(&tkey, bytes.into()).await.is_ok() {
                        key = tkey;
                    }
                }
                _ => tracing::debug!(file = %filename, thumb, "thumbnail generation failed"),
            }
        }
    }
    let path = app
        .storage()
        .local_path(&key)
        .ok_or_else(ApiError::not_found)?;
    let mut res = serve_local(path, req).await?;
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let download = matches!(get("download"), "1" | "t" | "true" | "T" | "TRUE" | "True");
    let inline = !download && INLINE_PREFIXES.iter().any(|p| content_type.starts_with(p));
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        filename
    );
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=2592000, stale-while-revalidate=86400"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox",
        ),
    );
    Ok(res)
}

/// Serves a local file, with ranges and conditional requests; 404 when it is missing.
pub(crate) async fn serve_local(path: std::path::PathBuf, req: Request) -> ApiResult<Response> {
    let res = tower_http::services::ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|_| ApiError::not_found())?;
    if res.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::not_found());
    }
    Ok(res.map(Body::new))
}

/// A short-lived file token for `a` (protected files).
pub(crate) fn mint_file_token(a: &AuthRecord) -> ApiResult<String> {
    let opts = a.collection.auth.as_ref().ok_or_else(ApiError::internal)?;
    let claims = token::Claims {
        id: a.record.id().to_string(),
        kind: token::TokenType::File,
        collection_id: a.collection.id.clone(),
        refreshable: None,
        email: None,
        new_email: None,
        exp: chrono::Utc::now().timestamp() + opts.file_token.duration.max(1),
    };
    Ok(token::sign(
        &claims,
        a.record.get_str("tokenKey").unwrap_or(""),
        &opts.file_token.secret,
    )?)
}

/// `POST /api/files/token`: a short-lived token for protected files.
async fn file_token(auth: MaybeAuth) -> ApiResult<Json<Value>> {
    let Some(a) = auth.0 else {
        return Err(ApiError::unauthorized(
            "The request requires valid record authorization token.",
        ));
    };
    Ok(Json(json!({"token": mint_file_token(&a)?})))
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/files/token", post(file_token))
        .route(
            "/api/files/{collection}/{record}/{filename}",
            get(serve).head(serve),
        )
}
