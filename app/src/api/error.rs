//! `ApiError`: the only error that becomes an HTTP response, in PocketBase's shape
//! `{"data":{...},"message":"...","status":N}`. Every lower layer's error maps here, in one
//! place; internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::db::DbError;
use crate::records::ops::RecordError;
use crate::schema::SchemaError;
use crate::validation::ValidationErrors;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub data: Value,
}

/// PocketBase turns messages into sentences: a capital first letter and a final period.
fn sentence(msg: &str) -> String {
    let msg = msg.trim();
    let mut chars = msg.chars();
    let mut out = match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl AsRef<str>) -> Self {
        ApiError {
            status,
            message: sentence(message.as_ref()),
            data: json!({}),
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = if data.is_object() { data } else { json!({}) };
        self
    }

    pub fn bad_request(message: impl AsRef<str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn validation(message: impl AsRef<str>, errs: ValidationErrors) -> Self {
        Self::bad_request(message).with_data(errs.into_value())
    }

    pub fn unauthorized(message: impl AsRef<str>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl AsRef<str>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "The requested resource wasn't found.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong while processing your request.",
        )
    }

    /// Maps a schema error; `action` names the failed operation ("Failed to create
    /// collection.").
    pub fn from_schema(err: SchemaError, action: &str) -> Self {
        match err {
            SchemaError::Validation(errs) => Self::validation(action, errs),
            SchemaError::Malformed(detail) => {
                tracing::debug!(%detail, "malformed collection input");
                Self::bad_request("Failed to load the submitted data due to invalid formatting.")
            }
            SchemaError::NotFound => Self::not_found(),
            SchemaError::Refused(msg) => Self::bad_request(msg),
            SchemaError::Db(e) => e.into(),
            SchemaError::Internal(detail) => {
                tracing::error!(%detail, "internal schema error");
                Self::bad_request(action)
            }
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        tracing::error!(error = %e, "database error");
        ApiError::internal()
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Validation { message, errors } => ApiError::validation(message, errors),
            RecordError::NotFound => ApiError::not_found(),
            RecordError::Forbidden(m) => ApiError::forbidden(m),
            RecordError::BadRequest(m) => ApiError::bad_request(m),
            RecordError::Hook(e) => e.into(),
            RecordError::Db(e) => e.into(),
        }
    }
}

impl From<crate::auth::flows::FlowError> for ApiError {
    fn from(e: crate::auth::flows::FlowError) -> Self {
        use crate::auth::flows::FlowError;
        match e {
            FlowError::Validation(message, errs) => ApiError::validation(message, errs),
            FlowError::BadRequest(m) => ApiError::bad_request(m),
            FlowError::Forbidden(m) => ApiError::forbidden(m),
            FlowError::TooManyRequests(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
            FlowError::Mail(e) => {
                tracing::warn!(error = %e, "mail failed");
                ApiError::bad_request("Failed to send the email.")
            }
            FlowError::Db(e) => e.into(),
            FlowError::Auth(e) => e.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidToken => ApiError::unauthorized("Missing or invalid authentication."),
            AuthError::Hash(detail) => {
                tracing::error!(%detail, "password hashing failed");
                ApiError::internal()
            }
            AuthError::Db(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "data": self.data,
            "message": self.message,
            "status": self.status.as_u16(),
        });
        let mut res = (self.status, axum::Json(body)).into_response();
        // For the request log (`api::logs::record`): what the client was told.
        res.extensions_mut().insert(LoggedError {
            message: self.message,
            data: self.data,
        });
        res
    }
}

/// The error a response carried, kept in its extensions for the request log.
#[derive(Debug, Clone)]
pub struct LoggedError {
    pub message: String,
    pub data: Value,
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_sentences() {
        assert_eq!(sentence("failed to create"), "Failed to create.");
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }
}
