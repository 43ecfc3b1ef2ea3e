//! End-to-end tests of the dashboard's security and write paths over plain HTTP: sign-in,
//! session cookies, CSRF refusal, sign-out, session end on password change, escaping, and
//! record writes (with a file) landing exactly as the REST API sees them. The full flow in a
//! real browser is tests/browser.

use ferrobase_tests::{SUPERUSER_EMAIL, SUPERUSER_PASSWORD, Server};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn hidden_csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    html[start..start + 64].to_string()
}

/// Signs in through the form; returns the session cookie header value and the CSRF token.
async fn sign_in(s: &Server, http: &reqwest::Client, password: &str) -> (u16, String, String) {
    let page = http.get(format!("{}/_/login", s.url)).send().await.unwrap();
    let pre = cookie_value(&set_cookie(&page, "fb_csrf").expect("pre-session cookie"));
    let csrf = hidden_csrf(&page.text().await.unwrap());
    let res = http
        .post(format!("{}/_/login", s.url))
        .header(COOKIE, format!("fb_csrf={pre}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", SUPERUSER_EMAIL),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let Some(session) = set_cookie(&res, "fb_admin") else {
        return (status, String::new(), res.text().await.unwrap_or_default());
    };
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/_/"), "{session}");
    let cookie = format!("fb_admin={}", cookie_value(&session));
    let page = http
        .get(format!("{}/_/collections", s.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    (status, cookie, hidden_csrf(&html))
}

#[tokio::test]
async fn sign_in_csrf_sign_out_and_session_end() {
    let s = Server::start(BIN).await;
    let http = client();
    let token = s.superuser_token().await;

    // Signed out: pages send you to the sign-in page.
    let r = http
        .get(format!("{}/_/collections", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/_/login");
    for (path, text) in [
        (
            "/_/auth/oauth2-redirect-success",
            "Authentication completed",
        ),
        ("/_/auth/oauth2-redirect-failure", "Authentication failed"),
    ] {
        let r = http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains(text));
    }

    // A wrong password: 400 with the message, no session.
    let (status, cookie, body) = sign_in(&s, &http, "wrong-password").await;
    assert_eq!(status, 400);
    assert!(cookie.is_empty());
    assert!(body.contains("Invalid email or password."), "{body}");

    // The sign-in form without its token is refused.
    let r = http
        .post(format!("{}/_/login", s.url))
        .form(&[("email", SUPERUSER_EMAIL), ("password", SUPERUSER_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "fb_admin").is_none());

    let (status, cookie, csrf) = sign_in(&s, &http, SUPERUSER_PASSWORD).await;
    assert_eq!(status, 303);

    // Pages carry a strict CSP and are not cached.
    let r = http
        .get(format!("{}/_/collections", s.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(r.headers()["cache-control"], "no-store");

    // A state-changing POST without the token, or with a wrong one, is refused and writes
    // nothing.
    let form = [("type", "base"), ("name", "evil"), ("_action", "save")];
    for extra in [None, Some("0".repeat(64))] {
        let mut fields: Vec<(&str, String)> =
            form.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if let Some(t) = &extra {
            fields.push(("csrf", t.clone()));
        }
        let r = http
            .post(format!("{}/_/collections/new", s.url))
            .header(COOKIE, &cookie)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let (code, _) = s
        .call("GET", "/api/collections/evil", Some(&token), None)
        .await;
    assert_eq!(code, 404);

    // With the token the same form creates the collection, visible to the API.
    let r = http
        .post(format!("{}/_/collections/new", s.url))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("type", "base"),
            ("name", "notes"),
            ("f0.type", "text"),
            ("f0.name", "body"),
            ("listRule", ""),
            ("viewRule_locked", "on"),
            ("createRule_locked", "on"),
            ("updateRule_locked", "on"),
            ("deleteRule_locked", "on"),
            ("_action", "save"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (code, c) = s
        .call("GET", "/api/collections/notes", Some(&token), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(c["listRule"], "");
    assert!(c["viewRule"].is_null());
    assert!(
        c["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "body")
    );

    // Sign-out ends the session on the server: the old cookie no longer works.
    let r = http
        .post(format!("{}/_/logout", s.url))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(format!("{}/_/collections", s.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // A password change (new token key) ends the superuser's sessions.
    let (_, cookie, _) = sign_in(&s, &http, SUPERUSER_PASSWORD).await;
    let me: Value = s
        .call(
            "GET",
            "/api/collections/_superusers/records",
            Some(&token),
            None,
        )
        .await
        .1;
    let id = me["items"][0]["id"].as_str().unwrap().to_string();
    let (code, _) = s
        .call(
            "PATCH",
            &format!("/api/collections/_superusers/records/{id}"),
            Some(&token),
            Some(json!({"password": "another-Passw0rd", "passwordConfirm": "another-Passw0rd"})),
        )
        .await;
    assert_eq!(code, 200);
    let r = http
        .get(format!("{}/_/collections", s.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "a session must not outlive a password change"
    );
}

#[tokio::test]
async fn records_written_in_the_dashboard_are_escaped_and_reach_the_api() {
    let s = Server::start(BIN).await;
    let http = client();
    let token = s.superuser_token().await;
    let (code, _) = s
        .call(
            "POST",
            "/api/collections",
            Some(&token),
            Some(json!({"name": "posts", "type": "base", "fields": [
                {"name": "title", "type": "text"},
                {"name": "views", "type": "number"},
                {"name": "cover", "type": "file", "maxSelect": 1},
                {"name": "meta", "type": "json"}
            ]})),
        )
        .await;
    assert_eq!(code, 200);
    let (_, cookie, csrf) = sign_in(&s, &http, SUPERUSER_PASSWORD).await;
    let png: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 0x0D, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9C, 0x63, 0x60, 0, 0, 0, 2, 0, 1, 0xE5, 0x27, 0xDE, 0xFC, 0, 0, 0, 0,
        0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    let post = |fields: Vec<(&'static str, String)>, file: Option<&'static [u8]>| {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k, v);
        }
        if let Some(bytes) = file {
            form = form.part(
                "cover",
                reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("pic.png"),
            );
        }
        http.post(format!("{}/_/collections/posts/records/new", s.url))
            .header(COOKIE, &cookie)
            .multipart(form)
            .send()
    };
    let xss = "<script>alert(1)</script>";
    let r = post(
        vec![
            ("csrf", csrf.clone()),
            ("title", xss.to_string()),
            ("views", "3".into()),
            ("meta", r#"{"a": [1, 2]}"#.into()),
        ],
        Some(png),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);

    // Invalid JSON is refused with the field's message, and nothing is written.
    let r = post(
        vec![
            ("csrf", csrf.clone()),
            ("title", "bad".into()),
            ("meta", "{nope".into()),
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Must be valid JSON"));

    let (_, list) = s
        .call("GET", "/api/collections/posts/records", Some(&token), None)
        .await;
    assert_eq!(list["totalItems"], 1);
    let rec = &list["items"][0];
    assert_eq!(rec["title"], xss);
    assert_eq!(rec["views"], 3);
    assert_eq!(rec["meta"], json!({"a": [1, 2]}));
    let file = rec["cover"].as_str().unwrap().to_string();
    assert!(file.starts_with("pic_") && file.ends_with(".png"), "{file}");
    let id = rec["id"].as_str().unwrap().to_string();
    let bytes = s
        .http
        .get(format!("{}/api/files/posts/{id}/{file}", s.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], png);

    // The list and the editor show the value as text.
    for path in [
        "/_/collections/posts/records".to_string(),
        format!("/_/collections/posts/records/{id}"),
    ] {
        let html = http
            .get(format!("{}{path}", s.url))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains(xss), "{path} renders the raw value");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{path}");
    }

    // Bulk delete removes the selected records in one go.
    let r = http
        .post(format!("{}/_/collections/posts/records/delete", s.url))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("ids", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, list) = s
        .call("GET", "/api/collections/posts/records", Some(&token), None)
        .await;
    assert_eq!(list["totalItems"], 0);

    // Deleting a collection needs its name typed; a wrong one deletes nothing.
    let (_, c) = s
        .call("GET", "/api/collections/posts", Some(&token), None)
        .await;
    let cid = c["id"].as_str().unwrap().to_string();
    for (confirm, status, exists) in [("post", 400, 200), ("posts", 303, 404)] {
        let r = http
            .post(format!("{}/_/collections/{cid}/delete", s.url))
            .header(COOKIE, &cookie)
            .form(&[("csrf", csrf.as_str()), ("confirm", confirm)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        let (code, _) = s
            .call("GET", "/api/collections/posts", Some(&token), None)
            .await;
        assert_eq!(code, exists);
    }
}

#[tokio::test]
async fn settings_are_saved_and_a_test_mail_reaches_a_real_smtp_listener() {
    let s = Server::start(BIN).await;
    let sink = ferrobase_tests::SmtpSink::start().await;
    let http = client();
    let token = s.superuser_token().await;
    let (_, cookie, csrf) = sign_in(&s, &http, SUPERUSER_PASSWORD).await;
    let port = sink.port.to_string();
    let r = http
        .post(format!("{}/_/settings", s.url))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("meta.appName", "Dash <b>Test</b>"),
            ("meta.appURL", "https://app.example.com"),
            ("meta.senderName", "Support"),
            ("meta.senderAddress", "support@example.com"),
            ("smtp.enabled", "on"),
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", port.as_str()),
            ("smtp.password", "s3cret-smtp"),
            ("batch.enabled", "on"),
            ("batch.maxRequests", "7"),
            ("batch.timeout", "3"),
            ("batch.maxBodySize", "0"),
            ("trustedProxy.headers", "X-Forwarded-For"),
            ("logs.maxDays", "7"),
            ("logs.minLevel", "0"),
            ("logs.logIP", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, settings) = s.call("GET", "/api/settings", Some(&token), None).await;
    assert_eq!(settings["meta"]["appName"], "Dash <b>Test</b>");
    assert_eq!(settings["logs"]["maxDays"], 7);
    assert_eq!(settings["logs"]["logAuthId"], false);
    // Sections the form did not carry keep their values.
    assert_eq!(settings["backups"]["cronMaxKeep"], 3);
    assert_eq!(settings["smtp"]["port"], sink.port);
    assert_eq!(settings["batch"]["maxRequests"], 7);
    assert_eq!(settings["batch"]["enabled"], true);
    assert_eq!(
        settings["trustedProxy"]["headers"],
        json!(["X-Forwarded-For"])
    );

    // The stored SMTP password never reaches the page; the app name is escaped.
    let html = http
        .get(format!("{}/_/settings", s.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("s3cret-smtp"));
    assert!(html.contains("Dash &lt;b&gt;Test&lt;&#x2F;b&gt;"));

    // A letter in a number is refused and nothing changes.
    let r = http
        .post(format!("{}/_/settings", s.url))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("meta.appName", "Other"),
            ("smtp.port", "25x"),
            ("batch.maxRequests", "7"),
            ("batch.timeout", "3"),
            ("batch.maxBodySize", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, settings) = s.call("GET", "/api/settings", Some(&token), None).await;
    assert_eq!(settings["meta"]["appName"], "Dash <b>Test</b>");

    let r = http
        .post(format!("{}/_/settings/test-mail", s.url))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("to", "ops@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let mail = sink.wait_for("ops@example.com").await;
    assert!(mail.text.contains("This is a test mail"), "{}", mail.text);
}
