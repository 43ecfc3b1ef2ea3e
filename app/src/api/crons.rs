//! `/api/crons` (superusers only): the scheduler's jobs, and running one now.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::Superuser;
use crate::App;

async fn list(State(app): State<App>, _su: Superuser) -> Json<Value> {
    let jobs: Vec<Value> = app
        .scheduler()
        .jobs()
        .iter()
        .map(|j| json!({"id": j.id, "expression": j.expression}))
        .collect();
    Json(Value::Array(jobs))
}

/// Starts the job in the background, as PocketBase does, and answers 204 at once.
async fn run(
    State(app): State<App>,
    _su: Superuser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let job = app
        .scheduler()
        .get(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Missing or invalid cron job."))?;
    tokio::spawn(async move {
        job.run_now().await;
    });
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/crons", get(list))
        .route("/api/crons/{id}", post(run))
}
