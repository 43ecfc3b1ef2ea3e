//! The plugin interface end to end: the fixture plugin (`src/lib.rs`, written against
//! `ferrobase-plugin` only) in a real server, driven over HTTP.

use std::time::{Duration, Instant};

use ferrobase_tests::{Server, cli};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase-fixture");

async fn wait_for<F: Fn(&Value) -> bool>(s: &Server, path: &str, ok: F) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = s.call("GET", path, None, None).await;
        if ok(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn field_names(c: &Value) -> Vec<String> {
    c["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_plugin_uses_every_capability_of_the_interface() {
    // Settings encrypted at rest, as with `--encryptionEnv FIXTURE_KEY`. SAFETY: set before
    // any thread of this test process reads the environment (one test, current-thread
    // runtime, no server started yet); every child process inherits it.
    unsafe {
        std::env::set_var("FERROBASE_ENCRYPTION_ENV", "FIXTURE_KEY");
        std::env::set_var("FIXTURE_KEY", "0123456789abcdef0123456789abcdef");
    }
    let mut s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let su = su.as_str();

    // Owned collection and added field exist; the owned one cannot be deleted.
    let (st, notes) = s
        .call("GET", "/api/collections/fixture_notes", Some(su), None)
        .await;
    assert_eq!(st, 200, "{notes}");
    assert!(
        field_names(&notes).contains(&"title".to_string()),
        "{notes}"
    );
    let (_, users) = s
        .call("GET", "/api/collections/users", Some(su), None)
        .await;
    assert!(field_names(&users).contains(&"plan".to_string()), "{users}");
    let (st, body) = s
        .call("DELETE", "/api/collections/fixture_notes", Some(su), None)
        .await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("fixture plugin"),
        "{body}"
    );

    // An edit of users that leaves the plugin's field out keeps it.
    let without: Vec<Value> = users["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] != "plan")
        .cloned()
        .collect();
    let (st, edited) = s
        .call(
            "PATCH",
            "/api/collections/users",
            Some(su),
            Some(json!({"fields": without})),
        )
        .await;
    assert_eq!(st, 200, "{edited}");
    assert!(
        field_names(&edited).contains(&"plan".to_string()),
        "{edited}"
    );

    // Before hooks: one changes the record, one refuses with a field error.
    let path = "/api/collections/fixture_notes/records";
    let (st, r) = s
        .call("POST", path, Some(su), Some(json!({"title": "shout"})))
        .await;
    assert_eq!((st, r["title"].as_str()), (200, Some("SHOUT")), "{r}");
    let (st, r) = s
        .call("POST", path, Some(su), Some(json!({"title": "forbidden"})))
        .await;
    assert_eq!(st, 400, "{r}");
    assert_eq!(
        r["data"]["title"]["code"], "validation_fixture_forbidden",
        "{r}"
    );

    // After-commit events arrive in order; a crashing handler does not break the write.
    let (st, r) = s
        .call("POST", path, Some(su), Some(json!({"title": "crash"})))
        .await;
    assert_eq!(st, 200, "{r}");
    let (st, _) = s
        .call("POST", path, Some(su), Some(json!({"title": "after"})))
        .await;
    assert_eq!(st, 200);
    let events = wait_for(&s, "/api/fixture/events", |v| {
        v.as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;
    assert_eq!(events, json!(["Create:SHOUT", "Create:after"]));
    assert!(s.log().contains("panicked"), "the crash is logged");

    // A transaction of two writes rolls back whole, or commits whole.
    let (st, r) = s
        .call("POST", "/api/fixture/tx", None, Some(json!({"fail": true})))
        .await;
    assert_eq!(st, 400, "{r}");
    let (_, list) = s
        .call(
            "GET",
            &format!("{path}?filter=(title~'tx-')"),
            Some(su),
            None,
        )
        .await;
    assert_eq!(list["totalItems"], 0, "{list}");
    let (st, r) = s
        .call(
            "POST",
            "/api/fixture/tx",
            None,
            Some(json!({"fail": false})),
        )
        .await;
    assert_eq!((st, r["written"].as_u64()), (200, Some(2)), "{r}");
    let (_, list) = s
        .call(
            "GET",
            &format!("{path}?filter=(title~'tx-')"),
            Some(su),
            None,
        )
        .await;
    assert_eq!(list["totalItems"], 2, "{list}");

    // Records as the request's caller: the create rule refuses a guest, lets a user in.
    let (st, r) = s.call("POST", "/api/fixture/as-caller", None, None).await;
    assert_eq!(st, 400, "{r}");
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/records",
            None,
            Some(json!({"email": "u@example.com", "password": "password123", "passwordConfirm": "password123"})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, auth) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": "u@example.com", "password": "password123"})),
        )
        .await;
    let user = auth["token"].as_str().expect("user token").to_string();
    let (st, r) = s
        .call("POST", "/api/fixture/as-caller", Some(&user), None)
        .await;
    assert_eq!(st, 200, "{r}");

    // A secret setting is stored, usable by the plugin, and never returned.
    let (st, r) = s
        .call(
            "PATCH",
            "/api/settings",
            Some(su),
            Some(json!({"plugins": {"fixture": {"apiKey": "s3cret-XYZ"}}})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert!(!r.to_string().contains("s3cret-XYZ"), "{r}");
    assert_eq!(r["plugins"]["fixture"]["version"], 1, "{r}");
    let (_, r) = s.call("GET", "/api/settings", Some(su), None).await;
    assert!(!r.to_string().contains("s3cret-XYZ"), "{r}");
    let (_, r) = s.call("GET", "/api/fixture/key", None, None).await;
    assert_eq!(r["set"], true);
    // Stored encrypted: neither the secret nor the settings' JSON is in the database files.
    let mut stored = Vec::new();
    for f in ["data.db", "data.db-wal"] {
        stored.extend(std::fs::read(s.dir.join(f)).unwrap_or_default());
    }
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(!stored.is_empty());
    assert!(!contains(b"s3cret-XYZ"), "the secret is stored in clear");
    assert!(
        !contains(b"\"senderAddress\""),
        "the settings are stored in clear"
    );

    // A raw-body route sees the exact bytes.
    let bytes: Vec<u8> = vec![0, 159, 146, 150, b'{', b'x', 255, b'\n'];
    let res = s
        .http
        .post(format!("{}/api/fixture/raw", s.url))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);

    // The cron job is listed and runs on demand.
    let (st, crons) = s.call("GET", "/api/crons", Some(su), None).await;
    assert_eq!(st, 200);
    assert!(
        crons
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == "fixture_tick"),
        "{crons}"
    );
    let (st, _) = s
        .call("POST", "/api/crons/fixture_tick", Some(su), None)
        .await;
    assert_eq!(st, 204);
    let ticks = wait_for(&s, "/api/fixture/ticks", |v| v.as_u64() >= Some(1)).await;
    assert_eq!(ticks, 1);
    let (st, _) = s.call("GET", "/api/crons", None, None).await;
    assert_eq!(st, 401);

    // The owned collection is upgraded across a restart (version 2 adds a field), data kept.
    let (st, _) = s
        .call(
            "PATCH",
            "/api/settings",
            Some(su),
            Some(json!({"plugins": {"fixture": {"version": 2}}})),
        )
        .await;
    assert_eq!(st, 200);
    s.terminate();
    let dir = s.dir.clone();
    let s2 = Server::start_in(std::path::Path::new(BIN), &dir).await;
    let su2 = s2.superuser_token().await;
    let (_, notes) = s2
        .call("GET", "/api/collections/fixture_notes", Some(&su2), None)
        .await;
    assert!(field_names(&notes).contains(&"body".to_string()), "{notes}");
    let (_, list) = s2.call("GET", path, Some(&su2), None).await;
    assert_eq!(list["totalItems"], 6, "{list}");
    let (_, users) = s2
        .call("GET", "/api/collections/users", Some(&su2), None)
        .await;
    assert!(field_names(&users).contains(&"plan".to_string()), "{users}");
    drop(s2);

    // A CLI subcommand of the plugin runs.
    let (ok, out) = cli(std::path::Path::new(BIN), &dir, &["fixture-hello", "there"]);
    assert!(ok, "{out}");
    assert!(out.contains("hello there collections"), "{out}");
}
