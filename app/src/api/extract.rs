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
        if let Some(a) = &resolved {
            if a.is_superuser() && !superuser_ip_allowed(app, &parts.headers, &parts.extensions) {
                return Err(ApiError::forbidden(
                    "You are not allowed to perform this request.",
                ));
            }
            if let Some(slot) = parts.extensions.get::<AuthSlot>() {
                let _ = slot
                    .0
                    .set((a.collection.name.clone(), a.record.id().to_string()));
            }
        }
        let me = MaybeAuth(resolved);
        parts.extensions.insert(me.clone());
        Ok(me)
    }
}

/// Put in a request's extensions by the request logger; the auth extractor records the
/// caller's (collection name, record id) in it.
#[derive(Clone, Default)]
pub struct AuthSlot(pub std::sync::Arc<std::sync::OnceLock<(String, String)>>);

/// `superuserIPs`: when the list is not empty, superusers are only accepted from its
/// addresses and subnets (PocketBase's rule).
pub fn superuser_ip_allowed(
    app: &App,
    headers: &axum::http::HeaderMap,
    ext: &axum::http::Extensions,
) -> bool {
    let settings = app.settings().get();
    let ip = app
        .rate_limiter()
        .client_ip(&settings, headers, crate::server::peer(ext));
    ip_allowed_for_superusers(&settings, &ip)
}

/// [`superuser_ip_allowed`] for a known client IP.
pub fn ip_allowed_for_superusers(settings: &Value, ip: &str) -> bool {
    let Some(list) = settings["superuserIPs"]
        .as_array()
        .filter(|l| !l.is_empty())
    else {
        return true;
    };
    let list: Vec<String> = list
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    super::rate_limit::ip_in_list(&list, ip)
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

/// A record create/update body: JSON, url-encoded form, or multipart form. Multipart values
/// are type-inferred as PocketBase does (`true`/`false` become booleans, canonical numbers
/// become numbers), repeated keys become arrays, and `@jsonPayload` parts are merged in.
pub struct RecordBody(pub serde_json::Map<String, Value>, pub Vec<Upload>);

/// A file part of a multipart body.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The form field it came in (`avatar`, `avatar+`, `+avatar`, `requests.0.avatar`).
    pub field: String,
    /// The name the client gave the file (only used to derive the stored name).
    pub filename: String,
    pub data: bytes::Bytes,
}

/// PocketBase's inference for plain multipart strings.
fn infer(s: String) -> Value {
    match s.as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    // Only canonical forms: "1", "-2.5"; not "01", "1e3", " 1" or "+1".
    let canonical = !s.is_empty()
        && s.parse::<f64>().is_ok_and(|f| f.is_finite())
        && s.parse::<f64>()
            .map(|f| {
                let printed = if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{}", f as i64)
                } else {
                    format!("{f}")
                };
                printed == s
            })
            .unwrap_or(false);
    if canonical && let Ok(f) = s.parse::<f64>() {
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::String(s));
    }
    Value::String(s)
}

fn push(map: &mut serde_json::Map<String, Value>, k: String, v: Value) {
    match map.get_mut(&k) {
        Some(Value::Array(a)) => a.push(v),
        Some(existing) => {
            let prev = existing.take();
            *existing = Value::Array(vec![prev, v]);
        }
        None => {
            map.insert(k, v);
        }
    }
}

impl FromRequest<App> for RecordBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &App) -> Result<Self, Self::Rejection> {
        let is_multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("multipart/form-data"));
        if !is_multipart {
            return JsonBody::from_request(req, state)
                .await
                .map(|b| RecordBody(b.0, Vec::new()));
        }
        let mp = axum::extract::Multipart::from_request(req, state)
            .await
            .map_err(|_| ApiError::bad_request("Failed to read the multipart body."))?;
        read_multipart(mp).await
    }
}

/// Reads a multipart record body (also the fuzz target's entry: it needs no `App`).
pub async fn read_multipart(mut mp: axum::extract::Multipart) -> Result<RecordBody, ApiError> {
    let mut map = serde_json::Map::new();
    let mut payloads = Vec::new();
    let mut uploads = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request entity too large")
                } else {
                    ApiError::bad_request("Failed to read the multipart body.")
                });
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if let Some(filename) = field.file_name().map(str::to_string) {
            let data = field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request entity too large")
                } else {
                    ApiError::bad_request("Failed to read the multipart body.")
                }
            })?;
            uploads.push(Upload {
                field: name,
                filename,
                data,
            });
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|_| ApiError::bad_request("Failed to read the multipart body."))?;
        if name == "@jsonPayload" {
            payloads.push(text);
        } else if !name.is_empty() {
            push(&mut map, name, infer(text));
        }
    }
    for p in payloads {
        match serde_json::from_str::<Value>(&p) {
            Ok(Value::Object(o)) => map.extend(o),
            _ => {
                return Err(ApiError::bad_request(
                    "Failed to load the submitted data due to invalid formatting.",
                ));
            }
        }
    }
    Ok(RecordBody(map, uploads))
}

/// The peer address of the connection, when the server records it.
pub struct ClientAddr(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_inference_matches_pocketbase() {
        assert_eq!(infer("true".into()), Value::Bool(true));
        assert_eq!(infer("false".into()), Value::Bool(false));
        assert_eq!(infer("12".into()), serde_json::json!(12.0));
        assert_eq!(infer("-2.5".into()), serde_json::json!(-2.5));
        for s in ["01", "1e3", " 1", "+1", "abc", "", "True"] {
            assert_eq!(infer(s.into()), Value::String(s.into()), "{s}");
        }
    }
}
