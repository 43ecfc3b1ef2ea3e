//! The plugin interface of Ferrobase.
//!
//! A plugin is a value implementing [`Plugin`], compiled into the binary and handed to the
//! core at start. This crate is the only surface the core promises to keep stable for template
//! users: plugins depend on it (and on third-party crates), never on the app crate.
//!
//! The life of a plugin:
//!
//! 1. At start the core asks every plugin for its [`Plugin::settings`] (a typed section of the
//!    settings document, `plugins.<name>`). A plugin whose required settings are missing stays
//!    off and the log says why.
//! 2. The core calls [`Plugin::setup`] with a [`Setup`]: the plugin declares the collections
//!    it owns, fields it adds to existing collections, routes, hooks, cron jobs, CLI
//!    subcommands and dashboard pages. The core applies them before the server listens.
//! 3. While the server runs, the plugin's routes and hooks use the [`App`] handle (from
//!    [`Setup::app`]) for everything else: records as a caller or as the system, transactions,
//!    schema, auth, realtime, mail and settings. Every call goes through the same code as the
//!    REST API: rules, validation, realtime events, automigrate files.
//!
//! See `docs/plugins.md` in the repository for the design, the guarantees (ordering,
//! transactions, failures) and a worked example.
#![deny(missing_docs)]

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use axum;
pub use serde_json;
use serde_json::{Map, Value, json};

/// A boxed future, as the core's services return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of plugin calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// ------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------

/// An error in PocketBase's shape (`{"status", "message", "data"}`): what every service
/// returns and what plugin routes answer with. `data` holds field errors
/// (`{"field": {"code": "...", "message": "..."}}`) for validation failures.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// The HTTP status.
    pub status: u16,
    /// A sentence for people.
    pub message: String,
    /// Field errors, or `{}`.
    pub data: Value,
}

impl Error {
    /// An error with a status and a message.
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
            data: json!({}),
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }

    /// 401 with a message.
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(401, message)
    }

    /// 403 with a message.
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(403, message)
    }

    /// PocketBase's 404.
    pub fn not_found() -> Error {
        Error::new(404, "The requested resource wasn't found.")
    }

    /// 500 without details (log the details yourself; never send them).
    pub fn internal() -> Error {
        Error::new(500, "Something went wrong while processing your request.")
    }

    /// 400 with one field error, as PocketBase's validation errors:
    /// `Error::validation("Failed to create record.", "title", "validation_required", "Cannot be blank.")`.
    pub fn validation(
        message: impl Into<String>,
        field: &str,
        code: &str,
        field_message: &str,
    ) -> Error {
        Error::bad_request(message).with_field(field, code, field_message)
    }

    /// Adds a field error to `data`.
    pub fn with_field(mut self, field: &str, code: &str, field_message: &str) -> Error {
        if !self.data.is_object() {
            self.data = json!({});
        }
        if let Value::Object(m) = &mut self.data {
            m.insert(
                field.to_string(),
                json!({"code": code, "message": field_message}),
            );
        }
        self
    }

    /// The PocketBase-shaped JSON body.
    pub fn to_json(&self) -> Value {
        json!({"status": self.status, "message": self.message, "data": self.data})
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)?;
        if self.data.as_object().is_some_and(|m| !m.is_empty()) {
            write!(f, " {}", self.data)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.to_json())).into_response()
    }
}

// ------------------------------------------------------------------------------------------
// Records and callers
// ------------------------------------------------------------------------------------------

/// A record: its collection and its fields by name, with values typed by field kind (as the
/// REST API writes them). Records the services return hold every stored field except the
/// password hash and the token key; use [`App::client_json`] for what a caller may see.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The collection's id.
    pub collection_id: String,
    /// The collection's name.
    pub collection_name: String,
    /// Field values by field name (`id` included).
    pub data: Map<String, Value>,
}

impl Record {
    /// The record id.
    pub fn id(&self) -> &str {
        self.get_str("id").unwrap_or("")
    }

    /// A field's value.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.data.get(field)
    }

    /// A field's value if it is a string.
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.data.get(field).and_then(Value::as_str)
    }
}

/// The auth record a caller is signed in as.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The auth collection's id.
    pub collection_id: String,
    /// The auth collection's name (`_superusers` for superusers).
    pub collection_name: String,
    /// The auth record's id.
    pub record_id: String,
    /// The record's email.
    pub email: String,
}

impl Identity {
    /// True for superusers.
    pub fn is_superuser(&self) -> bool {
        self.collection_name == "_superusers"
    }
}

/// Who a service call acts for. [`Caller::system`] bypasses API rules (explicitly: the
/// plugin takes responsibility); every other caller is held to the collection's rules exactly
/// as the REST API holds it. Route handlers get the request's caller from the
/// [`RequestCaller`] extractor, which carries the request's headers and query for
/// `@request.*` rules too.
#[derive(Clone)]
pub struct Caller {
    kind: CallerKind,
}

#[derive(Clone)]
enum CallerKind {
    System,
    Guest,
    Core {
        identity: Option<Identity>,
        inner: Arc<dyn Any + Send + Sync>,
    },
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CallerKind::System => f.write_str("Caller::System"),
            CallerKind::Guest => f.write_str("Caller::Guest"),
            CallerKind::Core { identity, .. } => match identity {
                Some(i) => write!(f, "Caller({}/{})", i.collection_name, i.record_id),
                None => f.write_str("Caller::Guest"),
            },
        }
    }
}

impl Caller {
    /// The system: no rules apply (like a superuser), nothing is checked on its behalf.
    pub fn system() -> Caller {
        Caller {
            kind: CallerKind::System,
        }
    }

    /// A guest with no request context.
    pub fn guest() -> Caller {
        Caller {
            kind: CallerKind::Guest,
        }
    }

    /// Made by the core: a caller with the core's own request context. Plugins get these from
    /// [`RequestCaller`] or [`App::verify_token`].
    #[doc(hidden)]
    pub fn from_core(identity: Option<Identity>, inner: Arc<dyn Any + Send + Sync>) -> Caller {
        Caller {
            kind: CallerKind::Core { identity, inner },
        }
    }

    /// The core's own context of this caller, if the core made it.
    #[doc(hidden)]
    pub fn core_context(&self) -> Option<&Arc<dyn Any + Send + Sync>> {
        match &self.kind {
            CallerKind::Core { inner, .. } => Some(inner),
            _ => None,
        }
    }

    /// True for [`Caller::system`].
    pub fn is_system(&self) -> bool {
        matches!(self.kind, CallerKind::System)
    }

    /// The signed-in auth record, if any.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.kind {
            CallerKind::Core { identity, .. } => identity.as_ref(),
            _ => None,
        }
    }

    /// True for a signed-in superuser (not for the system).
    pub fn is_superuser(&self) -> bool {
        self.identity().is_some_and(Identity::is_superuser)
    }
}

/// The caller of a plugin route: the request's auth (a guest without a valid token) and its
/// headers and query. Use it as an axum extractor in plugin routes.
#[derive(Clone, Debug)]
pub struct RequestCaller(pub Caller);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestCaller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let app =
            parts.extensions.get::<App>().cloned().ok_or_else(|| {
                Error::new(500, "RequestCaller is only available on plugin routes.")
            })?;
        Ok(RequestCaller(app.core.request_caller(parts).await))
    }
}

/// The [`App`] handle, as an axum extractor on plugin routes (the same handle
/// [`Setup::app`] gives).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for App {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<App>()
            .cloned()
            .ok_or_else(|| Error::new(500, "App is only available on plugin routes."))
    }
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// A filter in the records API grammar (`status = "active" && total > 10`). Build it
    /// with [`filter`] when it holds values from outside.
    pub filter: String,
    /// A sort (`-created,title`).
    pub sort: String,
    /// The page, from 1 (0 is taken as 1).
    pub page: u64,
    /// Items per page (0 is taken as 30; at most 1000).
    pub per_page: u64,
    /// Skip counting the total (faster).
    pub skip_total: bool,
}

/// A page of records.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page number.
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// All matching records (-1 when skipped).
    pub total_items: i64,
    /// Pages (-1 when skipped).
    pub total_pages: i64,
    /// The records of this page.
    pub items: Vec<Record>,
}

/// Builds a filter from a template with `{:name}` placeholders, each replaced by its value
/// as a literal of the grammar (strings quoted and escaped, numbers, booleans, `null`), so a
/// value from outside can never change the filter's structure:
/// `filter("email = {:email} && age > {:age}", &[("email", json!(e)), ("age", json!(18))])`.
///
/// Fails (400) for a placeholder without a value and for a string ending in a backslash,
/// which the grammar cannot write (a backslash before the closing quote escapes it); use
/// [`Core::first_by`], whose value is bound, for arbitrary text.
pub fn filter(template: &str, params: &[(&str, Value)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Error::bad_request("Unterminated filter placeholder."))?;
        let name = &after[..end];
        let value = params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::bad_request(format!("No value for the filter placeholder {name}."))
            })?;
        out.push_str(&literal(value)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn literal(v: &Value) -> Result<String> {
    Ok(match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.ends_with('\\') {
                return Err(Error::bad_request(
                    "A filter value cannot end with a backslash.",
                ));
            }
            // The grammar's only escape inside a string is a backslash before the quote.
            let mut q = String::with_capacity(s.len() + 2);
            q.push('"');
            for ch in s.chars() {
                if ch == '"' {
                    q.push('\\');
                }
                q.push(ch);
            }
            q.push('"');
            q
        }
        other => literal(&Value::String(other.to_string()))?,
    })
}

// ------------------------------------------------------------------------------------------
// Transactions and hooks
// ------------------------------------------------------------------------------------------

/// Writes and reads inside one write transaction, on the database's writer thread. Every
/// call acts as the transaction's caller (rules, validation and before hooks as in the REST
/// API); realtime events and after-commit events are published only once the whole
/// transaction commits. Keep the work short: other writes wait for it.
pub trait Tx {
    /// The caller the transaction acts for.
    fn caller(&self) -> &Caller;
    /// A record the caller may view, or `None`.
    fn get(&mut self, collection: &str, id: &str) -> Result<Option<Record>>;
    /// The first record whose `field` equals `value` that the caller may list, or `None`.
    fn first_by(&mut self, collection: &str, field: &str, value: &Value) -> Result<Option<Record>>;
    /// A page of records the caller may list.
    fn list(&mut self, collection: &str, options: &ListOptions) -> Result<Page>;
    /// Creates a record.
    fn create(&mut self, collection: &str, data: Map<String, Value>) -> Result<Record>;
    /// Updates a record (only the given fields).
    fn update(&mut self, collection: &str, id: &str, data: Map<String, Value>) -> Result<Record>;
    /// Deletes a record (with its cascades).
    fn delete(&mut self, collection: &str, id: &str) -> Result<()>;
    /// Makes the calls after it act for `caller`. One transaction can so hold a caller's
    /// write under the caller's rules and the plugin's own follow-up as
    /// [`Caller::system`] (an OAuth2 sign-up: the record is created under the create rule,
    /// then marked verified and linked by the plugin), committing or rolling back together.
    fn set_caller(&mut self, caller: Caller);
}

/// What a record write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new record.
    Create,
    /// A changed record.
    Update,
    /// A removed record.
    Delete,
}

/// A record write about to happen, handed to before hooks inside the write transaction.
pub struct BeforeWrite<'a> {
    /// Create, update or delete.
    pub action: Action,
    /// The collection's name.
    pub collection: &'a str,
    /// The values to write, by field name, as submitted (after field modifiers such as
    /// `n+`; before casting and validation, which run after the hooks, so values a hook sets
    /// are validated like the caller's). Creates hold every submitted field, updates the
    /// changed ones; empty for deletes.
    pub data: &'a mut Map<String, Value>,
    /// The stored record (updates and deletes).
    pub old: Option<&'a Record>,
    /// The rest of the transaction: reads and writes here commit or roll back with this write.
    pub tx: &'a mut dyn Tx,
}

/// A before hook: returns `Err` to refuse the write (the error reaches the caller as it is,
/// e.g. [`Error::validation`]), `Ok` to let it go on (with `data` possibly changed).
pub type BeforeHook = Arc<dyn Fn(&mut BeforeWrite<'_>) -> Result<()> + Send + Sync>;

/// A committed record change, delivered after commit in commit order.
#[derive(Debug, Clone)]
pub struct RecordEvent {
    /// Create, update or delete.
    pub action: Action,
    /// The collection's name.
    pub collection: String,
    /// The record as committed (the last state for deletes).
    pub record: Record,
    /// The record before an update.
    pub old: Option<Record>,
}

/// What happened to an auth record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEventKind {
    /// A record was created in an auth collection (by any path).
    SignedUp,
    /// A record signed in (`"password"`, `"otp"`, `"oauth2"`, or a plugin's method).
    SignedIn {
        /// The sign-in method.
        method: String,
    },
    /// The password changed (the record's other sessions are signed out).
    PasswordChanged,
    /// The email was verified.
    Verified,
}

/// An auth event, delivered after it happened, in order with record events.
#[derive(Debug, Clone)]
pub struct AuthEvent {
    /// What happened.
    pub kind: AuthEventKind,
    /// The auth collection's name.
    pub collection: String,
    /// The auth record.
    pub record: Record,
}

/// An after-commit handler of record events.
pub type RecordHandler =
    Arc<dyn Fn(App, RecordEvent) -> BoxFuture<'static, Result<()>> + Send + Sync>;
/// An after-commit handler of auth events.
pub type AuthHandler = Arc<dyn Fn(App, AuthEvent) -> BoxFuture<'static, Result<()>> + Send + Sync>;
/// A cron job.
pub type CronJob = Arc<dyn Fn(App) -> BoxFuture<'static, Result<()>> + Send + Sync>;
/// A CLI subcommand: gets the arguments after its name.
pub type Command = Arc<dyn Fn(App, Vec<String>) -> BoxFuture<'static, Result<()>> + Send + Sync>;
/// A dashboard page: returns the HTML of the page's content area.
pub type PageRender =
    Arc<dyn Fn(App, PageRequest) -> BoxFuture<'static, Result<String>> + Send + Sync>;
/// A contribution to `auth-methods`: given the auth collection's JSON, the keys to set in
/// the response (e.g. `oauth2`).
pub type AuthMethods = Arc<dyn Fn(Value) -> BoxFuture<'static, Map<String, Value>> + Send + Sync>;

/// A request to a plugin's dashboard page (always a signed-in superuser).
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The query pairs.
    pub query: Vec<(String, String)>,
    /// The submitted form fields (POST; the CSRF token is already checked).
    pub form: Vec<(String, String)>,
    /// The CSRF token to put in forms the page renders (`<input type="hidden" name="csrf">`).
    pub csrf: String,
    /// The superuser's email.
    pub superuser: String,
}

/// Escapes text for HTML (for dashboard pages, which are HTML the plugin writes).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Settings
// ------------------------------------------------------------------------------------------

/// One field of a plugin's settings section (`plugins.<name>.<field>` in the settings
/// document, edited in the dashboard and through `/api/settings`).
#[derive(Debug, Clone)]
pub struct SettingField {
    /// The key in the section.
    pub name: String,
    /// A line for people (shown in the dashboard).
    pub about: String,
    /// Never returned by `/api/settings`, never logged, encrypted at rest with the settings
    /// document when an encryption key is set (`--encryptionEnv`).
    pub secret: bool,
    /// The plugin stays off while this is empty.
    pub required: bool,
    /// An environment variable that, when set, wins over the stored value.
    pub env: Option<String>,
    /// The value when nothing is set.
    pub default: Value,
}

impl SettingField {
    /// A text field without default.
    pub fn new(name: &str) -> SettingField {
        SettingField {
            name: name.to_string(),
            about: String::new(),
            secret: false,
            required: false,
            env: None,
            default: Value::String(String::new()),
        }
    }

    /// Sets the description.
    pub fn about(mut self, about: &str) -> SettingField {
        self.about = about.to_string();
        self
    }

    /// Marks the field secret.
    pub fn secret(mut self) -> SettingField {
        self.secret = true;
        self
    }

    /// Marks the field required.
    pub fn required(mut self) -> SettingField {
        self.required = true;
        self
    }

    /// Names the environment variable that overrides the stored value.
    pub fn env(mut self, var: &str) -> SettingField {
        self.env = Some(var.to_string());
        self
    }

    /// Sets the default value (its JSON type is the field's type).
    pub fn default_value(mut self, v: Value) -> SettingField {
        self.default = v;
        self
    }
}

// ------------------------------------------------------------------------------------------
// Schema and mail types
// ------------------------------------------------------------------------------------------

/// What a collection update would do, from [`App::dry_run_update`]. Nothing is changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaDiff {
    /// The collection as it would be after the update (collection JSON).
    pub after: Value,
    /// Names of fields that would be added.
    pub added_fields: Vec<String>,
    /// Names of fields that would be removed, with their data.
    pub removed_fields: Vec<String>,
    /// Fields renamed (old name, new name); their data is kept.
    pub renamed_fields: Vec<(String, String)>,
    /// Fields whose options or type change.
    pub changed_fields: Vec<String>,
    /// Rules that change (`listRule`, ...).
    pub changed_rules: Vec<String>,
    /// Index definitions added.
    pub added_indexes: Vec<String>,
    /// Index definitions removed.
    pub removed_indexes: Vec<String>,
    /// A new collection name, if renamed.
    pub renamed_to: Option<String>,
    /// What data would be lost: (field, records holding a value there).
    pub data_loss: Vec<(String, u64)>,
}

/// A mail to send through the app's SMTP settings.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Plain text body (derived from the HTML when empty).
    pub text: String,
}

/// A file for [`Core::create_with_files`] and [`Core::update_with_files`], as one part of a
/// multipart upload: the stored name is derived from `filename`, and the field's size and
/// type limits apply as they do to REST uploads.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// The file field (`avatar`; `documents+` appends to a multi-file field).
    pub field: String,
    /// The file's name as a client would send it (`photo.png`).
    pub filename: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// The result of [`App::sign_in`].
#[derive(Debug, Clone)]
pub enum SignIn {
    /// Signed in: `{token, record, meta}` as PocketBase answers auth requests.
    Done(Value),
    /// The collection needs a second factor first: answer 401 `{"mfaId": id}`.
    MfaRequired(String),
}

// ------------------------------------------------------------------------------------------
// The App handle
// ------------------------------------------------------------------------------------------

/// The services of the core, implemented by Ferrobase. Plugins call them through [`App`]
/// (which dereferences to this trait); they are object-safe, so every async method returns a
/// [`BoxFuture`].
pub trait Core: Send + Sync + 'static {
    /// The plugin this handle belongs to (for logs).
    fn plugin_name(&self) -> &str;

    // --- records
    /// A record the caller may view (404 otherwise, as the REST API).
    fn get<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Record>>;
    /// The first record whose `field` equals `value` among those the caller may list.
    fn first_by<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        field: &'a str,
        value: Value,
    ) -> BoxFuture<'a, Result<Option<Record>>>;
    /// A page of the records the caller may list.
    fn list<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        options: ListOptions,
    ) -> BoxFuture<'a, Result<Page>>;
    /// Creates a record as the caller (create rule, validation, hooks, realtime).
    fn create<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        data: Map<String, Value>,
    ) -> BoxFuture<'a, Result<Record>>;
    /// Updates a record as the caller.
    fn update<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        id: &'a str,
        data: Map<String, Value>,
    ) -> BoxFuture<'a, Result<Record>>;
    /// Creates a record with files, as a multipart create of the REST API would.
    fn create_with_files<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        data: Map<String, Value>,
        files: Vec<Upload>,
    ) -> BoxFuture<'a, Result<Record>>;
    /// Updates a record with files, as a multipart update of the REST API would.
    fn update_with_files<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        id: &'a str,
        data: Map<String, Value>,
        files: Vec<Upload>,
    ) -> BoxFuture<'a, Result<Record>>;
    /// Deletes a record as the caller.
    fn delete<'a>(
        &'a self,
        caller: &'a Caller,
        collection: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// Runs `work` in one write transaction (see [`App::transaction`], the typed form).
    #[allow(clippy::type_complexity)]
    fn transaction_boxed<'a>(
        &'a self,
        caller: &'a Caller,
        work: Box<dyn FnOnce(&mut dyn Tx) -> Result<Box<dyn Any + Send>> + Send>,
    ) -> BoxFuture<'a, Result<Box<dyn Any + Send>>>;
    /// The record as this caller may see it in an API response (hidden fields removed, email
    /// by `emailVisibility`).
    fn client_json(&self, caller: &Caller, record: &Record) -> Value;

    // --- schema
    /// Every collection as collection JSON (PocketBase's `/api/collections` items).
    fn collections(&self) -> Vec<Value>;
    /// One collection by id or name.
    fn collection(&self, id_or_name: &str) -> Option<Value>;
    /// One collection with the secrets the API never returns (token signing secrets, OAuth2
    /// client secrets), for plugins that act on them; never send it to a client.
    fn collection_with_secrets(&self, id_or_name: &str) -> Option<Value>;
    /// Creates a collection from collection JSON (as `POST /api/collections`; automigrate).
    fn create_collection(&self, definition: Value) -> BoxFuture<'_, Result<Value>>;
    /// Updates a collection with (partial) collection JSON (as `PATCH /api/collections/{c}`).
    fn update_collection<'a>(
        &'a self,
        id_or_name: &'a str,
        patch: Value,
    ) -> BoxFuture<'a, Result<Value>>;
    /// Deletes a collection (as `DELETE /api/collections/{c}`).
    fn delete_collection<'a>(&'a self, id_or_name: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The user collections as `GET /api/collections/export` gives them:
    /// `{"format", "collections"}`; `portable` names related collections instead of ids.
    fn export_collections(&self, portable: bool) -> Value;
    /// Imports collections as `PUT /api/collections/import` does, in one transaction;
    /// `delete_missing` also deletes the user collections not in `items`.
    fn import_collections(
        &self,
        items: Vec<Value>,
        delete_missing: bool,
    ) -> BoxFuture<'_, Result<()>>;
    /// What [`Core::update_collection`] would do, without doing it.
    fn dry_run_update<'a>(
        &'a self,
        id_or_name: &'a str,
        patch: Value,
    ) -> BoxFuture<'a, Result<SchemaDiff>>;

    // --- auth
    /// The caller an auth token stands for (`None`: invalid, expired or unknown).
    fn verify_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Caller>>;
    /// A new auth token for an auth record.
    fn issue_token<'a>(
        &'a self,
        collection: &'a str,
        record_id: &'a str,
    ) -> BoxFuture<'a, Result<String>>;
    /// Signs an auth record in as a sign-in method would: the collection's `authRule`, MFA,
    /// the signed-in event, then `{token, record, meta}`.
    fn sign_in<'a>(
        &'a self,
        collection: &'a str,
        record_id: &'a str,
        method: &'a str,
        mfa_id: Option<String>,
        meta: Option<Value>,
    ) -> BoxFuture<'a, Result<SignIn>>;
    /// The auth record with this email (case-insensitive), if any.
    fn find_auth_by_email<'a>(
        &'a self,
        collection: &'a str,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>>>;
    /// Links an external identity (`_externalAuths`) to an auth record; linking the same
    /// pair again changes nothing.
    fn link_external<'a>(
        &'a self,
        collection: &'a str,
        record_id: &'a str,
        provider: &'a str,
        provider_id: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// The auth record an external identity is linked to, if any.
    fn find_external<'a>(
        &'a self,
        collection: &'a str,
        provider: &'a str,
        provider_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>>>;

    /// The same caller with `@request.context` set to `context` for the rules it meets
    /// (PocketBase's contexts are `default`, `oauth2`, `otp`, `password`, `realtime`,
    /// `protectedFile`, `batch`, `expand`): an OAuth2 sign-up creates its record in the
    /// `oauth2` context, so a create rule `@request.context = "oauth2"` admits those only.
    fn with_context(&self, caller: &Caller, context: &str) -> Caller;

    // --- realtime, mail, settings
    /// Sends a message on `topic` to one realtime client if it subscribed to the topic
    /// (e.g. `@oauth2`); false when no such client or subscription exists.
    fn publish(&self, client_id: &str, topic: &str, data: Value) -> bool;
    /// Sends a mail through the app's SMTP settings.
    fn send_mail(&self, mail: Mail) -> BoxFuture<'_, Result<()>>;
    /// This plugin's settings section, environment overrides applied, secrets in clear.
    fn settings(&self) -> Map<String, Value>;
    /// The app's `meta` settings (`appName`, `appURL`, `senderName`, `senderAddress`).
    fn meta(&self) -> Value;
    /// The whole settings document as `GET /api/settings` answers a superuser: secrets
    /// (SMTP password, S3 secret, plugin secrets) left out.
    fn app_settings(&self) -> Value;

    /// The caller of a plugin route's request (used by [`RequestCaller`]).
    #[doc(hidden)]
    fn request_caller<'a>(&'a self, parts: &'a axum::http::request::Parts)
    -> BoxFuture<'a, Caller>;
}

/// The handle a plugin uses to reach the core: cheap to clone, `Send + Sync`, valid for the
/// life of the server. It dereferences to [`Core`], whose methods are the services.
#[derive(Clone)]
pub struct App {
    core: Arc<dyn Core>,
}

impl App {
    /// Made by the core.
    #[doc(hidden)]
    pub fn new(core: Arc<dyn Core>) -> App {
        App { core }
    }

    /// Runs `work` in one write transaction as `caller`: every write in it commits together
    /// or none does (an `Err`, or a panic, rolls the whole transaction back). `work` runs on
    /// the writer thread and must not block on anything else.
    ///
    /// ```ignore
    /// app.transaction(&Caller::system(), |tx| {
    ///     if tx.first_by("ledger", "eventId", &json!(id))?.is_some() {
    ///         return Ok(false); // seen before: nothing to do
    ///     }
    ///     tx.create("ledger", data)?;
    ///     tx.update("accounts", &account, changes)?;
    ///     Ok(true)
    /// }).await?
    /// ```
    pub async fn transaction<T, F>(&self, caller: &Caller, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        let out = self
            .core
            .transaction_boxed(
                caller,
                Box::new(move |tx| work(tx).map(|t| Box::new(t) as Box<dyn Any + Send>)),
            )
            .await?;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| Error::internal())
    }
}

impl std::ops::Deref for App {
    type Target = dyn Core;

    fn deref(&self) -> &Self::Target {
        &*self.core
    }
}

// ------------------------------------------------------------------------------------------
// Plugins and their declarations
// ------------------------------------------------------------------------------------------

/// A Ferrobase plugin.
pub trait Plugin: Send + Sync + 'static {
    /// A short, unique, lowercase name (`"stripe"`, `"oauth"`): its settings section
    /// (`plugins.<name>`), `FERROBASE_PLUGINS`, logs, and the path of its dashboard pages.
    fn name(&self) -> &str;

    /// The fields of the plugin's settings section. Read before [`Plugin::setup`]: a plugin
    /// with an empty required field stays off.
    fn settings(&self) -> Vec<SettingField> {
        Vec::new()
    }

    /// Declares what the plugin brings. Called once at start (for `serve` and for every CLI
    /// command), before the server listens; an `Err` stops the start with its message.
    fn setup(&self, setup: &mut Setup) -> Result<()>;
}

/// What a plugin declares in [`Plugin::setup`]. The core reads it after `setup` returns.
pub struct Setup {
    app: App,
    declared: Declarations,
}

/// A dashboard page of a plugin.
#[derive(Clone)]
pub struct DashboardPage {
    /// The path segment: the page lives at `/_/plugins/<plugin>/<slug>`.
    pub slug: String,
    /// The title in the navigation.
    pub title: String,
    /// Renders the page.
    pub render: PageRender,
}

/// A CLI subcommand of a plugin.
#[derive(Clone)]
pub struct CliCommand {
    /// The subcommand's name (`ferrobase <name> ...`).
    pub name: String,
    /// A line for `--help`.
    pub about: String,
    /// Runs it.
    pub run: Command,
}

/// A cron job of a plugin.
#[derive(Clone)]
pub struct Cron {
    /// A unique id (listed by `/api/crons`).
    pub id: String,
    /// A cron expression: five fields (minute hour day month weekday) or a macro such as
    /// `@hourly`, `@daily`.
    pub schedule: String,
    /// The job.
    pub run: CronJob,
}

/// Everything a plugin declared, as the core reads it.
#[derive(Default, Clone)]
pub struct Declarations {
    /// Collections the plugin owns (collection JSON with a fixed `id` and `name`).
    pub collections: Vec<Value>,
    /// Fields added to existing collections: (collection name, field JSON with a fixed `id`).
    pub fields: Vec<(String, Value)>,
    /// Routes, mounted under the core's layers.
    pub routes: Vec<axum::Router>,
    /// Before hooks: (collection name or `*`, hook).
    pub before: Vec<(String, BeforeHook)>,
    /// After-commit record handlers: (collection name or `*`, handler).
    pub on_record: Vec<(String, RecordHandler)>,
    /// After-commit auth handlers.
    pub on_auth: Vec<AuthHandler>,
    /// Cron jobs.
    pub crons: Vec<Cron>,
    /// CLI subcommands.
    pub commands: Vec<CliCommand>,
    /// Dashboard pages.
    pub pages: Vec<DashboardPage>,
    /// `auth-methods` contributions.
    pub auth_methods: Vec<AuthMethods>,
}

impl Setup {
    /// Made by the core for each plugin.
    #[doc(hidden)]
    pub fn new(app: App) -> Setup {
        Setup {
            app,
            declared: Declarations::default(),
        }
    }

    /// What was declared (read by the core).
    #[doc(hidden)]
    pub fn into_declarations(self) -> Declarations {
        self.declared
    }

    /// The plugin's handle to the core, to keep in routes, hooks and jobs.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// A collection the plugin owns, as collection JSON (PocketBase's format) with a fixed
    /// `id` and `name`. Created at start if missing; otherwise brought up to date: declared
    /// fields (matched by id) are added or changed, rules and declared indexes set, fields a
    /// user added kept. No automigrate file is written (the plugin is the source). While the
    /// plugin is on, the collection cannot be deleted, and the dashboard shows its owner.
    pub fn collection(&mut self, definition: Value) -> &mut Self {
        self.declared.collections.push(definition);
        self
    }

    /// A field the plugin adds to an existing collection (e.g. a billing plan on `users`),
    /// as field JSON with a fixed `id`. Added at start if missing; an edit of the collection
    /// that leaves it out keeps it.
    pub fn field(&mut self, collection: &str, field: Value) -> &mut Self {
        self.declared.fields.push((collection.to_string(), field));
        self
    }

    /// Routes, mounted beside the core API under the same layers (CORS, body limit, panics
    /// as 500, tracing). Use [`RequestCaller`] and [`App`] as extractors, [`Error`] as the
    /// error, `axum::body::Bytes` for the raw body and `axum::extract::DefaultBodyLimit` for a
    /// per-route body limit. Keep paths under `/api/<plugin name>/`.
    pub fn routes(&mut self, router: axum::Router) -> &mut Self {
        self.declared.routes.push(router);
        self
    }

    /// A before hook on a collection (`"*"`: every collection), run inside the write
    /// transaction before the values are validated and written, for every path that writes
    /// records (REST, batch, dashboard, plugins). See [`BeforeWrite`].
    pub fn before_write<F>(&mut self, collection: &str, hook: F) -> &mut Self
    where
        F: Fn(&mut BeforeWrite<'_>) -> Result<()> + Send + Sync + 'static,
    {
        self.declared
            .before
            .push((collection.to_string(), Arc::new(hook)));
        self
    }

    /// An after-commit handler of a collection's record events (`"*"`: every collection),
    /// called in commit order on the core's event task, never holding the writer. An `Err`
    /// or a panic is logged and the next event is delivered.
    pub fn on_record<F, Fut>(&mut self, collection: &str, handler: F) -> &mut Self
    where
        F: Fn(App, RecordEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.declared.on_record.push((
            collection.to_string(),
            Arc::new(move |app, ev| Box::pin(handler(app, ev))),
        ));
        self
    }

    /// An after-commit handler of auth events (in order with record events).
    pub fn on_auth<F, Fut>(&mut self, handler: F) -> &mut Self
    where
        F: Fn(App, AuthEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.declared
            .on_auth
            .push(Arc::new(move |app, ev| Box::pin(handler(app, ev))));
        self
    }

    /// A cron job on the core's scheduler (UTC). Runs of one job never overlap; an `Err` or
    /// a panic is logged.
    pub fn cron<F, Fut>(&mut self, id: &str, schedule: &str, job: F) -> &mut Self
    where
        F: Fn(App) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.declared.crons.push(Cron {
            id: id.to_string(),
            schedule: schedule.to_string(),
            run: Arc::new(move |app| Box::pin(job(app))),
        });
        self
    }

    /// A CLI subcommand (`ferrobase <name> [args...]`), run with the app open and the server
    /// not started. An `Err` prints its message and exits with status 1.
    pub fn command<F, Fut>(&mut self, name: &str, about: &str, run: F) -> &mut Self
    where
        F: Fn(App, Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.declared.commands.push(CliCommand {
            name: name.to_string(),
            about: about.to_string(),
            run: Arc::new(move |app, args| Box::pin(run(app, args))),
        });
        self
    }

    /// A dashboard page at `/_/plugins/<plugin>/<slug>`, listed in the dashboard's
    /// navigation, for signed-in superusers only. `render` returns the HTML of the content
    /// area (escape what you did not write with [`escape_html`]; the page's CSP allows no
    /// inline scripts).
    pub fn page<F, Fut>(&mut self, slug: &str, title: &str, render: F) -> &mut Self
    where
        F: Fn(App, PageRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        self.declared.pages.push(DashboardPage {
            slug: slug.to_string(),
            title: title.to_string(),
            render: Arc::new(move |app, req| Box::pin(render(app, req))),
        });
        self
    }

    /// Adds keys to the `auth-methods` answer of auth collections (e.g. `oauth2`); `f` gets
    /// the auth collection's JSON (without secrets). It may await (an OpenID Connect
    /// provider's discovery document), but every `auth-methods` request waits for it: cache.
    pub fn auth_methods<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Map<String, Value>> + Send + 'static,
    {
        self.declared
            .auth_methods
            .push(Arc::new(move |c| Box::pin(f(c))));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_params_are_literals() {
        let f = filter(
            "email = {:email} && n > {:n} && ok = {:ok}",
            &[
                ("email", json!("a\" || 1=1 || \"")),
                ("n", json!(3)),
                ("ok", json!(true)),
            ],
        );
        assert_eq!(
            f.unwrap(),
            r#"email = "a\" || 1=1 || \"" && n > 3 && ok = true"#
        );
        assert!(filter("a = {:v}", &[("v", json!("x\\"))]).is_err());
        assert!(filter("a = {:missing}", &[]).is_err());
    }

    #[test]
    fn errors_have_pocketbase_shape() {
        let e = Error::validation(
            "Failed.",
            "title",
            "validation_required",
            "Cannot be blank.",
        );
        assert_eq!(
            e.to_json(),
            json!({"status": 400, "message": "Failed.", "data": {"title": {"code": "validation_required", "message": "Cannot be blank."}}})
        );
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
