//! `POST /api/stripe/webhook`: the signature is checked on the raw body before anything is
//! parsed; the event is applied and recorded in the `stripe_events` ledger in one
//! transaction, so a duplicate is a no-op and a failed apply leaves no marker (Stripe's retry
//! is applied). Events of the other mode and types we do not handle answer 200 and are
//! recorded as `ignored` (answering 4xx would make Stripe retry them for days and then
//! disable the endpoint).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use ferrobase_plugin::{Caller, Error, Result, Tx};
use serde_json::{Map, Value, json};
use stripe_shared::{CheckoutSession, Customer, Invoice, Price, Product, Subscription};

use crate::schema::EVENTS;
use crate::sync::{self, Ctx, Outcome, Payment};
use crate::{Shared, now, signature};

/// A parsed event object, with what the event says about it.
enum Object {
    Product(Box<Product>, bool),
    Price(Box<Price>, bool),
    Customer(Box<Customer>, bool),
    Subscription(Box<Subscription>),
    Session(Box<CheckoutSession>, Option<&'static str>),
    Invoice(Box<Invoice>, &'static str),
}

/// Parses `data.object` of a handled type with the typed Stripe objects; `None` for types we
/// do not handle.
fn parse(kind: &str, object: &Value) -> Option<std::result::Result<Object, String>> {
    fn typed<T: miniserde::Deserialize>(v: &Value) -> std::result::Result<Box<T>, String> {
        miniserde::json::from_str::<T>(&v.to_string())
            .map(Box::new)
            .map_err(|_| "the event's object does not parse as the Stripe type (is the endpoint's API version the one docs/stripe.md names?)".to_string())
    }
    Some(match kind {
        "product.created" | "product.updated" => typed(object).map(|p| Object::Product(p, false)),
        "product.deleted" => typed(object).map(|p| Object::Product(p, true)),
        "price.created" | "price.updated" => typed(object).map(|p| Object::Price(p, false)),
        "price.deleted" => typed(object).map(|p| Object::Price(p, true)),
        "customer.created" | "customer.updated" => {
            typed(object).map(|c| Object::Customer(c, false))
        }
        "customer.deleted" => typed(object).map(|c| Object::Customer(c, true)),
        k if k.starts_with("customer.subscription.") => typed(object).map(Object::Subscription),
        "checkout.session.completed" => typed(object).map(|s| Object::Session(s, None)),
        "checkout.session.async_payment_succeeded" => {
            typed(object).map(|s| Object::Session(s, Some("paid")))
        }
        "checkout.session.async_payment_failed" => {
            typed(object).map(|s| Object::Session(s, Some("failed")))
        }
        "invoice.paid" => typed(object).map(|i| Object::Invoice(i, "paid")),
        "invoice.payment_failed" => typed(object).map(|i| Object::Invoice(i, "failed")),
        _ => return None,
    })
}

fn apply(tx: &mut dyn Tx, ctx: &Ctx, object: &Object) -> Result<Outcome> {
    match object {
        Object::Product(p, deleted) => sync::product(tx, ctx, p, *deleted),
        Object::Price(p, deleted) => sync::price(tx, ctx, p, *deleted),
        Object::Customer(c, deleted) => sync::customer(tx, ctx, c, *deleted),
        Object::Subscription(s) => sync::subscription(tx, ctx, s),
        Object::Session(s, status) => session(tx, ctx, s, *status),
        Object::Invoice(i, status) => invoice(tx, ctx, i, status),
    }
}

fn session(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    s: &CheckoutSession,
    status: Option<&str>,
) -> Result<Outcome> {
    let user = s
        .client_reference_id
        .clone()
        .or_else(|| s.metadata.as_ref().and_then(|m| m.get("userId").cloned()));
    let customer = s.customer.as_ref().map(|c| c.id().as_str().to_string());
    if let (Some(c), Some(u)) = (&customer, &user) {
        let email = s.customer_details.as_ref().and_then(|d| d.email.clone());
        sync::link_customer(tx, ctx, c, u, email.as_deref())?;
    }
    if s.mode.as_str() != "payment" {
        // subscriptions carry their own state in customer.subscription.* events
        return Ok(Outcome::Unchanged);
    }
    let status = status.unwrap_or(s.payment_status.as_str());
    let currency = s
        .currency
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    sync::payment(
        tx,
        ctx,
        Payment {
            stripe_id: s.id.as_str(),
            kind: "checkout",
            customer: customer.as_deref(),
            user_hint: user.as_deref(),
            subscription: None,
            payment_intent: s.payment_intent.as_ref().map(|p| p.id().as_str()),
            status,
            amount: s.amount_total.unwrap_or(0),
            currency: &currency,
            url: None,
            metadata: sync::metadata_value(s.metadata.as_ref()),
            livemode: s.livemode,
        },
    )
}

fn invoice(tx: &mut dyn Tx, ctx: &Ctx, i: &Invoice, status: &str) -> Result<Outcome> {
    let Some(id) = i.id.as_ref() else {
        return Ok(Outcome::Unchanged);
    };
    let subscription = i
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref())
        .map(|d| d.subscription.id().as_str().to_string());
    let currency = i.currency.to_string();
    sync::payment(
        tx,
        ctx,
        Payment {
            stripe_id: id.as_str(),
            kind: "invoice",
            customer: i.customer.as_ref().map(|c| c.id().as_str()),
            user_hint: None,
            subscription: subscription.as_deref(),
            payment_intent: None,
            status,
            amount: if status == "paid" {
                i.amount_paid
            } else {
                i.amount_due
            },
            currency: &currency,
            url: i.hosted_invoice_url.as_deref(),
            metadata: sync::metadata_value(i.metadata.as_ref()),
            livemode: i.livemode,
        },
    )
}

/// The ledger row of an event: created or brought to `status`.
fn mark(tx: &mut dyn Tx, ev: &Envelope, status: &str, note: &str) -> Result<()> {
    let existing = tx.first_by(EVENTS, "eventId", &json!(ev.id))?;
    let attempts = existing
        .as_ref()
        .and_then(|r| r.get("attempts").and_then(Value::as_f64))
        .unwrap_or(0.0) as i64
        + 1;
    let mut data: Map<String, Value> = match json!({
        "type": ev.kind, "eventCreated": ev.created, "livemode": ev.livemode,
        "status": status, "objectId": ev.object_id, "note": note, "attempts": attempts,
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    match existing {
        Some(r) => {
            tx.update(EVENTS, r.id(), data)?;
        }
        None => {
            data.insert("eventId".into(), json!(ev.id));
            tx.create(EVENTS, data)?;
        }
    }
    Ok(())
}

/// Whether the ledger already holds the event as done.
fn seen(tx: &mut dyn Tx, id: &str) -> Result<bool> {
    Ok(tx
        .first_by(EVENTS, "eventId", &json!(id))?
        .is_some_and(|r| r.get_str("status") != Some("failed")))
}

#[derive(Debug, Clone)]
struct Envelope {
    id: String,
    kind: String,
    created: i64,
    livemode: bool,
    object_id: String,
}

pub async fn handle(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>> {
    let header = headers
        .get("stripe-signature")
        .and_then(|h| h.to_str().ok());
    if let Err(r) = signature::verify(header, &body, &sh.cfg.webhook_secrets, now()) {
        tracing::warn!(reason = r.message(), "stripe: webhook refused");
        return Err(Error::bad_request(r.message()));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| Error::bad_request("The webhook body is not JSON."))?;
    let ev = Envelope {
        id: v["id"].as_str().unwrap_or("").to_string(),
        kind: v["type"].as_str().unwrap_or("").to_string(),
        created: v["created"].as_i64().unwrap_or(0),
        livemode: v["livemode"].as_bool().unwrap_or(false),
        object_id: v["data"]["object"]["id"].as_str().unwrap_or("").to_string(),
    };
    if !ev.id.starts_with("evt_") || ev.kind.is_empty() || ev.created <= 0 {
        return Err(Error::bad_request(
            "The webhook body is not a Stripe event.",
        ));
    }
    let answer = |result: &str| Ok(axum::Json(json!({"received": true, "result": result})));
    let ignore = |note: String| async {
        let ev = ev.clone();
        tracing::info!(event = ev.id, kind = ev.kind, note, "stripe: event ignored");
        sh.app
            .transaction(&Caller::system(), move |tx| {
                if seen(tx, &ev.id)? {
                    return Ok(());
                }
                mark(tx, &ev, "ignored", &note)
            })
            .await
    };
    if ev.livemode != sh.cfg.livemode {
        ignore(format!(
            "a {} event; the keys are {} keys",
            if ev.livemode { "live" } else { "test" },
            sh.cfg.mode()
        ))
        .await?;
        return answer("ignored");
    }
    let object = match parse(&ev.kind, &v["data"]["object"]) {
        None => {
            ignore("event type not handled".into()).await?;
            return answer("ignored");
        }
        Some(Ok(o)) => o,
        Some(Err(why)) => {
            fail(&sh, &ev, &why).await;
            return Err(Error::new(
                500,
                "The event could not be applied; Stripe will retry it.",
            ));
        }
    };
    let ctx = sh.ctx(ev.created, false);
    let ev2 = ev.clone();
    let result = sh
        .app
        .transaction(&Caller::system(), move |tx| {
            if seen(tx, &ev2.id)? {
                return Ok(None);
            }
            let out = apply(tx, &ctx, &object)?;
            let note = match out {
                Outcome::Stale => "older than the stored state: not applied",
                _ => "",
            };
            mark(tx, &ev2, "applied", note)?;
            Ok(Some(out))
        })
        .await;
    match result {
        Ok(None) => answer("duplicate"),
        Ok(Some(Outcome::Stale)) => answer("stale"),
        Ok(Some(_)) => answer("applied"),
        Err(e) => {
            let why = if e.data.as_object().is_some_and(|d| !d.is_empty()) {
                format!("{} {}", e.message, e.data)
            } else {
                e.message.clone()
            };
            fail(&sh, &ev, &why).await;
            Err(Error::new(
                500,
                "The event could not be applied; Stripe will retry it.",
            ))
        }
    }
}

/// Records a failed apply (outside the rolled-back transaction) for the dashboard; the
/// event stays unapplied, so Stripe's retry applies it.
async fn fail(sh: &Shared, ev: &Envelope, why: &str) {
    tracing::error!(
        event = ev.id,
        kind = ev.kind,
        error = why,
        "stripe: event not applied (Stripe will retry)"
    );
    let (ev, why) = (ev.clone(), why.to_string());
    let r = sh
        .app
        .transaction(&Caller::system(), move |tx| {
            if seen(tx, &ev.id)? {
                return Ok(());
            }
            mark(tx, &ev, "failed", &why)
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "stripe: could not record the failure");
    }
}
