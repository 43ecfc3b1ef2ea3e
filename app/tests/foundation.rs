//! End-to-end tests of the foundation: HTTP basics, superuser auth, the collections API and
//! the storage guarantees, against the real binary.

use ferrobase_tests::Server as Harness;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

struct Server;

impl Server {
    async fn start() -> Harness {
        Harness::start(BIN).await
    }
}

#[tokio::test]
async fn health_headers_cors_and_unknown_routes() {
    let s = Server::start().await;
    let res = s
        .http
        .get(format!("{}/api/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["x-xss-protection"], "1; mode=block");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code":200,"data":{},"message":"API is healthy."})
    );

    let pre = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/collections", s.url),
        )
        .header("Origin", "http://app.example")
        .header("Access-Control-Request-Method", "PATCH")
        .header("Access-Control-Request-Headers", "authorization,x-custom")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        pre.headers()["access-control-allow-methods"],
        "GET,HEAD,PUT,PATCH,POST,DELETE"
    );
    assert_eq!(
        pre.headers()["access-control-allow-headers"],
        "authorization,x-custom"
    );

    let (status, body) = s.call("GET", "/api/does-not-exist", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], 404);
    assert_eq!(body["data"], json!({}));
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn superuser_tokens_raw_bearer_invalid_and_refresh() {
    let s = Server::start().await;
    let token = s.superuser_token().await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let (st, _) = s.call("GET", "/api/collections", Some(&token), None).await;
    assert_eq!(st, 200);
    let bearer = format!("Bearer {token}");
    let (st, _) = s.call("GET", "/api/collections", Some(&bearer), None).await;
    assert_eq!(st, 200);
    let lower = format!("bearer {token}");
    let (st, _) = s.call("GET", "/api/collections", Some(&lower), None).await;
    assert_eq!(st, 200);
    // A broken token is a guest: public routes work, protected ones say 401.
    let broken = format!("{}x", token);
    let (st, _) = s.call("GET", "/api/health", Some(&broken), None).await;
    assert_eq!(st, 200);
    let (st, body) = s.call("GET", "/api/collections", Some(&broken), None).await;
    assert_eq!(st, 401);
    assert_eq!(
        body["message"],
        "The request requires valid record authorization token."
    );
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/_superusers/auth-refresh",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(body["token"].is_string());
    assert_eq!(body["record"]["email"], ferrobase_tests::SUPERUSER_EMAIL);
    assert!(body["record"].get("password").is_none());
    assert!(body["record"].get("tokenKey").is_none());
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/_superusers/auth-with-password",
            None,
            Some(
                json!({"identity": ferrobase_tests::SUPERUSER_EMAIL, "password": "wrong-password"}),
            ),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["message"], "Failed to authenticate.");
    assert_eq!(body["data"], json!({}));
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let s = Server::start().await;
    let token = s.superuser_token().await;
    let res = s
        .http
        .post(format!("{}/api/collections", s.url))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"], json!({}));

    let big = vec![b'a'; 33 << 20];
    let res = s
        .http
        .post(format!("{}/api/collections", s.url))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 413);
}

#[tokio::test]
async fn invalid_collections_write_nothing() {
    let s = Server::start().await;
    let t = s.superuser_token().await;
    for bad in [
        json!({"name":"ok_name","fields":[{"name":"a","type":"nope"}]}),
        json!({"name":"ok_name","fields":[{"name":"bad-name","type":"text"}]}),
        json!({"name":"ok_name","fields":[{"name":"s","type":"select"}]}),
        json!({"name":"ok_name","fields":[{"name":"r","type":"relation","collectionId":"missing"}]}),
        json!({"name":"ok_name","fields":[{"name":"a","type":"text"}],"indexes":["CREATE INDEX i ON ok_name (a); DROP TABLE users"]}),
        json!({"name":"ok_name","fields":[{"name":"a","type":"text"}],"indexes":["CREATE INDEX i ON ok_name (nope)"]}),
        json!({"name":"ok_name","fields":"x"}),
        json!({"name":"bad name"}),
        json!({"name":"_collections"}),
    ] {
        let (st, body) = s
            .call("POST", "/api/collections", Some(&t), Some(bad.clone()))
            .await;
        assert_eq!(st, 400, "{bad} -> {body}");
        assert!(body["data"].is_object());
        let (st, _) = s
            .call("GET", "/api/collections/ok_name", Some(&t), None)
            .await;
        assert_eq!(st, 404, "{bad} left a collection behind");
    }
    // The users table is intact after the index injection attempt.
    let (st, _) = s
        .call("GET", "/api/collections/users", Some(&t), None)
        .await;
    assert_eq!(st, 200);
    // And the name is still free: nothing half-written (no stray table).
    let (st, body) = s
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"ok_name"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn relation_blocks_delete_and_import_is_atomic() {
    let s = Server::start().await;
    let t = s.superuser_token().await;
    let (_, authors) = s
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"authors","fields":[{"name":"name","type":"text"}]})),
        )
        .await;
    let (st, _) = s
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"books","fields":[{"name":"author","type":"relation","collectionId": authors["id"]}]})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = s
        .call("DELETE", "/api/collections/authors", Some(&t), None)
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["message"],
        "Failed to delete collection probably due to existing reference in books."
    );
    // An import whose second collection is invalid creates neither.
    let (st, body) = s
        .call(
            "PUT",
            "/api/collections/import",
            Some(&t),
            Some(json!({"collections":[{"name":"imp_one"},{"name":"imp two"}]})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["data"]["collections"]["code"], "validation_collections_import_failure",
        "{body}"
    );
    assert!(
        body["data"]["collections"]["message"]
            .as_str()
            .unwrap()
            .contains("imp two"),
        "{body}"
    );
    let (st, _) = s
        .call("GET", "/api/collections/imp_one", Some(&t), None)
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call(
            "PUT",
            "/api/collections/import",
            Some(&t),
            Some(json!({"collections":[{"name":"imp_one"}]})),
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .call("GET", "/api/collections/imp_one", Some(&t), None)
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn acknowledged_writes_survive_kill9_and_sigterm_is_clean() {
    let mut s = Server::start().await;
    let t = s.superuser_token().await;
    let (st, _) = s
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"notes","listRule":"","fields":[{"name":"body","type":"text"}]})),
        )
        .await;
    assert_eq!(st, 200);
    let mut ids = Vec::new();
    for i in 0..50 {
        let (st, rec) = s
            .call(
                "POST",
                "/api/collections/notes/records",
                Some(&t),
                Some(json!({"body": format!("n{i}")})),
            )
            .await;
        assert_eq!(st, 200, "{rec}");
        ids.push(rec["id"].as_str().unwrap().to_string());
    }
    s.kill9();
    let dir = s.dir.clone();
    let mut s2 = Harness::start_in(&s.bin, &dir).await;
    let (st, list) = s2
        .call(
            "GET",
            "/api/collections/notes/records?perPage=100",
            None,
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["totalItems"], 50);
    let got: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids);
    let status = s2.terminate().expect("exit status");
    assert!(status.success(), "SIGTERM should exit cleanly: {status:?}");
    drop(s);
}

#[tokio::test]
async fn default_collections_and_database_layout() {
    // PocketBase's layout: the binary's plugins (and the collections they own) are off here
    let s = Harness::start_with(BIN, &[("FERROBASE_PLUGINS", "none")]).await;
    let t = s.superuser_token().await;
    let (st, list) = s
        .call("GET", "/api/collections?perPage=100", Some(&t), None)
        .await;
    assert_eq!(st, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "_mfas",
        "_otps",
        "_externalAuths",
        "_authOrigins",
        "_superusers",
        "users",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let conn = rusqlite::Connection::open(s.dir.join("data.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in [
        "_collections",
        "_params",
        "_migrations",
        "_superusers",
        "users",
        "_externalAuths",
        "_mfas",
        "_otps",
        "_authOrigins",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "table {t} missing: {tables:?}"
        );
    }
    let (st, list) = s
        .call(
            "GET",
            "/api/collections?filter=type%3D%27auth%27%20%26%26%20system%3Dfalse&sort=-name",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["users"]);
    let (st, list) = s
        .call(
            "GET",
            "/api/collections?sort=-name&perPage=2&page=2",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["totalItems"], 6);
    assert_eq!(list["totalPages"], 3);
    assert_eq!(list["items"][0]["name"], "_otps");
    let (st, _) = s
        .call(
            "GET",
            "/api/collections?filter=listRule%3D1",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(st, 400, "only PocketBase's filterable columns");
    let users_id: String = conn
        .query_row("SELECT id FROM _collections WHERE name='users'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(users_id, "_pb_users_auth_");
}
