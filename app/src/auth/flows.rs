//! The mail-based auth flows (verification, password reset, email change, OTP) and MFA, shared
//! by the API endpoints and the pages that mail links open.

use std::sync::Arc;

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Map, Value, json};

use super::token::{self, Claims, TokenType};
use super::{AuthRecord, password};
use crate::App;
use crate::db::DbError;
use crate::db::entities::{auth_origin, mfa, otp};
use crate::mail::{self, Mail};
use crate::records::{self, Action, Change, Record};
use crate::schema::auth_options::{EmailTemplate, TokenConfig};
use crate::schema::{Collection, ids};
use crate::validation::{ValidationErrors, msg};

/// Errors of auth flows, mapped to HTTP by the API layer.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("validation failed")]
    Validation(&'static str, ValidationErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("mail: {0}")]
    Mail(#[from] mail::MailError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Auth(#[from] super::AuthError),
}

fn invalid_token() -> FlowError {
    let mut e = ValidationErrors::new();
    e.add(
        &["token"],
        "validation_invalid_token",
        "Invalid or expired token.",
    );
    FlowError::Validation("An error occurred while validating the submitted data.", e)
}

fn token_config(c: &Collection, kind: TokenType) -> Option<&TokenConfig> {
    let a = c.auth.as_ref()?;
    Some(match kind {
        TokenType::Auth => &a.auth_token,
        TokenType::File => &a.file_token,
        TokenType::Verification => &a.verification_token,
        TokenType::PasswordReset => &a.password_reset_token,
        TokenType::EmailChange => &a.email_change_token,
    })
}

/// Signs a token of `kind` for a record.
pub fn issue(
    c: &Collection,
    r: &Record,
    kind: TokenType,
    new_email: Option<&str>,
) -> Result<String, FlowError> {
    let cfg = token_config(c, kind)
        .ok_or_else(|| FlowError::BadRequest("Not an auth collection.".into()))?;
    let claims = Claims {
        id: r.id().to_string(),
        kind,
        collection_id: c.id.clone(),
        refreshable: None,
        email: Some(r.get_str("email").unwrap_or("").to_string()),
        new_email: new_email.map(str::to_string),
        exp: chrono::Utc::now().timestamp() + cfg.duration.max(1),
    };
    Ok(token::sign(
        &claims,
        r.get_str("tokenKey").unwrap_or(""),
        &cfg.secret,
    )?)
}

/// Resolves and verifies a token of `kind`: its collection, record and claims. The email in
/// the token must still be the record's email.
pub async fn verify(
    app: &App,
    t: &str,
    kind: TokenType,
) -> Result<(Arc<Collection>, Record, Claims), FlowError> {
    let claims = token::peek(t).ok_or_else(invalid_token)?;
    let c = app
        .collections()
        .get(&claims.collection_id)
        .filter(|c| c.is_auth())
        .ok_or_else(invalid_token)?;
    let (c2, id) = (c.clone(), claims.id.clone());
    let r = app
        .db()
        .read(move |conn| records::find_by_id(conn, &c2, &id))
        .await?
        .ok_or_else(invalid_token)?;
    let cfg = token_config(&c, kind).ok_or_else(invalid_token)?;
    let claims = token::verify(t, r.get_str("tokenKey").unwrap_or(""), &cfg.secret, kind)
        .map_err(|_| invalid_token())?;
    if claims.email.as_deref() != r.get_str("email") {
        return Err(invalid_token());
    }
    Ok((c, r, claims))
}

/// Updates a record's fields outside the API rules (a flow has proven its right) and
/// publishes the change after commit.
pub async fn system_update(
    app: &App,
    c: &Arc<Collection>,
    id: &str,
    values: Map<String, Value>,
) -> Result<Record, FlowError> {
    let (c2, id2, broker) = (c.clone(), id.to_string(), app.realtime().clone());
    let events = app.plugins().events.clone();
    let r = app
        .db()
        .write_tx(move |conn, after| {
            let old = if events.is_some() {
                records::find_by_id(conn, &c2, &id2)?
            } else {
                None
            };
            let mut values = values;
            if let Some(f) = c2.fields.iter().find(|f| {
                matches!(
                    f.kind,
                    crate::schema::FieldKind::Autodate {
                        on_update: true,
                        ..
                    }
                )
            }) {
                values.insert(f.name.clone(), json!(ids::now()));
            }
            let r = records::update(conn, &c2, &id2, &values)?
                .ok_or(crate::db::DbError::Internal("record vanished".into()))?;
            let change = Change {
                action: Action::Update,
                collection: c2.clone(),
                record: r.clone(),
                old,
            };
            after.push(move || {
                if let Some(events) = events {
                    events.committed(vec![change.clone()]);
                }
                broker.publish(vec![change]);
            });
            Ok::<_, crate::db::DbError>(r)
        })
        .await?;
    Ok(r)
}

fn app_vars(settings: &Value) -> (String, String) {
    (
        settings["meta"]["appName"]
            .as_str()
            .unwrap_or("Acme")
            .to_string(),
        settings["meta"]["appURL"]
            .as_str()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string(),
    )
}

/// Renders one of the collection's mail templates and sends it.
pub async fn send_template(
    app: &App,
    template: &EmailTemplate,
    to: &str,
    extra: &[(&str, &str)],
) -> Result<(), FlowError> {
    let settings = app.settings().get();
    let (name, url) = app_vars(&settings);
    let mut vars: Vec<(&str, &str)> = vec![("APP_NAME", &name), ("APP_URL", &url)];
    vars.extend_from_slice(extra);
    let m = Mail {
        to: to.to_string(),
        subject: mail::fill(&template.subject, &vars),
        html: mail::fill(&template.body, &vars),
    };
    mail::send(&settings, app.config().dev, &m).await?;
    Ok(())
}

async fn find_by_email(
    app: &App,
    c: &Arc<Collection>,
    email: &str,
) -> Result<Option<Record>, FlowError> {
    let (c2, e) = (c.clone(), email.to_string());
    Ok(app
        .db()
        .read(move |conn| records::find_by_field(conn, &c2, "email", &e))
        .await?)
}

fn require_email(body: &Map<String, Value>, key: &str) -> Result<String, FlowError> {
    let email = body
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let mut e = ValidationErrors::new();
    if email.is_empty() {
        e.add(&[key], "validation_required", msg::REQUIRED);
    } else if !email.contains('@') || email.len() > 255 {
        e.add(
            &[key],
            "validation_is_email",
            "Must be a valid email address.",
        );
    }
    if e.is_empty() {
        Ok(email)
    } else {
        Err(FlowError::Validation(
            "An error occurred while validating the submitted data.",
            e,
        ))
    }
}

/// Spawns mail sending so the response does not wait for (or reveal) it.
fn send_later(app: &App, template: EmailTemplate, to: String, token: String) {
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = send_template(&app, &template, &to, &[("TOKEN", &token)]).await {
            tracing::warn!(error = %e, "could not send an auth mail");
        }
    });
}

/// `request-verification`: always 204; mails unverified records.
pub async fn request_verification(
    app: &App,
    c: &Arc<Collection>,
    body: &Map<String, Value>,
) -> Result<(), FlowError> {
    let email = require_email(body, "email")?;
    if let Some(r) = find_by_email(app, c, &email).await?
        && !r
            .data
            .get("verified")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        && let Some(a) = &c.auth
    {
        let t = issue(c, &r, TokenType::Verification, None)?;
        send_later(app, a.verification_template.clone(), email, t);
    }
    Ok(())
}

/// `confirm-verification`.
pub async fn confirm_verification(app: &App, t: &str) -> Result<(), FlowError> {
    let (c, r, _) = verify(app, t, TokenType::Verification).await?;
    if !r
        .data
        .get("verified")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        let mut v = Map::new();
        v.insert("verified".into(), json!(true));
        system_update(app, &c, r.id(), v).await?;
    }
    Ok(())
}

/// `request-password-reset`: always 204.
pub async fn request_password_reset(
    app: &App,
    c: &Arc<Collection>,
    body: &Map<String, Value>,
) -> Result<(), FlowError> {
    let email = require_email(body, "email")?;
    if let Some(r) = find_by_email(app, c, &email).await?
        && let Some(a) = &c.auth
    {
        let t = issue(c, &r, TokenType::PasswordReset, None)?;
        send_later(app, a.reset_password_template.clone(), email, t);
    }
    Ok(())
}

fn check_new_password(c: &Collection, pw: &str, confirm: &str) -> Result<i64, FlowError> {
    let (min, max, cost) = match c.field("password").map(|f| &f.kind) {
        Some(crate::schema::FieldKind::Password { min, max, cost, .. }) => (*min, *max, *cost),
        _ => (8, 0, 0),
    };
    let mut e = ValidationErrors::new();
    let n = pw.chars().count() as i64;
    let max = if max > 0 { max } else { 71 };
    if pw.is_empty() {
        e.add(&["password"], "validation_required", msg::REQUIRED);
    } else if n < min.max(1) {
        e.add(
            &["password"],
            "validation_min_text_constraint",
            &format!("Must be at least {min} character(s)."),
        );
    } else if n > max {
        e.add(
            &["password"],
            "validation_max_text_constraint",
            &format!("Must be no more than {max} character(s)."),
        );
    }
    if confirm != pw {
        e.add(
            &["passwordConfirm"],
            "validation_values_mismatch",
            "Values don't match.",
        );
    }
    if e.is_empty() {
        Ok(cost)
    } else {
        Err(FlowError::Validation(
            "An error occurred while validating the submitted data.",
            e,
        ))
    }
}

/// `confirm-password-reset`: sets the password, rotates the token key (old tokens stop
/// working) and marks the email verified (the mail reached its owner).
pub async fn confirm_password_reset(
    app: &App,
    t: &str,
    pw: &str,
    confirm: &str,
) -> Result<(), FlowError> {
    let (c, r, _) = verify(app, t, TokenType::PasswordReset).await?;
    let cost = check_new_password(&c, pw, confirm)?;
    let pw = pw.to_string();
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw, cost))
        .await
        .map_err(|_| FlowError::BadRequest("Failed to hash the password.".into()))??;
    let mut v = Map::new();
    v.insert("password".into(), json!(hash));
    v.insert("tokenKey".into(), json!(ids::random_alphanumeric(50)));
    v.insert("verified".into(), json!(true));
    system_update(app, &c, r.id(), v).await?;
    Ok(())
}

/// `request-email-change`: mails a confirmation link to the new address (synchronously, so a
/// mail failure is reported).
pub async fn request_email_change(
    app: &App,
    me: &AuthRecord,
    body: &Map<String, Value>,
) -> Result<(), FlowError> {
    let new_email = require_email(body, "newEmail")?;
    let c = &me.collection;
    if find_by_email(app, c, &new_email).await?.is_some() {
        let mut e = ValidationErrors::new();
        e.add(
            &["newEmail"],
            "validation_email_exists",
            "User email already exists.",
        );
        return Err(FlowError::Validation(
            "An error occurred while validating the submitted data.",
            e,
        ));
    }
    let a = c
        .auth
        .as_ref()
        .ok_or_else(|| FlowError::BadRequest("Not an auth collection.".into()))?;
    let t = issue(c, &me.record, TokenType::EmailChange, Some(&new_email))?;
    send_template(
        app,
        &a.confirm_email_change_template,
        &new_email,
        &[("TOKEN", &t)],
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "could not send the email change mail");
        FlowError::BadRequest("Failed to request email change.".into())
    })
}

/// `confirm-email-change`: needs the current password; sets the new email (verified) and
/// rotates the token key.
pub async fn confirm_email_change(app: &App, t: &str, pw: &str) -> Result<(), FlowError> {
    let (c, r, claims) = verify(app, t, TokenType::EmailChange).await?;
    let new_email = claims
        .new_email
        .clone()
        .filter(|e| !e.is_empty())
        .ok_or_else(invalid_token)?;
    let (pw, hash) = (
        pw.to_string(),
        r.get_str("password").unwrap_or("").to_string(),
    );
    let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        let mut e = ValidationErrors::new();
        e.add(
            &["password"],
            "validation_invalid_password",
            "Missing or invalid auth record password.",
        );
        return Err(FlowError::Validation(
            "An error occurred while validating the submitted data.",
            e,
        ));
    }
    if find_by_email(app, &c, &new_email).await?.is_some() {
        return Err(invalid_token());
    }
    let mut v = Map::new();
    v.insert("email".into(), json!(new_email));
    v.insert("verified".into(), json!(true));
    v.insert("tokenKey".into(), json!(ids::random_alphanumeric(50)));
    system_update(app, &c, r.id(), v).await?;
    Ok(())
}

// ---- OTP ---------------------------------------------------------------------------------

/// Failed OTP attempts per OTP id; an OTP is burnt after [`MAX_OTP_ATTEMPTS`].
static OTP_ATTEMPTS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, u32>>> =
    std::sync::OnceLock::new();
const MAX_OTP_ATTEMPTS: u32 = 5;

fn random_digits(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// The auth options of a collection with OTP enabled (403 otherwise).
fn otp_options(c: &Collection) -> Result<&crate::schema::auth_options::AuthOptions, FlowError> {
    let a = c
        .auth
        .as_ref()
        .ok_or_else(|| FlowError::BadRequest("Not an auth collection.".into()))?;
    if !a.otp.enabled {
        return Err(FlowError::Forbidden(
            "The collection is not configured to allow OTP authentication.".into(),
        ));
    }
    Ok(a)
}

/// `request-otp`: mails a one-time password and returns its id. Unknown addresses get an id
/// too (no enumeration), and the same work is done for them.
pub async fn request_otp(
    app: &App,
    c: &Arc<Collection>,
    body: &Map<String, Value>,
) -> Result<String, FlowError> {
    let a = otp_options(c)?;
    let email = require_email(body, "email")?;
    let code = random_digits(a.otp.length.clamp(4, 32) as usize);
    let code2 = code.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&code2, 8))
        .await
        .map_err(|_| FlowError::BadRequest("Failed to create the OTP.".into()))??;
    let otp_id = ids::record_id();
    let Some(r) = find_by_email(app, c, &email).await? else {
        return Ok(otp_id);
    };
    let now = ids::now();
    let row = otp::ActiveModel {
        id: Set(otp_id.clone()),
        collection_ref: Set(c.id.clone()),
        record_ref: Set(r.id().to_string()),
        password: Set(hash),
        sent_to: Set(email.clone()),
        created: Set(now.clone()),
        updated: Set(now),
    };
    app.db()
        .write(move |conn| {
            otp::Entity::insert(row).exec_without_returning(conn)?;
            Ok::<_, DbError>(())
        })
        .await?;
    let (app2, template, to) = (app.clone(), a.otp.email_template.clone(), email);
    tokio::spawn(async move {
        if let Err(e) = send_template(&app2, &template, &to, &[("OTP", &code)]).await {
            tracing::warn!(error = %e, "could not send an OTP mail");
        }
    });
    Ok(otp_id)
}

fn otp_failed() -> FlowError {
    FlowError::BadRequest("Invalid or expired OTP.".into())
}

/// `auth-with-otp`: checks the code; on success the OTP is used up and the record is marked
/// verified (the mail reached its owner). Returns the authenticated record.
pub async fn auth_with_otp(
    app: &App,
    c: &Arc<Collection>,
    body: &Map<String, Value>,
) -> Result<Record, FlowError> {
    let a = otp_options(c)?;
    let otp_id = body
        .get("otpId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let code = body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut e = ValidationErrors::new();
    if otp_id.is_empty() {
        e.add(&["otpId"], "validation_required", msg::REQUIRED);
    }
    if code.is_empty() {
        e.add(&["password"], "validation_required", msg::REQUIRED);
    }
    if !e.is_empty() {
        return Err(FlowError::Validation(
            "An error occurred while validating the submitted data.",
            e,
        ));
    }
    let id2 = otp_id.clone();
    let row = app
        .db()
        .read(move |conn| Ok::<_, DbError>(otp::Entity::find_by_id(id2).one(conn)?))
        .await?
        .ok_or_else(otp_failed)?;
    if row.collection_ref != c.id {
        return Err(otp_failed());
    }
    let created = ids::parse_datetime(&row.created).ok_or_else(otp_failed)?;
    let expired = chrono::Utc::now() > created + chrono::Duration::seconds(a.otp.duration.max(1));
    // The attempt is counted before the code is checked, under one lock: parallel guesses
    // each take a numbered slot, and none past the limit is ever checked.
    let attempts = OTP_ATTEMPTS.get_or_init(Default::default);
    let slot = {
        let mut m = attempts.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(otp_id.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let burn = |app: &App| {
        let id2 = otp_id.clone();
        let db = app.db().clone();
        async move {
            db.write(move |conn| {
                Ok::<_, DbError>(otp::Entity::delete_by_id(id2).exec(conn)?.rows_affected)
            })
            .await
        }
    };
    if slot > MAX_OTP_ATTEMPTS {
        burn(app).await?;
        return Err(FlowError::TooManyRequests(
            "Too many attempts, please request a new OTP.".into(),
        ));
    }
    let hash = row.password.clone();
    let ok = !expired
        && tokio::task::spawn_blocking(move || password::verify(&code, &hash))
            .await
            .unwrap_or(false);
    if !ok {
        if expired || slot >= MAX_OTP_ATTEMPTS {
            burn(app).await?;
            if slot >= MAX_OTP_ATTEMPTS {
                return Err(FlowError::TooManyRequests(
                    "Too many attempts, please request a new OTP.".into(),
                ));
            }
        }
        return Err(otp_failed());
    }
    // Single use: of two parallel requests with the right code, only the one that deletes the
    // row signs in.
    if burn(app).await? == 0 {
        return Err(otp_failed());
    }
    attempts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&otp_id);
    let (c2, rid) = (c.clone(), row.record_ref.clone());
    let r = app
        .db()
        .read(move |conn| records::find_by_id(conn, &c2, &rid))
        .await?
        .ok_or_else(otp_failed)?;
    if !r
        .data
        .get("verified")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && Some(row.sent_to.as_str()) == r.get_str("email")
    {
        let mut v = Map::new();
        v.insert("verified".into(), json!(true));
        return system_update(app, c, r.id(), v).await;
    }
    Ok(r)
}

// ---- MFA ---------------------------------------------------------------------------------

/// Whether an auth record satisfies a rule evaluated with itself as `@request.auth` (the
/// `authRule` and the MFA rule). `None` (locked) never matches, `""` always does.
pub async fn rule_matches(
    app: &App,
    c: &Arc<Collection>,
    r: &Record,
    rule: &Option<String>,
) -> Result<bool, FlowError> {
    match rule.as_deref() {
        None => return Ok(false),
        Some(s) if s.trim().is_empty() => return Ok(true),
        Some(_) => {}
    }
    let caller = crate::records::ops::Caller {
        auth: Some(AuthRecord {
            collection: c.clone(),
            record: r.clone(),
            refreshable: true,
        }),
        method: "POST".into(),
        context: "default".into(),
        ..Default::default()
    };
    let registry = app.collections().snapshot();
    let (c2, id, rule) = (c.clone(), r.id().to_string(), rule.clone());
    Ok(app
        .db()
        .read(move |conn| {
            let access =
                crate::records::ops::rule_access(&registry, &c2, &rule, &caller, &Map::new());
            Ok::<_, crate::db::DbError>(match access {
                Ok(crate::records::ops::Access::All) => true,
                Ok(crate::records::ops::Access::Where(f)) => {
                    let cond = crate::query::compile::Frag {
                        sql: format!("(\"m\".\"id\" = ?) AND ({})", f.sql),
                        values: std::iter::once(id.into()).chain(f.values).collect(),
                    };
                    !records::find_where(conn, &c2, cond, 1)?.is_empty()
                }
                Err(_) => false,
            })
        })
        .await?)
}

/// The outcome of the MFA step after a successful first or second factor.
pub enum MfaStep {
    /// Sign in now.
    Done,
    /// Another method is required: answer 401 `{"mfaId": …}`.
    Required(String),
}

/// Runs the MFA step for a record that just passed `method`. `mfa_id` is the id the client
/// got from its first method, if any.
pub async fn mfa(
    app: &App,
    c: &Arc<Collection>,
    r: &Record,
    method: &str,
    mfa_id: Option<&str>,
) -> Result<MfaStep, FlowError> {
    let Some(a) = c.auth.as_ref().filter(|a| a.mfa.enabled) else {
        return Ok(MfaStep::Done);
    };
    // The rule decides who needs MFA (empty: everyone).
    if !rule_matches(app, c, r, &Some(a.mfa.rule.clone())).await? {
        return Ok(MfaStep::Done);
    }
    match mfa_id.filter(|s| !s.is_empty()) {
        None => {
            let id = ids::record_id();
            let now = ids::now();
            let row = mfa::ActiveModel {
                id: Set(id.clone()),
                collection_ref: Set(c.id.clone()),
                record_ref: Set(r.id().to_string()),
                method: Set(method.to_string()),
                created: Set(now.clone()),
                updated: Set(now),
            };
            app.db()
                .write(move |conn| {
                    mfa::Entity::insert(row).exec_without_returning(conn)?;
                    Ok::<_, DbError>(())
                })
                .await?;
            Ok(MfaStep::Required(id))
        }
        Some(mid) => {
            let invalid = || FlowError::BadRequest("Invalid or expired MFA session.".into());
            let id2 = mid.to_string();
            let row = app
                .db()
                .read(move |conn| Ok::<_, DbError>(mfa::Entity::find_by_id(id2).one(conn)?))
                .await?
                .ok_or_else(invalid)?;
            if row.collection_ref != c.id || row.record_ref != r.id() {
                return Err(invalid());
            }
            let created = ids::parse_datetime(&row.created).ok_or_else(invalid)?;
            if chrono::Utc::now() > created + chrono::Duration::seconds(a.mfa.duration.max(1)) {
                return Err(invalid());
            }
            if row.method == method {
                return Err(FlowError::BadRequest(
                    "A different authentication method is required.".into(),
                ));
            }
            let id2 = mid.to_string();
            app.db()
                .write(move |conn| {
                    mfa::Entity::delete_by_id(id2).exec(conn)?;
                    Ok::<_, DbError>(())
                })
                .await?;
            Ok(MfaStep::Done)
        }
    }
}

// ---- login alerts ------------------------------------------------------------------------

/// Origins kept per record.
const MAX_ORIGINS: usize = 5;

/// Records where a record signs in from (`_authOrigins`); a sign-in from a new origin, when
/// the record has signed in before, mails an alert if the collection's `authAlert` is on.
pub async fn note_origin(
    app: &App,
    c: &Arc<Collection>,
    r: &Record,
    ip: &str,
    user_agent: &str,
) -> Result<(), FlowError> {
    use sha2::Digest;
    let Some(a) = c.auth.as_ref() else {
        return Ok(());
    };
    let fingerprint = format!(
        "{:x}",
        sha2::Sha256::digest(format!("{ip}\u{1}{user_agent}").as_bytes())
    );
    let (cref, rref, fp) = (c.id.clone(), r.id().to_string(), fingerprint);
    let (is_new, had_any) = app
        .db()
        .write(move |conn| {
            use auth_origin::Column as O;
            let existing = auth_origin::Entity::find()
                .filter(O::CollectionRef.eq(cref.as_str()))
                .filter(O::RecordRef.eq(rref.as_str()))
                .order_by_asc(O::Created)
                .all(conn)?;
            if existing.iter().any(|o| o.fingerprint == fp) {
                return Ok::<_, DbError>((false, true));
            }
            let had_any = !existing.is_empty();
            // Room for the new one: the oldest go.
            let extra = (existing.len() + 1).saturating_sub(MAX_ORIGINS);
            for oldest in existing.into_iter().take(extra) {
                auth_origin::Entity::delete_by_id(oldest.id).exec(conn)?;
            }
            let now = ids::now();
            auth_origin::Entity::insert(auth_origin::ActiveModel {
                id: Set(ids::record_id()),
                collection_ref: Set(cref),
                record_ref: Set(rref),
                fingerprint: Set(fp),
                created: Set(now.clone()),
                updated: Set(now),
            })
            .exec_without_returning(conn)?;
            Ok((true, had_any))
        })
        .await?;
    if is_new && had_any && a.auth_alert.enabled {
        let to = r.get_str("email").unwrap_or("").to_string();
        if !to.is_empty() {
            let (app2, template) = (app.clone(), a.auth_alert.email_template.clone());
            let info = format!("{ip} {user_agent}");
            tokio::spawn(async move {
                if let Err(e) = send_template(&app2, &template, &to, &[("ALERT_INFO", &info)]).await
                {
                    tracing::warn!(error = %e, "could not send a login alert");
                }
            });
        }
    }
    Ok(())
}
