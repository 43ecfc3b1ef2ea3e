//! Stripe billing for Ferrobase, written against `ferrobase-plugin` only (see
//! `docs/stripe.md`): Checkout and the customer portal for signed-in users, signed webhooks
//! synced into collections the plugin owns, a resync (endpoint and CLI) that backfills
//! everything from Stripe's API, and entitlements (`plan`, `subscriptionStatus`) on the
//! users, for API rules to gate data by plan.
//!
//! The plugin stays off until both a secret key and a webhook secret are set (environment
//! `STRIPE_SECRET_KEY` / `STRIPE_WEBHOOK_SECRET`, or the dashboard's settings, stored
//! encrypted). Malformed keys stop the start with a message saying which.

mod api;
mod page;
pub mod schema;
pub mod signature;
mod sync;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use ferrobase_plugin::{Action, Caller, Error, Plugin, Result, SettingField, Setup};
use serde_json::{Value, json};

/// The plugin. The `ferrobase` binary has it by default (Cargo feature `stripe`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stripe;

/// The Stripe API version the typed objects are generated for; set the webhook endpoint's
/// API version to it (docs/stripe.md).
pub fn api_version() -> &'static str {
    stripe_shared::version::VERSION.as_str()
}

/// The plugin's configuration, checked at start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub secret_key: String,
    pub webhook_secrets: Vec<String>,
    pub publishable_key: String,
    pub api_base: String,
    pub livemode: bool,
    pub users: String,
    pub grace_days: i64,
}

impl Config {
    pub fn mode(&self) -> &'static str {
        if self.livemode { "live" } else { "test" }
    }
}

fn key_mode(key: &str, prefixes: &[&str]) -> Option<bool> {
    for p in prefixes {
        for (mode, live) in [("test_", false), ("live_", true)] {
            if let Some(rest) = key.strip_prefix(&format!("{p}_{mode}"))
                && rest.len() >= 8
                && rest.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Some(live);
            }
        }
    }
    None
}

fn setting_str(s: &serde_json::Map<String, Value>, k: &str) -> String {
    s.get(k)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Reads and checks the settings. Messages name the setting and never echo a secret.
pub(crate) fn config(s: &serde_json::Map<String, Value>) -> std::result::Result<Config, String> {
    let secret_key = setting_str(s, "secretKey");
    let livemode = key_mode(&secret_key, &["sk", "rk"]).ok_or(
        "stripe: secretKey (STRIPE_SECRET_KEY) is not a Stripe secret key: expected sk_test_..., sk_live_..., rk_test_... or rk_live_...",
    )?;
    let webhook_secrets: Vec<String> = setting_str(s, "webhookSecret")
        .split(',')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect();
    if webhook_secrets.is_empty()
        || webhook_secrets.iter().any(|w| {
            !w.starts_with("whsec_")
                || w.len() < 14
                || !w[6..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        })
    {
        return Err("stripe: webhookSecret (STRIPE_WEBHOOK_SECRET) must be one or more whsec_... secrets, comma-separated".into());
    }
    let publishable_key = setting_str(s, "publishableKey");
    if !publishable_key.is_empty() {
        match key_mode(&publishable_key, &["pk"]) {
            None => {
                return Err("stripe: publishableKey (STRIPE_PUBLISHABLE_KEY) is not a Stripe publishable key (pk_test_... or pk_live_...)".into());
            }
            Some(m) if m != livemode => {
                return Err(format!(
                    "stripe: publishableKey is a {} key but secretKey is a {} key",
                    if m { "live" } else { "test" },
                    if livemode { "live" } else { "test" }
                ));
            }
            _ => {}
        }
    }
    let api_base = setting_str(s, "apiBase");
    if !(api_base.is_empty() || api_base.starts_with("https://") || api_base.starts_with("http://"))
    {
        return Err("stripe: apiBase (STRIPE_API_BASE) must be an http(s) URL".into());
    }
    let users = match setting_str(s, "authCollection") {
        u if u.is_empty() => "users".to_string(),
        u => u,
    };
    let grace_days = s
        .get("pastDueGraceDays")
        .and_then(Value::as_i64)
        .unwrap_or(3);
    if !(0..=90).contains(&grace_days) {
        return Err("stripe: pastDueGraceDays must be between 0 and 90".into());
    }
    Ok(Config {
        secret_key,
        webhook_secrets,
        publishable_key,
        api_base,
        livemode,
        users,
        grace_days,
    })
}

/// What the routes, the page, the command and the cron share.
pub(crate) struct Shared {
    pub app: ferrobase_plugin::App,
    pub cfg: Config,
    pub client: stripe::Client,
    /// Customer creation is serialised per user (striped by a hash of the user id).
    pub customer_locks: Vec<tokio::sync::Mutex<()>>,
}

impl Shared {
    pub fn ctx(&self, time: i64, resync: bool) -> sync::Ctx {
        sync::Ctx {
            time,
            resync,
            grace_days: self.cfg.grace_days,
            users: self.cfg.users.clone(),
            now: now(),
            livemode: self.cfg.livemode,
        }
    }
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Plugin for Stripe {
    fn name(&self) -> &str {
        "stripe"
    }

    fn settings(&self) -> Vec<SettingField> {
        vec![
            SettingField::new("secretKey")
                .secret()
                .required()
                .env("STRIPE_SECRET_KEY")
                .about("Secret (sk_...) or restricted (rk_...) API key; its prefix sets test or live mode."),
            SettingField::new("webhookSecret")
                .secret()
                .required()
                .env("STRIPE_WEBHOOK_SECRET")
                .about("The webhook endpoint's signing secret (whsec_...); several, comma-separated, while rolling it."),
            SettingField::new("publishableKey")
                .env("STRIPE_PUBLISHABLE_KEY")
                .about("Publishable key (pk_...), served to frontends by GET /api/stripe/config."),
            SettingField::new("apiBase")
                .env("STRIPE_API_BASE")
                .about("Stripe's API base URL (empty: https://api.stripe.com/); tests point it at a stand-in."),
            SettingField::new("authCollection")
                .default_value(json!("users"))
                .env("FERROBASE_STRIPE_AUTH_COLLECTION")
                .about("The auth collection whose records are Stripe customers."),
            SettingField::new("pastDueGraceDays")
                .default_value(json!(3))
                .env("FERROBASE_STRIPE_GRACE_DAYS")
                .about("Days a past_due subscription keeps its plan after the period ended."),
        ]
    }

    fn setup(&self, s: &mut Setup) -> Result<()> {
        let cfg = config(&s.app().settings()).map_err(|m| Error::new(500, m))?;
        let users = s.app().collection(&cfg.users).ok_or_else(|| {
            Error::new(
                500,
                format!(
                    "stripe: the auth collection {:?} (authCollection) does not exist",
                    cfg.users
                ),
            )
        })?;
        if users["type"] != "auth" {
            return Err(Error::new(
                500,
                format!("stripe: {:?} is not an auth collection", cfg.users),
            ));
        }
        let users_id = users["id"].as_str().unwrap_or_default().to_string();
        let mut builder = stripe::ClientBuilder::new(cfg.secret_key.clone())
            .timeout(Duration::from_secs(20))
            .app_info(
                "ferrobase-stripe",
                Some(env!("CARGO_PKG_VERSION").to_string()),
                None,
            );
        if !cfg.api_base.is_empty() {
            let base = if cfg.api_base.ends_with('/') {
                cfg.api_base.clone()
            } else {
                format!("{}/", cfg.api_base)
            };
            builder = builder.url(base);
        }
        let client = builder
            .build()
            .map_err(|e| Error::new(500, format!("stripe: client: {e}")))?;
        tracing::info!(
            mode = cfg.mode(),
            api_version = api_version(),
            "stripe: billing on"
        );
        for c in schema::collections(&users_id) {
            s.collection(c);
        }
        for f in schema::user_fields() {
            s.field(&cfg.users, f);
        }
        // plan and subscriptionStatus are the plugin's: nobody else may change them, or a
        // user could grant themselves a plan with their own update rule
        s.before_write(&cfg.users, |w| {
            if w.tx.caller().is_system() || w.action == Action::Delete {
                return Ok(());
            }
            for f in [schema::PLAN, schema::SUBSCRIPTION_STATUS] {
                let Some(v) = w.data.get(f) else { continue };
                let old = w.old.and_then(|o| o.get_str(f)).unwrap_or("");
                let new = v.as_str().unwrap_or("");
                if new != old {
                    return Err(Error::validation(
                        "Failed to update record.",
                        f,
                        "validation_stripe_managed",
                        "Set by the Stripe plugin from the user's subscriptions.",
                    ));
                }
            }
            Ok(())
        });
        let shared = Arc::new(Shared {
            app: s.app().clone(),
            cfg,
            client,
            customer_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        });
        s.routes(api::routes(shared.clone()));
        let sh = shared.clone();
        s.command(
            "stripe",
            "Stripe billing: `stripe resync` copies products, prices, customers and subscriptions from Stripe",
            move |_app, args| {
                let sh = sh.clone();
                async move { command(sh, args).await }
            },
        );
        let sh = shared.clone();
        s.cron("stripe-grace", "@hourly", move |_app| {
            let sh = sh.clone();
            async move {
                let ctx = sh.ctx(now(), false);
                let n = sh
                    .app
                    .transaction(&Caller::system(), move |tx| sync::expire_grace(tx, &ctx))
                    .await?;
                tracing::debug!(users = n, "stripe: past_due grace re-evaluated");
                Ok(())
            }
        });
        let sh = shared;
        s.page("billing", "Stripe billing", move |_app, req| {
            let sh = sh.clone();
            async move { page::render(sh, req).await }
        });
        Ok(())
    }
}

async fn command(sh: Arc<Shared>, args: Vec<String>) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("resync") => {
            let report = api::resync(&sh).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            Ok(())
        }
        _ => Err(Error::bad_request("usage: ferrobase stripe resync")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> std::result::Result<Config, String> {
        let mut m = serde_json::Map::new();
        for (k, v) in pairs {
            m.insert(k.to_string(), json!(v));
        }
        config(&m)
    }

    #[test]
    fn keys_are_checked() {
        let ok = cfg(&[
            ("secretKey", "sk_test_abcdefgh123"),
            ("webhookSecret", "whsec_abcdefgh12"),
        ])
        .unwrap();
        assert!(!ok.livemode);
        assert_eq!(ok.users, "users");
        let live = cfg(&[
            ("secretKey", "rk_live_abcdefgh123"),
            ("webhookSecret", "whsec_a1b2c3d4e5,whsec_f6g7h8i9j0"),
        ])
        .unwrap();
        assert!(live.livemode);
        assert_eq!(live.webhook_secrets.len(), 2);
        for bad in [
            "",
            "pk_test_abcdefgh123",
            "sk_test_short",
            "sk_prod_abcdefgh123",
            "sk_test_abc def gh",
        ] {
            let e = cfg(&[("secretKey", bad), ("webhookSecret", "whsec_abcdefgh12")]).unwrap_err();
            assert!(
                e.contains("secretKey") && !e.contains(bad) || bad.is_empty(),
                "{e}"
            );
        }
        assert!(
            cfg(&[
                ("secretKey", "sk_test_abcdefgh123"),
                ("webhookSecret", "sec_abcdefgh12")
            ])
            .unwrap_err()
            .contains("webhookSecret")
        );
        let mixed = cfg(&[
            ("secretKey", "sk_test_abcdefgh123"),
            ("webhookSecret", "whsec_abcdefgh12"),
            ("publishableKey", "pk_live_abcdefgh123"),
        ])
        .unwrap_err();
        assert!(mixed.contains("live key"), "{mixed}");
    }
}
