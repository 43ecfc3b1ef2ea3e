//! Regression tests of the findings of the outside attack run (issue #17), one test per
//! finding, each against the real binary over HTTP. docs/security.md lists them.

use std::time::Duration;

use ferrobase_tests::{Server, SmtpSink, Sse};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");
const PW: &str = "Passw0rd-123";

async fn ok(s: &Server, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let (st, r) = s.call(method, path, token, Some(body)).await;
    assert_eq!(st, 200, "{method} {path}: {r}");
    r
}

async fn user(s: &Server, email: &str) -> (String, String) {
    let r = ok(
        s,
        "POST",
        "/api/collections/users/records",
        None,
        json!({"email": email, "password": PW, "passwordConfirm": PW}),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_string();
    let r = ok(
        s,
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        json!({"identity": email, "password": PW}),
    )
    .await;
    (id, r["token"].as_str().unwrap().to_string())
}

async fn sse(s: &Server) -> (Sse, String) {
    let mut c = Sse::open(s.url.trim_start_matches("http://")).await;
    let (event, data) = c.next().await.expect("PB_CONNECT");
    assert_eq!(event, "PB_CONNECT");
    let id = serde_json::from_str::<Value>(&data).unwrap()["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    (c, id)
}

async fn next_event(c: &mut Sse) -> Option<(String, String)> {
    tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .ok()
        .flatten()
}

/// Finding 1: the old password was checked before the update rule, a password oracle for
/// anyone. A caller the rule refuses gets the same answer whatever the guess.
#[tokio::test]
async fn old_password_is_no_oracle_for_refused_callers() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (victim, _) = user(&s, "victim@example.com").await;
    let (_, other) = user(&s, "other@example.com").await;
    ok(
        &s,
        "PATCH",
        "/api/settings",
        Some(&su),
        json!({"batch": {"enabled": true}}),
    )
    .await;
    let path = format!("/api/collections/users/records/{victim}");
    let guess = |old: &str| json!({"oldPassword": old, "password": "New-Passw0rd-1", "passwordConfirm": "New-Passw0rd-1"});
    for token in [None, Some(other.as_str())] {
        let wrong = s
            .call("PATCH", &path, token, Some(guess("wrong-guess")))
            .await;
        let right = s.call("PATCH", &path, token, Some(guess(PW))).await;
        assert_eq!(wrong, right, "the answer depends on the guess");
        assert_eq!(wrong.0, 404, "{wrong:?}");
        let batch =
            |old: &str| json!({"requests": [{"method": "PATCH", "url": path, "body": guess(old)}]});
        let wrong = s
            .call("POST", "/api/batch", token, Some(batch("wrong-guess")))
            .await;
        let right = s.call("POST", "/api/batch", token, Some(batch(PW))).await;
        assert_eq!(wrong, right, "the batch answer depends on the guess");
        assert_eq!(wrong.0, 400, "{wrong:?}");
    }
    // The password did not change; the owner still gets the old-password check.
    let (_, owner) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": "victim@example.com", "password": PW})),
        )
        .await;
    let owner = owner["token"].as_str().unwrap().to_string();
    let (st, r) = s
        .call("PATCH", &path, Some(&owner), Some(guess("wrong-guess")))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        r["data"]["oldPassword"]["code"],
        "validation_invalid_old_password"
    );
    // A locked update rule refuses before looking the record up: 403 for a real id and a made-up one.
    ok(
        &s,
        "PATCH",
        "/api/collections/users",
        Some(&su),
        json!({"updateRule": null}),
    )
    .await;
    let real = s
        .call("PATCH", &path, Some(&owner), Some(json!({"name": "x"})))
        .await;
    let fake = s
        .call(
            "PATCH",
            "/api/collections/users/records/nosuchrecord123",
            Some(&owner),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(real, fake);
    assert_eq!(real.0, 403);
}

async fn self_linked_nodes(s: &Server, su: &str) -> Vec<String> {
    ok(
        s,
        "POST",
        "/api/collections",
        Some(su),
        json!({"name": "nodes", "listRule": "", "viewRule": "", "createRule": "", "fields": [
        {"name": "title", "type": "text"}]}),
    )
    .await;
    let c = ok(s, "GET", "/api/collections/nodes", Some(su), json!({})).await;
    ok(
        s,
        "PATCH",
        "/api/collections/nodes",
        Some(su),
        json!({"fields": [
        {"name": "title", "type": "text"},
        {"name": "rel", "type": "relation", "collectionId": c["id"], "maxSelect": 20}]}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..9 {
        let r = ok(
            s,
            "POST",
            "/api/collections/nodes/records",
            Some(su),
            json!({"title": format!("n{i}")}),
        )
        .await;
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        ok(
            s,
            "PATCH",
            &format!("/api/collections/nodes/records/{id}"),
            Some(su),
            json!({"rel": ids}),
        )
        .await;
    }
    ids
}

/// Findings 2 and 10: a subscription that fails at run time (here an expand too large to
/// build) failed the whole event for every subscriber; now it fails alone. The same expand
/// over REST answers a clear 400 instead of building 155 MB.
#[tokio::test]
async fn a_failing_subscriber_fails_alone_and_expand_is_capped() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let ids = self_linked_nodes(&s, &su).await;
    let deep = "rel.rel.rel.rel.rel.rel";
    let (st, r) = s
        .call(
            "GET",
            &format!("/api/collections/nodes/records?expand={deep}"),
            None,
            None,
        )
        .await;
    assert_eq!(st, 400, "{r}");
    assert!(r["message"].as_str().unwrap().contains("expand"), "{r}");
    let (st, _) = s
        .call(
            "GET",
            "/api/collections/nodes/records?expand=rel.rel",
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "a reasonable expand still works");

    let (mut bad, bad_id) = sse(&s).await;
    let opts: String = url_encode(&json!({"query": {"expand": deep}}).to_string());
    ok_204(
        &s,
        None,
        json!({"clientId": bad_id, "subscriptions": [format!("nodes?options={opts}")]}),
    )
    .await;
    let (mut good, good_id) = sse(&s).await;
    ok_204(
        &s,
        Some(&su),
        json!({"clientId": good_id, "subscriptions": ["nodes"]}),
    )
    .await;
    let (mut guest, guest_id) = sse(&s).await;
    ok_204(
        &s,
        None,
        json!({"clientId": guest_id, "subscriptions": ["nodes/*"]}),
    )
    .await;
    ok(
        &s,
        "POST",
        "/api/collections/nodes/records",
        Some(&su),
        json!({"title": "new", "rel": ids}),
    )
    .await;
    for c in [&mut good, &mut guest] {
        let (event, data) = next_event(c)
            .await
            .expect("the event reached the healthy subscriber");
        assert!(event.starts_with("nodes"), "{event}");
        assert!(data.contains("\"new\""), "{data}");
    }
    // The failing subscription got nothing (and its connection is still fine).
    assert!(
        tokio::time::timeout(Duration::from_millis(500), bad.next())
            .await
            .is_err()
    );
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn ok_204(s: &Server, token: Option<&str>, body: Value) {
    let (st, r) = s.call("POST", "/api/realtime", token, Some(body)).await;
    assert_eq!(st, 204, "{r}");
}

/// Finding 3: geoDistance() answered 500 (SQLite without its math functions).
#[tokio::test]
async fn geo_distance_works_in_filters_and_rules() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    ok(
        &s,
        "POST",
        "/api/collections",
        Some(&su),
        json!({"name": "places",
        "listRule": "geoDistance(loc.lon, loc.lat, 13.4, 52.5) < 500", "viewRule": "",
        "fields": [{"name": "name", "type": "text"}, {"name": "loc", "type": "geoPoint"}]}),
    )
    .await;
    for (name, lon, lat) in [
        ("berlin", 13.405, 52.52),
        ("potsdam", 13.06, 52.39),
        ("paris", 2.35, 48.86),
    ] {
        ok(
            &s,
            "POST",
            "/api/collections/places/records",
            Some(&su),
            json!({"name": name, "loc": {"lon": lon, "lat": lat}}),
        )
        .await;
    }
    let (st, r) = s
        .call("GET", "/api/collections/places/records?filter=geoDistance(loc.lon,loc.lat,13.405,52.52)%3C10&sort=name", None, None)
        .await;
    assert_eq!(st, 200, "{r}");
    let names: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["berlin"],
        "the list rule (within 500 km) and the filter (10 km) both apply"
    );
    let (_, r) = s
        .call(
            "GET",
            "/api/collections/places/records?sort=name",
            None,
            None,
        )
        .await;
    assert_eq!(r["totalItems"], 2, "{r}");
}

/// Finding 4: hidden emails were a boolean oracle through filters (own and related records).
#[tokio::test]
async fn hidden_emails_match_nothing_in_client_filters() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    ok(
        &s,
        "PATCH",
        "/api/collections/users",
        Some(&su),
        json!({"listRule": "", "viewRule": ""}),
    )
    .await;
    let (hidden, _) = user(&s, "hidden@example.com").await;
    let (visible, _) = user(&s, "shown@example.com").await;
    ok(
        &s,
        "PATCH",
        &format!("/api/collections/users/records/{visible}"),
        Some(&su),
        json!({"emailVisibility": true}),
    )
    .await;
    let (_, me) = user(&s, "me@example.com").await;
    ok(&s, "POST", "/api/collections", Some(&su), json!({"name": "posts", "listRule": "", "fields": [
        {"name": "title", "type": "text"}, {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]})).await;
    for (t, a) in [("by-hidden", &hidden), ("by-shown", &visible)] {
        ok(
            &s,
            "POST",
            "/api/collections/posts/records",
            Some(&su),
            json!({"title": t, "author": a}),
        )
        .await;
    }
    let count = |path: String| {
        let (s, me) = (&s, me.clone());
        async move {
            let (st, r) = s.call("GET", &path, Some(&me), None).await;
            assert_eq!(st, 200, "{r}");
            r["totalItems"].as_i64().unwrap()
        }
    };
    let users = |f: &str| format!("/api/collections/users/records?filter={}", url_encode(f));
    let posts = |f: &str| format!("/api/collections/posts/records?filter={}", url_encode(f));
    assert_eq!(count(users("email = 'hidden@example.com'")).await, 0);
    assert_eq!(count(users("email ~ 'hidden'")).await, 0);
    assert_eq!(
        count(users("email = 'shown@example.com'")).await,
        1,
        "visible emails still match"
    );
    assert_eq!(count(posts("author.email = 'hidden@example.com'")).await, 0);
    assert_eq!(count(posts("author.email ~ 'hid'")).await, 0);
    assert_eq!(count(posts("author.email = 'shown@example.com'")).await, 1);
    // Superusers see every email.
    let (_, r) = s
        .call(
            "GET",
            &users("email = 'hidden@example.com'"),
            Some(&su),
            None,
        )
        .await;
    assert_eq!(r["totalItems"], 1);
    // Sorting by email orders hidden emails as empty: the order says nothing about them.
    let (_, a) = s
        .call(
            "GET",
            "/api/collections/users/records?sort=email,id",
            Some(&me),
            None,
        )
        .await;
    let (_, b) = s
        .call(
            "GET",
            "/api/collections/users/records?sort=-email,id",
            Some(&me),
            None,
        )
        .await;
    let order = |r: &Value| -> Vec<String> {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["email"].is_null() || i["email"] == "")
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        order(&a),
        order(&b),
        "hidden emails sort by id only, in both directions"
    );
}

/// Finding 5: a create refused by its rule answered validation_not_unique for taken values.
#[tokio::test]
async fn refused_creates_learn_nothing_about_unique_values() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    ok(
        &s,
        "POST",
        "/api/collections",
        Some(&su),
        json!({"name": "invites",
        "createRule": "@request.auth.id != ''", "fields": [{"name": "code", "type": "text"}],
        "indexes": ["CREATE UNIQUE INDEX idx_invites_code ON invites (code)"]}),
    )
    .await;
    ok(
        &s,
        "POST",
        "/api/collections/invites/records",
        Some(&su),
        json!({"code": "taken-123"}),
    )
    .await;
    let taken = s
        .call(
            "POST",
            "/api/collections/invites/records",
            None,
            Some(json!({"code": "taken-123"})),
        )
        .await;
    let free = s
        .call(
            "POST",
            "/api/collections/invites/records",
            None,
            Some(json!({"code": "free-456"})),
        )
        .await;
    assert_eq!(taken, free, "a guest's answer depends on existing data");
    assert_eq!(taken.0, 400);
    assert!(!taken.1.to_string().contains("not_unique"), "{}", taken.1);
    // A caller the rule lets in still learns the value is taken.
    let (_, t) = user(&s, "inviter@example.com").await;
    let (st, r) = s
        .call(
            "POST",
            "/api/collections/invites/records",
            Some(&t),
            Some(json!({"code": "taken-123"})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(r["data"]["code"]["code"], "validation_not_unique", "{r}");
}

/// Finding 6: 100 parallel OTP guesses beat the 5-attempt limit.
#[tokio::test]
async fn otp_attempts_are_counted_atomically() {
    let s = Server::start(BIN).await;
    let sink = SmtpSink::start().await;
    let su = s.superuser_token().await;
    ok(
        &s,
        "PATCH",
        "/api/settings",
        Some(&su),
        json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port, "tls": false}}),
    )
    .await;
    ok(
        &s,
        "PATCH",
        "/api/collections/users",
        Some(&su),
        json!({"otp": {"enabled": true}}),
    )
    .await;
    user(&s, "otp@example.com").await;
    let r = ok(
        &s,
        "POST",
        "/api/collections/users/request-otp",
        None,
        json!({"email": "otp@example.com"}),
    )
    .await;
    let otp_id = r["otpId"].as_str().unwrap().to_string();
    let mail = sink.wait_for("otp@example.com").await.text;
    let i = mail.find("<strong>").unwrap() + "<strong>".len();
    let code: String = mail[i..].chars().take_while(char::is_ascii_digit).collect();
    let url = format!("{}/api/collections/users/auth-with-otp", s.url);
    let mut tasks = Vec::new();
    for n in 0..100 {
        let (http, url, otp_id) = (s.http.clone(), url.clone(), otp_id.clone());
        let wrong = format!("{:08}", (n * 7919 + 1) % 100_000_000);
        let wrong = if wrong == code {
            "99999999x".into()
        } else {
            wrong
        };
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({"otpId": otp_id, "password": wrong}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    // The right code last, beside the guesses: before the fix it was checked in parallel
    // with them and signed in. Now every request takes a numbered attempt first and only the
    // first five are ever checked, so the right code, arriving after the guesses, is refused.
    let right = {
        let (http, url, otp_id, code) = (s.http.clone(), url.clone(), otp_id.clone(), code.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            http.post(url)
                .json(&json!({"otpId": otp_id, "password": code}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().unwrap());
    }
    let st = right.await.unwrap().unwrap();
    assert!(
        statuses.iter().all(|s| *s == 400 || *s == 429),
        "{statuses:?}"
    );
    // (400s: wrong codes among the first five, and requests after the OTP was burnt.)
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_ne!(st, 200, "the right code worked after 100 parallel guesses");
}

/// Finding 7: rate limits were accepted in settings and never enforced.
#[tokio::test]
async fn rate_limits_are_enforced() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    user(&s, "rl@example.com").await;
    // Loopback is excluded by default (see docs/security.md); the test clears the exclusion.
    let (_, settings) = s.call("GET", "/api/settings", Some(&su), None).await;
    assert_eq!(settings["rateLimits"]["enabled"], true, "on by default");
    ok(
        &s,
        "PATCH",
        "/api/settings",
        Some(&su),
        json!({"rateLimits": {"enabled": true, "excludedIPs": [], "rules": [
        {"label": "*:auth", "audience": "", "duration": 60, "maxRequests": 3},
        {"label": "/api/health", "audience": "@guest", "duration": 60, "maxRequests": 2}]},
        "trustedProxy": {"headers": ["X-Real-IP"], "useLeftmostIP": false}}),
    )
    .await;
    let login = |ip: &'static str| {
        let s = &s;
        async move {
            s.http
                .post(format!(
                    "{}/api/collections/users/auth-with-password",
                    s.url
                ))
                .header("X-Real-IP", ip)
                .json(&json!({"identity": "rl@example.com", "password": PW}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_eq!(login("203.0.113.7").await.status(), 200);
    }
    let r = login("203.0.113.7").await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": 429, "message": "Too Many Requests.", "data": {}})
    );
    assert_eq!(
        login("203.0.113.8").await.status(),
        200,
        "another client IP has its own window"
    );
    // Audience: guests are limited on /api/health, signed-in callers are not.
    for _ in 0..2 {
        assert_eq!(s.call("GET", "/api/health", None, None).await.0, 200);
    }
    assert_eq!(s.call("GET", "/api/health", None, None).await.0, 429);
    assert_eq!(s.call("GET", "/api/health", Some(&su), None).await.0, 200);
}

/// Finding 8: connections trickling a request head were held forever.
#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    let s = Server::start(BIN).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = [0u8; 256];
        loop {
            // One header byte every second: never a complete head.
            if slow.write_all(b"X").await.is_err() {
                return;
            }
            match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the trickling connection was still open after 60 s"
    );
    // The connection that sent nothing is closed by then too.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection stayed open for {:?}",
        started.elapsed()
    );
    // Others were served all along.
    assert_eq!(s.call("GET", "/api/health", None, None).await.0, 200);
}

/// Finding 9: one client's thousands of expensive subscriptions delayed everyone's events
/// (one fan-out task rendered every delivery before sending any). Each client now has its
/// own worker: the cheap subscriber's event is sent while the heavy client's 1,000 filtered
/// subscriptions are still being checked. Topics per client are capped too.
#[tokio::test]
async fn a_heavy_subscriber_delays_only_itself() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    self_linked_nodes(&s, &su).await;
    let (_, id) = sse(&s).await;
    let too_many: Vec<String> = (0..1001).map(|i| format!("nodes/{i}")).collect();
    let (st, r) = s
        .call(
            "POST",
            "/api/realtime",
            None,
            Some(json!({"clientId": id, "subscriptions": too_many})),
        )
        .await;
    assert_eq!(st, 400, "{r}");
    assert_eq!(
        r["data"]["subscriptions"]["code"],
        "validation_length_too_long"
    );

    let (mut heavy, heavy_id) = sse(&s).await;
    let topics: Vec<String> = (0..1000)
        .map(|i| {
            let f = format!("nodes_via_rel.title ?!= 'x{i}' && rel.rel.title ?!= 'y{i}'");
            format!(
                "nodes?options={}",
                url_encode(&json!({"query": {"filter": f}}).to_string())
            )
        })
        .collect();
    ok_204(
        &s,
        None,
        json!({"clientId": heavy_id, "subscriptions": topics}),
    )
    .await;
    let (mut light, light_id) = sse(&s).await;
    ok_204(
        &s,
        None,
        json!({"clientId": light_id, "subscriptions": ["nodes"]}),
    )
    .await;
    ok(
        &s,
        "POST",
        "/api/collections/nodes/records",
        Some(&su),
        json!({"title": "evt"}),
    )
    .await;
    let light_at = async {
        next_event(&mut light)
            .await
            .expect("the light subscriber's event");
        std::time::Instant::now()
    };
    let heavy_at = async {
        let first = next_event(&mut heavy)
            .await
            .expect("the heavy subscriber's events");
        assert!(first.1.contains("evt"));
        std::time::Instant::now()
    };
    let (l, h) = tokio::join!(light_at, heavy_at);
    assert!(l < h, "the light subscriber waited for the heavy one");
}

/// Finding 11: uploads were written to disk before any check.
#[tokio::test]
async fn uploads_are_checked_before_anything_is_written() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let c = ok(
        &s,
        "POST",
        "/api/collections",
        Some(&su),
        json!({"name": "docs", "createRule": "",
        "fields": [{"name": "file", "type": "file", "maxSelect": 1, "maxSize": 1000}]}),
    )
    .await;
    let storage = s.dir.join("storage").join(c["id"].as_str().unwrap());
    let post = |form: reqwest::multipart::Form| {
        let s = &s;
        async move {
            let r = s
                .http
                .post(format!("{}/api/collections/docs/records", s.url))
                .multipart(form)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let part = || reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.txt");
    for id in ["a/b/c", "../../../etc", "..", "x\\y"] {
        let (st, r) = post(
            reqwest::multipart::Form::new()
                .text("id", id)
                .part("file", part()),
        )
        .await;
        assert_eq!(st, 400, "id {id:?}: {r}");
        assert_eq!(r["data"]["id"]["code"], "validation_invalid_format", "{r}");
    }
    let mut form = reqwest::multipart::Form::new();
    for _ in 0..50 {
        form = form.part("file", part());
    }
    let (st, r) = post(form).await;
    assert_eq!(st, 400, "{r}");
    assert_eq!(
        r["data"]["file"]["code"], "validation_max_select_constraint",
        "{r}"
    );
    let left: Vec<_> = std::fs::read_dir(&storage)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files or folders were left: {left:?}");
    assert!(!s.dir.join("storage").join("etc").exists());
}

/// Finding 12: a huge page answered 500.
#[tokio::test]
async fn huge_page_numbers_are_just_empty_pages() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    for page in [
        "9223372036854775807",
        "99999999999999",
        "4611686018427387904",
    ] {
        let (st, r) = s
            .call(
                "GET",
                &format!("/api/collections/users/records?page={page}&perPage=500"),
                Some(&su),
                None,
            )
            .await;
        assert_eq!(st, 200, "page {page}: {r}");
        assert_eq!(r["items"], json!([]));
    }
}

/// Finding 13: automigrate files written in the same second replayed in the wrong order, and
/// two data directories in one parent shared one migrations folder.
#[tokio::test]
async fn automigrate_files_replay_in_write_order_and_are_not_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    for d in [&a_dir, &b_dir] {
        let (ok_, out) = ferrobase_tests::cli(
            &ferrobase_tests::binary(BIN),
            d,
            &[
                "superuser",
                "upsert",
                ferrobase_tests::SUPERUSER_EMAIL,
                ferrobase_tests::SUPERUSER_PASSWORD,
            ],
        );
        assert!(ok_, "{out}");
    }
    let a = Server::start_in(&ferrobase_tests::binary(BIN), &a_dir).await;
    let t = a.superuser_token().await;
    // "zeta" first, then "alpha" pointing at it: by name alone alpha's file sorts first.
    let z = ok(
        &a,
        "POST",
        "/api/collections",
        Some(&t),
        json!({"name": "zeta", "fields": [{"name": "n", "type": "text"}]}),
    )
    .await;
    ok(
        &a,
        "POST",
        "/api/collections",
        Some(&t),
        json!({"name": "alpha", "fields": [
        {"name": "z", "type": "relation", "collectionId": z["id"]}]}),
    )
    .await;
    ok(
        &a,
        "PATCH",
        "/api/collections/zeta",
        Some(&t),
        json!({"name": "zeta2"}),
    )
    .await;
    drop(a);
    let mdir = tmp.path().join("fb_migrations_alpha");
    assert!(mdir.is_dir(), "alpha's migrations have their own folder");
    assert!(
        !tmp.path().join("fb_migrations_beta").exists()
            || std::fs::read_dir(tmp.path().join("fb_migrations_beta"))
                .unwrap()
                .next()
                .is_none()
    );
    // beta, in the same parent, does not replay alpha's files.
    let b = Server::start_in(&ferrobase_tests::binary(BIN), &b_dir).await;
    let tb = b.superuser_token().await;
    assert_eq!(
        b.call("GET", "/api/collections/alpha", Some(&tb), None)
            .await
            .0,
        404
    );
    drop(b);
    // A fresh data dir replays alpha's files in the order they were written.
    let fresh = tmp.path().join("gamma");
    let mut files: Vec<_> = std::fs::read_dir(&mdir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    files.sort();
    std::fs::create_dir_all(tmp.path().join("fb_migrations_gamma")).unwrap();
    for f in &files {
        std::fs::copy(mdir.join(f), tmp.path().join("fb_migrations_gamma").join(f)).unwrap();
    }
    let (ok_, out) = ferrobase_tests::cli(
        &ferrobase_tests::binary(BIN),
        &fresh,
        &[
            "superuser",
            "upsert",
            ferrobase_tests::SUPERUSER_EMAIL,
            ferrobase_tests::SUPERUSER_PASSWORD,
        ],
    );
    assert!(ok_, "the replay failed: {out} (files {files:?})");
    let g = Server::start_in(&ferrobase_tests::binary(BIN), &fresh).await;
    let tg = g.superuser_token().await;
    let (st, r) = g
        .call("GET", "/api/collections/alpha", Some(&tg), None)
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        g.call("GET", "/api/collections/zeta2", Some(&tg), None)
            .await
            .0,
        200
    );
}
