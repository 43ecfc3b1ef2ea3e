//! Pages that mail links open (`/_/auth/confirm-verification/{token}`, password reset,
//! email change), so a person can finish these flows without any front end. Links in
//! PocketBase's format (`/_/#/auth/...`) are routed to them by the `/_/` page.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::App;
use crate::auth::flows::{self, FlowError};

fn tera() -> &'static tera::Tera {
    static T: OnceLock<tera::Tera> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = tera::Tera::default();
        let templates = [
            (
                "base.html",
                include_str!("../../../templates/pages/base.html"),
            ),
            (
                "confirm.html",
                include_str!("../../../templates/pages/confirm.html"),
            ),
            (
                "oauth2.html",
                include_str!("../../../templates/pages/oauth2.html"),
            ),
        ];
        if let Err(e) = t.add_raw_templates(templates) {
            tracing::error!(error = %e, "page templates do not compile");
        }
        t
    })
}

fn render(name: &str, ctx: &tera::Context) -> Response {
    match tera().render(name, ctx) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template = name, "page rendering failed");
            super::ApiError::internal().into_response()
        }
    }
}

fn context(app: &App) -> tera::Context {
    let mut ctx = tera::Context::new();
    let settings = app.settings().get();
    ctx.insert(
        "app_name",
        settings["meta"]["appName"].as_str().unwrap_or("Ferrobase"),
    );
    ctx
}

#[derive(Clone, Copy)]
enum Kind {
    Verification,
    Reset,
    Email,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "confirm-verification" => Some(Kind::Verification),
            "confirm-password-reset" => Some(Kind::Reset),
            "confirm-email-change" => Some(Kind::Email),
            _ => None,
        }
    }

    fn texts(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Verification => (
                "Verify your email",
                "verify",
                "Verify my email",
                "Your email address is verified.",
            ),
            Kind::Reset => (
                "Reset your password",
                "reset",
                "Set new password",
                "Your password was changed. You can sign in with it now.",
            ),
            Kind::Email => (
                "Confirm your new email",
                "email",
                "Confirm new email",
                "Your email address was changed.",
            ),
        }
    }
}

fn page(app: &App, kind: Kind, done: bool, error: Option<&str>) -> Response {
    let (title, k, action, done_text) = kind.texts();
    let mut ctx = context(app);
    ctx.insert("title", title);
    ctx.insert("kind", k);
    ctx.insert("action", action);
    if done {
        ctx.insert("done", done_text);
    }
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    render("confirm.html", &ctx)
}

async fn show(State(app): State<App>, Path((kind, _token)): Path<(String, String)>) -> Response {
    match Kind::parse(&kind) {
        Some(k) => page(&app, k, false, None),
        None => super::ApiError::not_found().into_response(),
    }
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    password: String,
    #[serde(default, rename = "passwordConfirm")]
    password_confirm: String,
}

fn explain(e: &FlowError) -> String {
    match e {
        FlowError::Validation(_, errs) => {
            let v = errs.clone().into_value();
            if v.get("token").is_some() {
                "This link is invalid or has expired. Request a new one.".to_string()
            } else {
                v.as_object()
                    .and_then(|m| m.values().next())
                    .and_then(|x| x["message"].as_str())
                    .unwrap_or("Invalid input.")
                    .to_string()
            }
        }
        FlowError::BadRequest(m) | FlowError::Forbidden(m) | FlowError::TooManyRequests(m) => {
            m.clone()
        }
        _ => "Something went wrong. Please try again.".to_string(),
    }
}

async fn submit(
    State(app): State<App>,
    Path((kind, token)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let Some(k) = Kind::parse(&kind) else {
        return super::ApiError::not_found().into_response();
    };
    let result = match k {
        Kind::Verification => flows::confirm_verification(&app, &token).await,
        Kind::Reset => {
            flows::confirm_password_reset(&app, &token, &form.password, &form.password_confirm)
                .await
        }
        Kind::Email => flows::confirm_email_change(&app, &token, &form.password).await,
    };
    match result {
        Ok(()) => page(&app, k, true, None),
        Err(e) => page(&app, k, false, Some(&explain(&e))),
    }
}

/// Where `/api/oauth2-redirect` sends the browser window of an OAuth2 sign-in when it is done
/// (PocketBase's `/_/#/auth/oauth2-redirect-*`, routed here by `admin.js`).
async fn oauth2_done(State(app): State<App>, Path(page): Path<String>) -> Response {
    let (title, text, ok) = match page.as_str() {
        "oauth2-redirect-success" => (
            "Signed in",
            "Authentication completed. You can close this window and go back to the app.",
            true,
        ),
        "oauth2-redirect-failure" => (
            "Sign-in failed",
            "Authentication failed. Close this window and try again from the app.",
            false,
        ),
        _ => return super::ApiError::not_found().into_response(),
    };
    let mut ctx = context(&app);
    ctx.insert("title", title);
    ctx.insert("text", text);
    ctx.insert("ok", &ok);
    render("oauth2.html", &ctx)
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/_", get(|| async { Redirect::temporary("/_/") }))
        .route("/_/auth/{kind}/{token}", get(show).post(submit))
        .route("/_/auth/{page}", get(oauth2_done))
}
