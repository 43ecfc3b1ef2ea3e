//! The Stripe plugin end to end: the real binary, its typed Stripe client pointed at the
//! stand-in of `ferrobase_tests::stripe` (complete objects from Stripe's samples, idempotency
//! keys, recorded requests), and signed events delivered in the order each test picks.

use ferrobase_tests::Server;
use ferrobase_tests::stripe::{self as st, StripeStandin};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");
const SECRET: &str = "whsec_testsecret0123456789";
const KEY: &str = "sk_test_standinkey0123456789";

async fn start() -> (StripeStandin, Server, String) {
    let stand = StripeStandin::start().await;
    let server = Server::start_with(
        BIN,
        &[
            ("STRIPE_SECRET_KEY", KEY),
            // rotation: an old secret first, the one the tests sign with second
            (
                "STRIPE_WEBHOOK_SECRET",
                &format!("whsec_oldsecret99999999,{SECRET}"),
            ),
            ("STRIPE_PUBLISHABLE_KEY", "pk_test_standinpub0123"),
            ("STRIPE_API_BASE", &stand.url),
        ],
    )
    .await;
    let su = server.superuser_token().await;
    (stand, server, su)
}

/// Signs up and signs in a user; (id, token).
async fn user(s: &Server, email: &str) -> (String, String) {
    let (st_, r) = s
        .call(
            "POST",
            "/api/collections/users/records",
            None,
            Some(json!({"email": email, "password": "Passw0rd-123", "passwordConfirm": "Passw0rd-123"})),
        )
        .await;
    assert_eq!(st_, 200, "{r}");
    let (st_, a) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": email, "password": "Passw0rd-123"})),
        )
        .await;
    assert_eq!(st_, 200, "{a}");
    (
        r["id"].as_str().unwrap().to_string(),
        a["token"].as_str().unwrap().to_string(),
    )
}

async fn rows(s: &Server, su: &str, coll: &str, filter: &str) -> Vec<Value> {
    let q = format!(
        "/api/collections/{coll}/records?perPage=500&filter={}",
        urlencode(filter)
    );
    let (code, r) = s.call("GET", &q, Some(su), None).await;
    assert_eq!(code, 200, "{r}");
    r["items"].as_array().cloned().unwrap_or_default()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn user_record(s: &Server, su: &str, id: &str) -> Value {
    let (code, r) = s
        .call(
            "GET",
            &format!("/api/collections/users/records/{id}"),
            Some(su),
            None,
        )
        .await;
    assert_eq!(code, 200, "{r}");
    r
}

async fn send(s: &Server, ev: &Value) -> (u16, Value) {
    st::deliver(&s.http, &s.url, SECRET, ev).await
}

fn pro_catalogue() -> (Value, Value) {
    (
        st::product("prod_pro", "Pro", json!({"plan": "pro"})),
        st::price(
            "price_pro",
            "prod_pro",
            Some(1500),
            true,
            Some(14),
            json!({}),
        ),
    )
}

async fn catalogue(s: &Server, t: i64) -> Value {
    let (prod, price) = pro_catalogue();
    assert_eq!(
        send(s, &st::event("evt_prod_pro", "product.created", t, prod))
            .await
            .0,
        200
    );
    assert_eq!(
        send(
            s,
            &st::event("evt_price_pro", "price.created", t, price.clone())
        )
        .await
        .0,
        200
    );
    price
}

#[tokio::test]
async fn webhook_signatures_are_checked_before_anything_is_written() {
    let (_stand, s, su) = start().await;
    let ev = st::event(
        "evt_sig_1",
        "product.created",
        st::now(),
        st::product("prod_sig", "Sig", json!({})),
    );
    let body = serde_json::to_vec(&ev).unwrap();
    let t = st::now();
    let good = st::sign(SECRET, t, &body);
    let sig = good.split("v1=").nth(1).unwrap().to_string();
    let mut tampered = body.clone();
    let n = tampered.len() - 2;
    tampered[n] = b' ';
    let refused: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing header", body.clone(), None),
        (
            "wrong secret",
            body.clone(),
            Some(st::sign("whsec_wrongsecret000000", t, &body)),
        ),
        ("tampered body", tampered, Some(good.clone())),
        (
            "stale timestamp",
            body.clone(),
            Some(st::sign(SECRET, t - 301, &body)),
        ),
        (
            "future timestamp",
            body.clone(),
            Some(st::sign(SECRET, t + 301, &body)),
        ),
        ("v0 only", body.clone(), Some(format!("t={t},v0={sig}"))),
        (
            "not hex",
            body.clone(),
            Some(format!("t={t},v1=zz{}", &sig[2..])),
        ),
    ];
    for (what, b, h) in refused {
        let (code, r) = st::post_webhook(&s.http, &s.url, &b, h.as_deref()).await;
        assert_eq!(code, 400, "{what}: {r}");
        assert_eq!(r["status"], 400, "{what}: PocketBase-shaped error {r}");
        assert!(r["message"].as_str().unwrap().len() > 5, "{what}: {r}");
    }
    assert!(
        rows(&s, &su, "stripe_events", "").await.is_empty(),
        "nothing written"
    );
    assert!(
        rows(&s, &su, "stripe_products", "").await.is_empty(),
        "nothing written"
    );
    // two v1, the second good (Stripe sends several while a secret rolls)
    let two = format!("t={t},v1={},v1={sig}", "ab".repeat(32));
    let (code, r) = st::post_webhook(&s.http, &s.url, &body, Some(&two)).await;
    assert_eq!((code, r["result"].as_str()), (200, Some("applied")), "{r}");
    assert_eq!(
        rows(&s, &su, "stripe_products", "productId = 'prod_sig'")
            .await
            .len(),
        1
    );
    // a secret of the rotation list that is not the first
    let (code, _) = st::post_webhook(
        &s.http,
        &s.url,
        &body,
        Some(&st::sign("whsec_oldsecret99999999", t, &body)),
    )
    .await;
    assert_eq!(code, 200);
    // the reference signer (tests/stripe/stripe_sign.py, which matches the `stripe` Python
    // SDK's own) is accepted, at its default time and 299 s old; 301 s old is refused
    let product = serde_json::to_string(&st::product("prod_py", "Py", json!({}))).unwrap();
    for (offset, ok) in [("0", true), ("-299", true), ("-301", false)] {
        let out = tokio::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/stripe/stripe_sign.py"
            ))
            .args([
                SECRET,
                &format!("{}/api/stripe/webhook", s.url),
                "product.created",
                &product,
                offset,
            ])
            .output()
            .await
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.success(), ok, "offset {offset}: {text}");
        assert!(
            text.starts_with(if ok { "200" } else { "400" }),
            "offset {offset}: {text}"
        );
    }
    // an unknown event type: 200, recorded as ignored
    let (code, r) = send(
        &s,
        &st::event(
            "evt_unknown",
            "radar.early_fraud_warning.created",
            t,
            json!({"id": "issfr_1", "object": "radar.early_fraud_warning"}),
        ),
    )
    .await;
    assert_eq!((code, r["result"].as_str()), (200, Some("ignored")), "{r}");
    // a live event against test keys: 200, ignored, nothing applied
    let mut live = st::event(
        "evt_live",
        "product.created",
        t,
        st::product("prod_live", "Live", json!({})),
    );
    live["livemode"] = json!(true);
    let (code, r) = send(&s, &live).await;
    assert_eq!((code, r["result"].as_str()), (200, Some("ignored")), "{r}");
    assert!(
        rows(&s, &su, "stripe_products", "productId = 'prod_live'")
            .await
            .is_empty()
    );
    let ledger = rows(&s, &su, "stripe_events", "").await;
    let status = |id: &str| {
        ledger
            .iter()
            .find(|e| e["eventId"] == id)
            .map(|e| e["status"].clone())
    };
    assert_eq!(status("evt_sig_1"), Some(json!("applied")));
    assert_eq!(status("evt_unknown"), Some(json!("ignored")));
    assert_eq!(status("evt_live"), Some(json!("ignored")));
}

#[tokio::test]
async fn duplicates_apply_once_and_a_failed_apply_is_retried() {
    let (_stand, s, su) = start().await;
    let t = st::now();
    let price = catalogue(&s, t).await;
    // the same event again: a no-op
    let (code, r) = send(
        &s,
        &st::event("evt_price_pro", "price.created", t, price.clone()),
    )
    .await;
    assert_eq!(
        (code, r["result"].as_str()),
        (200, Some("duplicate")),
        "{r}"
    );
    // ten concurrent deliveries of one new event: one applies, the rest are duplicates
    let mut changed = price.clone();
    changed["nickname"] = json!("Pro monthly");
    let ev = st::event("evt_price_upd", "price.updated", t + 1, changed);
    let results = futures_join(&s, &ev, 10).await;
    assert_eq!(
        results.iter().filter(|r| r.as_str() == "applied").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| r.as_str() == "duplicate").count(),
        9,
        "{results:?}"
    );
    let ledger = rows(&s, &su, "stripe_events", "eventId = 'evt_price_upd'").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["attempts"], 1);

    // an apply that fails (a required field a superuser added to the subscriptions, which
    // the plugin does not fill) rolls back with its ledger marker, then applies on redelivery
    let (code, coll) = s
        .call(
            "GET",
            "/api/collections/stripe_subscriptions",
            Some(&su),
            None,
        )
        .await;
    assert_eq!(code, 200);
    let mut fields = coll["fields"].as_array().unwrap().clone();
    fields.push(json!({"name": "mustHave", "type": "text", "required": true}));
    let (code, r) = s
        .call(
            "PATCH",
            "/api/collections/stripe_subscriptions",
            Some(&su),
            Some(json!({"fields": fields})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let (uid, _) = user(&s, "fail@example.com").await;
    let sub = st::subscription(
        "sub_fail",
        "cus_fail",
        &price,
        "active",
        (t, t + 30 * 86400),
        json!({"userId": uid}),
    );
    let ev = st::event("evt_sub_fail", "customer.subscription.created", t + 2, sub);
    let (code, r) = send(&s, &ev).await;
    assert_eq!(code, 500, "{r}");
    assert_eq!(r["status"], 500);
    assert!(
        rows(&s, &su, "stripe_subscriptions", "").await.is_empty(),
        "rolled back"
    );
    assert!(
        rows(&s, &su, "stripe_customers", "").await.is_empty(),
        "rolled back (the mapping too)"
    );
    let ledger = rows(&s, &su, "stripe_events", "eventId = 'evt_sub_fail'").await;
    assert_eq!(ledger[0]["status"], "failed", "{ledger:?}");
    assert!(
        ledger[0]["note"].as_str().unwrap().contains("mustHave"),
        "{ledger:?}"
    );
    // the superuser fixes the schema; Stripe's retry applies the event, once
    let (_, coll) = s
        .call(
            "GET",
            "/api/collections/stripe_subscriptions",
            Some(&su),
            None,
        )
        .await;
    let fields: Vec<Value> = coll["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] != "mustHave")
        .cloned()
        .collect();
    let (code, r) = s
        .call(
            "PATCH",
            "/api/collections/stripe_subscriptions",
            Some(&su),
            Some(json!({"fields": fields})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let (code, r) = send(&s, &ev).await;
    assert_eq!((code, r["result"].as_str()), (200, Some("applied")), "{r}");
    let (code, r) = send(&s, &ev).await;
    assert_eq!(
        (code, r["result"].as_str()),
        (200, Some("duplicate")),
        "{r}"
    );
    assert_eq!(rows(&s, &su, "stripe_subscriptions", "").await.len(), 1);
    let ledger = rows(&s, &su, "stripe_events", "eventId = 'evt_sub_fail'").await;
    assert_eq!(
        (ledger[0]["status"].as_str(), ledger[0]["attempts"].as_i64()),
        (Some("applied"), Some(2))
    );
    assert_eq!(user_record(&s, &su, &uid).await["plan"], "pro");
}

async fn futures_join(s: &Server, ev: &Value, n: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, ev) = (s.http.clone(), s.url.clone(), ev.clone());
        tasks.push(tokio::spawn(async move {
            st::deliver(&http, &url, SECRET, &ev).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        let (code, r) = t.await.unwrap();
        assert_eq!(code, 200, "{r}");
        out.push(r["result"].as_str().unwrap_or("").to_string());
    }
    out
}

#[tokio::test]
async fn out_of_order_events_end_in_the_right_state() {
    let (_stand, s, su) = start().await;
    let t = st::now() - 1000;
    let (uid, _) = user(&s, "order@example.com").await;

    // price before product: the price is kept, and the plan follows once the product arrives
    let (prod, price) = pro_catalogue();
    assert_eq!(
        send(
            &s,
            &st::event("evt_o_price", "price.created", t, price.clone())
        )
        .await
        .0,
        200
    );
    let p = rows(&s, &su, "stripe_prices", "priceId = 'price_pro'").await;
    assert_eq!(
        (p[0]["productId"].as_str(), p[0]["unitAmount"].as_i64()),
        (Some("prod_pro"), Some(1500))
    );

    // subscription before the customer mapping: linked through the metadata we set at checkout
    let period = (t, t + 30 * 86400);
    let sub = |status: &str| {
        st::subscription(
            "sub_o1",
            "cus_o1",
            &price,
            status,
            period,
            json!({"userId": uid}),
        )
    };
    // updated (active, later) delivered before created (incomplete, earlier)
    assert_eq!(
        send(
            &s,
            &st::event(
                "evt_o_upd",
                "customer.subscription.updated",
                t + 10,
                sub("active")
            )
        )
        .await
        .0,
        200
    );
    let (code, r) = send(
        &s,
        &st::event(
            "evt_o_cre",
            "customer.subscription.created",
            t + 5,
            sub("incomplete"),
        ),
    )
    .await;
    assert_eq!((code, r["result"].as_str()), (200, Some("stale")), "{r}");
    let srow = &rows(&s, &su, "stripe_subscriptions", "subscriptionId = 'sub_o1'").await[0];
    assert_eq!(srow["status"], "active");
    assert_eq!(srow["user"], uid.as_str());
    assert!(
        srow["currentPeriodEnd"].as_str().unwrap().ends_with('Z'),
        "period from the item: {srow}"
    );
    assert_eq!(srow["canceledAt"], "", "an unset date is empty, not 1970");
    let c = rows(&s, &su, "stripe_customers", "").await;
    assert_eq!((c.len(), c[0]["customerId"].as_str()), (1, Some("cus_o1")));
    // the plan is the product's id until the product (with metadata.plan) arrives
    assert_eq!(user_record(&s, &su, &uid).await["plan"], "prod_pro");
    assert_eq!(
        send(
            &s,
            &st::event("evt_o_prod", "product.created", t + 11, prod)
        )
        .await
        .0,
        200
    );
    let u = user_record(&s, &su, &uid).await;
    assert_eq!(
        (u["plan"].as_str(), u["subscriptionStatus"].as_str()),
        (Some("pro"), Some("active"))
    );

    // a second, newer subscription; then the first is deleted, then a stale update of it
    let sub2 = st::subscription(
        "sub_o2",
        "cus_o1",
        &price,
        "active",
        (t + 20, t + 20 + 30 * 86400),
        json!({"userId": uid}),
    );
    assert_eq!(
        send(
            &s,
            &st::event("evt_o2_cre", "customer.subscription.created", t + 20, sub2)
        )
        .await
        .0,
        200
    );
    let mut deleted = sub("canceled");
    deleted["canceled_at"] = json!(t + 30);
    deleted["ended_at"] = json!(t + 30);
    assert_eq!(
        send(
            &s,
            &st::event(
                "evt_o_del",
                "customer.subscription.deleted",
                t + 30,
                deleted
            )
        )
        .await
        .0,
        200
    );
    let (code, r) = send(
        &s,
        &st::event(
            "evt_o_stale",
            "customer.subscription.updated",
            t + 25,
            sub("active"),
        ),
    )
    .await;
    assert_eq!((code, r["result"].as_str()), (200, Some("stale")), "{r}");
    let s1 = &rows(&s, &su, "stripe_subscriptions", "subscriptionId = 'sub_o1'").await[0];
    assert_eq!(s1["status"], "canceled");
    assert!(!s1["endedAt"].as_str().unwrap().is_empty());
    // a terminal status sticks even against a newer non-terminal event
    let (_, r) = send(
        &s,
        &st::event(
            "evt_o_late",
            "customer.subscription.updated",
            t + 40,
            sub("active"),
        ),
    )
    .await;
    assert_eq!(r["result"], "stale");
    // the old subscription's end does not end the new one's access
    let u = user_record(&s, &su, &uid).await;
    assert_eq!(
        (u["plan"].as_str(), u["subscriptionStatus"].as_str()),
        (Some("pro"), Some("active"))
    );

    // a subscription of a customer nobody is mapped to: kept without a user, linked when the
    // checkout session naming the user arrives
    let (uid2, _) = user(&s, "later@example.com").await;
    let orphan = st::subscription(
        "sub_o3",
        "cus_o3",
        &price,
        "trialing",
        (t, t + 14 * 86400),
        json!({}),
    );
    assert_eq!(
        send(
            &s,
            &st::event("evt_o3", "customer.subscription.created", t + 50, orphan)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        rows(&s, &su, "stripe_subscriptions", "subscriptionId = 'sub_o3'").await[0]["user"],
        ""
    );
    let cs = st::checkout_session(
        "cs_o3",
        "subscription",
        "cus_o3",
        &uid2,
        Some("sub_o3"),
        0,
        "paid",
    );
    assert_eq!(
        send(
            &s,
            &st::event("evt_o3_cs", "checkout.session.completed", t + 51, cs)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        rows(&s, &su, "stripe_subscriptions", "subscriptionId = 'sub_o3'").await[0]["user"],
        uid2.as_str()
    );
    let u2 = user_record(&s, &su, &uid2).await;
    assert_eq!(
        (u2["plan"].as_str(), u2["subscriptionStatus"].as_str()),
        (Some("pro"), Some("trialing")),
        "trialing counts"
    );

    // past_due keeps the plan within the grace period (3 days) after the period's end
    let mut due = st::subscription(
        "sub_o3",
        "cus_o3",
        &price,
        "past_due",
        (t - 40 * 86400, st::now() - 86400),
        json!({}),
    );
    due["id"] = json!("sub_o3");
    assert_eq!(
        send(
            &s,
            &st::event(
                "evt_o3_due",
                "customer.subscription.updated",
                t + 60,
                due.clone()
            )
        )
        .await
        .0,
        200
    );
    assert_eq!(user_record(&s, &su, &uid2).await["plan"], "pro");
    due["items"]["data"][0]["current_period_end"] = json!(st::now() - 4 * 86400);
    assert_eq!(
        send(
            &s,
            &st::event("evt_o3_due2", "customer.subscription.updated", t + 61, due)
        )
        .await
        .0,
        200
    );
    let u2 = user_record(&s, &su, &uid2).await;
    assert_eq!(
        (u2["plan"].as_str(), u2["subscriptionStatus"].as_str()),
        (Some(""), Some("past_due"))
    );
}

#[tokio::test]
async fn checkout_and_portal_send_stripe_the_right_request() {
    let (stand, s, su) = start().await;
    let t = st::now();
    catalogue(&s, t).await;
    let one_time = st::price("price_once", "prod_pro", Some(4900), false, None, json!({}));
    assert_eq!(
        send(
            &s,
            &st::event("evt_price_once", "price.created", t, one_time)
        )
        .await
        .0,
        200
    );
    let (uid, tok) = user(&s, "buyer@example.com").await;

    // guests and superusers have no billing account; bad input is refused before Stripe
    let (code, r) = s
        .call(
            "POST",
            "/api/stripe/checkout",
            None,
            Some(json!({"price": "price_pro"})),
        )
        .await;
    assert_eq!((code, r["status"].as_i64()), (401, Some(401)), "{r}");
    let (code, _) = s
        .call(
            "POST",
            "/api/stripe/checkout",
            Some(&su),
            Some(json!({"price": "price_pro"})),
        )
        .await;
    assert_eq!(code, 403);
    for (body, field) in [
        (json!({"price": "price_nope"}), "price"),
        (json!({"price": "price_pro", "quantity": 0}), "quantity"),
        (
            json!({"price": "price_pro", "successUrl": "https://evil.example/phish"}),
            "successUrl",
        ),
        (
            json!({"price": "price_pro", "cancelUrl": "http://localhost:8091/x"}),
            "cancelUrl",
        ),
    ] {
        let (code, r) = s
            .call(
                "POST",
                "/api/stripe/checkout",
                Some(&tok),
                Some(body.clone()),
            )
            .await;
        assert_eq!(code, 400, "{body}: {r}");
        assert!(r["data"][field].is_object(), "{body}: {r}");
    }
    let (code, r) = s
        .call(
            "POST",
            "/api/stripe/checkout",
            Some(&tok),
            Some(json!({"price": "price_pro", "bogus": 1})),
        )
        .await;
    assert_eq!(code, 400, "{r}");
    assert!(stand.requests().is_empty(), "nothing reached Stripe");

    // two concurrent checkouts of a new user: one customer
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, url, tok) = (s.http.clone(), s.url.clone(), tok.clone());
        tasks.push(tokio::spawn(async move {
            let r = http.post(format!("{url}/api/stripe/checkout")).header("Authorization", tok)
                .json(&json!({"price": "price_pro", "quantity": 2, "successUrl": "http://localhost:8090/thanks?s={CHECKOUT_SESSION_ID}"}))
                .send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    for t in tasks {
        let (code, r) = t.await.unwrap();
        assert_eq!(code, 200, "{r}");
        assert!(
            r["url"]
                .as_str()
                .unwrap()
                .starts_with("https://checkout.stripe.test/"),
            "{r}"
        );
        assert!(r["id"].as_str().unwrap().starts_with("cs_test_"), "{r}");
    }
    assert_eq!(stand.objects("customers").len(), 1, "one Stripe customer");
    let creates = stand.requests_to("POST", "/v1/customers");
    assert!(!creates.is_empty());
    let c = &creates[0];
    assert_eq!(c.param("metadata[userId]"), Some(uid.as_str()));
    assert_eq!(c.param("email"), Some("buyer@example.com"));
    assert_eq!(
        c.idempotency_key.as_deref(),
        Some(format!("ferrobase-customer-{uid}-first").as_str())
    );
    assert_eq!(c.authorization, format!("Bearer {KEY}"));
    assert!(!c.stripe_version.is_empty());
    let cus = stand.objects("customers")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sessions = stand.requests_to("POST", "/v1/checkout/sessions");
    assert_eq!(sessions.len(), 4);
    let cs = &sessions[0];
    assert_eq!(cs.param("customer"), Some(cus.as_str()));
    assert_eq!(cs.param("mode"), Some("subscription"));
    assert_eq!(cs.param("line_items[0][price]"), Some("price_pro"));
    assert_eq!(cs.param("line_items[0][quantity]"), Some("2"));
    assert_eq!(cs.param("client_reference_id"), Some(uid.as_str()));
    assert_eq!(cs.param("metadata[userId]"), Some(uid.as_str()));
    assert_eq!(
        cs.param("subscription_data[metadata][userId]"),
        Some(uid.as_str())
    );
    assert_eq!(cs.param("subscription_data[trial_period_days]"), Some("14"));
    assert_eq!(
        cs.param("success_url"),
        Some("http://localhost:8090/thanks?s={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(
        cs.param("cancel_url"),
        Some("http://localhost:8090/?checkout=cancel")
    );
    // a one-time price: payment mode, metadata on the payment intent
    let (code, r) = s
        .call(
            "POST",
            "/api/stripe/checkout",
            Some(&tok),
            Some(json!({"price": "price_once"})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let cs = stand
        .requests_to("POST", "/v1/checkout/sessions")
        .pop()
        .unwrap();
    assert_eq!(cs.param("mode"), Some("payment"));
    assert_eq!(
        cs.param("payment_intent_data[metadata][userId]"),
        Some(uid.as_str())
    );
    assert_eq!(cs.param("subscription_data[trial_period_days]"), None);
    assert_eq!(
        stand.requests_to("POST", "/v1/customers").len(),
        creates.len(),
        "the mapped customer is reused"
    );

    // Stripe's errors, as our client sees them
    for (status, kind, expect) in [
        (400, "invalid_request_error", 400),
        (402, "card_error", 400),
        (401, "invalid_request_error", 502),
        (429, "rate_limit_error", 503),
        (500, "api_error", 502),
    ] {
        stand.fail_next("/v1/checkout/sessions", status, kind, "Stand-in says no.");
        let (code, r) = s
            .call(
                "POST",
                "/api/stripe/checkout",
                Some(&tok),
                Some(json!({"price": "price_pro"})),
            )
            .await;
        assert_eq!(code, expect, "Stripe {status}: {r}");
        assert_eq!(r["status"].as_u64(), Some(expect as u64), "{r}");
        if expect == 400 {
            assert!(
                r["message"].as_str().unwrap().contains("Stand-in says no."),
                "{r}"
            );
        }
        assert!(!r.to_string().contains(KEY), "no key in errors");
    }
    assert!(!s.log().contains(KEY), "no key in logs");

    // the portal
    let (code, r) = s
        .call(
            "POST",
            "/api/stripe/portal",
            Some(&tok),
            Some(json!({"returnUrl": "http://localhost:8090/account"})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert!(
        r["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.test/"),
        "{r}"
    );
    let p = stand
        .requests_to("POST", "/v1/billing_portal/sessions")
        .pop()
        .unwrap();
    assert_eq!(p.param("customer"), Some(cus.as_str()));
    assert_eq!(p.param("return_url"), Some("http://localhost:8090/account"));
    let (code, _) = s
        .call(
            "POST",
            "/api/stripe/portal",
            Some(&tok),
            Some(json!({"returnUrl": "https://evil.example/"})),
        )
        .await;
    assert_eq!(code, 400);
    let (_, tok2) = user(&s, "nobody@example.com").await;
    let (code, r) = s
        .call("POST", "/api/stripe/portal", Some(&tok2), None)
        .await;
    assert_eq!(code, 400, "no billing account yet: {r}");
    let (code, r) = s.call("GET", "/api/stripe/config", None, None).await;
    assert_eq!(
        (code, r["mode"].as_str(), r["publishableKey"].as_str()),
        (200, Some("test"), Some("pk_test_standinpub0123"))
    );
}

#[tokio::test]
async fn sign_up_to_paid_access_and_back() {
    let (stand, s, su) = start().await;
    let t = st::now();
    let price = catalogue(&s, t).await;
    // a collection only paying users may read (docs/stripe.md)
    let (code, r) = s
        .call(
            "POST",
            "/api/collections",
            Some(&su),
            Some(json!({
        "name": "premium", "type": "base",
        "listRule": "@request.auth.plan = 'pro'", "viewRule": "@request.auth.plan = 'pro'",
        "fields": [{"name": "title", "type": "text"}]})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let (code, item) = s
        .call(
            "POST",
            "/api/collections/premium/records",
            Some(&su),
            Some(json!({"title": "secret sauce"})),
        )
        .await;
    assert_eq!(code, 200, "{item}");
    let item_path = format!(
        "/api/collections/premium/records/{}",
        item["id"].as_str().unwrap()
    );

    let (uid, tok) = user(&s, "payer@example.com").await;
    let (_, other_tok) = user(&s, "other@example.com").await;
    let (code, r) = s
        .call("GET", "/api/collections/premium/records", Some(&tok), None)
        .await;
    assert_eq!((code, r["totalItems"].as_i64()), (200, Some(0)));
    // nobody grants themselves a plan
    let (code, r) = s
        .call(
            "PATCH",
            &format!("/api/collections/users/records/{uid}"),
            Some(&tok),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(code, 400, "{r}");
    assert!(r["data"]["plan"].is_object(), "{r}");

    let (code, r) = s
        .call(
            "POST",
            "/api/stripe/checkout",
            Some(&tok),
            Some(json!({"price": "price_pro"})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let cus = stand.objects("customers")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // what Stripe sends after the customer pays
    let cs = st::checkout_session(
        r["id"].as_str().unwrap(),
        "subscription",
        &cus,
        &uid,
        Some("sub_e2e"),
        1500,
        "paid",
    );
    assert_eq!(
        send(
            &s,
            &st::event("evt_e2e_cs", "checkout.session.completed", t + 1, cs)
        )
        .await
        .0,
        200
    );
    let sub = st::subscription(
        "sub_e2e",
        &cus,
        &price,
        "active",
        (t, t + 30 * 86400),
        json!({"userId": uid}),
    );
    assert_eq!(
        send(
            &s,
            &st::event(
                "evt_e2e_sub",
                "customer.subscription.created",
                t + 1,
                sub.clone()
            )
        )
        .await
        .0,
        200
    );
    let inv = st::invoice("in_e2e", &cus, "sub_e2e", 1500, "paid");
    assert_eq!(
        send(&s, &st::event("evt_e2e_inv", "invoice.paid", t + 2, inv))
            .await
            .0,
        200
    );

    let u = user_record(&s, &su, &uid).await;
    assert_eq!(
        (u["plan"].as_str(), u["subscriptionStatus"].as_str()),
        (Some("pro"), Some("active"))
    );
    // the plan is read from the auth record at each request: the same token now opens it
    let (code, r) = s
        .call("GET", "/api/collections/premium/records", Some(&tok), None)
        .await;
    assert_eq!((code, r["totalItems"].as_i64()), (200, Some(1)), "{r}");
    assert_eq!(s.call("GET", &item_path, Some(&tok), None).await.0, 200);
    assert_eq!(
        s.call("GET", &item_path, Some(&other_tok), None).await.0,
        404
    );
    // users read their own billing rows only
    let (_, mine) = s
        .call(
            "GET",
            "/api/collections/stripe_subscriptions/records",
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(mine["totalItems"], 1, "{mine}");
    for who in [Some(other_tok.as_str()), None] {
        for coll in [
            "stripe_subscriptions",
            "stripe_customers",
            "stripe_payments",
            "stripe_subscription_items",
        ] {
            let (code, r) = s
                .call(
                    "GET",
                    &format!("/api/collections/{coll}/records"),
                    who,
                    None,
                )
                .await;
            assert_eq!(
                (code, r["totalItems"].as_i64()),
                (200, Some(0)),
                "{coll}: {r}"
            );
        }
        let (code, _) = s
            .call("GET", "/api/collections/stripe_events/records", who, None)
            .await;
        assert_eq!(code, 403);
    }
    let (_, pays) = s
        .call(
            "GET",
            "/api/collections/stripe_payments/records",
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(pays["items"][0]["stripeId"], "in_e2e", "{pays}");
    assert_eq!(pays["items"][0]["status"], "paid");
    // products and prices are public; nobody but the plugin writes billing rows
    let (code, r) = s
        .call("GET", "/api/collections/stripe_prices/records", None, None)
        .await;
    assert_eq!((code, r["totalItems"].as_i64()), (200, Some(1)));
    let (code, _) = s
        .call(
            "POST",
            "/api/collections/stripe_subscriptions/records",
            Some(&tok),
            Some(json!({"subscriptionId": "sub_fake", "status": "active", "user": uid})),
        )
        .await;
    assert_eq!(code, 403);

    // a one-time payment is recorded too
    let once = st::checkout_session("cs_e2e_once", "payment", &cus, &uid, None, 4900, "paid");
    assert_eq!(
        send(
            &s,
            &st::event("evt_e2e_once", "checkout.session.completed", t + 3, once)
        )
        .await
        .0,
        200
    );
    let p = rows(&s, &su, "stripe_payments", "stripeId = 'cs_e2e_once'").await;
    assert_eq!(
        (
            p[0]["amount"].as_i64(),
            p[0]["status"].as_str(),
            p[0]["user"].as_str()
        ),
        (Some(4900), Some("paid"), Some(uid.as_str()))
    );

    // cancellation: access ends
    let mut ended = sub;
    ended["status"] = json!("canceled");
    ended["canceled_at"] = json!(t + 5);
    ended["ended_at"] = json!(t + 5);
    ended["cancellation_details"]["reason"] = json!("cancellation_requested");
    assert_eq!(
        send(
            &s,
            &st::event("evt_e2e_del", "customer.subscription.deleted", t + 5, ended)
        )
        .await
        .0,
        200
    );
    let u = user_record(&s, &su, &uid).await;
    assert_eq!(
        (u["plan"].as_str(), u["subscriptionStatus"].as_str()),
        (Some(""), Some("canceled"))
    );
    let (code, r) = s
        .call("GET", "/api/collections/premium/records", Some(&tok), None)
        .await;
    assert_eq!((code, r["totalItems"].as_i64()), (200, Some(0)));
    assert_eq!(
        rows(&s, &su, "stripe_subscriptions", "").await[0]["cancellationReason"],
        "cancellation_requested"
    );
}

#[tokio::test]
async fn resync_on_an_empty_database_reproduces_stripe() {
    let (stand, s, su) = start().await;
    stand.page_cap(2); // every list takes several pages
    let (uid, _) = user(&s, "synced@example.com").await;
    let t = st::now() - 100;
    for i in 0..3 {
        stand.put(
            "products",
            st::product(
                &format!("prod_r{i}"),
                &format!("Plan {i}"),
                json!({"plan": format!("p{i}")}),
            ),
        );
        stand.put(
            "prices",
            st::price(
                &format!("price_r{i}"),
                &format!("prod_r{i}"),
                if i == 2 { None } else { Some(100 * (i + 1)) },
                true,
                None,
                json!({}),
            ),
        );
    }
    stand.put(
        "customers",
        st::customer("cus_r1", "synced@example.com", json!({"userId": uid})),
    );
    stand.put(
        "customers",
        st::customer("cus_foreign", "x@example.com", json!({})),
    );
    let price1: Value = stand.objects("prices")[1].clone();
    stand.put(
        "subscriptions",
        st::subscription(
            "sub_r1",
            "cus_r1",
            &price1,
            "active",
            (t, t + 86400 * 30),
            json!({}),
        ),
    );
    stand.put(
        "subscriptions",
        st::subscription(
            "sub_r0",
            "cus_r1",
            &stand.objects("prices")[0].clone(),
            "canceled",
            (t - 86400 * 60, t - 86400 * 30),
            json!({}),
        ),
    );

    let (code, r) = s.call("POST", "/api/stripe/resync", None, None).await;
    assert_eq!(code, 403, "{r}");
    let (code, report) = s.call("POST", "/api/stripe/resync", Some(&su), None).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(
        report["products"],
        json!({"seen": 3, "changed": 3}),
        "{report}"
    );
    assert_eq!(report["prices"], json!({"seen": 3, "changed": 3}));
    assert_eq!(
        report["customers"]["changed"], 1,
        "only customers of our users: {report}"
    );
    assert_eq!(report["subscriptions"], json!({"seen": 2, "changed": 2}));
    assert!(
        stand.requests_to("GET", "/v1/products").len() >= 2,
        "paginated"
    );
    assert!(
        stand
            .requests_to("GET", "/v1/subscriptions")
            .iter()
            .all(|r| r.param("status") == Some("all"))
    );
    assert_eq!(rows(&s, &su, "stripe_products", "").await.len(), 3);
    let tiered = &rows(&s, &su, "stripe_prices", "priceId = 'price_r2'").await[0];
    assert_eq!(
        (
            tiered["unitAmount"].clone(),
            tiered["billingScheme"].as_str()
        ),
        (Value::Null, Some("tiered"))
    );
    let subs = rows(&s, &su, "stripe_subscriptions", "").await;
    assert_eq!(subs.len(), 2);
    assert!(subs.iter().all(|x| x["user"] == uid.as_str()));
    let u = user_record(&s, &su, &uid).await;
    assert_eq!(
        (u["plan"].as_str(), u["subscriptionStatus"].as_str()),
        (Some("p1"), Some("active"))
    );
    let before: Vec<Value> = rows(&s, &su, "stripe_subscriptions", "").await;

    // again: nothing changes
    let (code, again) = s.call("POST", "/api/stripe/resync", Some(&su), None).await;
    assert_eq!(code, 200);
    for k in ["products", "prices", "customers", "subscriptions"] {
        assert_eq!(again[k]["changed"], 0, "{k}: {again}");
    }
    assert_eq!(
        rows(&s, &su, "stripe_subscriptions", "").await,
        before,
        "rows untouched"
    );

    // the CLI resyncs a new data directory (where no user exists yet)
    drop(s);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // (tokio's process: the stand-in runs on this test's runtime and must keep answering)
    let out = tokio::process::Command::new(ferrobase_tests::binary(BIN))
        .args(["stripe", "resync", "--dir"])
        .arg(&data)
        .env("STRIPE_SECRET_KEY", KEY)
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("STRIPE_API_BASE", &stand.url)
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let report: Value =
        serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap_or(Value::Null);
    assert_eq!(report["products"]["changed"], 3, "{text}");
    assert_eq!(
        report["customers"]["changed"], 0,
        "no users in a new database: {text}"
    );
}

#[tokio::test]
async fn malformed_keys_stop_the_start_and_no_keys_leave_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(ferrobase_tests::binary(BIN))
        .args(["serve", "--http", "127.0.0.1:0", "--dir"])
        .arg(&data)
        .env("STRIPE_SECRET_KEY", "pk_test_notasecretkey123")
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("STRIPE_SECRET_KEY") && !text.contains("pk_test_notasecretkey123"),
        "{text}"
    );
    // without keys the plugin is off: no routes, no collections
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (code, _) = s
        .call("POST", "/api/stripe/webhook", None, Some(json!({})))
        .await;
    assert_eq!(code, 404);
    let (code, _) = s
        .call("GET", "/api/collections/stripe_events", Some(&su), None)
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn paused_subscriptions_failed_async_payments_and_failed_invoices() {
    let (_stand, s, su) = start().await;
    let t = st::now() - 100;
    let price = catalogue(&s, t).await;
    let (uid, _) = user(&s, "pauser@example.com").await;
    let sub = st::subscription(
        "sub_p",
        "cus_p",
        &price,
        "active",
        (t, t + 30 * 86400),
        json!({"userId": uid}),
    );
    assert_eq!(
        send(
            &s,
            &st::event("evt_p1", "customer.subscription.created", t, sub.clone())
        )
        .await
        .0,
        200
    );
    assert_eq!(user_record(&s, &su, &uid).await["plan"], "pro");
    // paused: no plan; resumed: the plan is back
    let mut paused = sub.clone();
    paused["status"] = json!("paused");
    assert_eq!(
        send(
            &s,
            &st::event("evt_p2", "customer.subscription.paused", t + 1, paused)
        )
        .await
        .0,
        200
    );
    let u = user_record(&s, &su, &uid).await;
    assert_eq!(
        (u["plan"].as_str(), u["subscriptionStatus"].as_str()),
        (Some(""), Some("paused"))
    );
    assert_eq!(
        rows(&s, &su, "stripe_subscriptions", "").await[0]["paused"],
        true
    );
    assert_eq!(
        send(
            &s,
            &st::event(
                "evt_p3",
                "customer.subscription.resumed",
                t + 2,
                sub.clone()
            )
        )
        .await
        .0,
        200
    );
    assert_eq!(user_record(&s, &su, &uid).await["plan"], "pro");
    // trial_will_end carries the subscription too
    let (code, r) = send(
        &s,
        &st::event("evt_p4", "customer.subscription.trial_will_end", t + 3, sub),
    )
    .await;
    assert_eq!((code, r["result"].as_str()), (200, Some("applied")), "{r}");

    // a delayed payment method: the session completes unpaid, then the payment fails
    let cs = st::checkout_session("cs_async", "payment", "cus_p", &uid, None, 2500, "unpaid");
    assert_eq!(
        send(
            &s,
            &st::event("evt_a1", "checkout.session.completed", t + 4, cs.clone())
        )
        .await
        .0,
        200
    );
    assert_eq!(
        rows(&s, &su, "stripe_payments", "stripeId = 'cs_async'").await[0]["status"],
        "unpaid"
    );
    assert_eq!(
        send(
            &s,
            &st::event("evt_a2", "checkout.session.async_payment_failed", t + 5, cs)
        )
        .await
        .0,
        200
    );
    let p = &rows(&s, &su, "stripe_payments", "stripeId = 'cs_async'").await[0];
    assert_eq!(
        (
            p["status"].as_str(),
            p["user"].as_str(),
            p["paymentIntentId"].as_str()
        ),
        (Some("failed"), Some(uid.as_str()), Some("pi_cs_async"))
    );
    // a failed renewal invoice
    let inv = st::invoice("in_fail", "cus_p", "sub_p", 1500, "open");
    assert_eq!(
        send(
            &s,
            &st::event("evt_i1", "invoice.payment_failed", t + 6, inv)
        )
        .await
        .0,
        200
    );
    let p = &rows(&s, &su, "stripe_payments", "stripeId = 'in_fail'").await[0];
    assert_eq!(
        (
            p["status"].as_str(),
            p["amount"].as_i64(),
            p["subscriptionId"].as_str(),
            p["kind"].as_str()
        ),
        (Some("failed"), Some(1500), Some("sub_p"), Some("invoice"))
    );
}
