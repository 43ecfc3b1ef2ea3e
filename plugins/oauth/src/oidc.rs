//! OpenID Connect: discovery documents and key sets (cached), and id token verification.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// How long a discovery document or a key set is used before it is fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// A key set is fetched again for an unknown key id at most this often (key rotation).
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// The parts of `/.well-known/openid-configuration` used here.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// Why an id token was refused (said in the logs, never to the client).
#[derive(Debug)]
pub struct TokenError(pub String);

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Default)]
pub struct Cache {
    discovery: Mutex<HashMap<String, (Instant, Discovery)>>,
    keys: Mutex<HashMap<String, (Instant, JwkSet)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Cache {
    /// The discovery document at `url` (`{issuer}/.well-known/openid-configuration`).
    pub async fn discovery(&self, http: &reqwest::Client, url: &str) -> Result<Discovery, String> {
        if let Some((at, d)) = lock(&self.discovery).get(url)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(d.clone());
        }
        let d: Discovery = get_json(http, url).await?;
        lock(&self.discovery).insert(url.to_string(), (Instant::now(), d.clone()));
        Ok(d)
    }

    async fn key_set(
        &self,
        http: &reqwest::Client,
        url: &str,
        kid: Option<&str>,
    ) -> Result<JwkSet, String> {
        if let Some((at, set)) = lock(&self.keys).get(url) {
            let has = kid.is_none_or(|k| set.find(k).is_some());
            if at.elapsed() < CACHE_FOR && (has || at.elapsed() < REFETCH_AFTER) {
                return Ok(set.clone());
            }
        }
        let set: JwkSet = get_json(http, url).await?;
        lock(&self.keys).insert(url.to_string(), (Instant::now(), set.clone()));
        Ok(set)
    }

    /// Verifies an id token's signature (with the key set at `jwks_url`), issuer, audience
    /// (`client_id`), expiry and, when `nonce` is given, its nonce; returns its claims.
    pub async fn verify(
        &self,
        http: &reqwest::Client,
        id_token: &str,
        jwks_url: &str,
        issuer: &str,
        client_id: &str,
        nonce: Option<&str>,
    ) -> Result<Value, TokenError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| TokenError(format!("id token header: {e}")))?;
        // asymmetric algorithms only: an HS256 token would be checked against a public value
        let alg = header.alg;
        if !matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(TokenError(format!(
                "id token algorithm {alg:?} is not accepted"
            )));
        }
        let set = self
            .key_set(http, jwks_url, header.kid.as_deref())
            .await
            .map_err(TokenError)?;
        let jwk = match header.kid.as_deref() {
            Some(kid) => set.find(kid),
            None if set.keys.len() == 1 => set.keys.first(),
            None => None,
        }
        .ok_or_else(|| TokenError("no key of the provider's key set signed the id token".into()))?;
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| TokenError(format!("provider key: {e}")))?;
        let mut v = Validation::new(alg);
        v.set_audience(&[client_id]);
        if !issuer.is_empty() {
            v.set_issuer(&[issuer]);
        }
        v.leeway = 60;
        v.set_required_spec_claims(&["exp", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(id_token, &key, &v)
            .map_err(|e| TokenError(format!("id token: {e}")))?;
        if let Some(want) = nonce {
            let got = data.claims.get("nonce").and_then(Value::as_str);
            // a token without a nonce comes from an authorization URL built by the client
            // itself (not from `auth-methods`); one with a different nonce is someone else's
            if got.is_some_and(|g| g != want) {
                return Err(TokenError("id token nonce does not match".into()));
            }
        }
        Ok(data.claims)
    }
}

/// GET a JSON document (discovery, keys, user info without a token).
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let r = http
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("GET {url}: status {}", r.status()));
    }
    r.json::<T>().await.map_err(|e| format!("GET {url}: {e}"))
}
