//! Stripe objects into the plugin's collections, inside one write transaction.
//!
//! Ordering: Stripe does not deliver events in order and retries for days. Each row keeps
//! `lastEventAt`, the `created` time of the newest event applied to it (or the time of the
//! resync that wrote it); an event older than that is skipped. Terminal subscription
//! statuses (`canceled`, `incomplete_expired`) stick: nothing but the same status is written
//! over them. A tie (two events in the same second) applies in arrival order; `resync`
//! repairs anything a tie got wrong. We chose this over fetching each object from the API on
//! every event: webhooks stay independent of Stripe's API being reachable, and a burst of
//! events costs no API calls (see docs/stripe.md).

use std::collections::HashMap;

use ferrobase_plugin::{ListOptions, Record, Result, Tx, filter};
use serde_json::{Map, Value, json};
use stripe_shared::{Customer, Price, Product, Subscription};

use crate::schema::*;

/// What the write is applied for.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The event's `created` time, or the resync's start.
    pub time: i64,
    /// Written by a resync: rows whose data is unchanged are not touched at all.
    pub resync: bool,
    /// Days a `past_due` subscription still counts as entitled after its period ended.
    pub grace_days: i64,
    /// The auth collection the customers belong to.
    pub users: String,
    /// Now (Unix seconds), for the grace period.
    pub now: i64,
    /// The account mode the keys are for (`livemode` of objects we accept).
    pub livemode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Stale,
}

impl Outcome {
    pub fn changed(self) -> bool {
        matches!(self, Outcome::Created | Outcome::Updated)
    }
}

/// PocketBase's datetime format; an unset Stripe time is an empty date, never 1970.
pub fn date(ts: Option<i64>) -> Value {
    match ts.filter(|t| *t > 0) {
        Some(t) => chrono::DateTime::from_timestamp(t, 0)
            .map(|d| Value::String(d.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()))
            .unwrap_or_else(|| Value::String(String::new())),
        None => Value::String(String::new()),
    }
}

fn parse_date(v: Option<&Value>) -> Option<i64> {
    let s = v?.as_str()?;
    chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%d %H:%M:%S%.3f")
        .ok()
        .map(|d| d.and_utc().timestamp())
}

fn metadata(m: &HashMap<String, String>) -> Value {
    let mut sorted: Vec<_> = m.iter().collect();
    sorted.sort();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn opt(s: Option<&str>) -> Value {
    Value::String(s.unwrap_or("").to_string())
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn same(a: Option<&Value>, b: &Value) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (None, Value::String(s)) => s.is_empty(),
        (None, Value::Null) => true,
        (Some(Value::Null), Value::String(s)) | (Some(Value::String(s)), Value::Null) => {
            s.is_empty()
        }
        (Some(x), y) => x == y,
        (None, _) => false,
    }
}

fn last_event(r: &Record) -> i64 {
    r.get("lastEventAt").and_then(Value::as_f64).unwrap_or(0.0) as i64
}

const TERMINAL: [&str; 2] = ["canceled", "incomplete_expired"];

/// Creates or updates the row of `coll` whose `key_field` is `key`, under the ordering rule.
/// `status_guard`: the row's status field, whose terminal values stick.
fn upsert(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    coll: &str,
    key_field: &str,
    key: &str,
    mut data: Map<String, Value>,
    status_guard: Option<&str>,
) -> Result<(Outcome, Record)> {
    match tx.first_by(coll, key_field, &json!(key))? {
        None => {
            data.insert(key_field.into(), json!(key));
            data.insert("lastEventAt".into(), json!(ctx.time));
            Ok((Outcome::Created, tx.create(coll, data)?))
        }
        Some(row) => {
            let last = last_event(&row);
            if ctx.time < last {
                return Ok((Outcome::Stale, row));
            }
            if let Some(field) = status_guard {
                let old = row.get_str(field).unwrap_or("");
                let new = data.get(field).and_then(Value::as_str).unwrap_or(old);
                if TERMINAL.contains(&old) && new != old {
                    return Ok((Outcome::Stale, row));
                }
            }
            let mut changes: Map<String, Value> = data
                .into_iter()
                .filter(|(k, v)| !same(row.get(k), v))
                .collect();
            if changes.is_empty() {
                if ctx.resync || ctx.time == last {
                    return Ok((Outcome::Unchanged, row));
                }
                changes.insert("lastEventAt".into(), json!(ctx.time));
                let row = tx.update(coll, row.id(), changes)?;
                return Ok((Outcome::Unchanged, row));
            }
            changes.insert("lastEventAt".into(), json!(ctx.time.max(last)));
            let id = row.id().to_string();
            Ok((Outcome::Updated, tx.update(coll, &id, changes)?))
        }
    }
}

fn list_all(tx: &mut dyn Tx, coll: &str, filter: String) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for page in 1.. {
        let p = tx.list(
            coll,
            &ListOptions {
                filter: filter.clone(),
                sort: "created".into(),
                page,
                per_page: 500,
                skip_total: true,
            },
        )?;
        let n = p.items.len();
        out.extend(p.items);
        if n < 500 {
            break;
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Products and prices
// ------------------------------------------------------------------------------------------

pub fn product(tx: &mut dyn Tx, ctx: &Ctx, p: &Product, deleted: bool) -> Result<Outcome> {
    let data = map(json!({
        "name": p.name,
        "description": opt(p.description.as_deref()),
        "active": p.active && !deleted,
        "deleted": deleted,
        "images": p.images,
        "metadata": metadata(&p.metadata),
        "livemode": p.livemode,
    }));
    let (out, _) = upsert(tx, ctx, PRODUCTS, "productId", p.id.as_str(), data, None)?;
    if out.changed() {
        let f = filter("productId = {:p}", &[("p", json!(p.id.as_str()))])?;
        refresh_plans(tx, ctx, f)?;
    }
    Ok(out)
}

pub fn price(tx: &mut dyn Tx, ctx: &Ctx, p: &Price, deleted: bool) -> Result<Outcome> {
    let recurring = p.recurring.as_ref();
    let data = map(json!({
        "productId": p.product.id().as_str(),
        "active": p.active && !deleted,
        "deleted": deleted,
        "currency": p.currency.to_string(),
        "unitAmount": p.unit_amount,
        "unitAmountDecimal": opt(p.unit_amount_decimal.as_deref()),
        "type": p.type_.as_str(),
        "billingScheme": p.billing_scheme.as_str(),
        "tiersMode": opt(p.tiers_mode.as_ref().map(|t| t.as_str())),
        "interval": opt(recurring.map(|r| r.interval.as_str())),
        "intervalCount": recurring.map(|r| r.interval_count).unwrap_or(0),
        "usageType": opt(recurring.map(|r| r.usage_type.as_str())),
        "trialPeriodDays": recurring.and_then(|r| r.trial_period_days).unwrap_or(0),
        "lookupKey": opt(p.lookup_key.as_deref()),
        "nickname": opt(p.nickname.as_deref()),
        "metadata": metadata(&p.metadata),
        "livemode": p.livemode,
    }));
    let (out, _) = upsert(tx, ctx, PRICES, "priceId", p.id.as_str(), data, None)?;
    if out.changed() {
        let f = filter("priceId = {:p}", &[("p", json!(p.id.as_str()))])?;
        refresh_plans(tx, ctx, f)?;
    }
    Ok(out)
}

/// The plan a price gives: `metadata.plan` of the price, else of its product, else the
/// product's id (so that `plan != ""` always means "entitled").
fn plan_for(tx: &mut dyn Tx, price_id: &str, product_id: &str) -> Result<String> {
    let from = |r: Option<Record>| {
        r.and_then(|r| {
            r.get("metadata")
                .and_then(|m| m.get("plan"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
    };
    if let Some(p) = from(tx.first_by(PRICES, "priceId", &json!(price_id))?) {
        return Ok(p);
    }
    if let Some(p) = from(tx.first_by(PRODUCTS, "productId", &json!(product_id))?) {
        return Ok(p);
    }
    Ok(product_id.to_string())
}

/// Recomputes the plan of the subscriptions `f` selects, and their users' entitlements.
fn refresh_plans(tx: &mut dyn Tx, ctx: &Ctx, f: String) -> Result<()> {
    let mut users = Vec::new();
    for s in list_all(tx, SUBSCRIPTIONS, f)? {
        let price = s.get_str("priceId").unwrap_or("").to_string();
        let product = s.get_str("productId").unwrap_or("").to_string();
        if price.is_empty() {
            continue;
        }
        let plan = plan_for(tx, &price, &product)?;
        if s.get_str("plan") != Some(plan.as_str()) {
            tx.update(SUBSCRIPTIONS, s.id(), map(json!({ "plan": plan })))?;
        }
        if let Some(u) = s.get_str("user").filter(|u| !u.is_empty()) {
            users.push(u.to_string());
        }
    }
    users.sort();
    users.dedup();
    for u in users {
        entitlement(tx, ctx, &u)?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Customers
// ------------------------------------------------------------------------------------------

/// The user a customer id is mapped to.
pub fn user_of(tx: &mut dyn Tx, customer: &str) -> Result<Option<String>> {
    Ok(tx
        .first_by(CUSTOMERS, "customerId", &json!(customer))?
        .and_then(|r| r.get_str("user").map(str::to_string))
        .filter(|u| !u.is_empty()))
}

fn user_exists(tx: &mut dyn Tx, ctx: &Ctx, user: &str) -> Result<bool> {
    Ok(!user.is_empty() && tx.get(&ctx.users, user)?.is_some())
}

/// Maps `customer` to `user` (one customer per user and one user per customer: the first
/// mapping wins and a conflicting one is logged), then gives the customer's rows that
/// arrived before the mapping their user. Returns whether the mapping holds.
pub fn link_customer(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    customer: &str,
    user: &str,
    email: Option<&str>,
) -> Result<bool> {
    if !user_exists(tx, ctx, user)? {
        tracing::warn!(
            customer,
            user,
            "stripe: customer for an unknown user, not mapped"
        );
        return Ok(false);
    }
    let by_customer = tx.first_by(CUSTOMERS, "customerId", &json!(customer))?;
    if let Some(row) = &by_customer
        && row.get_str("user") != Some(user)
    {
        tracing::warn!(
            customer,
            user,
            "stripe: customer already mapped to another user"
        );
        return Ok(false);
    }
    let mut data = map(json!({"user": user, "livemode": ctx.livemode, "deleted": false}));
    if let Some(e) = email {
        data.insert("email".into(), json!(e));
    }
    if by_customer.is_none()
        && let Some(row) = tx.first_by(CUSTOMERS, "user", &json!(user))?
    {
        if row.get("deleted") == Some(&json!(true)) {
            // the user's old customer was deleted in Stripe: this one replaces it
            data.insert("customerId".into(), json!(customer));
            data.insert("lastEventAt".into(), json!(ctx.time));
            tx.update(CUSTOMERS, row.id(), data)?;
        } else if row.get_str("customerId") != Some(customer) {
            tracing::warn!(
                customer,
                user,
                existing = row.get_str("customerId").unwrap_or(""),
                "stripe: user already has a customer, second customer not mapped"
            );
            return Ok(false);
        }
    } else {
        upsert(tx, ctx, CUSTOMERS, "customerId", customer, data, None)?;
    }
    // rows that came before the mapping
    let orphans = filter(
        "customerId = {:c} && user = \"\"",
        &[("c", json!(customer))],
    )?;
    let mut subs = Vec::new();
    for coll in [SUBSCRIPTIONS, PAYMENTS] {
        for r in list_all(tx, coll, orphans.clone())? {
            tx.update(coll, r.id(), map(json!({ "user": user })))?;
            if coll == SUBSCRIPTIONS {
                subs.push(r.get_str("subscriptionId").unwrap_or("").to_string());
            }
        }
    }
    for s in subs {
        let f = filter("subscriptionId = {:s} && user = \"\"", &[("s", json!(s))])?;
        for r in list_all(tx, ITEMS, f)? {
            tx.update(ITEMS, r.id(), map(json!({ "user": user })))?;
        }
    }
    entitlement(tx, ctx, user)?;
    Ok(true)
}

pub fn customer(tx: &mut dyn Tx, ctx: &Ctx, c: &Customer, deleted: bool) -> Result<Outcome> {
    let id = c.id.as_str();
    let user = c
        .metadata
        .as_ref()
        .and_then(|m| m.get("userId"))
        .cloned()
        .unwrap_or_default();
    let existing = tx.first_by(CUSTOMERS, "customerId", &json!(id))?;
    if existing.is_none() {
        if deleted || user.is_empty() {
            tracing::info!(
                customer = id,
                "stripe: customer without a Ferrobase user, ignored"
            );
            return Ok(Outcome::Unchanged);
        }
        return Ok(if link_customer(tx, ctx, id, &user, c.email.as_deref())? {
            Outcome::Created
        } else {
            Outcome::Unchanged
        });
    }
    let data = map(json!({
        "email": opt(c.email.as_deref()),
        "deleted": deleted,
        "livemode": c.livemode,
    }));
    let (out, _) = upsert(tx, ctx, CUSTOMERS, "customerId", id, data, None)?;
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Subscriptions
// ------------------------------------------------------------------------------------------

pub fn subscription(tx: &mut dyn Tx, ctx: &Ctx, s: &Subscription) -> Result<Outcome> {
    let id = s.id.as_str();
    let customer = s.customer.id().as_str().to_string();
    // the user: the customer mapping, else the user id we put in the subscription's metadata
    // at checkout (the subscription can arrive before the customer is mapped)
    let mut user = user_of(tx, &customer)?;
    if user.is_none()
        && let Some(u) = s.metadata.get("userId")
        && link_customer(tx, ctx, &customer, u, None)?
    {
        user = Some(u.clone());
    }
    if user.is_none() {
        tracing::info!(
            subscription = id,
            customer,
            "stripe: subscription of a customer without a Ferrobase user (kept, unlinked)"
        );
    }
    let items = &s.items.data;
    let first = items.first();
    let (price_id, product_id) = first
        .map(|i| {
            (
                i.price.id.as_str().to_string(),
                i.price.product.id().as_str().to_string(),
            )
        })
        .unwrap_or_default();
    let plan = if price_id.is_empty() {
        String::new()
    } else {
        plan_for(tx, &price_id, &product_id)?
    };
    // the period: Stripe keeps it per item now; the subscription's is the span of its items
    let period_start = items.iter().map(|i| i.current_period_start).min();
    let period_end = items.iter().map(|i| i.current_period_end).max();
    let status = s.status.as_str().to_string();
    let mut data = map(json!({
        "customerId": customer,
        "status": status,
        "priceId": price_id,
        "productId": product_id,
        "plan": plan,
        "quantity": first.and_then(|i| i.quantity).unwrap_or(0),
        "currentPeriodStart": date(period_start),
        "currentPeriodEnd": date(period_end),
        "cancelAtPeriodEnd": s.cancel_at_period_end,
        "cancelAt": date(s.cancel_at),
        "canceledAt": date(s.canceled_at),
        "cancellationReason": opt(s.cancellation_details.as_ref().and_then(|c| c.reason.as_ref()).map(|r| r.as_str())),
        "endedAt": date(s.ended_at),
        "trialStart": date(s.trial_start),
        "trialEnd": date(s.trial_end),
        "startDate": date(Some(s.start_date)),
        "stripeCreated": date(Some(s.created)),
        "paused": s.pause_collection.is_some() || status == "paused",
        "metadata": metadata(&s.metadata),
        "livemode": s.livemode,
    }));
    if let Some(u) = &user {
        data.insert("user".into(), json!(u));
    }
    let (out, row) = upsert(
        tx,
        ctx,
        SUBSCRIPTIONS,
        "subscriptionId",
        id,
        data,
        Some("status"),
    )?;
    if out == Outcome::Stale {
        return Ok(out);
    }
    let user = row.get_str("user").unwrap_or("").to_string();
    // items: as in the subscription; those no longer in it are removed
    let mut keep = Vec::new();
    for i in items {
        keep.push(i.id.as_str().to_string());
        let mut d = map(json!({
            "subscriptionId": id,
            "priceId": i.price.id.as_str(),
            "productId": i.price.product.id().as_str(),
            "quantity": i.quantity.unwrap_or(0),
            "currentPeriodStart": date(Some(i.current_period_start)),
            "currentPeriodEnd": date(Some(i.current_period_end)),
            "metadata": metadata(&i.metadata),
        }));
        if !user.is_empty() {
            d.insert("user".into(), json!(user));
        }
        upsert(tx, ctx, ITEMS, "itemId", i.id.as_str(), d, None)?;
    }
    if !s.items.has_more {
        let f = filter("subscriptionId = {:s}", &[("s", json!(id))])?;
        for r in list_all(tx, ITEMS, f)? {
            if !keep.iter().any(|k| Some(k.as_str()) == r.get_str("itemId")) {
                tx.delete(ITEMS, r.id())?;
            }
        }
    }
    if !user.is_empty() {
        entitlement(tx, ctx, &user)?;
    }
    Ok(out)
}

fn entitled(ctx: &Ctx, s: &Record) -> bool {
    match s.get_str("status").unwrap_or("") {
        "active" | "trialing" => true,
        "past_due" => parse_date(s.get("currentPeriodEnd"))
            .is_some_and(|end| end + ctx.grace_days * 86_400 > ctx.now),
        _ => false,
    }
}

fn rank(status: &str) -> u8 {
    match status {
        "active" => 4,
        "trialing" => 3,
        "past_due" => 2,
        "paused" | "unpaid" | "incomplete" => 1,
        _ => 0,
    }
}

/// Sets `plan` and `subscriptionStatus` on the user from all of the user's subscriptions:
/// the best one wins (an entitled one before any other, then by status, then by the later
/// period end), so an old subscription's cancellation does not end a newer one's access.
/// `plan` is empty unless the user is entitled (active, trialing, or past_due within the
/// grace period).
pub fn entitlement(tx: &mut dyn Tx, ctx: &Ctx, user: &str) -> Result<()> {
    let Some(u) = tx.get(&ctx.users, user)? else {
        return Ok(());
    };
    let subs = list_all(
        tx,
        SUBSCRIPTIONS,
        filter("user = {:u}", &[("u", json!(user))])?,
    )?;
    let best = subs.iter().max_by(|a, b| {
        let key = |s: &Record| {
            (
                entitled(ctx, s),
                rank(s.get_str("status").unwrap_or("")),
                s.get_str("currentPeriodEnd").unwrap_or("").to_string(),
                s.get_str("stripeCreated").unwrap_or("").to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let (plan, status) = match best {
        Some(s) => (
            if entitled(ctx, s) {
                s.get_str("plan").unwrap_or("").to_string()
            } else {
                String::new()
            },
            s.get_str("status").unwrap_or("").to_string(),
        ),
        None => (String::new(), String::new()),
    };
    if u.get_str(PLAN).unwrap_or("") != plan
        || u.get_str(SUBSCRIPTION_STATUS).unwrap_or("") != status
    {
        tx.update(
            &ctx.users,
            user,
            map(json!({ PLAN: plan, SUBSCRIPTION_STATUS: status })),
        )?;
    }
    Ok(())
}

/// Re-evaluates users with a `past_due` subscription (the grace period ends with time, not
/// with an event). Returns how many users were looked at.
pub fn expire_grace(tx: &mut dyn Tx, ctx: &Ctx) -> Result<usize> {
    let mut users: Vec<String> = list_all(tx, SUBSCRIPTIONS, "status = \"past_due\"".into())?
        .iter()
        .filter_map(|s| s.get_str("user").map(str::to_string))
        .filter(|u| !u.is_empty())
        .collect();
    users.sort();
    users.dedup();
    for u in &users {
        entitlement(tx, ctx, u)?;
    }
    Ok(users.len())
}

// ------------------------------------------------------------------------------------------
// Payments
// ------------------------------------------------------------------------------------------

/// A one-time payment (a Checkout Session in `payment` mode) or an invoice.
pub struct Payment<'a> {
    pub stripe_id: &'a str,
    pub kind: &'a str,
    pub customer: Option<&'a str>,
    pub user_hint: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub payment_intent: Option<&'a str>,
    pub status: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub url: Option<&'a str>,
    pub metadata: Value,
    pub livemode: bool,
}

pub fn payment(tx: &mut dyn Tx, ctx: &Ctx, p: Payment<'_>) -> Result<Outcome> {
    let mut user = match p.customer {
        Some(c) => user_of(tx, c)?,
        None => None,
    };
    if user.is_none()
        && let Some(u) = p.user_hint
        && user_exists(tx, ctx, u)?
    {
        user = Some(u.to_string());
    }
    let mut data = map(json!({
        "kind": p.kind,
        "customerId": p.customer.unwrap_or(""),
        "subscriptionId": p.subscription.unwrap_or(""),
        "paymentIntentId": p.payment_intent.unwrap_or(""),
        "status": p.status,
        "amount": p.amount,
        "currency": p.currency,
        "url": p.url.unwrap_or(""),
        "metadata": p.metadata,
        "livemode": p.livemode,
    }));
    if let Some(u) = user {
        data.insert("user".into(), json!(u));
    }
    let (out, _) = upsert(tx, ctx, PAYMENTS, "stripeId", p.stripe_id, data, None)?;
    Ok(out)
}

pub fn metadata_value(m: Option<&HashMap<String, String>>) -> Value {
    m.map(metadata).unwrap_or_else(|| json!({}))
}
