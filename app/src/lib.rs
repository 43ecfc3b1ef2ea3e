//! Ferrobase: a PocketBase-compatible backend in one Rust binary.
//!
//! The [`App`] ties the parts together: the database executor ([`db`]), the collection
//! registry ([`schema`]), records ([`records`]), auth ([`auth`]) and the HTTP API ([`api`]).
//! See `docs/architecture.md` for the map.

pub mod admin;
pub mod api;
pub mod auth;
pub mod backups;
pub mod cli;
pub mod config;
pub mod cron;
pub mod db;
pub mod files;
pub mod jobs;
pub mod logs;
pub mod mail;
pub mod plugin;
pub mod query;
pub mod realtime;
pub mod records;
pub mod schema;
pub mod server;
pub mod settings;
pub mod superusers;
pub mod validation;

use std::sync::Arc;

pub use config::Config;

use db::{Db, DbError, DbOptions};
use schema::CollectionStore;

/// The application: cheap to clone, shared by every handler as axum state.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    config: Config,
    db: Db,
    collections: CollectionStore,
    settings: settings::SettingsStore,
    realtime: realtime::Broker,
    storage: Arc<dyn files::Storage>,
    cleaner: files::Cleaner,
    admin: admin::AdminState,
    scheduler: cron::Scheduler,
    backups: backups::Backups,
    logs: logs::Logs,
    /// Set when the server should stop and start again (after a restore is staged).
    restart: tokio::sync::watch::Sender<bool>,
    rate_limiter: api::rate_limit::RateLimiter,
    /// The plugins' runtime, installed once at start ([`plugin::start`]).
    plugins: std::sync::OnceLock<Arc<plugin::Runtime>>,
}

/// Errors while starting the application.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("schema: {0}")]
    Schema(#[from] schema::SchemaError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("migration failed, nothing was changed: {0}")]
    Migration(#[from] schema::migrations::MigrationError),
    #[error("settings: {0}")]
    Settings(#[from] settings::SettingsError),
    #[error("{0}")]
    Plugin(#[from] plugin::PluginError),
}

/// PocketBase features Ferrobase does not run (JS hooks and JS migrations) are left untouched;
/// say so, so nobody expects them to run.
fn warn_pocketbase_leftovers(data_dir: &std::path::Path) {
    let parent = data_dir.parent().unwrap_or(std::path::Path::new("."));
    for (dir, what) in [("pb_hooks", "JS hooks"), ("pb_migrations", "JS migrations")] {
        let path = parent.join(dir);
        let has_files = std::fs::read_dir(&path)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if has_files {
            tracing::warn!(path = %path.display(), "PocketBase {what} found; Ferrobase does not run them (left untouched, see docs/compatibility.md)");
        }
    }
}

impl App {
    /// Opens the data directory: creates it and the database if needed, runs the system
    /// migrations and makes sure the default collections exist.
    pub async fn open(config: Config) -> Result<App, StartError> {
        std::fs::create_dir_all(&config.data_dir)?;
        if backups::finish_pending_restore(&config.data_dir)? {
            tracing::info!("restored the data directory from a backup");
        }
        let db = Db::open(
            &config.db_path(),
            DbOptions {
                readers: config.readers,
                ..DbOptions::default()
            },
        )?;
        let applied = db::migrate::run_system_migrations(&db).await?;
        for m in &applied {
            tracing::info!(migration = %m, "applied system migration");
        }
        let collections = CollectionStore::open(db.clone()).await?;
        for c in schema::defaults::initial_collections() {
            collections.ensure(c).await?;
        }
        warn_pocketbase_leftovers(&config.data_dir);
        if config.run_migrations {
            for m in schema::migrations::up(&db, &collections, &config.migrations_dir).await? {
                tracing::info!(migration = %m, "applied migration");
            }
        }
        let collections =
            collections.with_automigrate(config.automigrate.then(|| config.migrations_dir.clone()));
        let settings =
            settings::SettingsStore::open(db.clone(), config.encryption_key.clone()).await?;
        let realtime = realtime::Broker::start(db.clone(), collections.clone());
        let storage: Arc<dyn files::Storage> =
            Arc::new(files::LocalStorage::new(config.data_dir.join("storage")));
        let cleaner = files::Cleaner::start(storage.clone());
        let backups = backups::Backups::new(config.data_dir.clone());
        let logs = logs::Logs::open(&config.data_dir.join("auxiliary.db")).await?;
        Ok(App {
            inner: Arc::new(AppInner {
                config,
                db,
                collections,
                settings,
                rate_limiter: Default::default(),
                realtime,
                storage,
                cleaner,
                admin: admin::AdminState::default(),
                plugins: std::sync::OnceLock::new(),
                scheduler: cron::Scheduler::default(),
                backups,
                logs,
                restart: tokio::sync::watch::channel(false).0,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn collections(&self) -> &CollectionStore {
        &self.inner.collections
    }

    pub fn storage(&self) -> &Arc<dyn files::Storage> {
        &self.inner.storage
    }

    pub fn cleaner(&self) -> &files::Cleaner {
        &self.inner.cleaner
    }

    pub fn realtime(&self) -> &realtime::Broker {
        &self.inner.realtime
    }

    /// Dashboard sessions and the installer token.
    pub fn admin(&self) -> &admin::AdminState {
        &self.inner.admin
    }

    /// The `rateLimits` enforcement state.
    pub fn rate_limiter(&self) -> &api::rate_limit::RateLimiter {
        &self.inner.rate_limiter
    }

    pub fn settings(&self) -> &settings::SettingsStore {
        &self.inner.settings
    }

    /// The cron scheduler (jobs of the core and of plugins).
    pub fn scheduler(&self) -> &cron::Scheduler {
        &self.inner.scheduler
    }

    /// The backups of the data directory.
    pub fn backups(&self) -> &backups::Backups {
        &self.inner.backups
    }

    /// Changes the settings (deep merge, validated, stored) and applies what follows from
    /// them: the auto-backup schedule and the logs' retention. Every settings change goes
    /// through here.
    pub async fn patch_settings(
        &self,
        patch: serde_json::Value,
    ) -> Result<Arc<serde_json::Value>, settings::SettingsError> {
        let s = self.settings().patch(patch).await?;
        jobs::settings_changed(self).await;
        Ok(s)
    }

    /// The request logs (`auxiliary.db`).
    pub fn logs(&self) -> &logs::Logs {
        &self.inner.logs
    }

    /// Asks the server to stop and start again (the command line re-executes the binary).
    pub fn request_restart(&self) {
        self.inner.restart.send_replace(true);
    }

    /// Whether a restart was asked for.
    pub fn restart_requested(&self) -> bool {
        *self.inner.restart.borrow()
    }

    /// Resolves once a restart is asked for.
    pub async fn restart_signal(&self) {
        let mut rx = self.inner.restart.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// The plugins' runtime (empty until [`plugin::start`] installed one).
    pub fn plugins(&self) -> Arc<plugin::Runtime> {
        static EMPTY: std::sync::OnceLock<Arc<plugin::Runtime>> = std::sync::OnceLock::new();
        self.inner
            .plugins
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
            .clone()
    }

    /// Installs the plugins' runtime (once; a second call is ignored).
    pub(crate) fn install_plugins(&self, rt: plugin::Runtime) {
        if self.inner.plugins.set(Arc::new(rt)).is_err() {
            tracing::warn!("plugins were started twice; the second start is ignored");
        }
    }

    /// Starts the background sweep of local storage (see [`files::sweep`]): removes what a
    /// crash left between file writes and their commits, touching only entries older than
    /// `started` (when this process started). Logs what it removed.
    pub fn sweep_storage(&self, started: std::time::SystemTime) {
        let db_path = self.config().db_path();
        let storage = self.config().data_dir.join("storage");
        let collections = self.collections().snapshot().all().to_vec();
        tokio::task::spawn_blocking(move || {
            match files::sweep::run(&db_path, &storage, &collections, started) {
                Ok(s) => tracing::info!(
                    files = s.files,
                    folders = s.dirs,
                    record_folders = s.records,
                    "storage sweep done"
                ),
                Err(e) => tracing::warn!(error = %e, "storage sweep failed"),
            }
        });
    }

    /// The HTTP router of this app, with the routes of the plugins started on it.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone(), self.plugins().routes())
    }
}
