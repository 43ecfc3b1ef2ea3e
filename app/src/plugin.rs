//! How plugins are registered: `main.rs` builds a list of [`ferrobase_plugin::Plugin`] values
//! and hands it to [`crate::App::router`], which mounts each plugin's routes beside the core
//! API (under the same CORS, header, limit and tracing layers).

pub use ferrobase_plugin::Plugin;
