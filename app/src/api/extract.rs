//! Extractors: the request's auth (or guest) and JSON bodies whose rejections speak
//! PocketBase's error shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::Value;

use super::error::ApiError;
use crate::App;
use crate::auth::{self, AuthRecord};

/// The authenticated record of the request, if its token is valid. An invalid, expired or
/// missing token makes the request a guest; it is never rejected here.
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<AuthRecord>);

impl MaybeAuth {
    pub fn is_superuser(&self) -> bool {
        self.0.as_ref().is_some_and(AuthRecord::is_superuser)
    }
}

impl FromRequestParts<App> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(cached) = parts.extensions.get::<MaybeAuth>() {
            return Ok(cached.clone());
        }
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(auth::token_from_header)
            .filter(|t| !t.is_empty());
        let resolved = match token {
            Some(t) => auth::resolve(app.db(), app.collections(), t).await,
            None => None,
        };
        let me = MaybeAuth(resolved);
        parts.extensions.insert(me.clone());
        Ok(me)
    }
}

/// Requires a superuser: 401 for guests, 403 for other auth records.
pub struct Superuser(pub AuthRecord);

impl FromRequestParts<App> for Superuser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match MaybeAuth::from_request_parts(parts, app).await?.0 {
            None => Err(ApiError::unauthorized(
                "The request requires valid record authorization token.",
            )),
            Some(a) if a.is_superuser() => Ok(Superuser(a)),
            Some(_) => Err(ApiError::forbidden(
                "The authorized record is not allowed to perform this action.",
            )),
        }
    }
}

/// A JSON object body (JSON or url-encoded form). Malformed input is a PocketBase 400, an
/// oversized body a 413.
pub struct JsonBody(pub serde_json::Map<String, Value>);

impl FromRequest<App> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &App) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request entity too large")
                } else {
                    ApiError::bad_request("Failed to read the request body.")
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(serde_json::Map::new()));
        }
        if is_form {
            let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&bytes);
            let mut map = serde_json::Map::new();
            for (k, v) in pairs {
                match map.get_mut(&k) {
                    Some(Value::Array(a)) => a.push(Value::String(v)),
                    Some(existing) => {
                        let prev = existing.take();
                        *existing = Value::Array(vec![prev, Value::String(v)]);
                    }
                    None => {
                        map.insert(k, Value::String(v));
                    }
                }
            }
            return Ok(JsonBody(map));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(JsonBody(m)),
            _ => Err(ApiError::bad_request(
                "Failed to load the submitted data due to invalid formatting.",
            )),
        }
    }
}

fn serde_urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
