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

#[tokio::test]
async fn batch_is_one_transaction() {
    let s = Server::start(BIN).await;
    let t = s.superuser_token().await;
    let (st, body) = s
        .call("POST", "/api/batch", Some(&t), Some(json!({"requests":[]})))
        .await;
    assert_eq!(st, 403, "batch is off by default: {body}");
    let (st, settings) = s
        .call(
            "PATCH",
            "/api/settings",
            Some(&t),
            Some(json!({"batch":{"enabled":true}})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(settings["batch"]["enabled"], true);
    assert!(settings["smtp"].get("password").is_none());
    let (st, _) = s
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"items","fields":[{"name":"n","type":"number","max":100}]})),
        )
        .await;
    assert_eq!(st, 200);
    // Request 7 (index 6) fails validation: nothing of 1-6 may remain.
    let mut requests: Vec<_> = (0..6)
        .map(|i| json!({"method":"POST","url":"/api/collections/items/records","body":{"n": i}}))
        .collect();
    requests
        .push(json!({"method":"POST","url":"/api/collections/items/records","body":{"n": 1000}}));
    let (st, body) = s
        .call(
            "POST",
            "/api/batch",
            Some(&t),
            Some(json!({"requests": requests})),
        )
        .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["message"], "Batch transaction failed.");
    let inner = &body["data"]["requests"]["6"];
    assert_eq!(inner["code"], "batch_request_failed");
    assert_eq!(inner["response"]["status"], 400);
    assert!(inner["response"]["data"]["n"]["code"].is_string(), "{body}");
    let (_, list) = s
        .call("GET", "/api/collections/items/records", Some(&t), None)
        .await;
    assert_eq!(list["totalItems"], 0);

    let (st, body) = s
        .call(
            "POST",
            "/api/batch",
            Some(&t),
            Some(json!({"requests":[
                {"method":"POST","url":"/api/collections/items/records","body":{"id":"aaaaaaaaaaaaaa1","n":1}},
                {"method":"PUT","url":"/api/collections/items/records","body":{"id":"aaaaaaaaaaaaaa1","n":2}},
                {"method":"PUT","url":"/api/collections/items/records","body":{"id":"aaaaaaaaaaaaaa2","n":3}},
                {"method":"DELETE","url":"/api/collections/items/records/aaaaaaaaaaaaaa2"}
            ]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body[0]["status"], 200);
    assert_eq!(body[1]["body"]["n"], 2);
    assert_eq!(body[2]["body"]["n"], 3);
    assert_eq!(body[3], json!({"status":204,"body":null}));
    let (_, list) = s
        .call("GET", "/api/collections/items/records", Some(&t), None)
        .await;
    assert_eq!(list["totalItems"], 1);
    assert_eq!(list["items"][0]["n"], 2);

    // Rules hold inside a batch: a guest cannot write to a locked collection.
    let (st, body) = s
        .call(
            "POST",
            "/api/batch",
            None,
            Some(json!({"requests":[
            {"method":"POST","url":"/api/collections/items/records","body":{"n":1}}]})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["data"]["requests"]["0"]["response"]["status"], 403);
}

async fn user_token(s: &Server, email: &str) -> (String, String) {
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/users/records",
            None,
            Some(json!({"email": email, "password": "Passw0rd-123", "passwordConfirm": "Passw0rd-123"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (st, auth) = s
        .call(
            "POST",
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": email, "password": "Passw0rd-123"})),
        )
        .await;
    assert_eq!(st, 200, "{auth}");
    (id, auth["token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn rules_owner_guest_other_and_superuser() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (alice, at) = user_token(&s, "alice@example.com").await;
    let (_bob, bt) = user_token(&s, "bob@example.com").await;
    let (st, body) = s
        .call(
            "POST",
            "/api/collections",
            Some(&su),
            Some(json!({"name":"notes","fields":[
                {"name":"title","type":"text"},
                {"name":"owner","type":"relation","collectionId":"_pb_users_auth_"}],
                "listRule":"owner = @request.auth.id",
                "viewRule":"owner = @request.auth.id",
                "createRule":"@request.auth.id != '' && @request.body.owner = @request.auth.id",
                "updateRule":"owner = @request.auth.id",
                "deleteRule":null})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // Invalid rules are refused when the collection is saved.
    let (st, body) = s
        .call(
            "PATCH",
            "/api/collections/notes",
            Some(&su),
            Some(json!({"listRule":"nope = 1"})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["data"]["listRule"]["code"], "validation_invalid_rule");

    let (st, note) = s
        .call(
            "POST",
            "/api/collections/notes/records",
            Some(&at),
            Some(json!({"title":"mine","owner": alice})),
        )
        .await;
    assert_eq!(st, 200, "{note}");
    let id = note["id"].as_str().unwrap().to_string();
    // Bob cannot create a note owned by Alice: create rule fails -> 400, nothing written.
    let (st, body) = s
        .call(
            "POST",
            "/api/collections/notes/records",
            Some(&bt),
            Some(json!({"title":"forged","owner": alice})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["message"], "Failed to create record.");
    // An orphan note (empty owner), written by the superuser.
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/notes/records",
            Some(&su),
            Some(json!({"title":"orphan"})),
        )
        .await;
    assert_eq!(st, 200);

    let list = |t: Option<String>| {
        let s = &s;
        async move {
            let (st, l) = s
                .call("GET", "/api/collections/notes/records", t.as_deref(), None)
                .await;
            assert_eq!(st, 200, "{l}");
            l["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["title"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(Some(at.clone())).await, ["mine"]);
    assert!(list(Some(bt.clone())).await.is_empty());
    // A guest never matches the owner rule, not even on the orphan (PocketBase's trap).
    assert!(list(None).await.is_empty());
    assert_eq!(list(Some(su.clone())).await.len(), 2);

    let path = format!("/api/collections/notes/records/{id}");
    assert_eq!(s.call("GET", &path, Some(&bt), None).await.0, 404);
    assert_eq!(s.call("GET", &path, Some(&at), None).await.0, 200);
    assert_eq!(
        s.call("PATCH", &path, Some(&bt), Some(json!({"title":"x"})))
            .await
            .0,
        404
    );
    assert_eq!(
        s.call("PATCH", &path, None, Some(json!({"title":"x"})))
            .await
            .0,
        404
    );
    let (st, upd) = s
        .call("PATCH", &path, Some(&at), Some(json!({"title":"edited"})))
        .await;
    assert_eq!((st, upd["title"].as_str()), (200, Some("edited")));
    // Locked delete rule: 403 for users, allowed for superusers.
    assert_eq!(s.call("DELETE", &path, Some(&at), None).await.0, 403);
    assert_eq!(s.call("DELETE", &path, Some(&su), None).await.0, 204);

    // Client filters may not use @request.* (403) and may filter fields.
    let (st, _) = s
        .call(
            "GET",
            "/api/collections/notes/records?filter=%40request.auth.id%3D%27%27",
            Some(&at),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (st, l) = s
        .call(
            "GET",
            "/api/collections/notes/records?filter=title%7E%27orph%27&sort=-title",
            Some(&su),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(l["totalItems"], 1);
    let (st, _) = s
        .call(
            "GET",
            "/api/collections/notes/records?filter=nope%3D1",
            Some(&su),
            None,
        )
        .await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn expand_respects_view_rules_and_nests() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let mk = |body: serde_json::Value| {
        let (s, su) = (&s, su.clone());
        async move {
            let (st, b) = s
                .call("POST", "/api/collections", Some(&su), Some(body))
                .await;
            assert_eq!(st, 200, "{b}");
            b["id"].as_str().unwrap().to_string()
        }
    };
    let people = mk(
        json!({"name":"people","listRule":"","viewRule":"secret = false","fields":[
        {"name":"name","type":"text"},{"name":"secret","type":"bool"}]}),
    )
    .await;
    let posts = mk(json!({"name":"posts","listRule":"","viewRule":"","fields":[
        {"name":"title","type":"text"},
        {"name":"author","type":"relation","collectionId": people},
        {"name":"fans","type":"relation","collectionId": people,"maxSelect":5}]}))
    .await;
    mk(
        json!({"name":"comments","listRule":"","viewRule":"","fields":[
        {"name":"msg","type":"text"},{"name":"post","type":"relation","collectionId": posts}]}),
    )
    .await;
    let add = |coll: &'static str, body: serde_json::Value| {
        let (s, su) = (&s, su.clone());
        async move {
            let (st, b) = s
                .call(
                    "POST",
                    &format!("/api/collections/{coll}/records"),
                    Some(&su),
                    Some(body),
                )
                .await;
            assert_eq!(st, 200, "{b}");
            b["id"].as_str().unwrap().to_string()
        }
    };
    let ann = add("people", json!({"name":"Ann"})).await;
    let spy = add("people", json!({"name":"Spy","secret":true})).await;
    let p1 = add(
        "posts",
        json!({"title":"one","author": ann,"fans":[ann, spy]}),
    )
    .await;
    let p2 = add("posts", json!({"title":"two","author": spy})).await;
    add("comments", json!({"msg":"hi","post": p1})).await;

    let (st, r) = s
        .call("GET", &format!("/api/collections/posts/records/{p1}?expand=author,fans,comments_via_post.post.author"), None, None)
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["expand"]["author"]["name"], "Ann");
    // The secret fan is filtered out by people's view rule.
    assert_eq!(r["expand"]["fans"].as_array().unwrap().len(), 1);
    assert_eq!(r["expand"]["comments_via_post"][0]["msg"], "hi");
    assert_eq!(
        r["expand"]["comments_via_post"][0]["expand"]["post"]["expand"]["author"]["name"],
        "Ann"
    );
    // A denied relation gives an empty expand object; an unknown key gives none.
    let (_, r) = s
        .call(
            "GET",
            &format!("/api/collections/posts/records/{p2}?expand=author"),
            None,
            None,
        )
        .await;
    assert_eq!(r["expand"], json!({}));
    let (_, r) = s
        .call(
            "GET",
            &format!("/api/collections/posts/records/{p2}?expand=nope"),
            None,
            None,
        )
        .await;
    assert!(r.get("expand").is_none());
    // Superusers see everything; fields can pick inside expand.
    let (_, r) = s
        .call(
            "GET",
            &format!(
                "/api/collections/posts/records/{p2}?expand=author&fields=title,expand.author.name"
            ),
            Some(&su),
            None,
        )
        .await;
    assert_eq!(r, json!({"title":"two","expand":{"author":{"name":"Spy"}}}));
}

#[tokio::test]
async fn relations_exist_cascade_and_required_block() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let call = |m: &'static str, p: String, b: Option<serde_json::Value>| {
        let (s, su) = (&s, su.clone());
        async move { s.call(m, &p, Some(&su), b).await }
    };
    let (_, parents) = call(
        "POST",
        "/api/collections".into(),
        Some(json!({"name":"parents","fields":[{"name":"n","type":"text"}]})),
    )
    .await;
    let pid = parents["id"].as_str().unwrap();
    let (st, b) = call("POST", "/api/collections".into(), Some(json!({"name":"kids","fields":[
        {"name":"parent","type":"relation","collectionId": pid,"cascadeDelete":true},
        {"name":"guardians","type":"relation","collectionId": pid,"maxSelect":3,"required":false}]}))).await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = call(
        "POST",
        "/api/collections".into(),
        Some(json!({"name":"pets","fields":[
        {"name":"owner","type":"relation","collectionId": pid,"required":true}]})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let (_, p1) = call(
        "POST",
        "/api/collections/parents/records".into(),
        Some(json!({"n":"a"})),
    )
    .await;
    let (_, p2) = call(
        "POST",
        "/api/collections/parents/records".into(),
        Some(json!({"n":"b"})),
    )
    .await;
    let (p1, p2) = (
        p1["id"].as_str().unwrap().to_string(),
        p2["id"].as_str().unwrap().to_string(),
    );
    let (st, b) = call(
        "POST",
        "/api/collections/kids/records".into(),
        Some(json!({"parent":"missingmissing1"})),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        b["data"]["parent"]["code"],
        "validation_missing_rel_records"
    );
    let (st, kid) = call(
        "POST",
        "/api/collections/kids/records".into(),
        Some(json!({"parent": p1, "guardians":[p1, p2]})),
    )
    .await;
    assert_eq!(st, 200, "{kid}");
    let (st, _) = call(
        "POST",
        "/api/collections/pets/records".into(),
        Some(json!({"owner": p2})),
    )
    .await;
    assert_eq!(st, 200);
    // p2 is the required owner of a pet: its delete is blocked and nothing changes.
    let (st, _) = call(
        "DELETE",
        format!("/api/collections/parents/records/{p2}"),
        None,
    )
    .await;
    assert_eq!(st, 400);
    let (_, k) = call(
        "GET",
        format!(
            "/api/collections/kids/records/{}",
            kid["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(k["guardians"], json!([p1, p2]));
    // Deleting p1 cascades to the kid (its single cascade relation empties).
    let (st, _) = call(
        "DELETE",
        format!("/api/collections/parents/records/{p1}"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (_, list) = call("GET", "/api/collections/kids/records".into(), None).await;
    assert_eq!(list["totalItems"], 0);
}

#[tokio::test]
async fn injection_attempts_fail_closed_and_change_nothing() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (st, _) = s
        .call(
            "POST",
            "/api/collections",
            Some(&su),
            Some(json!({"name":"docs","listRule":"","viewRule":"",
            "fields":[{"name":"title","type":"text"},{"name":"meta","type":"json"}]})),
        )
        .await;
    assert_eq!(st, 200);
    for i in 0..3 {
        s.call(
            "POST",
            "/api/collections/docs/records",
            Some(&su),
            Some(json!({"title": format!("t{i}"), "meta": {"a": i}})),
        )
        .await;
    }
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let attempts = [
        ("filter", "title = 't0' OR 1=1"),
        ("filter", "title = \"x' OR '1'='1\""),
        ("filter", "title = 'x'; DROP TABLE docs; --"),
        ("filter", "meta.a') OR 1=1 -- = 1"),
        ("filter", "meta.a = \"1) OR (1=1\""),
        ("filter", "id != '' && (SELECT 1) = 1"),
        ("sort", "title; DROP TABLE docs"),
        ("sort", "(CASE WHEN 1 THEN title END)"),
        ("sort", "-title,@random; DELETE FROM docs"),
        ("fields", "title,(SELECT password FROM _superusers)"),
        ("expand", "title; DROP TABLE docs"),
        ("expand", "../_superusers"),
    ];
    for (param, value) in attempts {
        let (st, body) = s
            .call(
                "GET",
                &format!("/api/collections/docs/records?{param}={}", enc(value)),
                None,
                None,
            )
            .await;
        assert!(st == 400 || st == 200, "{param}={value}: {st} {body}");
        if st == 200 && param == "filter" {
            assert_eq!(
                body["items"].as_array().unwrap().len(),
                0,
                "{param}={value} matched rows: {body}"
            );
        }
        if st == 200 {
            assert!(
                !body.to_string().contains("$2a$"),
                "a password hash leaked: {body}"
            );
        }
    }
    let (_, list) = s
        .call("GET", "/api/collections/docs/records", None, None)
        .await;
    assert_eq!(list["totalItems"], 3, "data unchanged");
    let (st, _) = s
        .call("GET", "/api/collections/users/records", Some(&su), None)
        .await;
    assert_eq!(st, 200, "other tables intact");
}
