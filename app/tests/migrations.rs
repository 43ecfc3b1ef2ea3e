//! Migration files: automigrate, replay on an empty database, up/down, and a broken file.

use std::path::Path;
use std::process::Command;

use ferrobase_tests::{SUPERUSER_EMAIL, SUPERUSER_PASSWORD, Server, cli};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

/// The user-defined schema, without timestamps (comparable across databases).
async fn schema(s: &Server, t: &str) -> Vec<Value> {
    let (_, list) = s
        .call(
            "GET",
            "/api/collections?perPage=500&sort=name",
            Some(t),
            None,
        )
        .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["system"] == false && c["name"] != "users")
        .map(|c| {
            let mut c = c.clone();
            let o = c.as_object_mut().unwrap();
            o.remove("created");
            o.remove("updated");
            c
        })
        .collect()
}

fn migrate(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("migrate")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn automigrate_replay_and_up_down() {
    let mut a = Server::start(BIN).await;
    let t = a.superuser_token().await;
    let (_, authors) = a
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"authors","listRule":"","fields":[{"name":"name","type":"text"}]})),
        )
        .await;
    let (st, posts) = a
        .call("POST", "/api/collections", Some(&t), Some(json!({"name":"posts","fields":[{"name":"title","type":"text"},
            {"name":"author","type":"relation","collectionId": authors["id"]}],"indexes":["CREATE INDEX idx_posts_title ON posts (title)"]})))
        .await;
    assert_eq!(st, 200, "{posts}");
    let mut fields = posts["fields"].as_array().unwrap().clone();
    fields[1]["name"] = json!("headline");
    let (st, _) = a.call("PATCH", "/api/collections/posts", Some(&t), Some(json!({"fields": fields, "indexes": ["CREATE INDEX idx_posts_title ON posts (headline)"]}))).await;
    assert_eq!(st, 200);
    a.call(
        "POST",
        "/api/collections",
        Some(&t),
        Some(json!({"name":"temp"})),
    )
    .await;
    let (st, _) = a
        .call("DELETE", "/api/collections/temp", Some(&t), None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = a
        .call(
            "POST",
            "/api/collections/authors/records",
            Some(&t),
            Some(json!({"name":"Ann"})),
        )
        .await;
    assert_eq!(st, 200);
    let expected = schema(&a, &t).await;
    let mdir = a.dir.parent().unwrap().join("fb_migrations_data");
    let files: Vec<String> = std::fs::read_dir(&mdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(files.len(), 5, "{files:?}");

    // A restart does not run the automigrate files again (they are recorded as applied).
    a.kill9();
    let a2 = Server::start_in(&a.bin, &a.dir).await;
    assert_eq!(schema(&a2, &t).await, expected);
    drop(a2);

    // Replayed on an empty database, they rebuild the same schema.
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("data");
    std::fs::create_dir_all(tmp.path()).unwrap();
    copy_dir(&mdir, &tmp.path().join("fb_migrations_data"));
    let (ok, out) = cli(
        Path::new(BIN),
        &fresh,
        &["superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD],
    );
    assert!(ok, "{out}");
    let b = Server::start_in(Path::new(BIN), &fresh).await;
    let tb = b.superuser_token().await;
    assert_eq!(schema(&b, &tb).await, expected);
    drop(b);

    // down 1 reverts the last change (the deletion of temp), up applies it again; the data of
    // untouched collections stays.
    let out = migrate(&a.dir, &["down", "1"]);
    assert!(out.contains("Reverted 1"), "{out}");
    let conn = rusqlite::Connection::open(a.dir.join("data.db")).unwrap();
    let temp: i64 = conn
        .query_row(
            "SELECT count(*) FROM _collections WHERE name = 'temp'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(temp, 1, "down re-created temp");
    let ann: i64 = conn
        .query_row("SELECT count(*) FROM authors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ann, 1, "untouched data stays");
    drop(conn);
    let out = migrate(&a.dir, &["status"]);
    assert!(out.contains("pending"), "{out}");
    // Starting the server applies the pending file again.
    let s = Server::start_in(&a.bin, &a.dir).await;
    assert_eq!(schema(&s, &t).await, expected);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test]
async fn a_broken_migration_stops_startup_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mdir = tmp.path().join("fb_migrations_data");
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(
        mdir.join("1700000001_broken.json"),
        serde_json::to_string(&json!({"up": [
            {"action": "create", "collection": {"name": "first_ok", "fields": [{"name": "a", "type": "text"}]}},
            {"action": "create", "collection": {"name": "bad name!"}}
        ], "down": []}))
        .unwrap(),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0", "--dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1700000001_broken.json"), "{err}");
    let conn = rusqlite::Connection::open(data.join("data.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'first_ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0, "the first operation was rolled back with the second");
    let m: i64 = conn
        .query_row(
            "SELECT count(*) FROM _migrations WHERE file = '1700000001_broken.json'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(m, 0);
}

/// A schema with ids replaced by names (for comparing portable round trips).
fn without_ids(list: &[Value]) -> Vec<Value> {
    let name_of = |id: &str| {
        list.iter()
            .find(|c| c["id"] == id)
            .map(|c| c["name"].clone())
            .unwrap_or(json!(id))
    };
    list.iter()
        .map(|c| {
            let mut c = c.clone();
            let o = c.as_object_mut().unwrap();
            o.remove("id");
            if let Some(Value::Array(fields)) = o.get_mut("fields") {
                for f in fields {
                    let fo = f.as_object_mut().unwrap();
                    fo.remove("id");
                    if let Some(Value::String(t)) = fo.get("collectionId").cloned() {
                        fo.insert("collectionId".into(), name_of(&t));
                    }
                }
            }
            o.remove("indexes");
            c
        })
        .collect()
}

#[tokio::test]
async fn export_full_and_portable_round_trips() {
    let a = Server::start(BIN).await;
    let t = a.superuser_token().await;
    let (_, tags) = a
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"tags","fields":[{"name":"label","type":"text","required":true}]})),
        )
        .await;
    let (st, b) = a
        .call("POST", "/api/collections", Some(&t), Some(json!({"id":"pbc_custom1","name":"articles","listRule":"","fields":[
            {"name":"title","type":"text","max":99},{"name":"tags","type":"relation","collectionId": tags["id"],"maxSelect":5},
            {"name":"status","type":"select","values":["draft","live"]}],"indexes":["CREATE INDEX idx_articles_title ON articles (title)"]})))
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, m) = a
        .call(
            "POST",
            "/api/collections",
            Some(&t),
            Some(json!({"name":"members","type":"auth","fields":[{"name":"nick","type":"text"}]})),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    let original = schema(&a, &t).await;
    for portable in [false, true] {
        let fmt = if portable { "portable" } else { "full" };
        let (st, doc) = a
            .call(
                "GET",
                &format!("/api/collections/export?format={fmt}"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(doc["format"], fmt);
        if portable {
            let text = doc.to_string();
            for c in doc["collections"].as_array().unwrap() {
                assert!(
                    c.get("created").is_none() && c.get("id").is_none(),
                    "no ids or timestamps: {c}"
                );
            }
            assert!(text.contains("\"collectionName\":\"tags\""), "{text}");
        }
        let fresh = Server::start(BIN).await;
        let tf = fresh.superuser_token().await;
        let (st, body) = fresh
            .call(
                "PUT",
                "/api/collections/import",
                Some(&tf),
                Some(json!({"collections": doc["collections"]})),
            )
            .await;
        assert_eq!(st, 204, "{fmt}: {body}");
        let copy = schema(&fresh, &tf).await;
        if portable {
            assert_eq!(
                without_ids(&copy),
                without_ids(&original),
                "portable round trip"
            );
        } else {
            assert_eq!(copy, original, "full round trip");
        }
    }
}
