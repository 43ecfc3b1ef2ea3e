//! The HTTP API: one router per resource, and the cross-cutting layers (CORS, security
//! headers, body limit, panics and unknown routes as PocketBase-shaped errors, tracing).

pub mod auth;
pub mod backups;
pub mod batch;
pub mod collections;
pub mod crons;
pub mod error;
pub mod extract;
pub mod fields;
pub mod files;
pub mod health;
pub mod list;
pub mod logs;
pub mod pages;
pub mod rate_limit;
pub mod realtime;
pub mod records;
pub mod settings;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

pub use error::{ApiError, ApiResult};

use crate::App;

/// PocketBase's default request body limit.
pub const DEFAULT_BODY_LIMIT: usize = 32 << 20;

/// Security headers PocketBase sets on every response, unless a handler set its own.
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (HeaderName::from_static("x-xss-protection"), "1; mode=block"),
    (HeaderName::from_static("x-content-type-options"), "nosniff"),
    (HeaderName::from_static("x-frame-options"), "SAMEORIGIN"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

/// Runs outside the CORS layer: CORS preflights (answered by that layer) get 204 with no
/// body, as PocketBase's do; every other response gets [`SECURITY_HEADERS`]. One middleware
/// instead of a layer per header: each layer is another future around every request.
async fn response_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = next.run(req).await;
    if preflight {
        if res.status() == StatusCode::OK {
            *res.status_mut() = StatusCode::NO_CONTENT;
            res.headers_mut().remove(axum::http::header::ALLOW);
        }
        return res;
    }
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

async fn not_found() -> impl IntoResponse {
    ApiError::not_found()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a request handler panicked");
    ApiError::internal().into_response()
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.is_empty() || origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::PATCH,
            Method::POST,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
}

/// The whole application router.
pub fn router(app: App, extra: Vec<Router>) -> Router {
    let body_limit = app.config().body_limit;
    let origins = app.config().origins.clone();
    let mut r: Router = Router::new()
        .merge(health::routes())
        .merge(collections::routes())
        .merge(crons::routes())
        .merge(backups::routes())
        .merge(logs::routes())
        .merge(auth::routes())
        .merge(records::routes())
        .merge(settings::routes())
        .merge(batch::routes())
        .merge(realtime::routes())
        .merge(files::routes())
        .merge(pages::routes())
        .merge(crate::admin::routes())
        .with_state(app.clone());
    for e in extra {
        r = r.merge(e);
    }
    r.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            rate_limit::enforce,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(cors(&origins))
        .layer(axum::middleware::from_fn(response_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        // Outside the panic catcher, so a panic's 500 is logged too.
        .layer(axum::middleware::from_fn_with_state(app, logs::record))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    // The path only: query strings may carry tokens (file tokens, filters).
                    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                },
            ),
        )
}

/// Status used when the body is over the limit; kept here so tests can refer to it.
pub const PAYLOAD_TOO_LARGE: StatusCode = StatusCode::PAYLOAD_TOO_LARGE;
