//! An MCP (Model Context Protocol) server for Ferrobase, written against `ferrobase-plugin`
//! only, on `rmcp`: AI assistants list, read and change collections and records through the
//! same core paths as the REST API (validation, rules, realtime events, automigrate files).
//! See `docs/mcp.md`.
//!
//! - Streamable HTTP at `/mcp` in the same server (rmcp: the stateless 2026-07-28 protocol and
//!   the session-based 2025-11-25 one), behind a guard that checks Host and Origin (DNS
//!   rebinding) and the token before rmcp sees the request: a superuser's auth token, or an
//!   MCP access token (`ferrobase mcp-token`, stored hashed in `mcp_tokens`, read-only or
//!   read-write, optionally limited to some collections and with an expiry; deleting its
//!   record revokes it at once).
//! - stdio with `ferrobase mcp` for clients that start a command (stdout carries only the
//!   protocol; logs go to stderr).
//! - Read-only (`plugins.mcp.readOnly`, `FERROBASE_MCP_READ_ONLY`, or a read-only token):
//!   the mutating tools are not listed, and refused if called.
//! - Destructive tools (update a collection losing data, delete a collection or a record) are
//!   dry runs first and need the confirmation token the dry run answers, re-checked (HMAC of
//!   the exact operation, 10 minutes).

mod access;
mod server;
mod tokens;

use std::sync::Arc;

use ferrobase_plugin::{Plugin, Result, SettingField, Setup};
use serde_json::{Value, json};

pub use access::{TOKEN_PREFIX, TOKENS};

/// The plugin (Cargo feature `mcp` of the `ferrobase` binary, on by default).
#[derive(Debug, Default, Clone, Copy)]
pub struct Mcp;

/// What the HTTP guard and the server share.
pub(crate) struct Shared {
    pub read_only: bool,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub confirm_key: [u8; 32],
}

fn list_setting(v: Option<&Value>, default: &[&str]) -> Vec<String> {
    let items: Vec<String> = match v {
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|x| x.trim().to_string())
            .collect(),
        _ => vec![],
    };
    let items: Vec<String> = items.into_iter().filter(|x| !x.is_empty()).collect();
    if items.is_empty() {
        default.iter().map(|s| s.to_string()).collect()
    } else {
        items
    }
}

impl Plugin for Mcp {
    fn name(&self) -> &str {
        "mcp"
    }

    fn settings(&self) -> Vec<SettingField> {
        vec![
            SettingField::new("readOnly")
                .default_value(json!(false))
                .env("FERROBASE_MCP_READ_ONLY")
                .about("Server-wide read-only MCP: no tool that changes anything is listed or run."),
            SettingField::new("allowedHosts")
                .default_value(json!("localhost,127.0.0.1,::1"))
                .env("FERROBASE_MCP_ALLOWED_HOSTS")
                .about("Host names /mcp answers (comma separated; against DNS rebinding). Add your public host name."),
            SettingField::new("allowedOrigins")
                .default_value(json!(""))
                .env("FERROBASE_MCP_ALLOWED_ORIGINS")
                .about("Browser origins allowed to call /mcp (comma separated, e.g. https://app.example.com); requests without an Origin are not affected."),
        ]
    }

    fn setup(&self, s: &mut Setup) -> Result<()> {
        let settings = s.app().settings();
        let read_only = match settings.get("readOnly") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(v)) => matches!(v.as_str(), "1" | "true" | "yes"),
            _ => false,
        };
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut key[..]);
        let shared = Arc::new(Shared {
            read_only,
            allowed_hosts: list_setting(
                settings.get("allowedHosts"),
                &["localhost", "127.0.0.1", "::1"],
            ),
            allowed_origins: list_setting(settings.get("allowedOrigins"), &[]),
            confirm_key: key,
        });
        s.collection(json!({
            "id": "pbc_mcp_tokens01",
            "name": TOKENS,
            "type": "base",
            "listRule": null, "viewRule": null, "createRule": null, "updateRule": null, "deleteRule": null,
            "fields": [
                {"id": "text_mcp_name", "name": "name", "type": "text", "required": true},
                {"id": "text_mcp_hash", "name": "tokenHash", "type": "text", "required": true, "hidden": true},
                {"id": "select_mcp_scope", "name": "scope", "type": "select", "required": true, "maxSelect": 1, "values": ["read", "write"]},
                {"id": "json_mcp_colls", "name": "collections", "type": "json"},
                {"id": "date_mcp_expires", "name": "expires", "type": "date"},
                {"id": "autodate_mcp_created", "name": "created", "type": "autodate", "onCreate": true, "onUpdate": false}
            ],
            "indexes": ["CREATE UNIQUE INDEX `idx_mcp_tokens_hash` ON `mcp_tokens` (`tokenHash`)"]
        }));
        s.routes(http::routes(s.app().clone(), shared.clone()));
        let sh = shared.clone();
        s.command(
            "mcp",
            "Serve MCP over stdio (for clients that start a command); --read-only to change nothing",
            move |app, args| {
                let sh = sh.clone();
                async move { stdio(app, sh, &args).await }
            },
        );
        s.page("tokens", "MCP tokens", |app, req| async move {
            tokens::page(app, req).await
        });
        s.command(
            "mcp-token",
            "Create an MCP access token: mcp-token NAME [--read-only] [--collections a,b] [--expires-days N]",
            |app, args| async move { create_token(app, &args).await },
        );
        Ok(())
    }
}

mod http {
    use super::*;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };

    pub fn routes(app: ferrobase_plugin::App, sh: Arc<Shared>) -> axum::Router {
        // the guard checks Host and Origin itself (with a clear body); rmcp's own host check
        // is kept as a second line with the same list
        let config =
            StreamableHttpServerConfig::default().with_allowed_hosts(sh.allowed_hosts.clone());
        let (app2, sh2) = (app.clone(), sh.clone());
        let service: StreamableHttpService<server::McpServer, LocalSessionManager> =
            StreamableHttpService::new(
                move || Ok(server::McpServer::new(app2.clone(), sh2.clone(), None)),
                Arc::new(LocalSessionManager::default()),
                config,
            );
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(sh, access::guard))
    }
}

async fn stdio(app: ferrobase_plugin::App, sh: Arc<Shared>, args: &[String]) -> Result<()> {
    use rmcp::ServiceExt;
    let write = !sh.read_only && !args.iter().any(|a| a == "--read-only");
    let server = server::McpServer::new(app, sh, Some(access::Access::local(write)));
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ferrobase_plugin::Error::new(500, format!("mcp: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| ferrobase_plugin::Error::new(500, format!("mcp: {e}")))?;
    Ok(())
}

async fn create_token(app: ferrobase_plugin::App, args: &[String]) -> Result<()> {
    let mut name = None;
    let mut scope = "write";
    let mut collections: Vec<String> = vec![];
    let mut expires = String::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--read-only" => scope = "read",
            "--collections" => {
                collections = it
                    .next()
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default()
            }
            "--expires-days" => {
                let days: i64 = it.next().and_then(|v| v.parse().ok()).ok_or_else(|| {
                    ferrobase_plugin::Error::bad_request("--expires-days takes a number")
                })?;
                expires = tokens::expiry_in_days(days);
            }
            n if name.is_none() && !n.starts_with("--") => name = Some(n.to_string()),
            other => {
                return Err(ferrobase_plugin::Error::bad_request(format!(
                    "unknown argument {other:?}"
                )));
            }
        }
    }
    let name = name.ok_or_else(|| {
        ferrobase_plugin::Error::bad_request(
            "usage: mcp-token NAME [--read-only] [--collections a,b] [--expires-days N]",
        )
    })?;
    let (token, id) = tokens::mint(&app, &name, scope, &collections, &expires).await?;
    // the token itself is shown once and never stored
    println!("{token}");
    eprintln!(
        "MCP token {:?} ({scope}{}) created as record {} of {TOKENS}; delete the record to revoke it.",
        name,
        if collections.is_empty() {
            String::new()
        } else {
            format!(", collections {}", collections.join(","))
        },
        id
    );
    Ok(())
}
