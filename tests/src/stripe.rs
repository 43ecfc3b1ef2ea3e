//! A stand-in for Stripe's HTTP API, for tests without network: the plugin's client is
//! pointed at it (`STRIPE_API_BASE`). It answers with complete objects built from Stripe's
//! own resource samples (`tests/stripe/fixtures3.json`), keeps the objects it made (so a
//! resync can list them, paginated), honours idempotency keys as Stripe does (the same key
//! gives the same answer, and nothing new), records every request, can be told to fail a
//! path, and signs events exactly as Stripe does to deliver them in the order a test picks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Form fields (POST) or query pairs (GET), as sent (`metadata[userId]`, `line_items[0][price]`).
    pub params: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
    pub authorization: String,
    pub stripe_version: String,
}

impl Recorded {
    /// A parameter's value.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State_ {
    objects: HashMap<&'static str, Vec<Value>>,
    idempotent: HashMap<String, Value>,
    requests: Vec<Recorded>,
    fail: HashMap<String, (u16, Value)>,
    seq: u64,
    page_cap: usize,
}

/// The stand-in, on a loopback port for the life of the value.
pub struct StripeStandin {
    pub url: String,
    state: Arc<Mutex<State_>>,
    _task: tokio::task::JoinHandle<()>,
}

/// Stripe's resource samples (`resources` of fixtures3.json), parsed once.
pub fn fixture(name: &str) -> Value {
    static ALL: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/stripe/fixtures3.json");
        let text = std::fs::read_to_string(path).expect("tests/stripe/fixtures3.json");
        serde_json::from_str::<Value>(&text).expect("fixtures json")["resources"].clone()
    });
    let v = all[name].clone();
    assert!(v.is_object(), "no fixture {name}");
    v
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn merge(base: &mut Value, over: Value) {
    if let (Value::Object(b), Value::Object(o)) = (base, over) {
        for (k, v) in o {
            b.insert(k, v);
        }
    }
}

/// A product (`prod_...`) from the sample.
pub fn product(id: &str, name: &str, metadata: Value) -> Value {
    let mut p = fixture("product");
    merge(
        &mut p,
        json!({"id": id, "name": name, "metadata": metadata, "active": true,
        "livemode": false, "default_price": null, "created": now(), "updated": now()}),
    );
    p
}

/// A price of `product`: recurring monthly when `recurring`, with an optional trial;
/// `unit_amount` None for tiered prices.
pub fn price(
    id: &str,
    product: &str,
    unit_amount: Option<i64>,
    recurring: bool,
    trial_days: Option<u32>,
    metadata: Value,
) -> Value {
    let mut p = fixture("price");
    let recurring = if recurring {
        json!({"interval": "month", "interval_count": 1, "meter": null, "usage_type": "licensed", "trial_period_days": trial_days})
    } else {
        Value::Null
    };
    merge(
        &mut p,
        json!({
            "id": id, "product": product, "active": true, "livemode": false, "currency": "usd",
            "unit_amount": unit_amount,
            "unit_amount_decimal": unit_amount.map(|a| a.to_string()),
            "billing_scheme": if unit_amount.is_some() { "per_unit" } else { "tiered" },
            "tiers_mode": if unit_amount.is_some() { Value::Null } else { json!("graduated") },
            "type": if recurring.is_null() { "one_time" } else { "recurring" },
            "recurring": recurring, "metadata": metadata, "lookup_key": null, "nickname": null,
            "custom_unit_amount": null, "transform_quantity": null, "created": now(),
        }),
    );
    p
}

/// A customer (`cus_...`) with metadata.
pub fn customer(id: &str, email: &str, metadata: Value) -> Value {
    let mut c = fixture("customer");
    merge(
        &mut c,
        json!({"id": id, "email": email, "metadata": metadata, "livemode": false,
        "created": now(), "test_clock": null, "default_source": null, "discount": null}),
    );
    c
}

/// A subscription of `customer` to `price` (a price object), with the period on its item
/// (where Stripe keeps it now).
pub fn subscription(
    id: &str,
    customer: &str,
    price: &Value,
    status: &str,
    period: (i64, i64),
    metadata: Value,
) -> Value {
    let mut s = fixture("subscription");
    let mut item = s["items"]["data"][0].clone();
    merge(
        &mut item,
        json!({
            "id": format!("si_{}", id.trim_start_matches("sub_")), "price": price, "quantity": 1,
            "subscription": id, "current_period_start": period.0, "current_period_end": period.1,
            "metadata": {}, "created": period.0,
        }),
    );
    merge(
        &mut s,
        json!({
            "id": id, "customer": customer, "status": status, "metadata": metadata, "livemode": false,
            "items": {"object": "list", "data": [item], "has_more": false, "url": format!("/v1/subscription_items?subscription={id}")},
            "cancel_at": null, "canceled_at": null, "ended_at": null, "cancel_at_period_end": false,
            "trial_start": null, "trial_end": null, "pause_collection": null, "created": period.0,
            "start_date": period.0, "latest_invoice": null, "schedule": null, "test_clock": null,
            "next_pending_invoice_item_invoice": null, "pending_update": null,
            "cancellation_details": {"comment": null, "feedback": null, "reason": null},
        }),
    );
    s
}

/// A completed Checkout Session (for `checkout.session.*` events).
pub fn checkout_session(
    id: &str,
    mode: &str,
    customer: &str,
    user: &str,
    subscription: Option<&str>,
    amount: i64,
    payment_status: &str,
) -> Value {
    let mut s = fixture("checkout.session");
    merge(
        &mut s,
        json!({
            "id": id, "mode": mode, "customer": customer, "client_reference_id": user,
            "metadata": {"userId": user}, "subscription": subscription, "amount_total": amount,
            "amount_subtotal": amount, "currency": "usd", "payment_status": payment_status,
            "status": "complete", "livemode": false, "payment_intent": if mode == "payment" { json!(format!("pi_{id}")) } else { Value::Null },
            "invoice": null, "payment_link": null, "setup_intent": null,
        }),
    );
    s
}

/// An invoice of a subscription (for `invoice.*` events).
pub fn invoice(id: &str, customer: &str, subscription: &str, amount: i64, status: &str) -> Value {
    let mut i = fixture("invoice");
    merge(
        &mut i,
        json!({
            "id": id, "customer": customer, "amount_paid": if status == "paid" { amount } else { 0 },
            "amount_due": amount, "currency": "usd", "status": status, "livemode": false,
            "hosted_invoice_url": format!("https://invoice.stripe.test/{id}"), "metadata": {},
            "parent": {"type": "subscription_details", "quote_details": null,
                       "subscription_details": {"metadata": {}, "subscription": subscription, "subscription_proration_date": null}},
            "test_clock": null, "latest_revision": null, "from_invoice": null,
        }),
    );
    i
}

/// An event envelope around `object`, as Stripe sends it.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    let mut e = fixture("event");
    merge(
        &mut e,
        json!({
            "id": id, "object": "event", "type": kind, "created": created, "livemode": false,
            "pending_webhooks": 1, "api_version": "2026-09-30.endive",
            "request": {"id": null, "idempotency_key": null}, "data": {"object": object},
        }),
    );
    e
}

/// Stripe's signature header: `t=<t>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={sig}")
}

/// Posts a body with a signature header (None: no header) to the webhook; (status, JSON).
pub async fn post_webhook(
    http: &reqwest::Client,
    server: &str,
    body: &[u8],
    header: Option<&str>,
) -> (u16, Value) {
    let mut req = http
        .post(format!("{server}/api/stripe/webhook"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(h) = header {
        req = req.header("stripe-signature", h);
    }
    let res = req.send().await.expect("webhook request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Signs `event` with `secret` now and delivers it.
pub async fn deliver(
    http: &reqwest::Client,
    server: &str,
    secret: &str,
    event: &Value,
) -> (u16, Value) {
    let body = serde_json::to_vec(event).expect("event json");
    let header = sign(secret, now(), &body);
    post_webhook(http, server, &body, Some(&header)).await
}

fn stripe_error(status: u16, kind: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"type": kind, "message": message, "code": null, "param": null, "doc_url": null}}),
    )
}

/// Form (`a[b]=c&...`) or query pairs.
fn pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

fn metadata_of(params: &[(String, String)], prefix: &str) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in params {
        if let Some(key) = k
            .strip_prefix(&format!("{prefix}["))
            .and_then(|r| r.strip_suffix(']'))
            && !key.contains('[')
        {
            m.insert(key.to_string(), json!(v));
        }
    }
    Value::Object(m)
}

impl StripeStandin {
    pub async fn start() -> StripeStandin {
        let state = Arc::new(Mutex::new(State_ {
            page_cap: 100,
            ..State_::default()
        }));
        let router = axum::Router::new()
            .route("/v1/{kind}", get(list).post(create))
            .route("/v1/billing_portal/sessions", post(portal))
            .route("/v1/checkout/sessions", post(checkout))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        StripeStandin {
            url,
            state,
            _task: task,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State_) -> T) -> T {
        f(&mut self.state.lock().expect("stand-in state"))
    }

    /// Adds or replaces (by id) an object a list of `kind` returns (`products`, `prices`,
    /// `customers`, `subscriptions`).
    pub fn put(&self, kind: &'static str, object: Value) {
        self.with(|s| {
            let list = s.objects.entry(kind).or_default();
            list.retain(|o| o["id"] != object["id"]);
            list.push(object);
        })
    }

    /// The objects of a kind.
    pub fn objects(&self, kind: &'static str) -> Vec<Value> {
        self.with(|s| s.objects.get(kind).cloned().unwrap_or_default())
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    /// The requests to a path (`/v1/customers`) with a method.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// The next request to `path` answers `status` with a Stripe error body.
    pub fn fail_next(&self, path: &str, status: u16, kind: &str, message: &str) {
        let e = stripe_error(status, kind, message);
        self.with(|s| s.fail.insert(path.to_string(), e));
    }

    /// Pages of lists hold at most `n` objects (to exercise pagination).
    pub fn page_cap(&self, n: usize) {
        self.with(|s| s.page_cap = n);
    }
}

fn record(
    s: &mut State_,
    method: &Method,
    path: &str,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Option<(u16, Value)> {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    s.requests.push(Recorded {
        method: method.to_string(),
        path: path.to_string(),
        params,
        idempotency_key: h("idempotency-key"),
        authorization: h("authorization").unwrap_or_default(),
        stripe_version: h("stripe-version").unwrap_or_default(),
    });
    if !h("authorization")
        .unwrap_or_default()
        .starts_with("Bearer sk_test_")
    {
        return Some(stripe_error(
            401,
            "invalid_request_error",
            "Invalid API Key provided.",
        ));
    }
    s.fail.remove(path)
}

fn reply((status, body): (u16, Value)) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

type Shared = Arc<Mutex<State_>>;

async fn list(
    State(st): State<Shared>,
    Path(kind): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = pairs(q.as_deref().unwrap_or(""));
    let path = format!("/v1/{kind}");
    let mut s = st.lock().expect("state");
    if let Some(e) = record(&mut s, &Method::GET, &path, params.clone(), &headers) {
        return reply(e);
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit = get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10usize)
        .min(s.page_cap);
    let key: &'static str = match kind.as_str() {
        "products" => "products",
        "prices" => "prices",
        "customers" => "customers",
        "subscriptions" => "subscriptions",
        _ => {
            return reply(stripe_error(
                404,
                "invalid_request_error",
                "Unrecognized request URL.",
            ));
        }
    };
    let all = s.objects.get(key).cloned().unwrap_or_default();
    let start = match get("starting_after") {
        Some(after) => all
            .iter()
            .position(|o| o["id"] == after.as_str())
            .map(|i| i + 1)
            .unwrap_or(all.len()),
        None => 0,
    };
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + page.len() < all.len();
    reply((
        200,
        json!({"object": "list", "data": page, "has_more": has_more, "url": path}),
    ))
}

fn idempotent(
    s: &mut State_,
    headers: &HeaderMap,
    make: impl FnOnce(&mut State_) -> Value,
) -> Value {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(k) = &key
        && let Some(v) = s.idempotent.get(k)
    {
        return v.clone();
    }
    let v = make(s);
    if let Some(k) = key {
        s.idempotent.insert(k, v.clone());
    }
    v
}

async fn create(
    State(st): State<Shared>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let params = pairs(&body);
    let path = format!("/v1/{kind}");
    let mut s = st.lock().expect("state");
    if let Some(e) = record(&mut s, &Method::POST, &path, params.clone(), &headers) {
        return reply(e);
    }
    if kind != "customers" {
        return reply(stripe_error(
            404,
            "invalid_request_error",
            "Unrecognized request URL.",
        ));
    }
    let c = idempotent(&mut s, &headers, |s| {
        s.seq += 1;
        let email = params
            .iter()
            .find(|(k, _)| k == "email")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let c = customer(
            &format!("cus_standin{:04}", s.seq),
            &email,
            metadata_of(&params, "metadata"),
        );
        s.objects.entry("customers").or_default().push(c.clone());
        c
    });
    reply((200, c))
}

async fn checkout(State(st): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let params = pairs(&body);
    let mut s = st.lock().expect("state");
    if let Some(e) = record(
        &mut s,
        &Method::POST,
        "/v1/checkout/sessions",
        params.clone(),
        &headers,
    ) {
        return reply(e);
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(customer) = get("customer") else {
        return reply(stripe_error(
            400,
            "invalid_request_error",
            "Missing customer.",
        ));
    };
    let v = idempotent(&mut s, &headers, |s| {
        s.seq += 1;
        let id = format!("cs_test_standin{:04}", s.seq);
        let mode = get("mode").unwrap_or_default();
        let mut cs = checkout_session(
            &id,
            &mode,
            &customer,
            &get("client_reference_id").unwrap_or_default(),
            None,
            0,
            "unpaid",
        );
        merge(
            &mut cs,
            json!({
                "status": "open", "url": format!("https://checkout.stripe.test/c/pay/{id}"),
                "success_url": get("success_url"), "cancel_url": get("cancel_url"),
                "metadata": metadata_of(&params, "metadata"), "payment_intent": null,
            }),
        );
        cs
    });
    reply((200, v))
}

async fn portal(State(st): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let params = pairs(&body);
    let mut s = st.lock().expect("state");
    if let Some(e) = record(
        &mut s,
        &Method::POST,
        "/v1/billing_portal/sessions",
        params.clone(),
        &headers,
    ) {
        return reply(e);
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    s.seq += 1;
    let id = format!("bps_standin{:04}", s.seq);
    let mut p = fixture("billing_portal.session");
    merge(
        &mut p,
        json!({"id": id, "customer": get("customer"), "return_url": get("return_url"),
        "url": format!("https://billing.stripe.test/p/session/{id}"), "livemode": false, "configuration": "bpc_standin",
        "flow": null, "on_behalf_of": null, "locale": null}),
    );
    reply((200, p))
}
