//! `GET`/`POST /api/realtime` and the OAuth2 redirect hook (`/api/oauth2-redirect`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, MaybeAuth};
use crate::App;
use crate::realtime::{RealtimeError, message, sse};
use crate::validation::{ValidationErrors, msg};

const MAX_TOPICS: usize = 1000;
const MAX_TOPIC_LEN: usize = 2500;

async fn connect(State(app): State<App>) -> Response {
    let broker = app.realtime().clone();
    let (client, rx) = broker.connect();
    let body = Body::from_stream(sse::stream(broker, client, rx));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

async fn subscribe(
    State(app): State<App>,
    auth: MaybeAuth,
    JsonBody(body): JsonBody,
) -> ApiResult<impl IntoResponse> {
    let client_id = body.get("clientId").and_then(Value::as_str).unwrap_or("");
    let mut errs = ValidationErrors::new();
    if client_id.is_empty() {
        errs.add(&["clientId"], "validation_required", msg::REQUIRED);
    }
    let topics: Vec<String> = match body.get("subscriptions") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            errs.add(
                &["subscriptions"],
                "validation_invalid_value",
                msg::INVALID_VALUE,
            );
            vec![]
        }
    };
    if topics.len() > MAX_TOPICS {
        errs.add(
            &["subscriptions"],
            "validation_length_too_long",
            &format!("The length must be no more than {MAX_TOPICS}."),
        );
    }
    for (i, t) in topics.iter().enumerate() {
        if t.len() > MAX_TOPIC_LEN {
            errs.add(
                &["subscriptions", &i.to_string()],
                "validation_length_too_long",
                &format!("The length must be no more than {MAX_TOPIC_LEN}."),
            );
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(
            "Something went wrong while processing your request.",
            errs,
        ));
    }
    app.realtime()
        .subscribe(client_id, auth.0, topics)
        .map_err(|e| match e {
            RealtimeError::UnknownClient => {
                ApiError::new(StatusCode::NOT_FOUND, "Missing or invalid client id.")
            }
            RealtimeError::AuthMismatch => ApiError::forbidden(
                "The current and the previous request authorization don't match.",
            ),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// OAuth2 providers redirect here; the code is handed to the realtime client whose id is the
/// `state` and that subscribed to `@oauth2` (the SDK's `authWithOAuth2` flow), once: the
/// delivery ends the client's `@oauth2` subscription.
async fn oauth2_redirect(
    State(app): State<App>,
    method: axum::http::Method,
    Query(mut q): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> Response {
    // Providers that answer with `response_mode=form_post` (Apple) POST the fields as a form.
    if method == axum::http::Method::POST {
        q.extend(form_urlencoded::parse(&body).into_owned());
    }
    let get = |k: &str| {
        q.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (state, code, error) = (get("state"), get("code"), get("error"));
    // The subscription is taken, not just looked at: one state delivers one code, so a
    // replayed or second redirect for the same state finds nobody waiting.
    let client = app
        .realtime()
        .client(&state)
        .filter(|c| c.take_subscription("@oauth2"));
    let ok = match client {
        Some(c) if !state.is_empty() => {
            let mut data = json!({"state": state, "code": code});
            if !error.is_empty() {
                data["error"] = json!(error);
            }
            c.send(message(&c.id, "@oauth2", &data.to_string()))
                && error.is_empty()
                && !code.is_empty()
        }
        _ => false,
    };
    let target = if ok {
        "/_/#/auth/oauth2-redirect-success"
    } else {
        "/_/#/auth/oauth2-redirect-failure"
    };
    if method == axum::http::Method::POST {
        Redirect::to(target).into_response()
    } else {
        Redirect::temporary(target).into_response()
    }
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/realtime", get(connect).post(subscribe))
        .route(
            "/api/oauth2-redirect",
            get(oauth2_redirect).post(oauth2_redirect),
        )
}
