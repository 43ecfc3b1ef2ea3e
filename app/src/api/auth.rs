//! Auth endpoints of auth collections: password sign-in and token refresh.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, MaybeAuth};
use crate::App;
use crate::auth::{flows, password, token};
use crate::records::{self, Record};
use crate::schema::Collection;
use crate::validation::{ValidationErrors, msg};
use axum::response::IntoResponse;

type QueryPairs = Query<Vec<(String, String)>>;

/// The auth collection named in the path, or PocketBase's 404.
fn auth_collection(app: &App, id_or_name: &str) -> ApiResult<Arc<Collection>> {
    app.collections()
        .get(id_or_name)
        .filter(|c| c.is_auth())
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "Missing or invalid auth collection context.",
            )
        })
}

/// Checks the collection's `authRule` for a record that proved its identity.
async fn check_auth_rule(app: &App, c: &Arc<Collection>, r: &Record) -> ApiResult<()> {
    let rule = c.auth.as_ref().and_then(|a| a.auth_rule.clone());
    if flows::rule_matches(app, c, r, &rule).await? {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "The request doesn't satisfy the collection requirements to authenticate.",
        ))
    }
}

/// Finishes a successful sign-in: the auth rule, then MFA (401 `{"mfaId"}` when another
/// method is needed), then the token.
async fn finish_sign_in(
    app: &App,
    c: &Arc<Collection>,
    record: &Record,
    method: &str,
    body: &serde_json::Map<String, Value>,
    q: &[(String, String)],
    origin: (String, String),
) -> ApiResult<axum::response::Response> {
    if c.name == "_superusers"
        && !super::extract::ip_allowed_for_superusers(&app.settings().get(), &origin.0)
    {
        return Err(ApiError::forbidden(
            "You are not allowed to perform this request.",
        ));
    }
    check_auth_rule(app, c, record).await?;
    let mfa_id = body
        .get("mfaId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| q.iter().find(|(k, _)| k == "mfaId").map(|(_, v)| v.clone()));
    match flows::mfa(app, c, record, method, mfa_id.as_deref()).await? {
        flows::MfaStep::Required(id) => Ok((
            axum::http::StatusCode::UNAUTHORIZED,
            Json(json!({"mfaId": id})),
        )
            .into_response()),
        flows::MfaStep::Done => {
            if let Err(e) = flows::note_origin(app, c, record, &origin.0, &origin.1).await {
                tracing::warn!(error = %e, "could not record the sign-in origin");
            }
            signed_in(app, c, record, method);
            Ok(Json(auth_response(c, record, true, q)?).into_response())
        }
    }
}

/// `{token, record}` for a record that just authenticated.
fn auth_response(
    c: &Collection,
    record: &Record,
    refreshable: bool,
    q: &[(String, String)],
) -> ApiResult<Value> {
    let auth = c.auth.as_ref().ok_or_else(ApiError::internal)?;
    let token_key = record.get_str("tokenKey").unwrap_or("");
    let token = token::new_auth_token(
        record.id(),
        &c.id,
        token_key,
        &auth.auth_token.secret,
        auth.auth_token.duration,
        refreshable,
    )?;
    let fields = q
        .iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str());
    let record_json = super::fields::pick(record.to_client_json(c, false, true), fields);
    Ok(json!({"token": token, "record": record_json}))
}

async fn auth_with_password(
    State(app): State<App>,
    Path(coll): Path<String>,
    Query(q): QueryPairs,
    connect: super::extract::ClientAddr,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::response::Response> {
    let c = auth_collection(&app, &coll)?;
    let opts = c.auth.as_ref().ok_or_else(ApiError::internal)?;
    if !opts.password_auth.enabled {
        return Err(ApiError::forbidden(
            "The collection is not configured to allow password authentication.",
        ));
    }
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (identity, pass, identity_field) =
        (text("identity"), text("password"), text("identityField"));
    let mut errs = ValidationErrors::new();
    if identity.is_empty() {
        errs.add(&["identity"], "validation_required", msg::REQUIRED);
    }
    if pass.is_empty() {
        errs.add(&["password"], "validation_required", msg::REQUIRED);
    }
    if !identity_field.is_empty() && !opts.password_auth.identity_fields.contains(&identity_field) {
        errs.add(
            &["identityField"],
            "validation_in_invalid",
            "Must be a valid value.",
        );
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            errs,
        ));
    }
    let fields: Vec<String> = if identity_field.is_empty() {
        opts.password_auth.identity_fields.clone()
    } else {
        vec![identity_field]
    };
    let coll2 = c.clone();
    let found = app
        .db()
        .read(move |conn| {
            for f in &fields {
                if let Some(r) = records::find_by_field(conn, &coll2, f, &identity)? {
                    return Ok::<_, crate::db::DbError>(Some(r));
                }
            }
            Ok(None)
        })
        .await?;
    let ok = password::verify_record(found.as_ref(), pass).await;
    let record = match (found, ok) {
        (Some(r), true) => r,
        _ => return Err(ApiError::bad_request("Failed to authenticate.")),
    };
    finish_sign_in(
        &app,
        &c,
        &record,
        "password",
        &body,
        &q,
        origin(&app, &connect, &headers),
    )
    .await
}

async fn auth_refresh(
    State(app): State<App>,
    Path(coll): Path<String>,
    Query(q): QueryPairs,
    headers: HeaderMap,
    auth: MaybeAuth,
) -> ApiResult<Json<Value>> {
    let c = auth_collection(&app, &coll)?;
    let Some(me) = auth.0 else {
        return Err(ApiError::unauthorized(
            "The request requires valid record authorization token.",
        ));
    };
    if me.collection.id != c.id {
        // PocketBase names the collection of the token's record.
        return Err(ApiError::forbidden(format!(
            "The request requires auth record from {} collection.",
            me.collection.name
        )));
    }
    check_auth_rule(&app, &c, &me.record).await?;
    if !me.refreshable {
        // Non-refreshable (impersonation) tokens come back unchanged.
        let current = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(crate::auth::token_from_header)
            .unwrap_or("")
            .to_string();
        let fields = q
            .iter()
            .find(|(k, _)| k == "fields")
            .map(|(_, v)| v.as_str());
        return Ok(Json(json!({
            "token": current,
            "record": super::fields::pick(me.record.to_client_json(&c, false, true), fields),
        })));
    }
    Ok(Json(auth_response(&c, &me.record, true, &q)?))
}

async fn auth_methods(State(app): State<App>, Path(coll): Path<String>) -> ApiResult<Json<Value>> {
    let c = auth_collection(&app, &coll)?;
    let opts = c.auth.as_ref().ok_or_else(ApiError::internal)?;
    let pw = &opts.password_auth;
    let ids = &pw.identity_fields;
    let mut out = json!({
        "password": {"enabled": pw.enabled, "identityFields": ids},
        "oauth2": {"enabled": false, "providers": []},
        "mfa": {"enabled": opts.mfa.enabled, "duration": if opts.mfa.enabled { opts.mfa.duration } else { 0 }},
        "otp": {"enabled": opts.otp.enabled, "duration": if opts.otp.enabled { opts.otp.duration } else { 0 }},
        "authProviders": [],
        "usernamePassword": pw.enabled && ids.iter().any(|f| f == "username"),
        "emailPassword": pw.enabled && ids.iter().any(|f| f == "email"),
    });
    if let Value::Object(m) = &mut out {
        app.plugins().extend_auth_methods(&c, m).await;
    }
    Ok(Json(out))
}

/// A new refreshable auth token for `record` (the plugins' `issue_token`).
pub(crate) fn new_token(c: &Collection, record: &Record) -> ApiResult<String> {
    let auth = c.auth.as_ref().ok_or_else(ApiError::internal)?;
    Ok(token::new_auth_token(
        record.id(),
        &c.id,
        record.get_str("tokenKey").unwrap_or(""),
        &auth.auth_token.secret,
        auth.auth_token.duration,
        true,
    )?)
}

/// Tells the plugins' event task that `record` signed in with `method`.
fn signed_in(app: &App, c: &Collection, record: &Record, method: &str) {
    if let Some(events) = &app.plugins().events {
        events.auth(ferrobase_plugin::AuthEvent {
            kind: ferrobase_plugin::AuthEventKind::SignedIn {
                method: method.to_string(),
            },
            collection: c.name.clone(),
            record: crate::plugin::to_plugin_record(record),
        });
    }
}

/// A sign-in a plugin completed (e.g. OAuth2): the auth rule, MFA, the event, the token.
pub(crate) async fn plugin_sign_in(
    app: &App,
    c: &Arc<Collection>,
    record: &Record,
    method: &str,
    mfa_id: Option<String>,
    meta: Option<Value>,
) -> ApiResult<ferrobase_plugin::SignIn> {
    check_auth_rule(app, c, record).await?;
    match flows::mfa(app, c, record, method, mfa_id.as_deref()).await? {
        flows::MfaStep::Required(id) => Ok(ferrobase_plugin::SignIn::MfaRequired(id)),
        flows::MfaStep::Done => {
            signed_in(app, c, record, method);
            let mut v = auth_response(c, record, true, &[])?;
            if let (Value::Object(m), Some(meta)) = (&mut v, meta) {
                m.insert("meta".into(), meta);
            }
            Ok(ferrobase_plugin::SignIn::Done(v))
        }
    }
}

/// `POST /impersonate/{id}`: a superuser gets a non-refreshable token for any auth record
/// (used as API keys). `duration` 0 means the collection's auth token duration.
async fn impersonate(
    State(app): State<App>,
    Path((coll, id)): Path<(String, String)>,
    Query(q): QueryPairs,
    auth: MaybeAuth,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if !auth.is_superuser() {
        return Err(ApiError::forbidden(
            "The authorized record is not allowed to perform this action.",
        ));
    }
    let c = auth_collection(&app, &coll)?;
    let duration = match body.get("duration") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(d) if d >= 0 => d,
            _ => {
                let mut errs = ValidationErrors::new();
                errs.add(
                    &["duration"],
                    "validation_min_greater_equal_than_required",
                    "Must be no less than 0.",
                );
                return Err(ApiError::validation(
                    "An error occurred while validating the submitted data.",
                    errs,
                ));
            }
        },
    };
    let c2 = c.clone();
    let record = app
        .db()
        .read(move |conn| records::find_by_id(conn, &c2, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let opts = c.auth.as_ref().ok_or_else(ApiError::internal)?;
    let duration = if duration == 0 {
        opts.auth_token.duration
    } else {
        duration
    };
    let token = token::new_auth_token(
        record.id(),
        &c.id,
        record.get_str("tokenKey").unwrap_or(""),
        &opts.auth_token.secret,
        duration,
        false,
    )?;
    let fields = q
        .iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str());
    Ok(Json(json!({
        "token": token,
        "record": super::fields::pick(record.to_client_json(&c, false, true), fields),
    })))
}

/// The client's address and user agent, for login origins.
/// The client's (IP, user agent); the IP through `trustedProxy` as everywhere else.
fn origin(
    app: &App,
    connect: &super::extract::ClientAddr,
    headers: &HeaderMap,
) -> (String, String) {
    let ip = app
        .rate_limiter()
        .client_ip(&app.settings().get(), headers, connect.0);
    let ua = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (ip, ua)
}

fn body_str<'a>(body: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or("")
}

fn required_token(body: &serde_json::Map<String, Value>) -> ApiResult<String> {
    let t = body_str(body, "token");
    if t.is_empty() {
        let mut e = ValidationErrors::new();
        e.add(&["token"], "validation_required", msg::REQUIRED);
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            e,
        ));
    }
    Ok(t.to_string())
}

async fn request_verification(
    State(app): State<App>,
    Path(coll): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::http::StatusCode> {
    let c = auth_collection(&app, &coll)?;
    flows::request_verification(&app, &c, &body).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn confirm_verification(
    State(app): State<App>,
    Path(coll): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::http::StatusCode> {
    auth_collection(&app, &coll)?;
    flows::confirm_verification(&app, &required_token(&body)?).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn request_password_reset(
    State(app): State<App>,
    Path(coll): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::http::StatusCode> {
    let c = auth_collection(&app, &coll)?;
    flows::request_password_reset(&app, &c, &body).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn confirm_password_reset(
    State(app): State<App>,
    Path(coll): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::http::StatusCode> {
    auth_collection(&app, &coll)?;
    let t = required_token(&body)?;
    flows::confirm_password_reset(
        &app,
        &t,
        body_str(&body, "password"),
        body_str(&body, "passwordConfirm"),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn request_email_change(
    State(app): State<App>,
    Path(coll): Path<String>,
    auth: MaybeAuth,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::http::StatusCode> {
    let c = auth_collection(&app, &coll)?;
    let Some(me) = auth.0 else {
        return Err(ApiError::unauthorized(
            "The request requires valid record authorization token.",
        ));
    };
    if me.collection.id != c.id {
        return Err(ApiError::forbidden(format!(
            "The request requires auth record from {} collection.",
            c.name
        )));
    }
    flows::request_email_change(&app, &me, &body).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn confirm_email_change(
    State(app): State<App>,
    Path(coll): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::http::StatusCode> {
    auth_collection(&app, &coll)?;
    let t = required_token(&body)?;
    flows::confirm_email_change(&app, &t, body_str(&body, "password")).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn request_otp(
    State(app): State<App>,
    Path(coll): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let c = auth_collection(&app, &coll)?;
    let id = flows::request_otp(&app, &c, &body).await?;
    Ok(Json(json!({"otpId": id})))
}

async fn auth_with_otp(
    State(app): State<App>,
    Path(coll): Path<String>,
    Query(q): QueryPairs,
    connect: super::extract::ClientAddr,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::response::Response> {
    let c = auth_collection(&app, &coll)?;
    let record = flows::auth_with_otp(&app, &c, &body).await?;
    finish_sign_in(
        &app,
        &c,
        &record,
        "otp",
        &body,
        &q,
        origin(&app, &connect, &headers),
    )
    .await
}

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/api/collections/{collection}/request-verification",
            post(request_verification),
        )
        .route(
            "/api/collections/{collection}/confirm-verification",
            post(confirm_verification),
        )
        .route(
            "/api/collections/{collection}/request-password-reset",
            post(request_password_reset),
        )
        .route(
            "/api/collections/{collection}/confirm-password-reset",
            post(confirm_password_reset),
        )
        .route(
            "/api/collections/{collection}/request-email-change",
            post(request_email_change),
        )
        .route(
            "/api/collections/{collection}/confirm-email-change",
            post(confirm_email_change),
        )
        .route(
            "/api/collections/{collection}/request-otp",
            post(request_otp),
        )
        .route(
            "/api/collections/{collection}/auth-with-otp",
            post(auth_with_otp),
        )
        .route(
            "/api/collections/{collection}/auth-methods",
            axum::routing::get(auth_methods),
        )
        .route(
            "/api/collections/{collection}/impersonate/{id}",
            post(impersonate),
        )
        .route(
            "/api/collections/{collection}/auth-with-password",
            post(auth_with_password),
        )
        .route(
            "/api/collections/{collection}/auth-refresh",
            post(auth_refresh),
        )
}
