//! The plugin runtime: how the core runs the plugins of `ferrobase-plugin` (`plugins/api`).
//!
//! At start [`start`] asks each compiled-in plugin for its settings, decides whether it is on
//! (`FERROBASE_PLUGINS`, `plugins.<name>.enabled`, required settings), calls its `setup`, and
//! applies what it declared: owned collections and added fields (without automigrate files),
//! hooks, routes, cron jobs, commands, dashboard pages and `auth-methods` sections. The result
//! is a [`Runtime`] installed into the [`App`]; the record write path asks it for before hooks
//! ([`BeforeHooks`]) and hands committed changes to its event task ([`Events`]).
//!
//! [`PluginCore`] implements the services a plugin sees (`ferrobase_plugin::Core`) on top of
//! the same functions the REST API calls.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use ferrobase_plugin as api;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::App;
use crate::api::ApiError;
use crate::records::ops::{self, Caller};
use crate::records::{Action, Change, Record};
use crate::schema::Collection;

pub use ferrobase_plugin::Plugin;

/// Errors while starting plugins.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: {message}")]
    Setup { plugin: String, message: String },
}

fn setup_error(plugin: &str, message: impl std::fmt::Display) -> PluginError {
    PluginError::Setup {
        plugin: plugin.to_string(),
        message: message.to_string(),
    }
}

// ------------------------------------------------------------------------------------------
// Error and record conversions
// ------------------------------------------------------------------------------------------

impl From<ApiError> for api::Error {
    fn from(e: ApiError) -> Self {
        api::Error {
            status: e.status.as_u16(),
            message: e.message,
            data: e.data,
        }
    }
}

impl From<api::Error> for ApiError {
    fn from(e: api::Error) -> Self {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.message).with_data(e.data)
    }
}

fn to_api_error(e: impl Into<ApiError>) -> api::Error {
    e.into().into()
}

/// A record as plugins see it: every stored field but the password hash and the token key.
pub(crate) fn to_plugin_record(r: &Record) -> api::Record {
    let mut data = r.data.clone();
    data.remove("password");
    data.remove("tokenKey");
    api::Record {
        collection_id: r.collection_id.clone(),
        collection_name: r.collection_name.clone(),
        data,
    }
}

fn to_plugin_action(a: Action) -> api::Action {
    match a {
        Action::Create => api::Action::Create,
        Action::Update => api::Action::Update,
        Action::Delete => api::Action::Delete,
    }
}

/// The core's caller for a plugin's caller.
pub(crate) fn core_caller(c: &api::Caller) -> Caller {
    if c.is_system() {
        return Caller::system();
    }
    c.core_context()
        .and_then(|a| a.downcast_ref::<Caller>())
        .cloned()
        .unwrap_or_else(Caller::guest)
}

/// The plugin's view of a core caller.
pub(crate) fn plugin_caller(c: Caller) -> api::Caller {
    // the system stays the system: a hook must be able to tell a plugin's own write
    if c.system {
        return api::Caller::system();
    }
    let identity = c.auth.as_ref().map(|a| api::Identity {
        collection_id: a.collection.id.clone(),
        collection_name: a.collection.name.clone(),
        record_id: a.record.id().to_string(),
        email: a.record.get_str("email").unwrap_or("").to_string(),
    });
    api::Caller::from_core(identity, Arc::new(c))
}

// ------------------------------------------------------------------------------------------
// Before hooks
// ------------------------------------------------------------------------------------------

/// The before hooks of every plugin, by collection name (`*`: every collection).
#[derive(Default)]
pub struct BeforeHooks {
    by_collection: HashMap<String, Vec<(String, api::BeforeHook)>>,
}

/// How deep hooks may write through their transaction before the write is refused (a hook
/// that writes into its own collection would otherwise recurse forever).
const MAX_HOOK_DEPTH: u32 = 8;

impl BeforeHooks {
    /// Whether no plugin has a before hook.
    pub fn is_empty(&self) -> bool {
        self.by_collection.is_empty()
    }

    /// Whether any hook runs for writes to `collection`.
    pub fn has(&self, collection: &str) -> bool {
        !self.by_collection.is_empty()
            && (self.by_collection.contains_key(collection) || self.by_collection.contains_key("*"))
    }

    fn for_collection<'a>(
        &'a self,
        collection: &'a str,
    ) -> impl Iterator<Item = &'a (String, api::BeforeHook)> + 'a {
        self.by_collection
            .get(collection)
            .into_iter()
            .flatten()
            .chain(self.by_collection.get("*").into_iter().flatten())
    }
}

/// Runs the before hooks of `c` for a write inside the transaction `tx`. `data` is the
/// submitted body (after modifiers); hooks may change it or refuse the write.
pub(crate) fn run_before_hooks(
    tx: &mut ops::Tx<'_>,
    c: &Collection,
    action: Action,
    data: &mut Map<String, Value>,
    old: Option<&Record>,
    caller: &Caller,
) -> Result<(), ops::RecordError> {
    let Some(hooks) = tx.hooks.clone() else {
        return Ok(());
    };
    if !hooks.has(&c.name) {
        return Ok(());
    }
    if tx.hook_depth >= MAX_HOOK_DEPTH {
        return Err(ops::RecordError::BadRequest(
            "Too many nested writes from hooks.".into(),
        ));
    }
    let old = old.map(to_plugin_record);
    let pcaller = plugin_caller(caller.clone());
    for (plugin, hook) in hooks.for_collection(&c.name) {
        tx.hook_depth += 1;
        let result = {
            let mut inner = CoreTx {
                tx,
                caller: caller.clone(),
                pcaller: pcaller.clone(),
            };
            let mut before = api::BeforeWrite {
                action: to_plugin_action(action),
                collection: &c.name,
                data,
                old: old.as_ref(),
                tx: &mut inner,
            };
            hook(&mut before)
        };
        tx.hook_depth -= 1;
        if let Err(e) = result {
            tracing::debug!(plugin = %plugin, collection = %c.name, error = %e, "a before hook refused a write");
            return Err(ops::RecordError::Hook(e));
        }
    }
    Ok(())
}

/// A plugin's view of a write transaction in progress.
struct CoreTx<'t, 'c> {
    tx: &'t mut ops::Tx<'c>,
    caller: Caller,
    pcaller: api::Caller,
}

impl CoreTx<'_, '_> {
    fn collection(&self, name: &str) -> api::Result<Arc<Collection>> {
        self.tx
            .registry
            .get(name)
            .ok_or_else(|| api::Error::new(404, "Missing collection context."))
    }

    fn auth_values(
        &self,
        c: &Collection,
        body: &Map<String, Value>,
        existing: Option<&Record>,
    ) -> api::Result<Map<String, Value>> {
        if !c.is_auth() {
            return Ok(Map::new());
        }
        let message = if existing.is_some() {
            "Failed to update record."
        } else {
            "Failed to create record."
        };
        crate::records::prepare_auth_fields(c, body, existing, self.caller.is_superuser())
            .map_err(|e| to_api_error(ApiError::validation(message, e)))
    }
}

fn record_error(e: ops::RecordError) -> api::Error {
    to_api_error(ApiError::from(e))
}

impl api::Tx for CoreTx<'_, '_> {
    fn caller(&self) -> &api::Caller {
        &self.pcaller
    }

    fn get(&mut self, collection: &str, id: &str) -> api::Result<Option<api::Record>> {
        let c = self.collection(collection)?;
        match ops::view(self.tx.conn, self.tx.registry, &c, &self.caller, id) {
            Ok(r) => Ok(Some(to_plugin_record(&r))),
            Err(ops::RecordError::NotFound) => Ok(None),
            Err(e) => Err(record_error(e)),
        }
    }

    fn first_by(
        &mut self,
        collection: &str,
        field: &str,
        value: &Value,
    ) -> api::Result<Option<api::Record>> {
        let c = self.collection(collection)?;
        ops::first_by(
            self.tx.conn,
            self.tx.registry,
            &c,
            &self.caller,
            field,
            value,
        )
        .map(|r| r.as_ref().map(to_plugin_record))
        .map_err(record_error)
    }

    fn list(&mut self, collection: &str, options: &api::ListOptions) -> api::Result<api::Page> {
        let c = self.collection(collection)?;
        list_on(self.tx.conn, self.tx.registry, &c, &self.caller, options)
    }

    fn create(&mut self, collection: &str, data: Map<String, Value>) -> api::Result<api::Record> {
        let c = self.collection(collection)?;
        let auth = self.auth_values(&c, &data, None)?;
        let caller = self.caller.clone();
        ops::create(self.tx, &c, &caller, &data, auth)
            .map(|r| to_plugin_record(&r))
            .map_err(record_error)
    }

    fn update(
        &mut self,
        collection: &str,
        id: &str,
        data: Map<String, Value>,
    ) -> api::Result<api::Record> {
        let c = self.collection(collection)?;
        // The update rule before the old-password check (see `ops::check_update`).
        let existing = if c.is_auth() {
            let (r, _) =
                ops::check_update(self.tx.conn, self.tx.registry, &c, &self.caller, id, &data)
                    .map_err(record_error)?;
            Some(r)
        } else {
            None
        };
        let auth = match &existing {
            Some(r) => self.auth_values(&c, &data, Some(r))?,
            None => Map::new(),
        };
        let caller = self.caller.clone();
        ops::update(self.tx, &c, &caller, id, &data, auth)
            .map(|r| to_plugin_record(&r))
            .map_err(record_error)
    }

    fn delete(&mut self, collection: &str, id: &str) -> api::Result<()> {
        let c = self.collection(collection)?;
        let caller = self.caller.clone();
        ops::delete(self.tx, &c, &caller, id).map_err(record_error)
    }

    fn set_caller(&mut self, caller: api::Caller) {
        self.caller = core_caller(&caller);
        self.pcaller = caller;
    }
}

/// The core's form of plugin uploads.
fn core_uploads(files: Vec<api::Upload>) -> Vec<crate::api::extract::Upload> {
    files
        .into_iter()
        .map(|f| crate::api::extract::Upload {
            field: f.field,
            filename: f.filename,
            data: bytes::Bytes::from(f.bytes),
        })
        .collect()
}

fn list_on(
    conn: &crate::db::Conn,
    registry: &crate::schema::Registry,
    c: &Collection,
    caller: &Caller,
    o: &api::ListOptions,
) -> api::Result<api::Page> {
    ops::check_client_expression(&o.filter, caller).map_err(record_error)?;
    ops::check_client_expression(&o.sort, caller).map_err(record_error)?;
    let page = o.page.max(1);
    let per_page = if o.per_page == 0 {
        30
    } else {
        o.per_page.min(1000)
    };
    let offset = (page - 1).saturating_mul(per_page);
    let lq = ops::ListQuery {
        filter: &o.filter,
        sort: &o.sort,
        offset,
        limit: per_page,
        count: !o.skip_total,
    };
    let (items, total) = ops::list(conn, registry, c, caller, &lq).map_err(record_error)?;
    let (total_items, total_pages) = match total {
        Some(t) => (t as i64, t.div_ceil(per_page) as i64),
        None => (-1, -1),
    };
    Ok(api::Page {
        page,
        per_page,
        total_items,
        total_pages,
        items: items.iter().map(to_plugin_record).collect(),
    })
}

// ------------------------------------------------------------------------------------------
// After-commit events
// ------------------------------------------------------------------------------------------

enum Event {
    Changes(Vec<Change>),
    Auth(api::AuthEvent),
}

/// The after-commit event task: record and auth events in commit order, delivered to the
/// plugins' handlers one after the other, never on the writer.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::UnboundedSender<Event>,
}

impl Events {
    /// Hands committed changes over (called right after commit, on the writer thread).
    pub fn committed(&self, changes: Vec<Change>) {
        if !changes.is_empty() {
            let _ = self.tx.send(Event::Changes(changes));
        }
    }

    /// An auth event that is not a record change (a sign-in).
    pub fn auth(&self, ev: api::AuthEvent) {
        let _ = self.tx.send(Event::Auth(ev));
    }
}

struct Handlers {
    on_record: Vec<(String, String, api::RecordHandler)>,
    on_auth: Vec<(String, api::AuthHandler)>,
    handles: HashMap<String, api::App>,
}

/// Runs a handler's future, turning a panic into a logged failure.
async fn guarded(plugin: &str, what: &str, fut: api::BoxFuture<'static, api::Result<()>>) {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(plugin, event = what, error = %e, "a plugin's event handler failed")
        }
        Err(_) => tracing::error!(plugin, event = what, "a plugin's event handler panicked"),
    }
}

/// Auth events a committed change stands for.
fn auth_events_of(ch: &Change) -> Vec<api::AuthEventKind> {
    if !ch.collection.is_auth() {
        return vec![];
    }
    match (ch.action, &ch.old) {
        (Action::Create, _) => vec![api::AuthEventKind::SignedUp],
        (Action::Update, Some(old)) => {
            let mut out = vec![];
            if old.data.get("password") != ch.record.data.get("password") {
                out.push(api::AuthEventKind::PasswordChanged);
            }
            let verified =
                |r: &Record| r.data.get("verified").and_then(Value::as_bool) == Some(true);
            if !verified(old) && verified(&ch.record) {
                out.push(api::AuthEventKind::Verified);
            }
            out
        }
        _ => vec![],
    }
}

impl Handlers {
    async fn deliver(&self, ev: Event) {
        match ev {
            Event::Changes(changes) => {
                for ch in changes {
                    let record = to_plugin_record(&ch.record);
                    for kind in auth_events_of(&ch) {
                        self.deliver_auth(api::AuthEvent {
                            kind,
                            collection: ch.collection.name.clone(),
                            record: record.clone(),
                        })
                        .await;
                    }
                    let rev = api::RecordEvent {
                        action: to_plugin_action(ch.action),
                        collection: ch.collection.name.clone(),
                        record,
                        old: ch.old.as_ref().map(to_plugin_record),
                    };
                    for (plugin, coll, h) in &self.on_record {
                        if coll != "*" && *coll != ch.collection.name {
                            continue;
                        }
                        let Some(app) = self.handles.get(plugin) else {
                            continue;
                        };
                        guarded(plugin, "record", h(app.clone(), rev.clone())).await;
                    }
                }
            }
            Event::Auth(ev) => self.deliver_auth(ev).await,
        }
    }

    async fn deliver_auth(&self, ev: api::AuthEvent) {
        for (plugin, h) in &self.on_auth {
            let Some(app) = self.handles.get(plugin) else {
                continue;
            };
            guarded(plugin, "auth", h(app.clone(), ev.clone())).await;
        }
    }
}

// ------------------------------------------------------------------------------------------
// The runtime
// ------------------------------------------------------------------------------------------

/// What the enabled plugins brought, installed into the [`App`] at start.
#[derive(Default)]
pub struct Runtime {
    /// Names of the plugins that are on.
    pub enabled: Vec<String>,
    /// Plugins compiled in but off, with the reason.
    pub disabled: Vec<(String, String)>,
    /// Before hooks (shared with every write transaction).
    pub before: Arc<BeforeHooks>,
    /// The event task, when any plugin handles events.
    pub events: Option<Events>,
    routes: Vec<(String, axum::Router)>,
    /// Cron jobs: (plugin, job).
    pub crons: Vec<(String, api::Cron)>,
    /// CLI subcommands: (plugin, command).
    pub commands: Vec<(String, api::CliCommand)>,
    /// Dashboard pages: (plugin, page).
    pub pages: Vec<(String, api::DashboardPage)>,
    auth_methods: Vec<api::AuthMethods>,
    /// Each plugin's handle.
    pub handles: HashMap<String, api::App>,
    /// Owned collections: collection id -> plugin.
    pub owned: HashMap<String, String>,
}

impl Runtime {
    /// Whether the write path must hand committed changes to the event task.
    pub fn wants_events(&self) -> bool {
        self.events.is_some()
    }

    /// The plugins' routes, each with its plugin's [`api::App`] handle as an extension.
    pub fn routes(&self) -> Vec<axum::Router> {
        self.routes
            .iter()
            .filter_map(|(plugin, r)| {
                let app = self.handles.get(plugin)?.clone();
                Some(r.clone().layer(axum::Extension(app)))
            })
            .collect()
    }

    /// Adds the plugins' sections to an `auth-methods` answer.
    pub async fn extend_auth_methods(&self, c: &Collection, out: &mut Map<String, Value>) {
        if self.auth_methods.is_empty() {
            return;
        }
        let cj = c.to_json();
        for f in &self.auth_methods {
            for (k, v) in f(cj.clone()).await {
                out.insert(k, v);
            }
        }
    }

    /// The plugin owning a collection.
    pub fn owner_of(&self, collection_id: &str) -> Option<&str> {
        self.owned.get(collection_id).map(String::as_str)
    }
}

/// Which plugins `FERROBASE_PLUGINS` turns on: unset or `all` is every plugin; otherwise a
/// comma-separated list of names, or of `-name` exclusions from all (`none` turns all off).
fn enabled_by_env(name: &str, spec: Option<&str>) -> bool {
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty() && *s != "all") else {
        return true;
    };
    if spec == "none" {
        return false;
    }
    let items: Vec<&str> = spec.split(',').map(str::trim).collect();
    if items.iter().all(|i| i.starts_with('-')) {
        !items.iter().any(|i| i[1..].eq_ignore_ascii_case(name))
    } else {
        items.iter().any(|i| i.eq_ignore_ascii_case(name))
    }
}

/// Starts the plugins: settings, setup, declarations. Installs the runtime into `app`.
pub async fn start(app: &App, plugins: Vec<Box<dyn Plugin>>) -> Result<(), PluginError> {
    let mut rt = Runtime::default();
    let env_spec = std::env::var("FERROBASE_PLUGINS").ok();
    let mut seen = std::collections::HashSet::new();
    let mut declared: Vec<(String, api::Declarations)> = Vec::new();
    for p in &plugins {
        let name = p.name().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(setup_error(
                &name,
                "a plugin name is lowercase letters, digits and _",
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(setup_error(&name, "two plugins have this name"));
        }
        app.settings().register_plugin(&name, p.settings());
    }
    for p in &plugins {
        let name = p.name().to_string();
        if !enabled_by_env(&name, env_spec.as_deref()) {
            rt.disabled
                .push((name.clone(), "not in FERROBASE_PLUGINS".into()));
            continue;
        }
        let section = app.settings().plugin_section(&name);
        if section.get("enabled") == Some(&Value::Bool(false)) {
            rt.disabled
                .push((name.clone(), format!("plugins.{name}.enabled is false")));
            continue;
        }
        let missing: Vec<String> = p
            .settings()
            .iter()
            .filter(|f| f.required)
            .filter(|f| match section.get(&f.name) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                _ => false,
            })
            .map(|f| match &f.env {
                Some(env) => format!("{} (set {env} or plugins.{name}.{})", f.name, f.name),
                None => format!("{} (set plugins.{name}.{})", f.name, f.name),
            })
            .collect();
        if !missing.is_empty() {
            let why = format!("missing required settings: {}", missing.join(", "));
            tracing::warn!(plugin = %name, "plugin is off: {why}");
            rt.disabled.push((name.clone(), why));
            continue;
        }
        let handle = api::App::new(Arc::new(PluginCore {
            name: name.clone(),
            app: app.clone(),
        }));
        let mut setup = api::Setup::new(handle.clone());
        p.setup(&mut setup).map_err(|e| setup_error(&name, e))?;
        rt.handles.insert(name.clone(), handle);
        rt.enabled.push(name.clone());
        declared.push((name, setup.into_declarations()));
    }
    let mut before = BeforeHooks::default();
    let mut handlers = Handlers {
        on_record: vec![],
        on_auth: vec![],
        handles: rt.handles.clone(),
    };
    for (name, d) in declared {
        for def in d.collections {
            let id = crate::schema::plugin_owned::ensure_owned(app, &name, def)
                .await
                .map_err(|e| setup_error(&name, e))?;
            rt.owned.insert(id, name.clone());
        }
        for (coll, field) in d.fields {
            crate::schema::plugin_owned::ensure_field(app, &name, &coll, field)
                .await
                .map_err(|e| setup_error(&name, e))?;
        }
        for (coll, h) in d.before {
            before
                .by_collection
                .entry(coll)
                .or_default()
                .push((name.clone(), h));
        }
        for (coll, h) in d.on_record {
            handlers.on_record.push((name.clone(), coll, h));
        }
        for h in d.on_auth {
            handlers.on_auth.push((name.clone(), h));
        }
        for cron in d.crons {
            crate::cron::parse(&cron.schedule)
                .map_err(|e| setup_error(&name, format!("cron job {}: {e}", cron.id)))?;
            rt.crons.push((name.clone(), cron));
        }
        for c in d.commands {
            rt.commands.push((name.clone(), c));
        }
        for pg in d.pages {
            rt.pages.push((name.clone(), pg));
        }
        rt.auth_methods.extend(d.auth_methods);
        for r in d.routes {
            rt.routes.push((name.clone(), r));
        }
    }
    for (plugin, cron) in &rt.crons {
        let Some(handle) = rt.handles.get(plugin).cloned() else {
            continue;
        };
        let run = cron.run.clone();
        let work: crate::cron::Work = Arc::new(move || {
            let (handle, run) = (handle.clone(), run.clone());
            Box::pin(async move { run(handle).await.map_err(|e| e.to_string()) })
        });
        let job = crate::cron::Job::new(&cron.id, &cron.schedule, work)
            .map_err(|e| setup_error(plugin, e))?;
        app.scheduler().add(job);
    }
    rt.before = Arc::new(before);
    if !handlers.on_record.is_empty() || !handlers.on_auth.is_empty() {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                handlers.deliver(ev).await;
            }
        });
        rt.events = Some(Events { tx });
    }
    for (name, why) in &rt.disabled {
        tracing::info!(plugin = %name, "plugin off: {why}");
    }
    for name in &rt.enabled {
        tracing::info!(plugin = %name, "plugin on");
    }
    app.install_plugins(rt);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The services
// ------------------------------------------------------------------------------------------

/// The core's side of a plugin's [`api::App`] handle.
pub struct PluginCore {
    name: String,
    app: App,
}

impl PluginCore {
    fn collection(&self, name: &str) -> api::Result<Arc<Collection>> {
        self.app
            .collections()
            .get(name)
            .ok_or_else(|| api::Error::new(404, "Missing collection context."))
    }

    fn auth_collection(&self, name: &str) -> api::Result<Arc<Collection>> {
        let c = self.collection(name)?;
        if c.is_auth() {
            Ok(c)
        } else {
            Err(api::Error::new(
                404,
                "Missing or invalid auth collection context.",
            ))
        }
    }

    fn schema_error(e: crate::schema::SchemaError, action: &str) -> api::Error {
        to_api_error(ApiError::from_schema(e, action))
    }
}

impl api::Core for PluginCore {
    fn plugin_name(&self) -> &str {
        &self.name
    }

    fn get<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        id: &'a str,
    ) -> api::BoxFuture<'a, api::Result<api::Record>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            let registry = self.app.collections().snapshot();
            let id = id.to_string();
            let r = self
                .app
                .db()
                .read(move |conn| ops::view(conn, &registry, &c, &caller, &id))
                .await
                .map_err(record_error)?;
            Ok(to_plugin_record(&r))
        })
    }

    fn first_by<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        field: &'a str,
        value: Value,
    ) -> api::BoxFuture<'a, api::Result<Option<api::Record>>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            let registry = self.app.collections().snapshot();
            let field = field.to_string();
            let r = self
                .app
                .db()
                .read(move |conn| ops::first_by(conn, &registry, &c, &caller, &field, &value))
                .await
                .map_err(record_error)?;
            Ok(r.as_ref().map(to_plugin_record))
        })
    }

    fn list<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        options: api::ListOptions,
    ) -> api::BoxFuture<'a, api::Result<api::Page>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            let registry = self.app.collections().snapshot();
            self.app
                .db()
                .read(move |conn| {
                    Ok::<_, ApiError>(list_on(conn, &registry, &c, &caller, &options))
                })
                .await
                .map_err(api::Error::from)?
        })
    }

    fn create<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        data: Map<String, Value>,
    ) -> api::BoxFuture<'a, api::Result<api::Record>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            let r = crate::api::records::create_record(&self.app, &c, &caller, data, vec![])
                .await
                .map_err(api::Error::from)?;
            Ok(to_plugin_record(&r))
        })
    }

    fn update<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        id: &'a str,
        data: Map<String, Value>,
    ) -> api::BoxFuture<'a, api::Result<api::Record>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            let r = crate::api::records::update_record(&self.app, &c, &caller, id, data, vec![])
                .await
                .map_err(api::Error::from)?;
            Ok(to_plugin_record(&r))
        })
    }

    fn create_with_files<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        data: Map<String, Value>,
        files: Vec<api::Upload>,
    ) -> api::BoxFuture<'a, api::Result<api::Record>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            let r = crate::api::records::create_record(
                &self.app,
                &c,
                &caller,
                data,
                core_uploads(files),
            )
            .await
            .map_err(api::Error::from)?;
            Ok(to_plugin_record(&r))
        })
    }

    fn update_with_files<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        id: &'a str,
        data: Map<String, Value>,
        files: Vec<api::Upload>,
    ) -> api::BoxFuture<'a, api::Result<api::Record>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            let r = crate::api::records::update_record(
                &self.app,
                &c,
                &caller,
                id,
                data,
                core_uploads(files),
            )
            .await
            .map_err(api::Error::from)?;
            Ok(to_plugin_record(&r))
        })
    }

    fn delete<'a>(
        &'a self,
        caller: &'a api::Caller,
        collection: &'a str,
        id: &'a str,
    ) -> api::BoxFuture<'a, api::Result<()>> {
        Box::pin(async move {
            let c = self.collection(collection)?;
            let caller = core_caller(caller);
            crate::api::records::delete_record(&self.app, &c, &caller, id)
                .await
                .map_err(api::Error::from)
        })
    }

    fn transaction_boxed<'a>(
        &'a self,
        caller: &'a api::Caller,
        work: Box<
            dyn FnOnce(&mut dyn api::Tx) -> api::Result<Box<dyn std::any::Any + Send>> + Send,
        >,
    ) -> api::BoxFuture<'a, api::Result<Box<dyn std::any::Any + Send>>> {
        let pcaller = caller.clone();
        let caller = core_caller(caller);
        Box::pin(async move {
            crate::api::records::write_records(
                &self.app,
                crate::api::files::Staged::none(),
                move |tx| {
                    let mut inner = CoreTx {
                        tx,
                        caller,
                        pcaller,
                    };
                    work(&mut inner).map_err(ApiError::from)
                },
            )
            .await
            .map_err(api::Error::from)
        })
    }

    fn client_json(&self, caller: &api::Caller, record: &api::Record) -> Value {
        let Some(c) = self.app.collections().get(&record.collection_id) else {
            return Value::Object(Map::new());
        };
        let caller = core_caller(caller);
        let r = Record {
            collection_id: record.collection_id.clone(),
            collection_name: record.collection_name.clone(),
            data: record.data.clone(),
        };
        crate::api::records::client_json(&c, &r, &caller)
    }

    fn collections(&self) -> Vec<Value> {
        self.app
            .collections()
            .snapshot()
            .all()
            .iter()
            .map(|c| c.to_json())
            .collect()
    }

    fn collection(&self, id_or_name: &str) -> Option<Value> {
        self.app.collections().get(id_or_name).map(|c| c.to_json())
    }

    fn collection_with_secrets(&self, id_or_name: &str) -> Option<Value> {
        self.app
            .collections()
            .get(id_or_name)
            .map(|c| c.to_json_with_secrets())
    }

    fn with_context(&self, caller: &api::Caller, context: &str) -> api::Caller {
        if caller.is_system() {
            return caller.clone();
        }
        let mut c = core_caller(caller);
        c.context = context.to_string();
        plugin_caller(c)
    }

    fn export_collections(&self, portable: bool) -> Value {
        let items = crate::schema::export::export(&self.app.collections().snapshot(), portable);
        crate::schema::export::wrap(items, portable)
    }

    fn import_collections(
        &self,
        items: Vec<Value>,
        delete_missing: bool,
    ) -> api::BoxFuture<'_, api::Result<()>> {
        Box::pin(async move {
            self.app
                .collections()
                .import(items, delete_missing)
                .await
                .map_err(|e| Self::schema_error(e, "Failed to import collections."))
        })
    }

    fn create_collection(&self, definition: Value) -> api::BoxFuture<'_, api::Result<Value>> {
        Box::pin(async move {
            self.app
                .collections()
                .create(definition)
                .await
                .map(|c| c.to_json())
                .map_err(|e| Self::schema_error(e, "Failed to create collection."))
        })
    }

    fn update_collection<'a>(
        &'a self,
        id_or_name: &'a str,
        patch: Value,
    ) -> api::BoxFuture<'a, api::Result<Value>> {
        Box::pin(async move {
            self.app
                .collections()
                .update(id_or_name, patch)
                .await
                .map(|c| c.to_json())
                .map_err(|e| Self::schema_error(e, "Failed to update collection."))
        })
    }

    fn delete_collection<'a>(&'a self, id_or_name: &'a str) -> api::BoxFuture<'a, api::Result<()>> {
        Box::pin(async move {
            self.app
                .collections()
                .delete(id_or_name)
                .await
                .map_err(|e| Self::schema_error(e, "Failed to delete collection."))
        })
    }

    fn dry_run_update<'a>(
        &'a self,
        id_or_name: &'a str,
        patch: Value,
    ) -> api::BoxFuture<'a, api::Result<api::SchemaDiff>> {
        Box::pin(async move {
            self.app
                .collections()
                .dry_run_update(id_or_name, patch)
                .await
                .map_err(|e| Self::schema_error(e, "Failed to update collection."))
        })
    }

    fn verify_token<'a>(&'a self, token: &'a str) -> api::BoxFuture<'a, Option<api::Caller>> {
        Box::pin(async move {
            let auth = crate::auth::resolve(self.app.db(), self.app.collections(), token).await?;
            let caller = Caller {
                auth: Some(auth),
                ..Caller::guest()
            };
            Some(plugin_caller(caller))
        })
    }

    fn issue_token<'a>(
        &'a self,
        collection: &'a str,
        record_id: &'a str,
    ) -> api::BoxFuture<'a, api::Result<String>> {
        Box::pin(async move {
            let c = self.auth_collection(collection)?;
            let r = self.find_record(&c, record_id).await?;
            crate::api::auth::new_token(&c, &r).map_err(api::Error::from)
        })
    }

    fn sign_in<'a>(
        &'a self,
        collection: &'a str,
        record_id: &'a str,
        method: &'a str,
        mfa_id: Option<String>,
        meta: Option<Value>,
    ) -> api::BoxFuture<'a, api::Result<api::SignIn>> {
        Box::pin(async move {
            let c = self.auth_collection(collection)?;
            let r = self.find_record(&c, record_id).await?;
            crate::api::auth::plugin_sign_in(&self.app, &c, &r, method, mfa_id, meta)
                .await
                .map_err(api::Error::from)
        })
    }

    fn find_auth_by_email<'a>(
        &'a self,
        collection: &'a str,
        email: &'a str,
    ) -> api::BoxFuture<'a, api::Result<Option<api::Record>>> {
        Box::pin(async move {
            let c = self.auth_collection(collection)?;
            let email = email.to_string();
            let r = self
                .app
                .db()
                .read(move |conn| crate::records::find_by_field(conn, &c, "email", &email))
                .await
                .map_err(|e| to_api_error(ApiError::from(e)))?;
            Ok(r.as_ref().map(to_plugin_record))
        })
    }

    fn link_external<'a>(
        &'a self,
        collection: &'a str,
        record_id: &'a str,
        provider: &'a str,
        provider_id: &'a str,
    ) -> api::BoxFuture<'a, api::Result<()>> {
        Box::pin(async move {
            let c = self.auth_collection(collection)?;
            self.find_record(&c, record_id).await?;
            let ext = self.collection("_externalAuths")?;
            let existing = self.find_external_record(&c, provider, provider_id).await?;
            if let Some(r) = existing {
                if r.record_ref == record_id {
                    return Ok(());
                }
                return Err(api::Error::bad_request(
                    "The external identity is linked to another record.",
                ));
            }
            let mut data = Map::new();
            data.insert("collectionRef".into(), json!(c.id));
            data.insert("recordRef".into(), json!(record_id));
            data.insert("provider".into(), json!(provider));
            data.insert("providerId".into(), json!(provider_id));
            crate::api::records::create_record(&self.app, &ext, &Caller::system(), data, vec![])
                .await
                .map(|_| ())
                .map_err(api::Error::from)
        })
    }

    fn find_external<'a>(
        &'a self,
        collection: &'a str,
        provider: &'a str,
        provider_id: &'a str,
    ) -> api::BoxFuture<'a, api::Result<Option<api::Record>>> {
        Box::pin(async move {
            let c = self.auth_collection(collection)?;
            let Some(link) = self.find_external_record(&c, provider, provider_id).await? else {
                return Ok(None);
            };
            let id = link.record_ref;
            match self.find_record(&c, &id).await {
                Ok(r) => Ok(Some(to_plugin_record(&r))),
                Err(e) if e.status == 404 => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn publish(&self, client_id: &str, topic: &str, data: Value) -> bool {
        let Some(client) = self.app.realtime().client(client_id) else {
            return false;
        };
        if !client.is_subscribed(topic) {
            return false;
        }
        client.send(crate::realtime::message(
            &client.id,
            topic,
            &data.to_string(),
        ))
    }

    fn send_mail(&self, mail: api::Mail) -> api::BoxFuture<'_, api::Result<()>> {
        Box::pin(async move {
            let settings = self.app.settings().get();
            // The plain-text part is derived from the HTML by the mailer.
            let html = if mail.html.is_empty() {
                format!("<pre>{}</pre>", crate::mail::escape_html(&mail.text))
            } else {
                mail.html
            };
            let m = crate::mail::Mail {
                to: mail.to,
                subject: mail.subject,
                html,
            };
            crate::mail::send(&settings, self.app.config().dev, &m)
                .await
                .map_err(|e| {
                    tracing::warn!(plugin = %self.name, error = %e, "a plugin's mail failed");
                    api::Error::bad_request("Failed to send the email.")
                })
        })
    }

    fn settings(&self) -> Map<String, Value> {
        self.app.settings().plugin_section(&self.name)
    }

    fn meta(&self) -> Value {
        self.app.settings().get()["meta"].clone()
    }

    fn app_settings(&self) -> Value {
        let st = self.app.settings();
        st.client_json(&st.get())
    }

    fn request_caller<'a>(
        &'a self,
        parts: &'a axum::http::request::Parts,
    ) -> api::BoxFuture<'a, api::Caller> {
        Box::pin(async move {
            let auth = match parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(crate::auth::token_from_header)
                .filter(|t| !t.is_empty())
            {
                Some(t) => crate::auth::resolve(self.app.db(), self.app.collections(), t).await,
                None => None,
            };
            let q: Vec<(String, String)> = parts
                .uri
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default();
            let caller = crate::api::records::caller(
                crate::api::extract::MaybeAuth(auth),
                &parts.method,
                &parts.headers,
                &q,
            );
            plugin_caller(caller)
        })
    }
}

impl PluginCore {
    async fn find_record(&self, c: &Arc<Collection>, id: &str) -> api::Result<Record> {
        let (c2, id2) = (c.clone(), id.to_string());
        self.app
            .db()
            .read(move |conn| crate::records::find_by_id(conn, &c2, &id2))
            .await
            .map_err(|e| to_api_error(ApiError::from(e)))?
            .ok_or_else(api::Error::not_found)
    }

    /// The `_externalAuths` row linking `provider`'s `provider_id` to a record of `c`.
    async fn find_external_record(
        &self,
        c: &Collection,
        provider: &str,
        provider_id: &str,
    ) -> api::Result<Option<crate::db::entities::external_auth::Model>> {
        use crate::db::entities::external_auth::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let (cid, p, pid) = (c.id.clone(), provider.to_string(), provider_id.to_string());
        self.app
            .db()
            .read(move |conn| {
                Ok::<_, crate::db::DbError>(
                    Entity::find()
                        .filter(Column::CollectionRef.eq(cid))
                        .filter(Column::Provider.eq(p))
                        .filter(Column::ProviderId.eq(pid))
                        .one(conn)?,
                )
            })
            .await
            .map_err(|e| to_api_error(ApiError::from(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_env_selects() {
        assert!(enabled_by_env("stripe", None));
        assert!(enabled_by_env("stripe", Some("all")));
        assert!(enabled_by_env("stripe", Some("")));
        assert!(!enabled_by_env("stripe", Some("none")));
        assert!(enabled_by_env("stripe", Some("oauth, stripe")));
        assert!(!enabled_by_env("mcp", Some("oauth,stripe")));
        assert!(!enabled_by_env("mcp", Some("-mcp")));
        assert!(enabled_by_env("stripe", Some("-mcp")));
    }
}
