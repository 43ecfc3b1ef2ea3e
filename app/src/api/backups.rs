//! `/api/backups` (superusers; the download takes a superuser file token): list, create,
//! upload, download, delete and restore, as PocketBase answers them. The work is in
//! [`crate::backups`].

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Superuser};
use crate::App;
use crate::backups::{self, BackupError};
use crate::validation::ValidationErrors;

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> ApiError {
        match e {
            BackupError::InvalidName | BackupError::NotFound => {
                ApiError::bad_request("Missing or invalid backup file.")
            }
            BackupError::Exists => {
                let mut errs = ValidationErrors::new();
                errs.add(
                    &["name"],
                    "validation_backup_name_exists",
                    "The backup file name is invalid or already exists.",
                );
                ApiError::validation(
                    "An error occurred while validating the submitted data.",
                    errs,
                )
            }
            BackupError::Busy => ApiError::bad_request(
                "Try again later - another backup/restore process has already been started.",
            ),
            BackupError::Invalid(why) => {
                let mut errs = ValidationErrors::new();
                errs.add(&["file"], "validation_invalid_backup", &why);
                ApiError::validation(
                    "An error occurred while validating the submitted data.",
                    errs,
                )
            }
            other => {
                tracing::error!(error = %other, "backup operation failed");
                ApiError::bad_request("Failed to complete the backup operation.")
            }
        }
    }
}

async fn list(State(app): State<App>, _su: Superuser) -> ApiResult<Json<Value>> {
    let b = app.backups().clone();
    let items = tokio::task::spawn_blocking(move || b.list())
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(Json(Value::Array(
        items
            .iter()
            .map(|(name, meta)| backups::entry_json(name, meta))
            .collect(),
    )))
}

/// Creates a backup now (the name is optional) and answers once it is complete.
pub async fn create_backup(app: &App, name: Option<String>) -> Result<String, BackupError> {
    let name = name.unwrap_or_else(|| {
        let s = app.settings().get();
        backups::generated_name("pb_backup_", s["meta"]["appName"].as_str().unwrap_or(""))
    });
    if !backups::valid_name(&name) {
        return Err(BackupError::InvalidName);
    }
    let _lock = app.backups().try_lock()?;
    // Removals of stored files wait until the files are copied (see `crate::backups`).
    let _hold = app.cleaner().hold().await;
    // Logs still buffered go in first, so the backup holds them.
    app.logs().flush().await;
    let b = app.backups().clone();
    let n = name.clone();
    let started = std::time::Instant::now();
    let size = tokio::task::spawn_blocking(move || b.create_blocking(&n))
        .await
        .map_err(|_| BackupError::Invalid("the backup task failed".into()))??;
    tracing::info!(backup = %name, size, ms = started.elapsed().as_millis() as u64, "backup created");
    Ok(name)
}

async fn create(
    State(app): State<App>,
    _su: Superuser,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    // PocketBase's rule for names given here: lower case, digits, `_` and `-`.
    if let Some(n) = &name
        && !(backups::valid_name(n)
            && !n.starts_with('@')
            && !n.bytes().any(|b| b.is_ascii_uppercase()))
    {
        let mut errs = ValidationErrors::new();
        errs.add(
            &["name"],
            "validation_match_invalid",
            "Must be in a valid format.",
        );
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            errs,
        ));
    }
    match create_backup(&app, name).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(BackupError::Busy) => Err(ApiError::bad_request(
            "Try again later - another backup/restore process has already been started.",
        )),
        Err(BackupError::Exists | BackupError::InvalidName) => Err(BackupError::Exists.into()),
        Err(e) => {
            tracing::error!(error = %e, "backup failed");
            Err(ApiError::bad_request("Failed to create backup."))
        }
    }
}

/// `POST /api/backups/upload`: a multipart `file` field holding a backup archive, streamed
/// to a temporary file beside the backups, checked, then renamed under its own name. No body
/// limit here (as in PocketBase); only superusers reach the body.
async fn upload(
    State(app): State<App>,
    _su: Superuser,
    mut form: Multipart,
) -> ApiResult<StatusCode> {
    let invalid = |code: &str, msg: &str| {
        let mut errs = ValidationErrors::new();
        errs.add(&["file"], code, msg);
        ApiError::validation(
            "An error occurred while validating the submitted data.",
            errs,
        )
    };
    let _lock = app.backups().try_lock()?;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|_| ApiError::bad_request("Failed to read the uploaded data."))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or_default().to_string();
        if !backups::valid_name(&name) {
            return Err(invalid(
                "validation_invalid_backup_name",
                "The file name must end in .zip and hold only letters, digits, _ and -.",
            ));
        }
        if app.backups().path(&name)?.exists() {
            return Err(invalid(
                "validation_backup_name_exists",
                "Backup file with the specified name already exists.",
            ));
        }
        let tmp = app.backups().upload_tmp()?;
        let written: Result<(), ApiError> = async {
            let mut out = tokio::fs::File::create(&tmp)
                .await
                .map_err(BackupError::from)?;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|_| ApiError::bad_request("Failed to read the uploaded data."))?
            {
                tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                    .await
                    .map_err(BackupError::from)?;
            }
            // A tokio file finishes its last write on a blocking thread after `write_all`
            // returns; without this flush the check below could read a partial file (a
            // flaky "not a zip archive" under load).
            tokio::io::AsyncWriteExt::flush(&mut out)
                .await
                .map_err(BackupError::from)?;
            Ok(())
        }
        .await;
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let b = app.backups().clone();
        let t = tmp.clone();
        let res = tokio::task::spawn_blocking(move || b.accept_upload_blocking(&name, &t))
            .await
            .map_err(|_| ApiError::internal())?;
        let _ = std::fs::remove_file(&tmp);
        return match res {
            Ok(()) => Ok(StatusCode::NO_CONTENT),
            Err(BackupError::Invalid(why)) => Err(invalid("validation_invalid_backup", &why)),
            Err(e) => Err(e.into()),
        };
    }
    Err(invalid("validation_required", "Missing required value."))
}

/// `GET /api/backups/{key}?token=`: a superuser file token (from `POST /api/files/token`),
/// since a browser download cannot send the Authorization header.
async fn download(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    req: Request,
) -> ApiResult<Response> {
    let token = q.get("token").map(String::as_str).unwrap_or("");
    let auth = super::files::file_token_auth(&app, token).await;
    let allowed = auth.is_some_and(|a| {
        a.is_superuser()
            && super::extract::superuser_ip_allowed(&app, req.headers(), req.extensions())
    });
    if !allowed {
        return Err(ApiError::forbidden(
            "Insufficient permissions to access the resource.",
        ));
    }
    let path = app
        .backups()
        .path(&key)
        .map_err(|_| ApiError::not_found())?;
    let mut res = super::files::serve_local(path, req).await?;
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{key}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

async fn delete(
    State(app): State<App>,
    _su: Superuser,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    match app.backups().delete(&key) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(BackupError::Busy) => Err(ApiError::bad_request(
            "The backup is currently being used and cannot be deleted.",
        )),
        Err(BackupError::NotFound | BackupError::InvalidName) => Err(ApiError::bad_request(
            "Invalid or already deleted backup file.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Checks and stages the archive `key`, then (after the caller has answered) stops the
/// server, which starts again on the restored data (see [`crate::backups`]).
pub async fn restore(app: &App, key: &str) -> Result<(), BackupError> {
    let lock = app.backups().try_lock()?;
    let b = app.backups().clone();
    let k = key.to_string();
    tokio::task::spawn_blocking(move || b.stage_restore_blocking(&k))
        .await
        .map_err(|_| BackupError::Invalid("the restore task failed".into()))??;
    tracing::info!(backup = %key, "restore staged; restarting");
    let app = app.clone();
    tokio::spawn(async move {
        // The answer goes out first; the lock stays held until the process is replaced.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.request_restart();
        std::mem::forget(lock);
    });
    Ok(())
}

async fn restore_handler(
    State(app): State<App>,
    _su: Superuser,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    restore(&app, &key).await.map_err(|e| match e {
        BackupError::Invalid(why) => ApiError::bad_request(format!("Invalid backup: {why}")),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/backups", get(list).post(create))
        .route(
            "/api/backups/upload",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/backups/{key}", get(download).delete(delete))
        .route("/api/backups/{key}/restore", post(restore_handler))
}
