//! `POST /api/collections/{collection}/auth-with-oauth2`: the code exchange, the provider's
//! user, and the record it signs in (found, linked or created), in PocketBase's order.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ferrobase_plugin::{App, Caller, Error, Record, RequestCaller, SignIn, Tx, Upload};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::provider::{self, AuthUser, Kind, ProviderConfig};
use crate::{Resolved, Shared, nonce_for, random_string};

/// The token endpoint's answer: the standard fields and OpenID Connect's `id_token`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct IdToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdToken {}

type Tokens = StandardTokenResponse<IdToken, BasicTokenType>;

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/api/collections/{collection}/auth-with-oauth2",
            post(auth_with_oauth2),
        )
        .with_state(shared)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Form {
    provider: String,
    code: String,
    code_verifier: String,
    #[serde(rename = "redirectURL")]
    redirect_url: String,
    /// Deprecated spelling PocketBase still reads.
    #[serde(rename = "redirectUrl")]
    redirect_url_old: String,
    create_data: Option<Map<String, Value>>,
    mfa_id: String,
}

fn blank(field: &str, e: Error) -> Error {
    e.with_field(field, "validation_required", "Cannot be blank.")
}

async fn auth_with_oauth2(
    State(sh): State<Arc<Shared>>,
    app: App,
    RequestCaller(caller): RequestCaller,
    Path(collection): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> Result<Response, Error> {
    let Some(cj) = app.collection_with_secrets(&collection) else {
        return Err(Error::new(
            404,
            "Missing or invalid auth collection context.",
        ));
    };
    if cj.get("type").and_then(Value::as_str) != Some("auth") {
        return Err(Error::new(
            404,
            "Missing or invalid auth collection context.",
        ));
    }
    let name = cj["name"].as_str().unwrap_or_default().to_string();
    if cj.pointer("/oauth2/enabled").and_then(Value::as_bool) != Some(true) {
        return Err(Error::forbidden(
            "The collection is not configured to allow OAuth2 authentication.",
        ));
    }

    // the form
    let load_failed = || Error::bad_request("An error occurred while loading the submitted data.");
    let mut form: Form = if body.is_empty() {
        Form::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| load_failed())?
    };
    if form.redirect_url.is_empty() {
        form.redirect_url = std::mem::take(&mut form.redirect_url_old);
    }
    if form.mfa_id.is_empty()
        && let Some((_, v)) = query.iter().find(|(k, _)| k == "mfaId")
    {
        form.mfa_id = v.clone();
    }
    let configs = ProviderConfig::all_of(&cj);
    let config = configs.iter().find(|p| p.name == form.provider);
    let mut invalid = load_failed();
    let mut bad = false;
    if form.provider.is_empty() {
        invalid = blank("provider", invalid);
        bad = true;
    } else if config.is_none() {
        invalid = invalid.with_field(
            "provider",
            "validation_invalid_provider",
            &format!(
                "Provider with name {:?} is missing or is not enabled.",
                form.provider
            ),
        );
        bad = true;
    }
    if form.code.is_empty() {
        invalid = blank("code", invalid);
        bad = true;
    }
    if form.redirect_url.is_empty() {
        invalid = blank("redirectURL", invalid);
        bad = true;
    }
    let Some(config) = config.filter(|_| !bad) else {
        return Err(invalid);
    };
    let resolved = sh.resolve(config).await.map_err(|e| {
        tracing::warn!(provider = %config.name, error = %e, "oauth: provider misconfigured");
        Error::new(500, "Missing or invalid provider config.")
    })?;

    // the provider's side
    let tokens = exchange(&sh, &resolved, &form).await.map_err(|e| {
        tracing::info!(provider = %resolved.name, error = %e, "oauth: token exchange failed");
        Error::bad_request("Failed to fetch OAuth2 token.").with_field(
            "provider",
            "oauth2_token",
            &e,
        )
    })?;
    let nonce = (!form.code_verifier.is_empty()).then(|| nonce_for(&form.code_verifier));
    let user = fetch_user(&sh, &resolved, &tokens, nonce.as_deref())
        .await
        .map_err(|e| {
            tracing::info!(provider = %resolved.name, error = %e, "oauth: fetching the user failed");
            Error::bad_request("Failed to fetch OAuth2 user.").with_field("provider", "oauth2_user", &e)
        })?;
    if user.id.is_empty() {
        return Err(
            Error::bad_request("Failed to fetch OAuth2 user.").with_field(
                "provider",
                "oauth2_user",
                "The provider did not say who signed in.",
            ),
        );
    }

    // the record: linked before, the signed-in one, or the one with the same verified email
    let signed_in = caller
        .identity()
        .filter(|i| i.collection_name == name)
        .cloned();
    let linked = app.find_external(&name, &resolved.name, &user.id).await?;
    let email = if user.email_verified {
        user.email.clone()
    } else {
        String::new()
    };
    let (existing, via) = match (&linked, &signed_in) {
        (Some(r), _) => (Some(r.clone()), Found::Linked),
        (None, Some(me)) => (
            Some(app.get(&Caller::system(), &name, &me.record_id).await?),
            Found::SignedIn,
        ),
        (None, None) if !email.is_empty() => {
            (app.find_auth_by_email(&name, &email).await?, Found::Email)
        }
        (None, None) => {
            // an email the provider does not vouch for never claims an account
            if !user.email.is_empty() && app.find_auth_by_email(&name, &user.email).await?.is_some()
            {
                return Err(Error::bad_request("Failed to authenticate.").with_field(
                    "email",
                    "validation_oauth2_unverified_email",
                    "An account with this email exists, and the provider has not verified \
                     that the email is yours: sign in to that account another way, then \
                     link this provider while signed in.",
                ));
            }
            (None, Found::Email)
        }
    };

    let is_new = existing.is_none();
    let record_id = match existing {
        Some(r) => {
            update_existing(
                &app,
                &name,
                &r,
                &user,
                &email,
                via,
                linked.is_none(),
                &resolved.name,
            )
            .await?
        }
        None => {
            if name == "_superusers" {
                return Err(Error::bad_request("Failed to authenticate.").with_field(
                    "provider",
                    "validation_superuser_oauth2_signup",
                    "Superusers cannot sign up with OAuth2.",
                ));
            }
            create_new(
                &sh,
                &app,
                &caller,
                &cj,
                &user,
                &email,
                form.create_data.take(),
                &resolved.name,
            )
            .await?
        }
    };

    let meta = meta(&user, &tokens, is_new);
    let mfa = (!form.mfa_id.is_empty()).then(|| form.mfa_id.clone());
    match app
        .sign_in(&name, &record_id, "oauth2", mfa, Some(meta))
        .await?
    {
        SignIn::Done(v) => Ok(Json(v).into_response()),
        SignIn::MfaRequired(id) => {
            Ok((StatusCode::UNAUTHORIZED, Json(json!({"mfaId": id}))).into_response())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Linked,
    SignedIn,
    Email,
}

async fn exchange(sh: &Shared, r: &Resolved, form: &Form) -> Result<Tokens, String> {
    let auth = AuthUrl::new(r.auth_url.clone()).map_err(|e| format!("authURL: {e}"))?;
    let token = TokenUrl::new(r.token_url.clone()).map_err(|e| format!("tokenURL: {e}"))?;
    let redirect =
        RedirectUrl::new(form.redirect_url.clone()).map_err(|e| format!("redirectURL: {e}"))?;
    let mut client: OAuthClient = oauth2::Client::new(ClientId::new(r.client_id.clone()))
        .set_auth_uri(auth)
        .set_token_uri(token)
        .set_auth_type(if r.basic_auth {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        });
    if !r.client_secret.is_empty() {
        client = client.set_client_secret(ClientSecret::new(r.client_secret.clone()));
    }
    let mut req = client
        .exchange_code(AuthorizationCode::new(form.code.clone()))
        .set_redirect_uri(Cow::Owned(redirect));
    if r.pkce && !form.code_verifier.is_empty() {
        req = req.set_pkce_verifier(PkceCodeVerifier::new(form.code_verifier.clone()));
    }
    req.request_async(&sh.http)
        .await
        .map_err(|e| describe(&r.name, sh, e))
}

/// A clear, secret-free sentence for a failed token request.
fn describe<E: std::error::Error>(provider: &str, sh: &Shared, e: E) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text = format!("{text}: {s}");
        src = s.source();
    }
    if text.contains("timed out") || text.contains("operation timed out") {
        format!(
            "The provider {provider} did not answer within {} s.",
            sh.timeout.as_secs()
        )
    } else if text.contains("onnect") {
        format!("The provider {provider} could not be reached.")
    } else {
        format!("The provider {provider} refused the code: {text}")
    }
}

async fn fetch_user(
    sh: &Shared,
    r: &Resolved,
    tokens: &Tokens,
    nonce: Option<&str>,
) -> Result<AuthUser, String> {
    let access = tokens.access_token().secret();
    let id_token = tokens.extra_fields().id_token.as_deref();
    let verify = |t: &str| {
        let t = t.to_string();
        async move {
            sh.cache
                .verify(&sh.http, &t, &r.jwks_url, &r.issuer, &r.client_id, nonce)
                .await
                .map_err(|e| e.to_string())
        }
    };
    match r.kind {
        Kind::Apple => {
            let t = id_token.ok_or("Apple answered without an id token")?;
            let claims = verify(t).await?;
            Ok(provider::auth_user(Kind::Apple, &claims, None))
        }
        Kind::Oidc => {
            let claims = match (id_token, r.jwks_url.is_empty()) {
                (Some(t), false) => Some(verify(t).await?),
                _ => None,
            };
            let info = if r.user_info_url.is_empty() {
                None
            } else {
                Some(get_user_json(sh, r, &r.user_info_url, access).await?)
            };
            let merged = match (claims, info) {
                (Some(c), Some(i)) => {
                    // the user info must be about the id token's subject
                    if c.get("sub") != i.get("sub") {
                        return Err("the user info is not about the id token's subject".into());
                    }
                    let mut m = c.as_object().cloned().unwrap_or_default();
                    if let Value::Object(i) = i {
                        m.extend(i);
                    }
                    Value::Object(m)
                }
                (Some(c), None) => c,
                (None, Some(i)) => i,
                (None, None) => {
                    return Err(
                        "the provider has neither a user info endpoint nor a verifiable id token"
                            .into(),
                    );
                }
            };
            Ok(provider::auth_user(Kind::Oidc, &merged, None))
        }
        Kind::Github => {
            let info = get_user_json(sh, r, &r.user_info_url, access).await?;
            let emails_url = format!("{}/emails", r.user_info_url.trim_end_matches('/'));
            let emails = get_user_json(sh, r, &emails_url, access).await.ok();
            Ok(provider::auth_user(Kind::Github, &info, emails.as_ref()))
        }
        kind => {
            let info = get_user_json(sh, r, &r.user_info_url, access).await?;
            Ok(provider::auth_user(kind, &info, None))
        }
    }
}

async fn get_user_json(
    sh: &Shared,
    r: &Resolved,
    url: &str,
    access: &str,
) -> Result<Value, String> {
    let mut req = sh
        .http
        .get(url)
        .bearer_auth(access)
        .header("Accept", "application/json");
    if r.kind == Kind::Twitch {
        req = req.header("Client-Id", &r.client_id);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            format!(
                "{} did not answer within {} s",
                r.name,
                sh.timeout.as_secs()
            )
        } else {
            format!("{} could not be reached", r.name)
        }
    })?;
    if !resp.status().is_success() {
        return Err(format!(
            "{} answered {} for the user",
            r.name,
            resp.status()
        ));
    }
    resp.json::<Value>()
        .await
        .map_err(|e| format!("{}'s user is not JSON: {e}", r.name))
}

/// Brings an existing record up to date with the sign-in (as PocketBase does) and links the
/// identity, in one transaction.
#[allow(clippy::too_many_arguments)]
async fn update_existing(
    app: &App,
    collection: &str,
    record: &Record,
    user: &AuthUser,
    email: &str,
    via: Found,
    link: bool,
    provider: &str,
) -> Result<String, Error> {
    let id = record.id().to_string();
    let current_email = record.get_str("email").unwrap_or("").to_string();
    let verified = record
        .get("verified")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut changes = Map::new();
    // someone may have signed up with this email before its owner: an unverified account
    // found by email gets a new random password, so whoever set the old one is out
    if via == Found::Email && !current_email.is_empty() && !verified {
        let pw = random_string(30);
        changes.insert("password".into(), json!(pw));
        changes.insert("passwordConfirm".into(), json!(pw));
    }
    if current_email.is_empty() && !email.is_empty() {
        changes.insert("email".into(), json!(email));
    }
    if !verified
        && !email.is_empty()
        && (current_email.is_empty() || current_email.eq_ignore_ascii_case(email))
    {
        changes.insert("verified".into(), json!(true));
    }
    let (coll, rid, prov, pid) = (
        collection.to_string(),
        id.clone(),
        provider.to_string(),
        user.id.clone(),
    );
    if changes.is_empty() && !link {
        return Ok(id);
    }
    app.transaction(&Caller::system(), move |tx| {
        if !changes.is_empty() {
            tx.update(&coll, &rid, changes)?;
        }
        if link {
            create_link(tx, &coll, &rid, &prov, &pid)?;
        }
        Ok(())
    })
    .await?;
    Ok(id)
}

fn create_link(
    tx: &mut dyn Tx,
    collection: &str,
    record_id: &str,
    provider: &str,
    provider_id: &str,
) -> Result<(), Error> {
    let record = tx
        .get(collection, record_id)?
        .ok_or_else(Error::not_found)?;
    let mut data = Map::new();
    data.insert("collectionRef".into(), json!(record.collection_id));
    data.insert("recordRef".into(), json!(record_id));
    data.insert("provider".into(), json!(provider));
    data.insert("providerId".into(), json!(provider_id));
    tx.create("_externalAuths", data).map_err(|e| {
        if e.status == 400 {
            Error::bad_request("Failed to authenticate.").with_field(
                "provider",
                "validation_oauth2_already_linked",
                "This account is linked to another identity of this provider already.",
            )
        } else {
            e
        }
    })?;
    Ok(())
}

/// Creates the record of a first sign-in: `createData` and the mapped fields, under the
/// collection's create rule (in the `oauth2` context), then marks it verified and links it,
/// all in one transaction; the avatar follows when it could be downloaded.
#[allow(clippy::too_many_arguments)]
async fn create_new(
    sh: &Shared,
    app: &App,
    caller: &Caller,
    cj: &Value,
    user: &AuthUser,
    email: &str,
    create_data: Option<Map<String, Value>>,
    provider: &str,
) -> Result<String, Error> {
    let name = cj["name"].as_str().unwrap_or_default().to_string();
    let email_required = cj["fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == "email"))
        .and_then(|f| f["required"].as_bool())
        .unwrap_or(false);
    if email.is_empty() && email_required {
        let why = if user.email.is_empty() {
            "The provider did not share an email address, and this collection needs one."
        } else {
            "The provider has not verified this email address, and this collection needs a \
             verified one for an OAuth2 sign-up (or make its email field optional)."
        };
        return Err(Error::bad_request("Failed to authenticate.").with_field(
            "email",
            "validation_oauth2_unverified_email",
            why,
        ));
    }
    let mut payload = create_data.unwrap_or_default();
    payload.insert("email".into(), json!(email));
    if payload
        .get("password")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let pw = random_string(30);
        payload.insert("password".into(), json!(pw));
        payload.insert("passwordConfirm".into(), json!(pw));
    }
    let mapped = |key: &str| {
        cj.pointer(&format!("/oauth2/mappedFields/{key}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let field_type = |field: &str| {
        cj["fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == field))
            .and_then(|f| f["type"].as_str())
            .map(str::to_string)
    };
    for (key, value) in [("id", &user.id), ("name", &user.name)] {
        if let Some(f) = mapped(key)
            && !payload.contains_key(&f)
            && field_type(&f).is_some()
        {
            payload.insert(f, json!(value));
        }
    }
    if let Some(f) = mapped("username")
        && !payload.contains_key(&f)
        && !user.username.is_empty()
        && field_type(&f).as_deref() == Some("text")
        && app
            .first_by(&Caller::system(), &name, &f, json!(user.username))
            .await?
            .is_none()
    {
        payload.insert(f, json!(user.username));
    }
    let mut avatar_field = None;
    if let Some(f) = mapped("avatarURL")
        && !payload.contains_key(&f)
        && !user.avatar_url.is_empty()
    {
        match field_type(&f).as_deref() {
            Some("file") => avatar_field = Some(f),
            Some(_) => {
                payload.insert(f, json!(user.avatar_url));
            }
            None => {}
        }
    }

    let as_caller = app.with_context(caller, "oauth2");
    let verify = !email.is_empty();
    let (coll, prov, pid, mail) = (
        name.clone(),
        provider.to_string(),
        user.id.clone(),
        email.to_string(),
    );
    let id = app
        .transaction(&as_caller, move |tx| {
            let record = tx.create(&coll, payload)?;
            let id = record.id().to_string();
            tx.set_caller(Caller::system());
            let stored = record.get_str("email").unwrap_or("");
            if verify && stored.eq_ignore_ascii_case(&mail) {
                let mut v = Map::new();
                v.insert("verified".into(), json!(true));
                tx.update(&coll, &id, v)?;
            }
            create_link(tx, &coll, &id, &prov, &pid)?;
            Ok(id)
        })
        .await?;

    if let Some(field) = avatar_field {
        match download_avatar(sh, &user.avatar_url).await {
            Ok((filename, bytes)) => {
                let files = vec![Upload {
                    field,
                    filename,
                    bytes,
                }];
                if let Err(e) = app
                    .update_with_files(&Caller::system(), &name, &id, Map::new(), files)
                    .await
                {
                    tracing::warn!(error = %e, "oauth: the avatar was not stored");
                }
            }
            Err(e) => tracing::warn!(error = %e, "oauth: the avatar was not downloaded"),
        }
    }
    Ok(id)
}

/// Downloads an avatar: http(s) only, an image type, at most `avatar_max` bytes.
async fn download_avatar(sh: &Shared, url: &str) -> Result<(String, Vec<u8>), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("avatar URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("avatar URL is not http(s)".into());
    }
    let mut resp = sh
        .http
        .get(parsed)
        .send()
        .await
        .map_err(|e| format!("avatar: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("avatar: status {}", resp.status()));
    }
    let ext = match resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
    {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => return Err(format!("avatar: {other:?} is not an image type taken here")),
    };
    if resp
        .content_length()
        .is_some_and(|n| n as usize > sh.avatar_max)
    {
        return Err("avatar: too large".into());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("avatar: {e}"))? {
        if bytes.len() + chunk.len() > sh.avatar_max {
            return Err("avatar: too large".into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((format!("avatar.{ext}"), bytes))
}

/// PocketBase's `meta` of an OAuth2 sign-in: the provider's user, its tokens, and `isNew`.
fn meta(user: &AuthUser, tokens: &Tokens, is_new: bool) -> Value {
    let expiry = tokens
        .expires_in()
        .and_then(|d| chrono_like_expiry(d.as_secs()))
        .unwrap_or_default();
    json!({
        "id": user.id,
        "name": user.name,
        "username": user.username,
        "email": user.email,
        "avatarURL": user.avatar_url,
        "accessToken": tokens.access_token().secret(),
        "refreshToken": tokens.refresh_token().map(|t| t.secret().as_str()).unwrap_or(""),
        "expiry": expiry,
        "rawUser": user.raw,
        "isNew": is_new,
        "avatarUrl": user.avatar_url,
    })
}

/// `now + secs` in PocketBase's date format (`2006-01-02 15:04:05.000Z`).
fn chrono_like_expiry(secs: u64) -> Option<String> {
    let secs = i64::try_from(secs).ok()?;
    let t = chrono::Utc::now().checked_add_signed(chrono::Duration::try_seconds(secs)?)?;
    Some(t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
}
