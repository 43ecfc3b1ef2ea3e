//! `/api/logs` (superusers only): the request logs, listed, viewed and counted per hour; and
//! the middleware that records every request ([`record`]).

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult, LoggedError};
use super::extract::{AuthSlot, Superuser};
use super::list::Paging;
use super::records::{QueryPairs, param};
use crate::App;
use crate::logs::{self, Entry, LogsError};

impl From<LogsError> for ApiError {
    fn from(e: LogsError) -> ApiError {
        match e {
            LogsError::Compile(_) => ApiError::bad_request("Invalid filter or sort parameters."),
            LogsError::Db(e) => e.into(),
        }
    }
}

async fn list(
    State(app): State<App>,
    _su: Superuser,
    axum::extract::Query(q): QueryPairs,
) -> ApiResult<Json<Value>> {
    let paging = Paging::from_query(&q)?;
    let (filter, sort) = (
        param(&q, "filter").to_string(),
        param(&q, "sort").to_string(),
    );
    let (offset, limit, with_total) = (paging.offset(), paging.per_page, !paging.skip_total);
    let (items, total) = app
        .logs()
        .db()
        .read(move |conn| logs::list(conn, &filter, &sort, offset, limit, with_total))
        .await?;
    Ok(Json(paging.envelope(items, total)))
}

async fn stats(
    State(app): State<App>,
    _su: Superuser,
    axum::extract::Query(q): QueryPairs,
) -> ApiResult<Json<Value>> {
    let filter = param(&q, "filter").to_string();
    let items = app
        .logs()
        .db()
        .read(move |conn| logs::stats(conn, &filter))
        .await
        .map_err(|e| match e {
            LogsError::Compile(_) => ApiError::bad_request("Invalid filter format."),
            other => other.into(),
        })?;
    Ok(Json(Value::Array(items)))
}

async fn view(
    State(app): State<App>,
    _su: Superuser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.logs()
        .db()
        .read(move |conn| logs::view(conn, &id))
        .await?
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// `DELETE /api/logs` (PocketBase 0.40): every entry.
async fn delete_all(State(app): State<App>, _su: Superuser) -> ApiResult<axum::http::StatusCode> {
    app.logs().delete_all().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/logs", get(list).delete(delete_all))
        .route("/api/logs/stats", get(stats))
        .route("/api/logs/{id}", get(view))
}

/// Query parameters whose values are credentials: kept out of the logged URL.
const SECRET_PARAMS: &[&str] = &["token"];

/// The request's path and query, with [`SECRET_PARAMS`] values replaced, at most 3,000
/// bytes (PocketBase's cut).
fn logged_uri(uri: &axum::http::Uri) -> String {
    let mut out = uri.path().to_string();
    if let Some(q) = uri.query() {
        out.push('?');
        let mut first = true;
        for pair in q.split('&') {
            if !first {
                out.push('&');
            }
            first = false;
            match pair.split_once('=') {
                Some((k, _)) if SECRET_PARAMS.contains(&k) => {
                    out.push_str(k);
                    out.push_str("=***");
                }
                _ => out.push_str(pair),
            }
        }
    }
    cut(out, 3000)
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut i = max;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
    s
}

fn header(req: &Request, name: axum::http::HeaderName) -> String {
    cut(
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        2000,
    )
}

/// The request-log middleware: times the request and hands an entry to the log writer
/// after the response is ready (the request never waits for the write). Off when
/// `logs.maxDays` is 0. As in PocketBase, CORS preflights are not logged, nor are successful
/// `/api/logs` calls, realtime connections, OAuth2 redirects and dashboard pages; unlike
/// PocketBase, successful health checks are not either (a container's `HEALTHCHECK` would
/// fill the table).
pub async fn record(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let settings = app.settings().get();
    let cfg = &settings["logs"];
    if cfg["maxDays"].as_i64().unwrap_or(0) <= 0 || req.method() == axum::http::Method::OPTIONS {
        return next.run(req).await;
    }
    let started = Instant::now();
    let slot = AuthSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().as_str().to_string();
    let url = logged_uri(req.uri());
    let path = req.uri().path();
    let quiet_on_success = path.starts_with("/api/logs")
        || path == "/api/health"
        || (path == "/api/realtime" && req.method() == axum::http::Method::GET)
        || path == "/api/oauth2-redirect"
        || !path.starts_with("/api/");
    let referer = header(&req, axum::http::header::REFERER);
    let user_agent = header(&req, axum::http::header::USER_AGENT);
    let ips = cfg["logIP"].as_bool().unwrap_or(true).then(|| {
        let peer = crate::server::peer(req.extensions());
        (
            app.rate_limiter().client_ip(&settings, req.headers(), peer),
            peer.map(|a| a.ip().to_string()).unwrap_or_default(),
        )
    });
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let error = res.extensions().get::<LoggedError>();
    if error.is_none() && status < 400 && quiet_on_success {
        return res;
    }
    let level = if error.is_some() || status >= 400 {
        logs::LEVEL_ERROR
    } else {
        logs::LEVEL_INFO
    };
    if level < cfg["minLevel"].as_i64().unwrap_or(0) {
        return res;
    }
    let mut data = Map::new();
    data.insert("type".into(), json!("request"));
    data.insert(
        "execTime".into(),
        json!(started.elapsed().as_secs_f64() * 1000.0),
    );
    if let Some(e) = error {
        data.insert("error".into(), json!(e.message));
        data.insert("details".into(), e.data.clone());
    }
    let message = format!(
        "{method} {}",
        percent_encoding::percent_decode_str(&url)
            .decode_utf8()
            .map_or_else(|_| url.clone(), |d| d.into_owned())
    );
    data.insert("url".into(), json!(url));
    data.insert("method".into(), json!(method));
    data.insert("status".into(), json!(status));
    data.insert("referer".into(), json!(referer));
    data.insert("userAgent".into(), json!(user_agent));
    match slot.0.get() {
        Some((collection, id)) => {
            data.insert("auth".into(), json!(collection));
            if cfg["logAuthId"].as_bool().unwrap_or(false) {
                data.insert("authId".into(), json!(id));
            }
        }
        None => {
            data.insert("auth".into(), json!(""));
        }
    }
    if let Some((user_ip, remote_ip)) = ips {
        data.insert("userIP".into(), json!(user_ip));
        data.insert("remoteIP".into(), json!(remote_ip));
    }
    app.logs().record(Entry {
        level,
        message,
        data,
        created: crate::schema::ids::now(),
        max_data: usize::try_from(cfg["maxDataSize"].as_u64().unwrap_or(0)).unwrap_or(0),
    });
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_out_of_logged_urls() {
        let uri: axum::http::Uri = "/api/files/c/r/a.png?thumb=100x100&token=eyJsecret&x=1"
            .parse()
            .unwrap();
        assert_eq!(
            logged_uri(&uri),
            "/api/files/c/r/a.png?thumb=100x100&token=***&x=1"
        );
        assert_eq!(cut("ééé".into(), 3), "é");
    }
}
