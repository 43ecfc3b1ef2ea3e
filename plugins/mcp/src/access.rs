//! Who is calling `/mcp`: a superuser's auth token or an MCP access token (stored hashed in
//! the plugin's `mcp_tokens` collection), checked by an axum middleware before rmcp sees the
//! request; and the Host and Origin checks against DNS rebinding.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferrobase_plugin::{App, Caller};
use serde_json::{Value, json};
use sha2::Digest;

use crate::Shared;

/// The plugin's token collection.
pub const TOKENS: &str = "mcp_tokens";
/// MCP access tokens start with this (so they are told from auth tokens at a glance).
pub const TOKEN_PREFIX: &str = "fbmcp_";

/// What a request to the MCP server may do.
#[derive(Clone, Debug)]
pub struct Access {
    /// Who the records calls act for: the superuser, or the system for an MCP token.
    pub caller: Caller,
    /// Whether mutating tools are listed and run.
    pub write: bool,
    /// The collections the token is limited to (`None`: all).
    pub collections: Option<Vec<String>>,
    /// For logs: `superuser <email>` or `token <name>`.
    pub label: String,
}

impl Access {
    /// The local operator of `ferrobase mcp` (stdio).
    pub fn local(write: bool) -> Access {
        Access {
            caller: Caller::system(),
            write,
            collections: None,
            label: "stdio".into(),
        }
    }

    pub fn may_use(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|c| c.iter().any(|n| n == collection))
    }
}

pub fn hash_token(token: &str) -> String {
    let d = sha2::Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new MCP access token: the prefix and 40 random characters.
pub fn new_token() -> String {
    use rand::Rng;
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let body: String = (0..40)
        .map(|_| A[rng.random_range(0..A.len())] as char)
        .collect();
    format!("{TOKEN_PREFIX}{body}")
}

/// Now in PocketBase's date format, for comparing with `expires`.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.3fZ")
        .to_string()
}

fn problem(status: StatusCode, message: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({"status": status.as_u16(), "message": message, "data": {}})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"ferrobase-mcp\", error=\"invalid_token\", error_description=\"a superuser token or an MCP access token\"",
            ),
        );
    }
    r
}

fn host_allowed(sh: &Shared, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // strip the port ("[::1]:8090", "127.0.0.1:8090", "example.com")
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    sh.allowed_hosts
        .iter()
        .any(|h| h == "*" || h.eq_ignore_ascii_case(name))
}

fn origin_allowed(sh: &Shared, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // MCP clients that are not browsers send no Origin
        None => true,
        Some(o) => sh
            .allowed_origins
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(o.trim_end_matches('/'))),
    }
}

/// The middleware in front of rmcp: Host and Origin, then the token.
pub async fn guard(State(sh): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    if !host_allowed(&sh, req.headers()) {
        return problem(
            StatusCode::FORBIDDEN,
            "The Host header is not allowed for /mcp (see plugins.mcp.allowedHosts).",
        );
    }
    if !origin_allowed(&sh, req.headers()) {
        return problem(
            StatusCode::FORBIDDEN,
            "The Origin is not allowed for /mcp (see plugins.mcp.allowedOrigins).",
        );
    }
    let Some(app) = req.extensions().get::<App>().cloned() else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "Sign in: send a superuser token or an MCP access token.",
        );
    };
    match resolve(&app, &sh, &token).await {
        Some(access) => {
            tracing::debug!(who = %access.label, "mcp request");
            req.extensions_mut().insert(access);
            next.run(req).await
        }
        None => problem(
            StatusCode::UNAUTHORIZED,
            "The token is not valid (expired, revoked, or not a superuser's).",
        ),
    }
}

async fn resolve(app: &App, sh: &Shared, token: &str) -> Option<Access> {
    if token.starts_with(TOKEN_PREFIX) {
        let rec = app
            .first_by(
                &Caller::system(),
                TOKENS,
                "tokenHash",
                json!(hash_token(token)),
            )
            .await
            .ok()??;
        let expires = rec.get_str("expires").unwrap_or("");
        if !expires.is_empty() && expires <= now().as_str() {
            return None;
        }
        let collections = match rec.get("collections") {
            Some(Value::Array(a)) if !a.is_empty() => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            _ => None,
        };
        return Some(Access {
            caller: Caller::system(),
            write: !sh.read_only && rec.get_str("scope") == Some("write"),
            collections,
            label: format!("token {}", rec.get_str("name").unwrap_or("")),
        });
    }
    let caller = app.verify_token(token).await?;
    let id = caller.identity()?.clone();
    if !id.is_superuser() {
        return None;
    }
    Some(Access {
        caller,
        write: !sh.read_only,
        collections: None,
        label: format!("superuser {}", id.email),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_hashes() {
        let t = new_token();
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == TOKEN_PREFIX.len() + 40);
        assert_eq!(hash_token("abc").len(), 64);
        assert_ne!(hash_token(&t), hash_token(&new_token()));
    }
}
