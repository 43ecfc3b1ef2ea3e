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
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            http: SocketAddr::from(([127, 0, 0, 1], 8090)),
            dev: false,
            origins: vec![],
            body_limit: crate::api::DEFAULT_BODY_LIMIT,
            readers: 2,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("data.db")
    }
}
