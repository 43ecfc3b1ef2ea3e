//! Dashboard sessions, CSRF tokens and the one-time installer token.
//!
//! A session is a random 256-bit id in the `fb_admin` cookie; the server keeps only its SHA-256
//! (so a memory dump or a log line never holds a usable cookie), in memory. Each session carries
//! its own CSRF token. A session dies on sign-out, after [`IDLE`] without use, after the
//! `_superusers` auth token duration in all, and as soon as its superuser is deleted or its
//! token key changes (password change), which is checked on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "fb_admin";
/// Name of the cookie that binds the sign-in and installer forms (before any session).
pub const PRE_CSRF_COOKIE: &str = "fb_csrf";
/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(2 * 3600);
/// How long the installer link printed at start-up is valid.
pub const INSTALL_TTL: Duration = Duration::from_secs(30 * 60);
/// Sessions kept at most (oldest dropped first): bounds memory under a sign-in flood.
const MAX_SESSIONS: usize = 10_000;

/// A random token: 32 bytes, hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two secrets in constant time (for equal lengths; lengths are not secret).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// One signed-in superuser.
#[derive(Debug, Clone)]
pub struct Session {
    pub superuser_id: String,
    /// The superuser's token key at sign-in; a different one now means the password (or the
    /// key itself) changed, which ends the session.
    pub token_key: String,
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
    max_age: Duration,
}

/// The in-memory session table and the installer token.
#[derive(Default)]
pub struct AdminState {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    install: Mutex<Option<([u8; 32], Instant)>>,
}

impl AdminState {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; returns the cookie value (the only copy of the id).
    pub fn start(&self, superuser_id: &str, token_key: &str, max_age: Duration) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut sessions = self.sessions();
        sessions.retain(|_, s| !s.expired(now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(&id),
            Session {
                superuser_id: superuser_id.to_string(),
                token_key: token_key.to_string(),
                csrf: random_token(),
                created: now,
                last_seen: now,
                max_age,
            },
        );
        id
    }

    /// The live session of a cookie value, touched; expired ones are removed.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let key = digest(cookie);
        let now = Instant::now();
        let mut sessions = self.sessions();
        match sessions.get_mut(&key) {
            Some(s) if !s.expired(now) => {
                s.last_seen = now;
                Some(s.clone())
            }
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of a cookie value.
    pub fn end(&self, cookie: &str) {
        self.sessions().remove(&digest(cookie));
    }

    /// Ends every session of a superuser (deleted, or its token key changed).
    pub fn end_all_of(&self, superuser_id: &str) {
        self.sessions()
            .retain(|_, s| s.superuser_id != superuser_id);
    }

    /// Issues a new installer token (replacing any earlier one); returns it.
    pub fn new_install_token(&self) -> String {
        let token = random_token();
        *self.install.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((digest(&token), Instant::now() + INSTALL_TTL));
        token
    }

    /// Whether `token` is the live installer token (not consumed).
    pub fn install_token_valid(&self, token: &str) -> bool {
        let guard = self.install.lock().unwrap_or_else(|p| p.into_inner());
        matches!(&*guard, Some((d, until)) if Instant::now() < *until
            && bool::from(d.ct_eq(&digest(token))))
    }

    /// Consumes the installer token if `token` is it: true exactly once.
    pub fn take_install_token(&self, token: &str) -> bool {
        let mut guard = self.install.lock().unwrap_or_else(|p| p.into_inner());
        let ok = matches!(&*guard, Some((d, until)) if Instant::now() < *until
            && bool::from(d.ct_eq(&digest(token))));
        if ok {
            *guard = None;
        }
        ok
    }

    /// Gives a consumed installer token back (the superuser could not be created).
    pub fn restore_install_token(&self, token: &str) {
        let mut guard = self.install.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some((digest(token), Instant::now() + INSTALL_TTL));
        }
    }
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_seen) > IDLE || now.duration_since(self.created) > self.max_age
    }
}

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for the dashboard: HttpOnly, SameSite=Strict, scoped to `/_/`, and
/// Secure when the request came over HTTPS. `max_age` None: a session cookie; 0: delete.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/_/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_resolve_and_end() {
        let s = AdminState::default();
        let cookie = s.start("su1", "key", Duration::from_secs(60));
        assert_eq!(cookie.len(), 64);
        let got = s.get(&cookie).expect("live session");
        assert_eq!(got.superuser_id, "su1");
        assert_eq!(got.csrf.len(), 64);
        assert!(s.get("not-a-session").is_none());
        s.end(&cookie);
        assert!(s.get(&cookie).is_none());
    }

    #[test]
    fn sessions_expire_and_end_per_superuser() {
        let s = AdminState::default();
        let expired = s.start("su1", "key", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.get(&expired).is_none());
        let a = s.start("su2", "key", Duration::from_secs(60));
        let b = s.start("su3", "key", Duration::from_secs(60));
        s.end_all_of("su2");
        assert!(s.get(&a).is_none());
        assert!(s.get(&b).is_some());
    }

    #[test]
    fn install_token_is_single_use() {
        let s = AdminState::default();
        assert!(!s.install_token_valid("x"));
        let t = s.new_install_token();
        assert!(s.install_token_valid(&t));
        assert!(!s.take_install_token("wrong"));
        assert!(s.take_install_token(&t));
        assert!(!s.take_install_token(&t));
        assert!(!s.install_token_valid(&t));
    }

    #[test]
    fn cookies_parse_and_print() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; fb_admin=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, "fb_admin"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie("fb_admin", "v", true, Some(0));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(secrets_equal("abc", "abc") && !secrets_equal("abc", "abd"));
    }
}
