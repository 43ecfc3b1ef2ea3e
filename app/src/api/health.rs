//! `GET /api/health`.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use super::extract::MaybeAuth;
use crate::App;

async fn health(State(app): State<App>, auth: MaybeAuth) -> Json<Value> {
    let data = if auth.is_superuser() {
        // No backup or restore running (PocketBase's meaning).
        json!({"canBackup": app.backups().is_idle()})
    } else {
        json!({})
    };
    Json(json!({"message": "API is healthy.", "code": 200, "data": data}))
}

pub fn routes() -> axum::Router<App> {
    axum::Router::new().route("/api/health", get(health).head(health))
}
