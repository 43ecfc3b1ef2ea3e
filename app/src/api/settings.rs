//! `/api/settings` (superusers only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Superuser};
use crate::App;
use crate::settings::SettingsError;
use crate::validation::ValidationErrors;

async fn view(State(app): State<App>, _su: Superuser) -> Json<Value> {
    Json(app.settings().client_json(&app.settings().get()))
}

async fn update(
    State(app): State<App>,
    _su: Superuser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let s = app
        .patch_settings(Value::Object(body))
        .await
        .map_err(|e| match e {
            SettingsError::Validation(errs) => {
                ApiError::validation("An error occurred while saving the new settings.", errs)
            }
            SettingsError::Db(e) => e.into(),
            SettingsError::Encryption(detail) => {
                tracing::error!(%detail, "settings encryption failed");
                ApiError::internal()
            }
        })?;
    Ok(Json(app.settings().client_json(&s)))
}

/// `POST /api/settings/test/email` `{email, template, collection?}`: sends one of an auth
/// collection's mail templates (default `_superusers`) to `email` with placeholder values,
/// through the configured SMTP server. 204 when the server accepted it.
async fn test_email(
    State(app): State<App>,
    _su: Superuser,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let (email, template, coll) = (text("email"), text("template"), text("collection"));
    let mut errs = ValidationErrors::new();
    if email.is_empty() {
        errs.add(&["email"], "validation_required", "Cannot be blank.");
    } else if !email.contains('@') || email.len() > 255 {
        errs.add(
            &["email"],
            "validation_is_email",
            "Must be a valid email address.",
        );
    }
    let coll = if coll.is_empty() {
        "_superusers".to_string()
    } else {
        coll
    };
    let c = app.collections().get(&coll).filter(|c| c.auth.is_some());
    if c.is_none() {
        errs.add(
            &["collection"],
            "validation_invalid_auth_collection",
            "Must be a valid auth collection id or name.",
        );
    }
    let opts = c.as_ref().and_then(|c| c.auth.clone());
    let picked = opts.as_ref().and_then(|a| match template.as_str() {
        "verification" => Some(a.verification_template.clone()),
        "password-reset" => Some(a.reset_password_template.clone()),
        "email-change" => Some(a.confirm_email_change_template.clone()),
        "otp" => Some(a.otp.email_template.clone()),
        "login-alert" => Some(a.auth_alert.email_template.clone()),
        _ => None,
    });
    if template.is_empty() {
        errs.add(&["template"], "validation_required", "Cannot be blank.");
    } else if picked.is_none() && opts.is_some() {
        errs.add(
            &["template"],
            "validation_in_invalid",
            "Must be a valid value.",
        );
    }
    if !errs.is_empty() {
        return Err(ApiError::validation("Failed to send the test email.", errs));
    }
    let Some(t) = picked else {
        return Err(ApiError::bad_request("Failed to send the test email."));
    };
    let vars = [
        ("TOKEN", "__pb_test_token__"),
        ("OTP", "123456"),
        ("OTP_ID", "_PB_TEST_OTP_ID_"),
        ("ALERT_INFO", "a test sign-in"),
    ];
    crate::auth::flows::send_template(&app, &t, &email, &vars)
        .await
        .map_err(|e| {
            ApiError::bad_request(format!("Failed to send the test email. Raw error: \n{e}"))
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/settings/test/s3`: Ferrobase has no S3 storage yet (docs/compatibility.md);
/// the answer says so in PocketBase's shape.
async fn test_s3(_su: Superuser, JsonBody(body): JsonBody) -> ApiResult<StatusCode> {
    let fs = body.get("filesystem").and_then(Value::as_str).unwrap_or("");
    let mut errs = ValidationErrors::new();
    match fs {
        "" => errs.add(&["filesystem"], "validation_required", "Cannot be blank."),
        "storage" | "backups" => {}
        _ => errs.add(
            &["filesystem"],
            "validation_in_invalid",
            "Must be a valid value.",
        ),
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(
            "Failed to test the S3 filesystem.",
            errs,
        ));
    }
    Err(ApiError::bad_request(
        "Failed to test the S3 filesystem. Raw error: \nS3 storage is not implemented in Ferrobase.",
    ))
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/settings", get(view).patch(update))
        .route("/api/settings/test/email", post(test_email))
        .route("/api/settings/test/s3", post(test_s3))
}
