//! The plugin's HTTP API: checkout, the customer portal, the webhook, the resync, and the
//! public configuration for frontends. Calls to Stripe go through async-stripe's typed
//! requests; their errors become clear PocketBase-shaped errors here, in one place.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::{get, post};
use ferrobase_plugin::{Caller, Error, RequestCaller, Result};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use stripe::{RequestStrategy, StripeError};
use stripe_client_core::IdempotencyKey;

use crate::schema::{CUSTOMERS, PRICES};
use crate::{Shared, now, sync, webhook};

pub fn routes(sh: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/api/stripe/config", get(config))
        .route("/api/stripe/checkout", post(checkout))
        .route("/api/stripe/portal", post(portal))
        .route("/api/stripe/resync", post(resync_route))
        .route(
            "/api/stripe/webhook",
            post(webhook::handle).layer(axum::extract::DefaultBodyLimit::max(1024 * 1024)),
        )
        .with_state(sh)
}

/// A failed call to Stripe, as our client should see it. Details go to the log (they never
/// hold the key).
pub(crate) fn stripe_error(what: &str, e: StripeError) -> Error {
    match e {
        StripeError::Stripe(err, status) => {
            let msg = err.message.clone().unwrap_or_default();
            tracing::warn!(what, status, code = ?err.code.as_ref().map(|c| c.as_str().to_string()), message = msg, "stripe: API error");
            match status {
                401 | 403 => Error::new(502, "Stripe refused the configured API key."),
                429 => Error::new(503, "Stripe is limiting requests; try again shortly."),
                400..=499 => Error::bad_request(format!("Stripe refused the request: {msg}")),
                _ => Error::new(502, "Stripe failed to answer the request; try again."),
            }
        }
        StripeError::Timeout => {
            tracing::warn!(what, "stripe: timeout");
            Error::new(504, "Stripe did not answer in time; try again.")
        }
        StripeError::JSONDeserialize(m) => {
            tracing::error!(what, error = m, "stripe: unexpected answer");
            Error::new(502, "Stripe's answer could not be read.")
        }
        other => {
            tracing::warn!(what, error = %other, "stripe: request failed");
            Error::new(502, "Could not reach Stripe; try again.")
        }
    }
}

async fn config(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "publishableKey": sh.cfg.publishable_key,
        "mode": sh.cfg.mode(),
    }))
}

/// The signed-in user of the configured auth collection, or the error to answer.
fn user_of(sh: &Shared, caller: &Caller) -> Result<(String, String)> {
    let id = caller
        .identity()
        .ok_or_else(|| Error::unauthorized("Sign in to manage billing."))?;
    if id.collection_name != sh.cfg.users {
        return Err(Error::forbidden(format!(
            "Only {} records have billing accounts.",
            sh.cfg.users
        )));
    }
    Ok((id.record_id.clone(), id.email.clone()))
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin(u: &str) -> Option<String> {
    let url = url::Url::parse(u).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// A redirect URL for Stripe: the given one if it is on the app's origin (Settings → Application
/// URL), else `default` under the app URL. Anything else would let a caller send users to
/// another site from a Stripe page.
fn redirect_url(sh: &Shared, given: Option<&str>, field: &str, default: &str) -> Result<String> {
    let app_url = sh.app.meta()["appURL"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let app_origin = origin(&app_url).ok_or_else(|| {
        Error::new(
            500,
            "Set the application URL (Settings → Application) to use Stripe Checkout.",
        )
    })?;
    match given.filter(|g| !g.is_empty()) {
        None => Ok(format!("{app_url}{default}")),
        Some(g) if origin(g).as_deref() == Some(app_origin.as_str()) => Ok(g.to_string()),
        Some(_) => Err(Error::validation(
            "Invalid redirect URL.",
            field,
            "validation_stripe_url",
            "Must be a URL on the application URL's origin.",
        )),
    }
}

fn body<T>(b: std::result::Result<Json<T>, JsonRejection>) -> Result<T> {
    b.map(|Json(t)| t)
        .map_err(|e| Error::bad_request(format!("Invalid JSON body: {}", e.body_text())))
}

/// The user's Stripe customer: the mapped one, else a new one, created once per user
/// (serialised per user here, and with an idempotency key at Stripe for retries and other
/// processes), with the user id in its metadata.
async fn ensure_customer(sh: &Shared, user: &str, email: &str) -> Result<String> {
    let mut h = DefaultHasher::new();
    user.hash(&mut h);
    let lock = &sh.customer_locks[(h.finish() as usize) % sh.customer_locks.len()];
    let _guard = lock.lock().await;
    let row = sh
        .app
        .first_by(&Caller::system(), CUSTOMERS, "user", json!(user))
        .await?;
    let replaced = match &row {
        Some(r) if r.get("deleted") != Some(&json!(true)) => {
            return Ok(r.get_str("customerId").unwrap_or("").to_string());
        }
        Some(r) => r.get_str("customerId").unwrap_or("").to_string(),
        None => "first".to_string(),
    };
    let key = IdempotencyKey::new(format!("ferrobase-customer-{user}-{replaced}"))
        .map_err(|_| Error::internal())?;
    let mut meta = HashMap::new();
    meta.insert("userId".to_string(), user.to_string());
    meta.insert("collection".to_string(), sh.cfg.users.clone());
    let mut create = stripe_core::customer::CreateCustomer::new().metadata(meta);
    if !email.is_empty() {
        create = create.email(email);
    }
    let customer = stripe_client_core::StripeRequest::customize(&create)
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&sh.client)
        .await
        .map_err(|e| stripe_error("create customer", e))?;
    let cid = customer.id.as_str().to_string();
    let ctx = sh.ctx(now(), false);
    let (c2, u2, e2) = (cid.clone(), user.to_string(), email.to_string());
    let linked = sh
        .app
        .transaction(&Caller::system(), move |tx| {
            sync::link_customer(tx, &ctx, &c2, &u2, Some(&e2))
        })
        .await?;
    if linked {
        return Ok(cid);
    }
    // mapped meanwhile by a webhook of another customer: use the mapping
    sh.app
        .first_by(&Caller::system(), CUSTOMERS, "user", json!(user))
        .await?
        .and_then(|r| r.get_str("customerId").map(str::to_string))
        .ok_or_else(|| Error::new(500, "The billing account could not be mapped."))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckoutBody {
    price: String,
    #[serde(default)]
    quantity: Option<u64>,
    #[serde(default)]
    success_url: Option<String>,
    #[serde(default)]
    cancel_url: Option<String>,
}

/// `POST /api/stripe/checkout {price, quantity?, successUrl?, cancelUrl?}` → `{url, id}`.
async fn checkout(
    State(sh): State<Arc<Shared>>,
    RequestCaller(caller): RequestCaller,
    b: std::result::Result<Json<CheckoutBody>, JsonRejection>,
) -> Result<Json<Value>> {
    let (user, email) = user_of(&sh, &caller)?;
    let b = body(b)?;
    let quantity = b.quantity.unwrap_or(1);
    if !(1..=10_000).contains(&quantity) {
        return Err(Error::validation(
            "Invalid checkout.",
            "quantity",
            "validation_stripe_quantity",
            "Must be between 1 and 10000.",
        ));
    }
    let price = sh
        .app
        .first_by(&Caller::system(), PRICES, "priceId", json!(b.price))
        .await?
        .filter(|p| {
            p.get("active") == Some(&json!(true))
                && p.get("livemode") == Some(&json!(sh.cfg.livemode))
        })
        .ok_or_else(|| {
            Error::validation(
                "Invalid checkout.",
                "price",
                "validation_stripe_price",
                "Unknown or inactive price.",
            )
        })?;
    let success = redirect_url(
        &sh,
        b.success_url.as_deref(),
        "successUrl",
        "/?checkout=success&session_id={CHECKOUT_SESSION_ID}",
    )?;
    let cancel = redirect_url(
        &sh,
        b.cancel_url.as_deref(),
        "cancelUrl",
        "/?checkout=cancel",
    )?;
    let customer = ensure_customer(&sh, &user, &email).await?;
    let mut meta = HashMap::new();
    meta.insert("userId".to_string(), user.clone());
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionSubscriptionData,
    };
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(b.price.clone());
    line.quantity = Some(quantity);
    let recurring = price.get_str("type") == Some("recurring");
    let mut req = CreateCheckoutSession::new()
        .customer(customer.clone())
        .client_reference_id(user.clone())
        .line_items(vec![line])
        .success_url(success)
        .cancel_url(cancel)
        .metadata(meta.clone());
    if recurring {
        let mut data = CreateCheckoutSessionSubscriptionData::new();
        data.metadata = Some(meta);
        let trial = price
            .get("trialPeriodDays")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if trial > 0 {
            data.trial_period_days = Some(trial as u32);
        }
        req = req
            .mode(stripe_shared::CheckoutSessionMode::Subscription)
            .subscription_data(data);
    } else {
        let mut data = CreateCheckoutSessionPaymentIntentData::new();
        data.metadata = Some(meta);
        req = req
            .mode(stripe_shared::CheckoutSessionMode::Payment)
            .payment_intent_data(data);
    }
    let session = req
        .send(&sh.client)
        .await
        .map_err(|e| stripe_error("create checkout session", e))?;
    Ok(Json(json!({"url": session.url, "id": session.id.as_str()})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PortalBody {
    #[serde(default)]
    return_url: Option<String>,
}

/// `POST /api/stripe/portal {returnUrl?}` → `{url}`.
async fn portal(
    State(sh): State<Arc<Shared>>,
    RequestCaller(caller): RequestCaller,
    b: std::result::Result<Json<PortalBody>, JsonRejection>,
) -> Result<Json<Value>> {
    let (user, _) = user_of(&sh, &caller)?;
    let b = match b {
        Err(JsonRejection::MissingJsonContentType(_)) => PortalBody::default(),
        other => body(other)?,
    };
    let return_url = redirect_url(&sh, b.return_url.as_deref(), "returnUrl", "/")?;
    let customer = sh
        .app
        .first_by(&Caller::system(), CUSTOMERS, "user", json!(user))
        .await?
        .filter(|r| r.get("deleted") != Some(&json!(true)))
        .and_then(|r| r.get_str("customerId").map(str::to_string))
        .ok_or_else(|| Error::bad_request("No billing account yet: check out first."))?;
    let session = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
        .customer(customer)
        .return_url(return_url)
        .send(&sh.client)
        .await
        .map_err(|e| stripe_error("create portal session", e))?;
    Ok(Json(json!({"url": session.url})))
}

async fn resync_route(
    State(sh): State<Arc<Shared>>,
    RequestCaller(caller): RequestCaller,
) -> Result<Json<Value>> {
    if !caller.is_superuser() {
        return Err(Error::forbidden("Only superusers can resync billing data."));
    }
    Ok(Json(resync(&sh).await?))
}

#[derive(Default)]
struct Count {
    seen: u64,
    changed: u64,
}

impl Count {
    fn json(&self) -> Value {
        json!({"seen": self.seen, "changed": self.changed})
    }
}

const CHUNK: usize = 200;

/// Copies products, prices, customers (those carrying a `userId` of ours) and subscriptions
/// (every status) from Stripe, page by page. Rows whose data is unchanged are not written,
/// so a second run changes nothing. Objects are applied with the resync's start time as
/// their event time: an event older than the resync is then skipped, a newer one applied.
pub(crate) async fn resync(sh: &Shared) -> Result<Value> {
    let start = now();
    let products: Vec<_> = stripe_product::product::ListProduct::new()
        .limit(100)
        .paginate()
        .stream(&sh.client)
        .try_collect()
        .await
        .map_err(|e| stripe_error("list products", e))?;
    let prices: Vec<_> = stripe_product::price::ListPrice::new()
        .limit(100)
        .paginate()
        .stream(&sh.client)
        .try_collect()
        .await
        .map_err(|e| stripe_error("list prices", e))?;
    let customers: Vec<_> = stripe_core::customer::ListCustomer::new()
        .limit(100)
        .paginate()
        .stream(&sh.client)
        .try_collect()
        .await
        .map_err(|e| stripe_error("list customers", e))?;
    let subscriptions: Vec<_> = stripe_billing::subscription::ListSubscription::new()
        .status(stripe_billing::subscription::ListSubscriptionStatus::All)
        .limit(100)
        .paginate()
        .stream(&sh.client)
        .try_collect()
        .await
        .map_err(|e| stripe_error("list subscriptions", e))?;
    let mut counts: [Count; 4] = Default::default();
    let livemode = sh.cfg.livemode;
    macro_rules! apply {
        ($list:expr, $i:expr, $live:expr, $f:expr) => {
            for chunk in $list.chunks(CHUNK) {
                let chunk = chunk.to_vec();
                let ctx = sh.ctx(start, true);
                let (seen, changed) = sh
                    .app
                    .transaction(&Caller::system(), move |tx| {
                        let (mut seen, mut changed) = (0u64, 0u64);
                        for o in chunk.iter().filter(|o| $live(o) == livemode) {
                            seen += 1;
                            if $f(tx, &ctx, o)? {
                                changed += 1;
                            }
                        }
                        Ok((seen, changed))
                    })
                    .await?;
                counts[$i].seen += seen;
                counts[$i].changed += changed;
            }
        };
    }
    apply!(
        products,
        0,
        |p: &stripe_shared::Product| p.livemode,
        |tx, ctx, p| sync::product(tx, ctx, p, false).map(|o| o.changed())
    );
    apply!(
        prices,
        1,
        |p: &stripe_shared::Price| p.livemode,
        |tx, ctx, p| sync::price(tx, ctx, p, false).map(|o| o.changed())
    );
    apply!(
        customers,
        2,
        |c: &stripe_shared::Customer| c.livemode,
        |tx, ctx, c| sync::customer(tx, ctx, c, false).map(|o| o.changed())
    );
    apply!(
        subscriptions,
        3,
        |s: &stripe_shared::Subscription| s.livemode,
        |tx, ctx, s| sync::subscription(tx, ctx, s).map(|o| o.changed())
    );
    let report = json!({
        "products": counts[0].json(),
        "prices": counts[1].json(),
        "customers": counts[2].json(),
        "subscriptions": counts[3].json(),
    });
    tracing::info!(%report, "stripe: resync done");
    Ok(report)
}
