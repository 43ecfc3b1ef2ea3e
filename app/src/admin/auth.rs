//! Sign-in, sign-out and the first-run installer.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::session::{self, PRE_CSRF_COOKIE, SESSION_COOKIE};
use super::{Admin, AdminError, AdminResult, Post, PreSessionPost, render_page, see_other};
use crate::App;
use crate::auth::password;
use crate::records::{self, Record};

/// Whether any superuser exists.
pub(super) async fn superuser_exists(app: &App) -> Result<bool, crate::db::DbError> {
    let Some(c) = app.collections().get("_superusers") else {
        return Ok(false);
    };
    let (rows, _) = app
        .db()
        .read(move |conn| records::list(conn, &c, None, &[], 0, 1, false))
        .await?;
    Ok(!rows.is_empty())
}

fn app_name(app: &App) -> String {
    app.settings().get()["meta"]["appName"]
        .as_str()
        .unwrap_or("Ferrobase")
        .to_string()
}

/// A page with a sign-in-like form: a fresh pre-session CSRF token in the form and cookie.
fn form_page(
    app: &App,
    headers: &HeaderMap,
    template: &str,
    mut ctx: tera::Context,
    status: StatusCode,
) -> Response {
    let token = session::cookie(headers, PRE_CSRF_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(session::random_token);
    ctx.insert("csrf", &token);
    ctx.insert("app_name", &app_name(app));
    let mut res = render_page(template, &ctx);
    *res.status_mut() = status;
    if let Ok(v) =
        session::set_cookie(PRE_CSRF_COOKIE, &token, super::is_https(headers), None).parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Answers with a redirect that also sets the session cookie.
fn signed_in(app: &App, headers: &HeaderMap, su: &Record, to: &str) -> Response {
    let duration = app
        .collections()
        .get("_superusers")
        .and_then(|c| c.auth.as_ref().map(|a| a.auth_token.duration))
        .unwrap_or(86_400)
        .max(60) as u64;
    let cookie = app.admin().start(
        su.id(),
        su.get_str("tokenKey").unwrap_or(""),
        Duration::from_secs(duration),
    );
    let mut res = see_other(to);
    let secure = super::is_https(headers);
    for c in [
        session::set_cookie(SESSION_COOKIE, &cookie, secure, None),
        session::set_cookie(PRE_CSRF_COOKIE, "", secure, Some(0)),
    ] {
        if let Ok(v) = c.parse() {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

pub(super) async fn login_page(
    State(app): State<App>,
    headers: HeaderMap,
    admin: Result<Admin, AdminError>,
) -> Response {
    if admin.is_ok() {
        return see_other("/_/collections");
    }
    let mut ctx = tera::Context::new();
    ctx.insert("email", "");
    form_page(&app, &headers, "login.html", ctx, StatusCode::OK)
}

pub(super) async fn login(State(app): State<App>, post: PreSessionPost) -> AdminResult<Response> {
    let email = post.form.text("email").trim().to_string();
    let pass = post.form.text("password").to_string();
    let c = app
        .collections()
        .get("_superusers")
        .ok_or(AdminError::NotFound)?;
    let (c2, e2) = (c.clone(), email.clone());
    let found = if email.is_empty() {
        None
    } else {
        app.db()
            .read(move |conn| records::find_by_field(conn, &c2, "email", &e2))
            .await?
    };
    let ok = password::verify_record(found.as_ref(), pass).await;
    let refuse = |message: &str, status: StatusCode| {
        let mut ctx = tera::Context::new();
        ctx.insert("email", &email);
        ctx.insert("error", message);
        form_page(&app, &post.headers, "login.html", ctx, status)
    };
    let su = match (found, ok) {
        (Some(su), true) => su,
        _ => {
            tracing::info!("dashboard sign-in failed");
            return Ok(refuse(
                "Invalid email or password.",
                StatusCode::BAD_REQUEST,
            ));
        }
    };
    // The same gates as the API's sign-in: the collection's auth rule, and MFA, which the
    // dashboard cannot complete yet, so it refuses rather than skip the second factor.
    let opts = c.auth.clone().ok_or(AdminError::NotFound)?;
    let allowed = crate::auth::flows::rule_matches(&app, &c, &su, &opts.auth_rule)
        .await
        .unwrap_or(false);
    if !allowed {
        return Ok(refuse(
            "This account is not allowed to sign in (auth rule).",
            StatusCode::FORBIDDEN,
        ));
    }
    if opts.mfa.enabled {
        return Ok(refuse(
            "Multi-factor sign-in is enabled for superusers; the dashboard does not support it yet. Sign in through the API, or disable MFA for _superusers.",
            StatusCode::FORBIDDEN,
        ));
    }
    tracing::info!(superuser = %su.id(), "dashboard sign-in");
    Ok(signed_in(&app, &post.headers, &su, "/_/collections"))
}

pub(super) async fn logout(State(app): State<App>, headers: HeaderMap, post: Post) -> Response {
    app.admin().end(&post.admin.cookie);
    let mut res = see_other("/_/login");
    if let Ok(v) =
        session::set_cookie(SESSION_COOKIE, "", super::is_https(&headers), Some(0)).parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn install_invalid(app: &App, headers: &HeaderMap) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert(
        "invalid",
        "This installer link is invalid, expired or already used. Restart the server to get a new one, or create a superuser with `ferrobase superuser upsert EMAIL PASSWORD`.",
    );
    form_page(app, headers, "install.html", ctx, StatusCode::NOT_FOUND)
}

pub(super) async fn install_page(
    State(app): State<App>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> AdminResult<Response> {
    if !app.admin().install_token_valid(&token) || superuser_exists(&app).await? {
        return Ok(install_invalid(&app, &headers));
    }
    let mut ctx = tera::Context::new();
    ctx.insert("email", "");
    ctx.insert("token", &token);
    Ok(form_page(
        &app,
        &headers,
        "install.html",
        ctx,
        StatusCode::OK,
    ))
}

/// Field errors of a validation error body, as `{field: message}`.
pub(super) fn field_messages(data: &Value) -> Map<String, Value> {
    data.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v["message"].as_str().map(|s| (k.clone(), json!(s))))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn install(
    State(app): State<App>,
    Path(token): Path<String>,
    post: PreSessionPost,
) -> AdminResult<Response> {
    let (email, pass, confirm) = (
        post.form.text("email").trim().to_string(),
        post.form.text("password").to_string(),
        post.form.text("passwordConfirm").to_string(),
    );
    let show_errors = |errors: Map<String, Value>| {
        let mut ctx = tera::Context::new();
        ctx.insert("email", &email);
        ctx.insert("token", &token);
        ctx.insert("errors", &errors);
        ctx.insert("error", "Please fix the highlighted fields.");
        form_page(
            &app,
            &post.headers,
            "install.html",
            ctx,
            StatusCode::BAD_REQUEST,
        )
    };
    if pass != confirm {
        let mut errs = Map::new();
        errs.insert("passwordConfirm".into(), json!("Values don't match."));
        return Ok(show_errors(errs));
    }
    // One use only: the token is taken before anything is written (and given back if the
    // input is invalid, so a typo does not burn the link).
    if !app.admin().take_install_token(&token) || superuser_exists(&app).await? {
        return Ok(install_invalid(&app, &post.headers));
    }
    match crate::superusers::save(&app, &email, &pass, crate::superusers::Mode::Create).await {
        Ok(_) => {}
        Err(crate::superusers::SuperuserError::Validation(errs)) => {
            app.admin().restore_install_token(&token);
            return Ok(show_errors(field_messages(&errs.into_value())));
        }
        Err(e) => {
            app.admin().restore_install_token(&token);
            tracing::error!(error = %e, "installer could not create the superuser");
            return Err(AdminError::Api(crate::api::ApiError::internal()));
        }
    }
    let c = app
        .collections()
        .get("_superusers")
        .ok_or(AdminError::NotFound)?;
    let e2 = email.clone();
    let su = app
        .db()
        .read(move |conn| records::find_by_field(conn, &c, "email", &e2))
        .await?
        .ok_or(AdminError::NotFound)?;
    tracing::info!(superuser = %su.id(), "first superuser created with the installer");
    Ok(signed_in(
        &app,
        &post.headers,
        &su,
        "/_/collections?flash=installed",
    ))
}
