//! OAuth2 and OpenID Connect sign-in for Ferrobase's auth collections: PocketBase's
//! `auth-methods` providers and `POST /api/collections/{c}/auth-with-oauth2`, written against
//! `ferrobase-plugin` only (see `docs/oauth.md`).
//!
//! Providers are configured per auth collection in `oauth2.providers` of the collection JSON
//! (as in PocketBase; edited in the dashboard). Presets fill in the URLs and the user mapping
//! of the common providers ([`provider::PRESET_NAMES`]); `oidc`, `oidc2` and `oidc3` are
//! generic OpenID Connect providers found by their issuer's discovery document, with id
//! tokens verified against the issuer's keys. PKCE (S256) is always used where the provider
//! takes it. The all-in-one popup flow of the SDKs (`authWithOAuth2`) needs nothing more: the
//! core forwards the provider's redirect (`/api/oauth2-redirect`) to the waiting realtime
//! client, once per state.
//!
//! Where this differs from PocketBase, it is safer: an email a provider does not vouch for
//! never finds, fills or claims an account (a collision with an existing account is refused
//! with a message saying what to do); id tokens are verified whenever a key set is known;
//! the nonce of an OpenID Connect sign-in is bound to its PKCE verifier.

mod oidc;
pub mod provider;
mod signin;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ferrobase_plugin::{Plugin, Result, SettingField, Setup};
use rand::Rng;
use serde_json::{Map, Value, json};
use sha2::Digest;

use provider::{Kind, Preset, ProviderConfig};

/// The plugin. Add it to the binary's plugin list (the `ferrobase` binary has it by default,
/// Cargo feature `oauth`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OAuth;

impl Plugin for OAuth {
    fn name(&self) -> &str {
        "oauth"
    }

    fn settings(&self) -> Vec<SettingField> {
        vec![
            SettingField::new("timeoutSeconds")
                .default_value(json!(15))
                .env("FERROBASE_OAUTH_TIMEOUT_SECONDS")
                .about("How long one call to a provider (token, user, keys, avatar) may take."),
            SettingField::new("avatarMaxBytes")
                .default_value(json!(5 * 1024 * 1024))
                .env("FERROBASE_OAUTH_AVATAR_MAX_BYTES")
                .about("The largest avatar downloaded into a file field at sign-up."),
        ]
    }

    fn setup(&self, s: &mut Setup) -> Result<()> {
        let settings = s.app().settings();
        let secs = settings
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .filter(|s| (1..=120).contains(s))
            .unwrap_or(15);
        let avatar_max = settings
            .get("avatarMaxBytes")
            .and_then(Value::as_u64)
            .unwrap_or(5 * 1024 * 1024) as usize;
        let timeout = Duration::from_secs(secs);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // token endpoints must not redirect (the oauth2 crate's advice, against SSRF)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ferrobase-oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ferrobase_plugin::Error::new(500, format!("oauth: HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            http,
            cache: oidc::Cache::default(),
            timeout,
            avatar_max,
        });
        let sh = shared.clone();
        s.auth_methods(move |c| {
            let sh = sh.clone();
            async move { sh.auth_methods(c).await }
        });
        s.routes(signin::routes(shared));
        Ok(())
    }
}

/// What the routes and the `auth-methods` section share.
pub(crate) struct Shared {
    pub http: reqwest::Client,
    pub cache: oidc::Cache,
    pub timeout: Duration,
    pub avatar_max: usize,
}

/// A provider with everything filled in: the collection's configuration over the preset,
/// and over the discovery document for OpenID Connect providers.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub name: String,
    pub display_name: String,
    pub kind: Kind,
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub user_info_url: String,
    pub issuer: String,
    pub jwks_url: String,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub auth_params: Vec<(String, String)>,
    pub basic_auth: bool,
}

/// PocketBase's random strings: `[A-Za-z0-9]`.
pub(crate) fn random_string(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: base64url(sha256(verifier)).
pub(crate) fn s256(verifier: &str) -> String {
    b64(&sha2::Sha256::digest(verifier.as_bytes()))
}

/// The OpenID Connect nonce of a sign-in, derived from its PKCE verifier: the code exchange
/// carries the verifier, so the id token can be checked against the authorization URL that
/// `auth-methods` built without keeping any state on the server.
pub(crate) fn nonce_for(verifier: &str) -> String {
    b64(&sha2::Sha256::digest(
        format!("ferrobase-oidc-nonce:{verifier}").as_bytes(),
    ))
}

impl Shared {
    /// Fills a provider configuration in from its preset (and discovery document).
    pub(crate) async fn resolve(
        &self,
        cfg: &ProviderConfig,
    ) -> std::result::Result<Resolved, String> {
        let preset: Preset = provider::preset_for(&cfg.name)
            .ok_or_else(|| format!("unknown provider {:?}", cfg.name))?;
        if cfg.client_id.is_empty() {
            return Err(format!("provider {:?} has no clientId", cfg.name));
        }
        let pick = |configured: &str, preset: &str| {
            if configured.is_empty() {
                preset.to_string()
            } else {
                configured.to_string()
            }
        };
        let mut r = Resolved {
            name: cfg.name.clone(),
            display_name: pick(&cfg.display_name, preset.display_name),
            kind: preset.kind,
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            auth_url: pick(&cfg.auth_url, preset.auth_url),
            token_url: pick(&cfg.token_url, preset.token_url),
            user_info_url: pick(&cfg.user_info_url, preset.user_info_url),
            issuer: pick(cfg.extra_str("issuer"), preset.issuer),
            jwks_url: pick(cfg.extra_str("jwksURL"), preset.jwks_url),
            scopes: preset.scopes.iter().map(|s| s.to_string()).collect(),
            pkce: cfg.pkce.unwrap_or(preset.pkce),
            auth_params: preset
                .auth_params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            basic_auth: preset.basic_auth,
        };
        if let Some(extra) = cfg.extra.get("scopes").and_then(Value::as_array) {
            for s in extra.iter().filter_map(Value::as_str) {
                if !r.scopes.iter().any(|x| x == s) {
                    r.scopes.push(s.to_string());
                }
            }
        }
        if r.kind == Kind::Oidc {
            let discovery_url = match cfg.extra_str("discoveryURL") {
                "" if !r.issuer.is_empty() => format!(
                    "{}/.well-known/openid-configuration",
                    r.issuer.trim_end_matches('/')
                ),
                u => u.to_string(),
            };
            let incomplete =
                r.auth_url.is_empty() || r.token_url.is_empty() || r.jwks_url.is_empty();
            if incomplete && !discovery_url.is_empty() {
                let d = self.cache.discovery(&self.http, &discovery_url).await?;
                if r.issuer.is_empty() {
                    r.issuer = d.issuer.clone();
                } else if r.issuer.trim_end_matches('/') != d.issuer.trim_end_matches('/') {
                    return Err(format!(
                        "the discovery document's issuer {:?} is not the configured {:?}",
                        d.issuer, r.issuer
                    ));
                }
                r.auth_url = pick(&r.auth_url, &d.authorization_endpoint);
                r.token_url = pick(&r.token_url, &d.token_endpoint);
                r.user_info_url = pick(
                    &r.user_info_url,
                    d.userinfo_endpoint.as_deref().unwrap_or(""),
                );
                r.jwks_url = pick(&r.jwks_url, d.jwks_uri.as_deref().unwrap_or(""));
                if let Some(m) = &d.token_endpoint_auth_methods_supported {
                    r.basic_auth = m.iter().any(|m| m == "client_secret_basic");
                }
            }
        }
        if r.auth_url.is_empty() || r.token_url.is_empty() {
            return Err(format!(
                "provider {:?} needs authURL and tokenURL (or, for OpenID Connect, extra.issuer)",
                cfg.name
            ));
        }
        Ok(r)
    }

    /// The `oauth2` section of `auth-methods` (and the legacy `authProviders`).
    async fn auth_methods(&self, collection: Value) -> Map<String, Value> {
        let mut out = Map::new();
        let enabled = collection
            .pointer("/oauth2/enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !enabled {
            return out;
        }
        let mut providers = Vec::new();
        for cfg in ProviderConfig::all_of(&collection) {
            match self.resolve(&cfg).await {
                Ok(r) => providers.push(provider_info(&r)),
                Err(e) => {
                    tracing::warn!(provider = %cfg.name, error = %e, "oauth: provider left out of auth-methods")
                }
            }
        }
        out.insert(
            "oauth2".into(),
            json!({"providers": providers, "enabled": true}),
        );
        out.insert("authProviders".into(), Value::Array(providers));
        out
    }
}

/// One provider of `auth-methods`: a fresh state and PKCE pair, and the authorization URL
/// ending in `&redirect_uri=` for the client to complete (as PocketBase does).
fn provider_info(r: &Resolved) -> Value {
    use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope};
    let state = random_string(30);
    let (verifier, challenge) = if r.pkce {
        let v = random_string(43);
        let c = s256(&v);
        (v, c)
    } else {
        (String::new(), String::new())
    };
    let Ok(auth_url) = AuthUrl::new(r.auth_url.clone()) else {
        return Value::Null;
    };
    let client =
        oauth2::basic::BasicClient::new(ClientId::new(r.client_id.clone())).set_auth_uri(auth_url);
    let st = state.clone();
    let mut req = client.authorize_url(move || CsrfToken::new(st));
    for s in &r.scopes {
        req = req.add_scope(Scope::new(s.clone()));
    }
    if r.pkce {
        let pkce =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
        req = req.set_pkce_challenge(pkce);
        if matches!(r.kind, Kind::Oidc | Kind::Apple) {
            req = req.add_extra_param("nonce", nonce_for(&verifier));
        }
    }
    for (k, v) in &r.auth_params {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let (url, _) = req.url();
    let url = format!("{url}&redirect_uri=");
    json!({
        "name": r.name,
        "displayName": r.display_name,
        // PocketBase sends the provider's logo as inline SVG; none are bundled here
        "logo": "",
        "state": state,
        "authURL": url,
        "authUrl": url,
        "codeVerifier": verifier,
        "codeChallenge": challenge,
        "codeChallengeMethod": if r.pkce { "S256" } else { "" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_and_nonce() {
        // RFC 7636 appendix B
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_ne!(nonce_for("a"), nonce_for("b"));
        assert_eq!(random_string(30).len(), 30);
    }

    #[test]
    fn authorization_urls_carry_pkce_state_and_nonce() {
        let r = Resolved {
            name: "oidc".into(),
            display_name: "Test".into(),
            kind: Kind::Oidc,
            client_id: "cid".into(),
            client_secret: "secret".into(),
            auth_url: "http://127.0.0.1:9/auth".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            user_info_url: String::new(),
            issuer: String::new(),
            jwks_url: String::new(),
            scopes: vec!["openid".into(), "email".into()],
            pkce: true,
            auth_params: vec![],
            basic_auth: true,
        };
        let info = provider_info(&r);
        let url = info["authURL"].as_str().unwrap();
        assert!(url.ends_with("&redirect_uri="), "{url}");
        let parsed = url::Url::parse(url).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["state"], info["state"].as_str().unwrap());
        assert_eq!(q["code_challenge"], info["codeChallenge"].as_str().unwrap());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "openid email");
        assert_eq!(
            q["nonce"],
            nonce_for(info["codeVerifier"].as_str().unwrap())
        );
        assert!(!url.contains("secret"));
        assert_eq!(
            s256(info["codeVerifier"].as_str().unwrap()),
            info["codeChallenge"]
        );
    }
}
