//! `/api/settings` (superusers only).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Superuser};
use crate::App;
use crate::settings::SettingsError;

async fn view(State(app): State<App>, _su: Superuser) -> Json<Value> {
    Json(app.settings().client_json(&app.settings().get()))
}

async fn update(
    State(app): State<App>,
    _su: Superuser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let s = app
        .settings()
        .patch(Value::Object(body))
        .await
        .map_err(|e| match e {
            SettingsError::Validation(errs) => {
                ApiError::validation("An error occurred while submitting the form.", errs)
            }
            SettingsError::Db(e) => e.into(),
            SettingsError::Encryption(detail) => {
                tracing::error!(%detail, "settings encryption failed");
                ApiError::internal()
            }
        })?;
    Ok(Json(app.settings().client_json(&s)))
}

pub fn routes() -> Router<App> {
    Router::new().route("/api/settings", get(view).patch(update))
}
