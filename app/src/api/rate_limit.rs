//! PocketBase's `rateLimits` settings, enforced (a middleware in front of every route,
//! plugins' included).
//!
//! A rule is `{label, audience, duration, maxRequests}`: at most `maxRequests` requests per
//! `duration` seconds per client IP (a fixed window). Labels are either paths (`/api/` matches
//! every path under it, a label without a trailing `/` matches that path only, `POST /api/…`
//! one method) or tags `collection:action` / `*:action` (`list`, `view`, `create`, `update`,
//! `delete`, `file`, `listAuthMethods`, `authRefresh`, `auth` (every auth-with-* and
//! request-otp), `authWithPassword`, `authWithOAuth2`, `authWithOTP`, `requestOTP`,
//! `requestPasswordReset`, `confirmPasswordReset`, `requestVerification`,
//! `confirmVerification`, `requestEmailChange`, `confirmEmailChange`). Audience `@guest` or
//! `@auth` limits a rule to guests or signed-in callers (a valid token), `""` to everyone. Of
//! the matching rules, the most specific path rule and the most specific tag rule both apply.
//! The client IP is the connection's peer, or the first configured `trustedProxy.headers`
//! value (rightmost entry of a list unless `useLeftmostIP`). `excludedIPs` are never limited.
//! Over the limit: 429 `Too Many Requests.`, PocketBase's body.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{Extensions, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use super::extract::MaybeAuth;
use crate::App;

#[derive(Debug, Clone, PartialEq)]
enum Label {
    /// (method or None, path, prefix)
    Path(Option<Method>, String, bool),
    /// (collection name or None for `*`, action)
    Tag(Option<String>, String),
}

#[derive(Debug, Clone, PartialEq)]
enum Audience {
    All,
    Guest,
    Auth,
}

#[derive(Debug, Clone)]
struct Rule {
    label: Label,
    audience: Audience,
    window: Duration,
    max: u64,
}

#[derive(Debug, Default)]
struct Compiled {
    enabled: bool,
    rules: Vec<Rule>,
    excluded: Vec<String>,
    proxy_headers: Vec<String>,
    leftmost: bool,
}

fn compile(settings: &Value) -> Compiled {
    let rl = &settings["rateLimits"];
    let rules = rl["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let label = r["label"].as_str()?.trim();
            let max = r["maxRequests"].as_u64().filter(|m| *m > 0)?;
            let secs = r["duration"].as_u64().filter(|d| *d > 0)?;
            let label = if let Some((coll, action)) = label.split_once(':') {
                let coll = (coll != "*").then(|| coll.to_string());
                Label::Tag(coll, action.to_string())
            } else {
                let (method, path) = match label.split_once(' ') {
                    Some((m, p)) => (Method::from_bytes(m.as_bytes()).ok(), p.trim()),
                    None => (None, label),
                };
                if !path.starts_with('/') {
                    return None;
                }
                Label::Path(method, path.to_string(), path.ends_with('/'))
            };
            let audience = match r["audience"].as_str().unwrap_or("") {
                "@guest" => Audience::Guest,
                "@auth" => Audience::Auth,
                _ => Audience::All,
            };
            Some(Rule {
                label,
                audience,
                window: Duration::from_secs(secs),
                max,
            })
        })
        .collect();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    Compiled {
        enabled: rl["enabled"].as_bool().unwrap_or(false),
        rules,
        excluded: strings(&rl["excludedIPs"]),
        proxy_headers: strings(&settings["trustedProxy"]["headers"]),
        leftmost: settings["trustedProxy"]["useLeftmostIP"]
            .as_bool()
            .unwrap_or(false),
    }
}

struct Window {
    start: Instant,
    count: u64,
}

/// The limiter's state: rules compiled from the settings they came from, and the windows.
#[derive(Default)]
pub struct RateLimiter {
    compiled: Mutex<(usize, Arc<Compiled>)>,
    windows: Mutex<HashMap<(usize, String), Window>>,
}

/// Windows kept before expired ones are swept.
const SWEEP_AT: usize = 100_000;

impl RateLimiter {
    fn rules(&self, settings: &Arc<Value>) -> Arc<Compiled> {
        let key = Arc::as_ptr(settings) as usize;
        let mut g = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 != key {
            *g = (key, Arc::new(compile(settings)));
        }
        g.1.clone()
    }

    /// Counts a request against rule `rule` for `ip`; false when over the limit.
    fn hit(&self, rule: usize, r: &Rule, ip: &str) -> bool {
        let now = Instant::now();
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= SWEEP_AT {
            w.retain(|_, v| now.duration_since(v.start) < Duration::from_secs(3600));
        }
        let e = w.entry((rule, ip.to_string())).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.duration_since(e.start) >= r.window {
            e.start = now;
            e.count = 0;
        }
        e.count += 1;
        e.count <= r.max
    }
}

/// The collection and action tags of a request, PocketBase's names.
fn tags(app: &App, method: &Method, path: &str) -> Option<(String, Vec<&'static str>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (coll, actions): (&str, Vec<&'static str>) = match segs.as_slice() {
        ["api", "collections", c, "records"] => match *method {
            Method::GET => (c, vec!["list"]),
            Method::POST => (c, vec!["create"]),
            _ => return None,
        },
        ["api", "collections", c, "records", _] => match *method {
            Method::GET => (c, vec!["view"]),
            Method::PATCH => (c, vec!["update"]),
            Method::DELETE => (c, vec!["delete"]),
            _ => return None,
        },
        ["api", "files", c, ..] => (c, vec!["file"]),
        ["api", "collections", c, action] => (
            c,
            match *action {
                "auth-methods" => vec!["listAuthMethods"],
                "auth-refresh" => vec!["authRefresh"],
                "auth-with-password" => vec!["authWithPassword", "auth"],
                "auth-with-oauth2" => vec!["authWithOAuth2", "auth"],
                "auth-with-otp" => vec!["authWithOTP", "auth"],
                "request-otp" => vec!["requestOTP", "auth"],
                "request-password-reset" => vec!["requestPasswordReset"],
                "confirm-password-reset" => vec!["confirmPasswordReset"],
                "request-verification" => vec!["requestVerification"],
                "confirm-verification" => vec!["confirmVerification"],
                "request-email-change" => vec!["requestEmailChange"],
                "confirm-email-change" => vec!["confirmEmailChange"],
                _ => return None,
            },
        ),
        _ => return None,
    };
    let name = app
        .collections()
        .get(coll)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| coll.to_string());
    Some((name, actions))
}

fn client_ip(c: &Compiled, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
    for h in &c.proxy_headers {
        if let Some(v) = headers.get(h.as_str()).and_then(|v| v.to_str().ok()) {
            let parts: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let pick = if c.leftmost {
                parts.first()
            } else {
                parts.last()
            };
            if let Some(ip) = pick.and_then(|p| p.parse::<IpAddr>().ok()) {
                return ip.to_string();
            }
        }
    }
    peer.map(|a| a.ip().to_string()).unwrap_or_default()
}

/// The connection's peer address (empty when unknown).
pub fn remote_ip(ext: &Extensions) -> String {
    crate::server::peer(ext)
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// An entry of `excludedIPs`/`superuserIPs`: an address, or a subnet (`10.0.0.0/8`) as its
/// network and prefix length. `None` when it is neither.
pub fn parse_ip_or_subnet(item: &str) -> Option<(IpAddr, u32)> {
    let item = item.trim();
    match item.split_once('/') {
        Some((net, bits)) => {
            let net = net.parse::<IpAddr>().ok()?;
            let bits = bits.parse::<u32>().ok()?;
            (bits <= if net.is_ipv4() { 32 } else { 128 }).then_some((net, bits))
        }
        None => item
            .parse::<IpAddr>()
            .ok()
            .map(|a| (a, if a.is_ipv4() { 32 } else { 128 })),
    }
}

/// True when `ip` is one of `list`'s addresses or inside one of its subnets, as PocketBase
/// matches `excludedIPs` and `superuserIPs`.
pub fn ip_in_list(list: &[String], ip: &str) -> bool {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return false;
    };
    list.iter()
        .filter_map(|item| parse_ip_or_subnet(item))
        .any(|(net, bits)| match (net, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
}

impl RateLimiter {
    /// The client's IP: the first `trustedProxy.headers` value, else the peer address.
    pub fn client_ip(
        &self,
        settings: &Arc<Value>,
        headers: &HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> String {
        client_ip(&self.rules(settings), headers, peer)
    }
}

/// The middleware.
pub async fn enforce(State(app): State<App>, req: Request, next: Next) -> Response {
    let settings = app.settings().get();
    let limiter = app.rate_limiter();
    let c = limiter.rules(&settings);
    if !c.enabled || c.rules.is_empty() {
        return next.run(req).await;
    }
    let ip = client_ip(&c, req.headers(), crate::server::peer(req.extensions()));
    if ip_in_list(&c.excluded, &ip) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let tagged = tags(&app, &method, &path);
    // Candidates by specificity: (rule index, score); the best path rule and the best tag rule.
    let mut best_path: Option<(usize, usize)> = None;
    let mut best_tag: Option<(usize, usize)> = None;
    let mut needs_auth = false;
    let mut candidates = Vec::new();
    for (i, r) in c.rules.iter().enumerate() {
        match &r.label {
            Label::Path(m, p, prefix) => {
                let path_ok = if *prefix {
                    path.starts_with(p.as_str())
                } else {
                    path == *p
                };
                if path_ok && m.as_ref().is_none_or(|m| *m == method) {
                    let score = p.len() * 2 + usize::from(m.is_some());
                    candidates.push((i, true, score));
                }
            }
            Label::Tag(coll, action) => {
                if let Some((name, actions)) = &tagged
                    && actions.iter().any(|a| a == action)
                    && coll.as_ref().is_none_or(|c| c == name)
                {
                    let score = usize::from(coll.is_some()) * 2 + usize::from(action != "auth");
                    candidates.push((i, false, score));
                }
            }
        }
        needs_auth |= r.audience != Audience::All;
    }
    if candidates.is_empty() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let authed = if needs_auth {
        MaybeAuth::from_request_parts(&mut parts, &app)
            .await
            .ok()
            .and_then(|a| a.0)
            .is_some()
    } else {
        false
    };
    for (i, is_path, score) in candidates {
        let r = &c.rules[i];
        let audience_ok = match r.audience {
            Audience::All => true,
            Audience::Guest => !authed,
            Audience::Auth => authed,
        };
        if !audience_ok {
            continue;
        }
        let slot = if is_path {
            &mut best_path
        } else {
            &mut best_tag
        };
        if slot.is_none_or(|(_, s)| score > s) {
            *slot = Some((i, score));
        }
    }
    for (i, _) in [best_path, best_tag].into_iter().flatten() {
        if !limiter.hit(i, &c.rules[i], &ip) {
            return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests.")
                .into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ip_lists_match_addresses_and_subnets() {
        let list = vec![
            "127.0.0.1".to_string(),
            "10.1.0.0/16".into(),
            "fd00::/8".into(),
        ];
        assert!(ip_in_list(&list, "127.0.0.1"));
        assert!(ip_in_list(&list, "10.1.200.3"));
        assert!(!ip_in_list(&list, "10.2.0.1"));
        assert!(ip_in_list(&list, "fd12::1"));
        assert!(!ip_in_list(&list, "::1"));
        assert!(!ip_in_list(&list, "not an ip"));
        assert!(ip_in_list(&["0.0.0.0/0".to_string()], "8.8.8.8"));
    }

    #[test]
    fn compiles_pocketbase_labels() {
        let c = compile(&json!({"rateLimits": {"enabled": true, "rules": [
            {"label": "*:auth", "audience": "", "duration": 3, "maxRequests": 2},
            {"label": "users:create", "audience": "@guest", "duration": 5, "maxRequests": 20},
            {"label": "POST /api/batch", "audience": "", "duration": 1, "maxRequests": 3},
            {"label": "/api/", "audience": "@auth", "duration": 10, "maxRequests": 300},
            {"label": "nonsense", "duration": 1, "maxRequests": 1},
            {"label": "/api/x", "duration": 0, "maxRequests": 1}
        ]}}));
        assert!(c.enabled);
        assert_eq!(c.rules.len(), 4);
        assert_eq!(c.rules[0].label, Label::Tag(None, "auth".into()));
        assert_eq!(c.rules[1].audience, Audience::Guest);
        assert_eq!(
            c.rules[2].label,
            Label::Path(Some(Method::POST), "/api/batch".into(), false)
        );
        assert_eq!(c.rules[3].label, Label::Path(None, "/api/".into(), true));
    }

    #[test]
    fn a_fixed_window_counts_per_rule_and_ip() {
        let l = RateLimiter::default();
        let r = Rule {
            label: Label::Tag(None, "auth".into()),
            audience: Audience::All,
            window: Duration::from_secs(60),
            max: 2,
        };
        assert!(l.hit(0, &r, "1.1.1.1"));
        assert!(l.hit(0, &r, "1.1.1.1"));
        assert!(!l.hit(0, &r, "1.1.1.1"));
        assert!(l.hit(0, &r, "2.2.2.2"));
        assert!(l.hit(1, &r, "1.1.1.1"));
    }
}
