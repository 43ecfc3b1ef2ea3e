//! MCP access tokens: minting (the CLI and the dashboard page), and the dashboard page that
//! lists, creates and revokes them.

use ferrobase_plugin::{App, Caller, Error, ListOptions, PageRequest, Result, escape_html as esc};
use serde_json::{Map, Value, json};

use crate::access::{self, TOKENS};

/// Creates a token record; returns the token (shown once, never stored) and the record id.
pub async fn mint(
    app: &App,
    name: &str,
    scope: &str,
    collections: &[String],
    expires: &str,
) -> Result<(String, String)> {
    if name.trim().is_empty() {
        return Err(Error::bad_request("A token needs a name."));
    }
    let token = access::new_token();
    let mut data = Map::new();
    data.insert("name".into(), json!(name.trim()));
    data.insert("tokenHash".into(), json!(access::hash_token(&token)));
    data.insert("scope".into(), json!(scope));
    data.insert("collections".into(), json!(collections));
    data.insert("expires".into(), json!(expires));
    let rec = app.create(&Caller::system(), TOKENS, data).await?;
    Ok((token, rec.id().to_string()))
}

/// `now + days` in PocketBase's date format.
pub fn expiry_in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%d %H:%M:%S%.3fZ")
        .to_string()
}

/// The dashboard page `/_/plugins/mcp/tokens`.
pub async fn page(app: App, req: PageRequest) -> Result<String> {
    let field = |k: &str| {
        req.form
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let mut notice = String::new();
    if req.method == "POST" {
        match field("action").as_str() {
            "create" => {
                let scope = if field("readOnly").is_empty() {
                    "write"
                } else {
                    "read"
                };
                let collections: Vec<String> = field("collections")
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
                let expires = match field("expiresDays").parse::<i64>() {
                    Ok(d) if d > 0 => expiry_in_days(d),
                    _ => String::new(),
                };
                notice = match mint(&app, &field("name"), scope, &collections, &expires).await {
                    Ok((token, _)) => format!(
                        "<div class=\"notice\" role=\"status\"><p>Token created. Copy it now: it is shown only once.</p><p><code class=\"mcp-new-token\">{}</code></p></div>",
                        esc(&token)
                    ),
                    Err(e) => format!(
                        "<div class=\"error\" role=\"alert\">{}</div>",
                        esc(&e.message)
                    ),
                };
            }
            "revoke" => {
                notice = match app.delete(&Caller::system(), TOKENS, &field("id")).await {
                    Ok(()) => "<div class=\"notice\" role=\"status\">Token revoked.</div>".into(),
                    Err(e) => format!(
                        "<div class=\"error\" role=\"alert\">{}</div>",
                        esc(&e.message)
                    ),
                };
            }
            _ => {}
        }
    }
    let list = app
        .list(
            &Caller::system(),
            TOKENS,
            ListOptions {
                sort: "-created".into(),
                per_page: 500,
                ..ListOptions::default()
            },
        )
        .await?;
    let csrf = esc(&req.csrf);
    let mut rows = String::new();
    for r in &list.items {
        let cols = match r.get("collections") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            _ => "all".into(),
        };
        let name = esc(r.get_str("name").unwrap_or(""));
        let scope = if r.get_str("scope") == Some("read") {
            "read-only"
        } else {
            "read-write"
        };
        let expires = r
            .get_str("expires")
            .filter(|e| !e.is_empty())
            .unwrap_or("never");
        rows.push_str(&format!(
            "<tr><td class=\"mcp-token-name\">{name}</td><td>{scope}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"action\" value=\"revoke\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
             <button type=\"submit\" class=\"btn btn-sm btn-danger\" aria-label=\"Revoke {name}\">Revoke</button></form></td></tr>",
            esc(&cols),
            esc(expires),
            esc(r.get_str("created").unwrap_or("")),
            esc(r.id()),
        ));
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"6\" class=\"muted\">No tokens yet.</td></tr>".into();
    }
    Ok(format!(
        "{notice}<p class=\"muted\">Tokens let AI assistants use <code>/mcp</code> (docs/mcp.md). Only a hash of each token is stored; a revoked token stops working at its next request.</p>\
         <table class=\"data\"><thead><tr><th>Name</th><th>Scope</th><th>Collections</th><th>Expires</th><th>Created</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>New token</h2><form method=\"post\" class=\"form-grid\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"action\" value=\"create\">\
         <div class=\"field\"><label for=\"mcp-name\">Token name</label><input id=\"mcp-name\" name=\"name\" required></div>\
         <label class=\"check\"><input type=\"checkbox\" id=\"mcp-ro\" name=\"readOnly\"> Read-only</label>\
         <div class=\"field\"><label for=\"mcp-cols\">Limit to collections (comma separated, empty: all)</label><input id=\"mcp-cols\" name=\"collections\"></div>\
         <div class=\"field\"><label for=\"mcp-exp\">Expires after (days, empty: never)</label><input id=\"mcp-exp\" name=\"expiresDays\" inputmode=\"numeric\"></div>\
         <div><button type=\"submit\" class=\"btn btn-primary\">Create token</button></div></form>"
    ))
}
