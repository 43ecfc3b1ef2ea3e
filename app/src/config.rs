//! Configuration: command-line flags and `FERROBASE_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (`data.db`, later `storage/`, `auxiliary.db`).
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub http: SocketAddr,
    /// Development mode: verbose logs, mails printed instead of sent.
    pub dev: bool,
    /// Allowed CORS origins (empty or `*`: any).
    pub origins: Vec<String>,
    /// Request body limit in bytes.
    pub body_limit: usize,
    /// Number of reader threads.
    pub readers: usize,
    /// The settings encryption key (read from the variable `--encryptionEnv` names).
    pub encryption_key: Option<String>,
    /// Where schema migration files live (default: `fb_migrations` beside the data dir).
    pub migrations_dir: PathBuf,
    /// Write a migration file for every schema change made through the API.
    pub automigrate: bool,
    /// Apply pending migration files when the app opens (off for `migrate` commands).
    pub run_migrations: bool,
}

/// The migrations folder beside the data directory: `fb_migrations` for the conventional
/// `fb_data` and `pb_data` (as PocketBase keeps `pb_migrations` beside `pb_data`), and
/// `fb_migrations_<name>` for a data directory of any other name, so two data directories in
/// one parent never share (and replay) each other's migration files.
pub fn default_migrations_dir(data_dir: &std::path::Path) -> PathBuf {
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    match data_dir.file_name().and_then(|n| n.to_str()) {
        None | Some("fb_data" | "pb_data" | "." | "..") => parent.join("fb_migrations"),
        Some(name) => parent.join(format!("fb_migrations_{name}")),
    }
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8090)),
            dev: false,
            origins: vec![],
            body_limit: crate::api::DEFAULT_BODY_LIMIT,
            readers: 2,
            encryption_key: None,
            migrations_dir: default_migrations_dir(&data_dir),
            automigrate: true,
            run_migrations: true,
            data_dir,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("data.db")
    }
}
