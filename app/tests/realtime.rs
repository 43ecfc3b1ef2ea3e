//! The realtime protocol details the SDK does not show: client ids, auth binding, auth
//! refresh on record changes, and the OAuth2 redirect hook.

use ferrobase_tests::{Server, Sse};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

async fn connect(s: &Server) -> (Sse, String) {
    let mut c = Sse::open(s.url.trim_start_matches("http://")).await;
    let (event, data) = c.next().await.expect("PB_CONNECT");
    assert_eq!(event, "PB_CONNECT");
    let id = serde_json::from_str::<Value>(&data).unwrap()["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 40);
    (c, id)
}

#[tokio::test]
async fn client_ids_auth_binding_and_oauth2_redirect() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (st, body) = s
        .call(
            "POST",
            "/api/realtime",
            None,
            Some(json!({"subscriptions": []})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["data"]["clientId"]["code"], "validation_required");
    let (st, _) = s
        .call(
            "POST",
            "/api/realtime",
            None,
            Some(json!({"clientId": "nope", "subscriptions": []})),
        )
        .await;
    assert_eq!(st, 404);

    let (mut c, id) = connect(&s).await;
    let (st, _) = s
        .call(
            "POST",
            "/api/realtime",
            Some(&su),
            Some(json!({"clientId": id, "subscriptions": ["@oauth2"]})),
        )
        .await;
    assert_eq!(st, 204);
    // A later request with another (or no) auth is refused.
    let (st, body) = s
        .call(
            "POST",
            "/api/realtime",
            None,
            Some(json!({"clientId": id, "subscriptions": []})),
        )
        .await;
    assert_eq!(st, 403, "{body}");

    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/api/oauth2-redirect?state={id}&code=abc123",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(
        res.headers()["location"],
        "/_/#/auth/oauth2-redirect-success"
    );
    let (event, data) = c.next().await.expect("@oauth2 event");
    assert_eq!(event, "@oauth2");
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v, json!({"state": id, "code": "abc123"}));
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/api/oauth2-redirect?state=unknown&code=x",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["location"],
        "/_/#/auth/oauth2-redirect-failure"
    );
}

#[tokio::test]
async fn a_client_whose_token_key_rotates_becomes_a_guest() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    s.call("POST", "/api/collections", Some(&su), Some(json!({"name":"notes","listRule":"@request.auth.id != ''","fields":[{"name":"t","type":"text"}]}))).await;
    let (st, user) = s
        .call("POST", "/api/collections/users/records", None, Some(json!({"email":"u@example.com","password":"Passw0rd-123","passwordConfirm":"Passw0rd-123"})))
        .await;
    assert_eq!(st, 200, "{user}");
    let (_, auth) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity":"u@example.com","password":"Passw0rd-123"})),
        )
        .await;
    let token = auth["token"].as_str().unwrap().to_string();
    let (mut c, id) = connect(&s).await;
    let (st, _) = s
        .call(
            "POST",
            "/api/realtime",
            Some(&token),
            Some(json!({"clientId": id, "subscriptions": ["notes"]})),
        )
        .await;
    assert_eq!(st, 204);
    s.call(
        "POST",
        "/api/collections/notes/records",
        Some(&su),
        Some(json!({"t":"one"})),
    )
    .await;
    let (event, data) = c.next().await.unwrap();
    assert_eq!(event, "notes");
    assert!(data.contains("\"one\""));
    // A password change rotates the token key: the client drops to guest and sees no more.
    let uid = user["id"].as_str().unwrap();
    let (st, body) = s
        .call(
            "PATCH",
            &format!("/api/collections/users/records/{uid}"),
            Some(&su),
            Some(json!({"password":"Other-Passw0rd","passwordConfirm":"Other-Passw0rd"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    s.call(
        "POST",
        "/api/collections/notes/records",
        Some(&su),
        Some(json!({"t":"two"})),
    )
    .await;
    let got = tokio::time::timeout(std::time::Duration::from_millis(800), c.next()).await;
    assert!(got.is_err(), "a guest must not receive the event: {got:?}");
}
