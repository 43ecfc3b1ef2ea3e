//! The admin dashboard at `/_/`: server-rendered pages (tera templates from
//! `templates/admin/`, embedded in the binary) for superusers. Every page works without
//! JavaScript; `admin.js` and the vendored htmx only add conveniences. See `docs/dashboard.md`.
//!
//! The dashboard calls the same stores and record operations as the REST API (never the API
//! over HTTP), so rules, validation, realtime events, automigrate files and file cleanup are
//! the same whichever way a change comes in.

mod auth;
mod collections;
mod form;
mod ops;
mod plugins;
mod records;
pub mod session;
mod settings;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use serde_json::Value;

use crate::App;
use crate::api::ApiError;
use crate::api::extract::Upload;
use crate::records::Record;
use crate::schema::Collection;

pub use session::AdminState;

/// Errors of the dashboard layer; each becomes a page (or a redirect to the sign-in page).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No live session: go to the sign-in page.
    #[error("not signed in")]
    SignIn,
    /// A POST without the right CSRF token.
    #[error("missing or invalid CSRF token")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// An error of the layers below, already shaped for clients.
    #[error("{}", .0.message)]
    Api(ApiError),
}

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        AdminError::Api(e)
    }
}

impl From<crate::db::DbError> for AdminError {
    fn from(e: crate::db::DbError) -> Self {
        AdminError::Api(e.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            AdminError::SignIn => return Redirect::to("/_/login").into_response(),
            AdminError::Csrf => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "The form was missing its security token or the token did not match. Reload the page and try again.".to_string(),
            ),
            AdminError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "The page or item you asked for does not exist.".to_string(),
            ),
            AdminError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Invalid request", m.clone()),
            AdminError::Api(e) => (e.status, "Something went wrong", e.message.clone()),
        };
        let mut ctx = tera::Context::new();
        ctx.insert("title", title);
        ctx.insert("message", &message);
        let mut res = render_page("error.html", &ctx);
        *res.status_mut() = status;
        res
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../templates/admin/", $name)))),*]
    };
}

fn tera() -> &'static tera::Tera {
    static T: OnceLock<tera::Tera> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = tera::Tera::default();
        let templates = templates![
            "base.html",
            "auth_base.html",
            "error.html",
            "login.html",
            "install.html",
            "collections.html",
            "collection_edit.html",
            "rule_status.html",
            "records.html",
            "record_edit.html",
            "settings.html",
            "plugin_page.html",
            "plugin_settings.html",
            "logs.html",
            "log.html",
            "backups.html",
        ];
        if let Err(e) = t.add_raw_templates(templates) {
            tracing::error!(error = ?e, "dashboard templates do not compile");
        }
        t
    })
}

/// The security headers of every dashboard page: no inline script can run even if some value
/// escaped escaping, no framing, nothing cached.
fn page_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Renders a template into a page with the dashboard's headers.
pub(crate) fn render_page(name: &str, ctx: &tera::Context) -> Response {
    let mut res = match tera().render(name, ctx) {
        Ok(html) => axum::response::Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, template = name, "dashboard rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::response::Html(
                    "<!doctype html><title>Error</title><p>The page could not be rendered.</p>",
                ),
            )
                .into_response()
        }
    };
    page_headers(res.headers_mut());
    res
}

/// A 303 redirect (after a POST) to a dashboard path.
pub(crate) fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// Whether the request came over HTTPS (directly or through a proxy saying so): decides the
/// cookies' `Secure` flag. A forged header only makes the cookie stricter.
pub(crate) fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A signed-in superuser with a live session.
#[derive(Clone)]
pub struct Admin {
    pub cookie: String,
    pub session: session::Session,
    pub record: Record,
    pub collection: Arc<Collection>,
}

impl Admin {
    /// The caller identity the record operations see: this superuser.
    pub fn caller(&self) -> crate::records::ops::Caller {
        crate::records::ops::Caller {
            auth: Some(crate::auth::AuthRecord {
                collection: self.collection.clone(),
                record: self.record.clone(),
                refreshable: true,
            }),
            query: Vec::new(),
            headers: Vec::new(),
            method: "POST".into(),
            context: "default".into(),
            system: false,
        }
    }

    pub fn email(&self) -> &str {
        self.record.get_str("email").unwrap_or("")
    }
}

impl FromRequestParts<App> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AdminError> {
        if let Some(a) = parts.extensions.get::<Admin>() {
            return Ok(a.clone());
        }
        let cookie = session::cookie(&parts.headers, session::SESSION_COOKIE)
            .ok_or(AdminError::SignIn)?
            .to_string();
        // `superuserIPs` holds for dashboard sessions as for tokens.
        if !crate::api::extract::superuser_ip_allowed(app, &parts.headers, &parts.extensions) {
            return Err(AdminError::Api(ApiError::forbidden(
                "You are not allowed to perform this request.",
            )));
        }
        let s = app.admin().get(&cookie).ok_or(AdminError::SignIn)?;
        let c = app
            .collections()
            .get("_superusers")
            .ok_or(AdminError::SignIn)?;
        let (c2, id) = (c.clone(), s.superuser_id.clone());
        let record = app
            .db()
            .read(move |conn| crate::records::find_by_id(conn, &c2, &id))
            .await?;
        let Some(record) = record else {
            app.admin().end_all_of(&s.superuser_id);
            return Err(AdminError::SignIn);
        };
        if !session::secrets_equal(record.get_str("tokenKey").unwrap_or(""), &s.token_key) {
            app.admin().end_all_of(&s.superuser_id);
            return Err(AdminError::SignIn);
        }
        let admin = Admin {
            cookie,
            session: s,
            record,
            collection: c,
        };
        parts.extensions.insert(admin.clone());
        Ok(admin)
    }
}

/// A submitted form: url-encoded or multipart (pairs in order, and the uploaded files).
#[derive(Debug, Default, Clone)]
pub struct FormData {
    pub pairs: Vec<(String, String)>,
    pub files: Vec<Upload>,
}

impl FormData {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, or "".
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a checkbox named `key` was checked.
    pub fn checked(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

fn too_large_or_bad(status: StatusCode) -> AdminError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AdminError::Api(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request entity too large",
        ))
    } else {
        AdminError::BadRequest("The form could not be read.".into())
    }
}

impl FromRequest<App> for FormData {
    type Rejection = AdminError;

    async fn from_request(req: Request, app: &App) -> Result<Self, AdminError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if ct.starts_with("multipart/form-data") {
            let mut mp = axum::extract::Multipart::from_request(req, app)
                .await
                .map_err(|e| too_large_or_bad(e.status()))?;
            let mut out = FormData::default();
            while let Some(field) = mp
                .next_field()
                .await
                .map_err(|e| too_large_or_bad(e.status()))?
            {
                let name = field.name().unwrap_or("").to_string();
                if let Some(filename) = field.file_name().map(str::to_string) {
                    let data = field
                        .bytes()
                        .await
                        .map_err(|e| too_large_or_bad(e.status()))?;
                    // Browsers send an empty part for a file input left empty.
                    if !filename.is_empty() || !data.is_empty() {
                        out.files.push(Upload {
                            field: name,
                            filename,
                            data,
                        });
                    }
                } else {
                    let text = field
                        .text()
                        .await
                        .map_err(|e| too_large_or_bad(e.status()))?;
                    out.pairs.push((name, text));
                }
            }
            return Ok(out);
        }
        let bytes = axum::body::Bytes::from_request(req, app)
            .await
            .map_err(|e| too_large_or_bad(e.status()))?;
        Ok(FormData {
            pairs: form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            files: Vec::new(),
        })
    }
}

/// A POST from a signed-in superuser whose CSRF token (form field `csrf` or header
/// `X-CSRF-Token`) matches the session's. Every state-changing dashboard handler takes this,
/// so none can forget the check.
pub struct Post {
    pub admin: Admin,
    pub form: FormData,
}

impl FromRequest<App> for Post {
    type Rejection = AdminError;

    async fn from_request(req: Request, app: &App) -> Result<Self, AdminError> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, app).await?;
        let header_token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let form = FormData::from_request(Request::from_parts(parts, body), app).await?;
        let given = header_token.or_else(|| form.get("csrf").map(str::to_string));
        match given {
            Some(t) if session::secrets_equal(&t, &admin.session.csrf) => Ok(Post { admin, form }),
            _ => Err(AdminError::Csrf),
        }
    }
}

/// A POST of the sign-in or installer form: its `csrf` field must match the `fb_csrf` cookie
/// that the form's page set (double submit; the cookie is SameSite=Strict and HttpOnly).
pub struct PreSessionPost {
    pub form: FormData,
    pub headers: HeaderMap,
}

impl FromRequest<App> for PreSessionPost {
    type Rejection = AdminError;

    async fn from_request(req: Request, app: &App) -> Result<Self, AdminError> {
        let headers = req.headers().clone();
        let form = FormData::from_request(req, app).await?;
        let cookie = session::cookie(&headers, session::PRE_CSRF_COOKIE);
        match (cookie, form.get("csrf")) {
            (Some(c), Some(f)) if session::secrets_equal(c, f) => {
                Ok(PreSessionPost { form, headers })
            }
            _ => Err(AdminError::Csrf),
        }
    }
}

/// The context every signed-in page starts from: app name, CSRF token, the superuser, the
/// collections for the sidebar, and the flash message named in the query.
pub(crate) fn base_context(app: &App, admin: &Admin, active: &str) -> tera::Context {
    let mut ctx = tera::Context::new();
    let settings = app.settings().get();
    ctx.insert(
        "app_name",
        settings["meta"]["appName"].as_str().unwrap_or("Ferrobase"),
    );
    ctx.insert("csrf", &admin.session.csrf);
    ctx.insert("me", admin.email());
    ctx.insert("active", active);
    let snapshot = app.collections().snapshot();
    let mut nav: Vec<serde_json::Value> = snapshot
        .all()
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id, "name": c.name, "type": c.kind.as_str(), "system": c.system,
                "owner": app.collections().owner_of(&c.id),
            })
        })
        .collect();
    nav.sort_by(|a, b| {
        (a["system"].as_bool(), a["name"].as_str())
            .cmp(&(b["system"].as_bool(), b["name"].as_str()))
    });
    ctx.insert("nav_collections", &nav);
    ctx.insert("nav_plugins", &plugins::nav(app));
    ctx
}

/// A JSON value as a person reads it in an input or a table cell: strings as they are, lists
/// comma separated, nothing for `null`.
pub(crate) fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(display).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Known flash messages, chosen by a code in the query (`?flash=saved`): no text from the
/// request is ever echoed.
pub(crate) fn flash_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "saved" => "Saved.",
        "created" => "Created.",
        "deleted" => "Deleted.",
        "collection-created" => "Collection created.",
        "collection-deleted" => "Collection deleted.",
        "mail-sent" => "Test mail sent.",
        "backup-created" => "Backup created.",
        "backup-deleted" => "Backup deleted.",
        "installed" => "Your superuser account is ready. Welcome!",
        _ => return None,
    })
}

pub(crate) fn insert_flash(ctx: &mut tera::Context, q: &[(String, String)]) {
    if let Some(text) = q
        .iter()
        .find(|(k, _)| k == "flash")
        .and_then(|(_, v)| flash_text(v))
    {
        ctx.insert("flash", text);
    }
}

/// Embedded static files.
async fn static_file(Path(name): Path<String>) -> Response {
    let (body, ctype): (&'static str, &'static str) = match name.as_str() {
        "admin.css" => (
            include_str!("../../../templates/admin/static/admin.css"),
            "text/css; charset=utf-8",
        ),
        "admin.js" => (
            include_str!("../../../templates/admin/static/admin.js"),
            "text/javascript; charset=utf-8",
        ),
        "htmx.min.js" => (
            include_str!("../../../templates/admin/static/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return AdminError::NotFound.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn index(admin: Result<Admin, AdminError>) -> Response {
    match admin {
        Ok(_) => see_other("/_/collections"),
        Err(_) => see_other("/_/login"),
    }
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/_/", get(index))
        .route("/_/static/{file}", get(static_file))
        .route("/_/login", get(auth::login_page).post(auth::login))
        .route("/_/logout", post(auth::logout))
        .route(
            "/_/install/{token}",
            get(auth::install_page).post(auth::install),
        )
        .route("/_/collections", get(collections::list))
        .route(
            "/_/collections/new",
            get(collections::new_page).post(collections::new_submit),
        )
        .route(
            "/_/collections/{id}/edit",
            get(collections::edit_page).post(collections::edit_submit),
        )
        .route("/_/collections/{id}/delete", post(collections::delete))
        .route("/_/rules/check", post(collections::check_rule))
        .route("/_/collections/{name}/records", get(records::list))
        .route(
            "/_/collections/{name}/records/new",
            get(records::new_page).post(records::new_submit),
        )
        .route(
            "/_/collections/{name}/records/delete",
            post(records::bulk_delete),
        )
        .route(
            "/_/collections/{name}/records/{id}",
            get(records::edit_page).post(records::edit_submit),
        )
        .route(
            "/_/collections/{name}/records/{id}/delete",
            post(records::delete),
        )
        .route("/_/settings", get(settings::page).post(settings::save))
        .route(
            "/_/plugins/{plugin}/{slug}",
            get(plugins::page).post(plugins::page_post),
        )
        .route(
            "/_/plugin-settings/{plugin}",
            get(plugins::settings_page).post(plugins::settings_save),
        )
        .route("/_/settings/test-mail", post(settings::test_mail))
        .route("/_/logs", get(ops::logs))
        .route("/_/logs/{id}", get(ops::log))
        .route("/_/backups", get(ops::backups).post(ops::create_backup))
        .route("/_/backups/{key}/delete", post(ops::delete_backup))
        .route("/_/backups/{key}/restore", post(ops::restore_backup))
}

/// Called by `serve` at start: when no superuser exists, issues the one-time installer token
/// and returns the path to print (`/_/#/pbinstall/{token}`).
pub async fn installer_path(app: &App) -> Result<Option<String>, crate::db::DbError> {
    if auth::superuser_exists(app).await? {
        return Ok(None);
    }
    let token = app.admin().new_install_token();
    Ok(Some(format!("/_/#/pbinstall/{token}")))
}
