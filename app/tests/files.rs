//! End-to-end tests of file storage: traversal attempts, ranges, cleanup of failed writes.

use ferrobase_tests::Server;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

async fn upload(
    s: &Server,
    token: &str,
    coll: &str,
    field: &str,
    name: &str,
    data: &[u8],
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().part(
        field.to_string(),
        reqwest::multipart::Part::bytes(data.to_vec()).file_name(name.to_string()),
    );
    for (k, v) in extra {
        form = form.text(k.to_string(), v.to_string());
    }
    let res = s
        .http
        .post(format!("{}/api/collections/{coll}/records", s.url))
        .header("Authorization", token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn traversal_ranges_and_failed_writes() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (st, body) = s
        .call("POST", "/api/collections", Some(&su), Some(json!({"name":"docs","viewRule":"",
            "fields":[{"name":"f","type":"file","maxSelect":1},{"name":"n","type":"number","max":10}]})))
        .await;
    assert_eq!(st, 200, "{body}");
    let cid = body["id"].as_str().unwrap().to_string();
    let (st, rec) = upload(&s, &su, "docs", "f", "data.bin", b"0123456789", &[]).await;
    assert_eq!(st, 200, "{rec}");
    let id = rec["id"].as_str().unwrap();
    let file = rec["f"].as_str().unwrap();
    let base = format!("{}/api/files/docs/{id}/{file}", s.url);

    let res = s
        .http
        .get(&base)
        .header("Range", "bytes=2-5")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"2345");

    for path in [
        format!("/api/files/docs/{id}/..%2F..%2Fdata.db"),
        format!("/api/files/docs/{id}/%2e%2e%2fdata.db"),
        format!("/api/files/docs/..%2F..%2F/{file}"),
        format!("/api/files/..%2F{cid}/{id}/{file}"),
        format!("/api/files/docs/{id}/../{file}"),
        "/api/files/docs/../../data.db".to_string(),
        format!("/api/files/docs/{id}/..%5C..%5Cdata.db"),
        format!("/api/files/docs/%2e%2e/{file}"),
    ] {
        let res = s.http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }

    // A create that fails validation leaves no stored file behind.
    let storage = s.dir.join("storage").join(&cid);
    let count = || std::fs::read_dir(&storage).map(|d| d.count()).unwrap_or(0);
    let before = count();
    let (st, _) = upload(&s, &su, "docs", "f", "x.bin", b"abc", &[("n", "1000")]).await;
    assert_eq!(st, 400);
    assert_eq!(count(), before, "the failed create's upload was removed");
}

#[tokio::test]
async fn truncating_and_deleting_a_collection_removes_its_files() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (st, body) = s
        .call(
            "POST",
            "/api/collections",
            Some(&su),
            Some(json!({"name":"pics","fields":[{"name":"f","type":"file","maxSelect":1}]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let dir = s.dir.join("storage").join(body["id"].as_str().unwrap());
    let (st, _) = upload(&s, &su, "pics", "f", "a.bin", b"abc", &[]).await;
    assert_eq!(st, 200);
    assert!(dir.exists());
    let (st, _) = s
        .call("DELETE", "/api/collections/pics/truncate", Some(&su), None)
        .await;
    assert_eq!(st, 204);
    assert!(!dir.exists(), "truncate removed the files");
    let (st, _) = upload(&s, &su, "pics", "f", "b.bin", b"abc", &[]).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .call("DELETE", "/api/collections/pics", Some(&su), None)
        .await;
    assert_eq!(st, 204);
    assert!(!dir.exists(), "deleting the collection removed the files");
}
