//! End-to-end tests of the records API.

use ferrobase_tests::Server;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

#[tokio::test]
async fn concurrent_increments_are_atomic() {
    let s = Server::start(BIN).await;
    let t = s.superuser_token().await;
    let (st, _) = s
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"counters","fields":[{"name":"views","type":"number"}]})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, rec) = s
        .call(
            "POST",
            "/api/collections/counters/records",
            Some(&t),
            Some(json!({"views": 0})),
        )
        .await;
    let id = rec["id"].as_str().unwrap().to_string();
    let path = format!("/api/collections/counters/records/{id}");
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (http, url, t) = (s.http.clone(), format!("{}{path}", s.url), t.clone());
        tasks.push(tokio::spawn(async move {
            http.patch(url)
                .header("Authorization", t)
                .json(&json!({"views+": 1}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 200);
    }
    let (_, rec) = s.call("GET", &path, Some(&t), None).await;
    assert_eq!(rec["views"], 1000);
}

#[tokio::test]
async fn multipart_json_payload_and_modifiers() {
    let s = Server::start(BIN).await;
    let t = s.superuser_token().await;
    let (st, body) = s
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"posts","fields":[
                {"name":"title","type":"text"},{"name":"views","type":"number"},{"name":"flag","type":"bool"},
                {"name":"tags","type":"select","values":["a","b","c"],"maxSelect":3},{"name":"meta","type":"json"}]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let form = reqwest::multipart::Form::new()
        .text("title", "hello")
        .text("views", "12")
        .text("flag", "true")
        .text("tags", "a")
        .text("tags", "b")
        .text("@jsonPayload", r#"{"meta":{"k":[1,2]}}"#);
    let rec: serde_json::Value = s
        .http
        .post(format!("{}/api/collections/posts/records", s.url))
        .header("Authorization", &t)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rec["title"], "hello");
    assert_eq!(rec["views"], 12);
    assert_eq!(rec["flag"], true);
    assert_eq!(rec["tags"], json!(["a", "b"]));
    assert_eq!(rec["meta"], json!({"k":[1,2]}));
    let id = rec["id"].as_str().unwrap();
    let (st, rec) = s
        .call(
            "PATCH",
            &format!("/api/collections/posts/records/{id}"),
            Some(&t),
            Some(json!({"views+":5,"tags-":"a","+tags":"c"})),
        )
        .await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["views"], 17);
    assert_eq!(rec["tags"], json!(["c", "b"]));
}
