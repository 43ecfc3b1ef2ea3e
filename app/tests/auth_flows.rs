//! The mail flows end to end, with a real SMTP listener on loopback: sign-up verification from
//! the mailed link, password reset (old tokens revoked), email change, OTP sign-in, and MFA.

use ferrobase_tests::{Server, SmtpSink, link_token};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");
const PW: &str = "Passw0rd-123";

async fn setup() -> (Server, SmtpSink, String) {
    let s = Server::start(BIN).await;
    let sink = SmtpSink::start().await;
    let su = s.superuser_token().await;
    let (st, body) = s
        .call(
            "PATCH",
            "/api/settings",
            Some(&su),
            Some(json!({
                "meta": {"appURL": s.url, "appName": "FlowTest"},
                "smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port, "tls": false}
            })),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    (s, sink, su)
}

async fn sign_up(s: &Server, email: &str) -> String {
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/users/records",
            None,
            Some(json!({"email": email, "password": PW, "passwordConfirm": PW})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn login(s: &Server, email: &str, pw: &str) -> (u16, Value) {
    s.call(
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        Some(json!({"identity": email, "password": pw})),
    )
    .await
}

#[tokio::test]
async fn verification_from_the_mailed_link() {
    let (s, sink, su) = setup().await;
    let id = sign_up(&s, "new@example.com").await;
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/request-verification",
            None,
            Some(json!({"email": "new@example.com"})),
        )
        .await;
    assert_eq!(st, 204);
    // Unknown addresses get the same answer and no mail.
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/request-verification",
            None,
            Some(json!({"email": "nobody@example.com"})),
        )
        .await;
    assert_eq!(st, 204);
    let mail = sink.wait_for("new@example.com").await;
    assert!(mail.text.contains("FlowTest"), "{}", mail.text);
    let token = link_token(&mail, "confirm-verification");
    // The page a person opens from the mail, then its form.
    let page = s
        .http
        .get(format!("{}/_/auth/confirm-verification/{token}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form"));
    let done = s
        .http
        .post(format!("{}/_/auth/confirm-verification/{token}", s.url))
        .form(&[("x", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("verified"));
    let (_, rec) = s
        .call(
            "GET",
            &format!("/api/collections/users/records/{id}"),
            Some(&su),
            None,
        )
        .await;
    assert_eq!(rec["verified"], true);
    assert_eq!(sink.count().await, 0, "no mail for the unknown address");
    // A used-up or forged token fails cleanly.
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/users/confirm-verification",
            None,
            Some(json!({"token": format!("{token}x")})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["data"]["token"]["code"], "validation_invalid_token");
}

#[tokio::test]
async fn password_reset_revokes_old_tokens() {
    let (s, sink, _) = setup().await;
    sign_up(&s, "reset@example.com").await;
    let (_, auth) = login(&s, "reset@example.com", PW).await;
    let old = auth["token"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/request-password-reset",
            None,
            Some(json!({"email": "reset@example.com"})),
        )
        .await;
    assert_eq!(st, 204);
    let token = link_token(
        &sink.wait_for("reset@example.com").await,
        "confirm-password-reset",
    );
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/users/confirm-password-reset",
            None,
            Some(json!({"token": token, "password": "New-Passw0rd-9", "passwordConfirm": "nope"})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["data"]["passwordConfirm"]["code"],
        "validation_values_mismatch"
    );
    let (st, _) = s
        .call("POST", "/api/collections/users/confirm-password-reset", None, Some(json!({"token": token, "password": "New-Passw0rd-9", "passwordConfirm": "New-Passw0rd-9"})))
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/auth-refresh",
            Some(&old),
            None,
        )
        .await;
    assert_eq!(st, 401, "the old token stopped working");
    assert_eq!(login(&s, "reset@example.com", PW).await.0, 400);
    assert_eq!(
        login(&s, "reset@example.com", "New-Passw0rd-9").await.0,
        200
    );
}

#[tokio::test]
async fn email_change_through_the_page() {
    let (s, sink, _) = setup().await;
    sign_up(&s, "old@example.com").await;
    let (_, auth) = login(&s, "old@example.com", PW).await;
    let t = auth["token"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/request-email-change",
            None,
            Some(json!({"newEmail": "fresh@example.com"})),
        )
        .await;
    assert_eq!(st, 401);
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/request-email-change",
            Some(&t),
            Some(json!({"newEmail": "fresh@example.com"})),
        )
        .await;
    assert_eq!(st, 204);
    let token = link_token(
        &sink.wait_for("fresh@example.com").await,
        "confirm-email-change",
    );
    let wrong = s
        .http
        .post(format!("{}/_/auth/confirm-email-change/{token}", s.url))
        .form(&[("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert!(wrong.text().await.unwrap().contains("class=\"err\""));
    let ok = s
        .http
        .post(format!("{}/_/auth/confirm-email-change/{token}", s.url))
        .form(&[("password", PW)])
        .send()
        .await
        .unwrap();
    assert!(ok.text().await.unwrap().contains("was changed"));
    assert_eq!(login(&s, "fresh@example.com", PW).await.0, 200);
    assert_eq!(login(&s, "old@example.com", PW).await.0, 400);
}

fn otp_code(text: &str) -> String {
    let i = text.find("<strong>").expect("otp in mail") + "<strong>".len();
    text[i..].chars().take_while(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn otp_sign_in_and_mfa() {
    let (s, sink, su) = setup().await;
    sign_up(&s, "otp@example.com").await;
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/request-otp",
            None,
            Some(json!({"email": "otp@example.com"})),
        )
        .await;
    assert_eq!(st, 403, "OTP is off by default");
    let (st, body) = s
        .call(
            "PATCH",
            "/api/collections/users",
            Some(&su),
            Some(json!({"otp": {"enabled": true}})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/users/request-otp",
            None,
            Some(json!({"email": "otp@example.com"})),
        )
        .await;
    assert_eq!(st, 200);
    let otp_id = body["otpId"].as_str().unwrap().to_string();
    let code = otp_code(&sink.wait_for("otp@example.com").await.text);
    assert_eq!(code.len(), 8);
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-otp",
            None,
            Some(json!({"otpId": otp_id, "password": "00000000"})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, auth) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-otp",
            None,
            Some(json!({"otpId": otp_id, "password": code})),
        )
        .await;
    assert_eq!(st, 200, "{auth}");
    assert!(auth["token"].is_string());
    assert_eq!(
        auth["record"]["verified"], true,
        "an OTP proves the address"
    );
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-otp",
            None,
            Some(json!({"otpId": otp_id, "password": code})),
        )
        .await;
    assert_eq!(st, 400, "an OTP works once");
    let (st, fake) = s
        .call(
            "POST",
            "/api/collections/users/request-otp",
            None,
            Some(json!({"email": "ghost@example.com"})),
        )
        .await;
    assert_eq!(st, 200);
    assert!(fake["otpId"].is_string(), "unknown addresses get an id too");

    // MFA: password first, then OTP with the mfaId.
    let (st, _) = s
        .call(
            "PATCH",
            "/api/collections/users",
            Some(&su),
            Some(json!({"mfa": {"enabled": true}})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, first) = login(&s, "otp@example.com", PW).await;
    assert_eq!(st, 401);
    let mfa_id = first["mfaId"].as_str().expect("mfaId").to_string();
    assert_eq!(
        first.as_object().unwrap().len(),
        1,
        "the body is exactly {{mfaId}}"
    );
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": "otp@example.com", "password": PW, "mfaId": mfa_id})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["message"],
        "A different authentication method is required."
    );
    let (_, body) = s
        .call(
            "POST",
            "/api/collections/users/request-otp",
            None,
            Some(json!({"email": "otp@example.com"})),
        )
        .await;
    let otp_id = body["otpId"].as_str().unwrap().to_string();
    let code = otp_code(&sink.wait_for("otp@example.com").await.text);
    let (st, auth) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-otp",
            None,
            Some(json!({"otpId": otp_id, "password": code, "mfaId": mfa_id})),
        )
        .await;
    assert_eq!(st, 200, "{auth}");
    assert!(auth["token"].is_string());
}

#[tokio::test]
async fn managers_and_tokens_of_deleted_records() {
    let (s, _sink, su) = setup().await;
    let (st, body) = s
        .call("POST", "/api/collections", Some(&su), Some(json!({"name":"staff","type":"auth","createRule":"","viewRule":"","updateRule":"","listRule":"",
            "manageRule":"@request.auth.role = 'admin'","fields":[{"name":"role","type":"text"}]})))
        .await;
    assert_eq!(st, 200, "{body}");
    let mk = |email: &'static str, role: &'static str| {
        let (s, su) = (&s, su.clone());
        async move {
            let (st, b) = s
                .call("POST", "/api/collections/staff/records", Some(&su), Some(json!({"email": email, "password": PW, "passwordConfirm": PW, "role": role})))
                .await;
            assert_eq!(st, 200, "{b}");
            b["id"].as_str().unwrap().to_string()
        }
    };
    let _admin = mk("boss@example.com", "admin").await;
    let worker = mk("worker@example.com", "").await;
    let tok = |email: &'static str| {
        let s = &s;
        async move {
            let (_, a) = s
                .call(
                    "POST",
                    "/api/collections/staff/auth-with-password",
                    None,
                    Some(json!({"identity": email, "password": PW})),
                )
                .await;
            a["token"].as_str().unwrap().to_string()
        }
    };
    let (boss, worker_t) = (
        tok("boss@example.com").await,
        tok("worker@example.com").await,
    );
    let path = format!("/api/collections/staff/records/{worker}");
    // A non-manager cannot verify themselves; a manager can verify others and reset passwords.
    let (st, _) = s
        .call(
            "PATCH",
            &path,
            Some(&worker_t),
            Some(json!({"verified": true})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, b) = s
        .call("PATCH", &path, Some(&boss), Some(json!({"verified": true, "password": "Reset-Passw0rd", "passwordConfirm": "Reset-Passw0rd"})))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["verified"], true);
    // The password change rotated the worker's token key: the old token is a guest now.
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/staff/auth-refresh",
            Some(&worker_t),
            None,
        )
        .await;
    assert_eq!(st, 401);
    // A token of a deleted record is a guest.
    let new_t = {
        let (_, a) = s
            .call(
                "POST",
                "/api/collections/staff/auth-with-password",
                None,
                Some(json!({"identity": "worker@example.com", "password": "Reset-Passw0rd"})),
            )
            .await;
        a["token"].as_str().unwrap().to_string()
    };
    let (st, _) = s.call("DELETE", &path, Some(&su), None).await;
    assert_eq!(st, 204);
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/staff/auth-refresh",
            Some(&new_t),
            None,
        )
        .await;
    assert_eq!(st, 401);
    // A token of another collection is refused with 403.
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/users/auth-refresh",
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn login_from_a_new_device_sends_an_alert() {
    let (s, sink, _) = setup().await;
    sign_up(&s, "alert@example.com").await;
    let sign_in = |ua: &'static str| {
        let s = &s;
        async move {
            s.http
                .post(format!(
                    "{}/api/collections/users/auth-with-password",
                    s.url
                ))
                .header("User-Agent", ua)
                .json(&json!({"identity": "alert@example.com", "password": PW}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(sign_in("Laptop/1.0").await, 200);
    assert_eq!(sign_in("Laptop/1.0").await, 200);
    assert_eq!(
        sink.count().await,
        0,
        "the first and known origins send nothing"
    );
    assert_eq!(sign_in("Phone/2.0").await, 200);
    let mail = sink.wait_for("alert@example.com").await;
    assert!(
        mail.text.contains("Login from a new location"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("Phone/2.0"), "{}", mail.text);
}
