//! Production operations end to end against the real binary (issue #21): request logs
//! (list, filter, view, stats, expiry), backups (a snapshot under a steady write load that
//! restores every write acknowledged before it started; download, upload, restore of an
//! uploaded archive, delete), the core's cron jobs and the scheduled backup, `superuserIPs`,
//! the test mail, and shutdown with open realtime streams.

use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrobase_tests::{Server, SmtpSink, Sse};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Polls `f` until it returns `Some` (the server writes logs and restarts asynchronously).
async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn logs(s: &Server, su: &str, filter: &str) -> Value {
    let (st, body) = s
        .call(
            "GET",
            &format!("/api/logs?perPage=500&filter={}", enc(filter)),
            Some(su),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    body
}

async fn patch_settings(s: &Server, su: &str, patch: Value) {
    let (st, body) = s
        .call("PATCH", "/api/settings", Some(su), Some(patch))
        .await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn request_logs_are_listed_filtered_counted_and_expired() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (st, _) = s
        .call("GET", "/api/collections/nope/records", None, None)
        .await;
    assert_eq!(st, 404);
    s.call("GET", "/api/collections", Some(&su), None).await;
    s.call("GET", "/api/health", None, None).await;
    s.call(
        "GET",
        "/api/files/a/b/c.png?thumb=1x1&token=s3cr3t-file-token",
        None,
        None,
    )
    .await;

    let missing = wait_for("the 404 entry", || async {
        let l = logs(&s, &su, "data.status = 404 && data.url ~ 'nope'").await;
        (l["totalItems"] == 1).then_some(l)
    })
    .await;
    let e = &missing["items"][0];
    assert_eq!(e["level"], 8);
    assert_eq!(e["message"], "GET /api/collections/nope/records");
    assert_eq!(e["data"]["type"], "request");
    assert_eq!(e["data"]["method"], "GET");
    assert_eq!(e["data"]["auth"], "");
    assert_eq!(e["data"]["userIP"], "127.0.0.1");
    assert!(e["data"]["execTime"].as_f64().is_some());
    assert_eq!(e["data"]["error"], "Missing collection context.", "{e}");
    assert!(e["created"].as_str().unwrap().ends_with('Z'));

    let su_entry = wait_for("the superuser's entry", || async {
        let l = logs(&s, &su, "data.url = '/api/collections'").await;
        (l["totalItems"] == 1).then_some(l)
    })
    .await;
    assert_eq!(su_entry["items"][0]["level"], 0);
    assert_eq!(su_entry["items"][0]["data"]["auth"], "_superusers");
    // logAuthId is off by default
    assert!(su_entry["items"][0]["data"].get("authId").is_none());

    // Tokens in query strings never reach the logs; health checks are not logged.
    let file = wait_for("the file request's entry", || async {
        let l = logs(&s, &su, "data.url ~ '/api/files/'").await;
        (l["totalItems"] == 1).then_some(l)
    })
    .await;
    assert_eq!(
        file["items"][0]["data"]["url"],
        "/api/files/a/b/c.png?thumb=1x1&token=***"
    );
    let all = logs(&s, &su, "").await;
    assert!(!all.to_string().contains("s3cr3t"), "{all}");
    assert_eq!(
        logs(&s, &su, "data.url = '/api/health'").await["totalItems"],
        0
    );

    // view, stats, errors
    let id = e["id"].as_str().unwrap();
    let (st, one) = s
        .call("GET", &format!("/api/logs/{id}"), Some(&su), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(one["id"], id);
    let (st, _) = s.call("GET", "/api/logs/nope", Some(&su), None).await;
    assert_eq!(st, 404);
    let (st, stats) = s.call("GET", "/api/logs/stats", Some(&su), None).await;
    assert_eq!(st, 200);
    let total: i64 = stats
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["total"].as_i64().unwrap())
        .sum();
    assert!(total >= 3, "{stats}");
    assert!(stats[0]["date"].as_str().unwrap().ends_with(":00:00.000Z"));
    let (st, _) = s
        .call(
            "GET",
            &format!("/api/logs/stats?filter={}", enc("level >")),
            Some(&su),
            None,
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = s.call("GET", "/api/logs", None, None).await;
    assert_eq!(st, 401);

    // Expiry: entries older than logs.maxDays go when the cleanup job runs.
    {
        let conn = rusqlite::Connection::open(s.dir.join("auxiliary.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let n = conn
            .execute(
                "UPDATE _logs SET created = '2000-01-01 00:00:00.000Z' WHERE json_extract(data, '$.status') = 404",
                [],
            )
            .unwrap();
        assert!(n >= 1);
    }
    let (st, _) = s
        .call("POST", "/api/crons/__pbLogsCleanup__", Some(&su), None)
        .await;
    assert_eq!(st, 204);
    wait_for("the cleanup", || async {
        (logs(&s, &su, "data.status = 404").await["totalItems"] == 0).then_some(())
    })
    .await;
    assert!(logs(&s, &su, "").await["totalItems"].as_i64().unwrap() >= 2);

    // minLevel: raising it deletes the entries below at once (as PocketBase).
    patch_settings(&s, &su, json!({"logs": {"minLevel": 8}})).await;
    assert_eq!(logs(&s, &su, "level < 8").await["totalItems"], 0);

    // maxDays 0: nothing more is logged.
    patch_settings(&s, &su, json!({"logs": {"maxDays": 0}})).await;
    s.call("GET", "/api/collections/nope2/records", None, None)
        .await;
    s.call("GET", "/api/logs?filter=bad%20%3D", Some(&su), None)
        .await;
    let conn = rusqlite::Connection::open(s.dir.join("auxiliary.db")).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let left: i64 = conn
        .query_row("SELECT count(*) FROM _logs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        left, 0,
        "nothing is logged (and what was there went) with maxDays 0"
    );

    let (st, body) = s
        .call(
            "PATCH",
            "/api/settings",
            Some(&su),
            Some(json!({"logs": {"maxDays": -1}})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["data"]["logs"]["maxDays"]["code"],
        "validation_min_greater_equal_than_required"
    );
}

async fn notes_collection(s: &Server, su: &str) {
    let (st, body) = s
        .call(
            "POST",
            "/api/collections",
            Some(su),
            Some(json!({
                "name": "notes", "type": "base",
                "listRule": "", "viewRule": "", "createRule": "",
                "fields": [{"name": "title", "type": "text"}]
            })),
        )
        .await;
    assert_eq!(st, 200, "{body}");
}

/// (time acknowledged, id) of every create the load got a 200 for.
type Acked = Arc<Mutex<Vec<(Instant, String)>>>;

fn start_load(
    s: &Server,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acked: Acked,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|w| {
            let (http, url, stop, acked) =
                (s.http.clone(), s.url.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let r = http
                        .post(format!("{url}/api/collections/notes/records"))
                        .json(&json!({"title": format!("w{w}-{i}")}))
                        .send()
                        .await;
                    if let Ok(r) = r
                        && r.status().is_success()
                        && let Ok(v) = r.json::<Value>().await
                    {
                        let id = v["id"].as_str().unwrap_or_default().to_string();
                        acked.lock().unwrap().push((Instant::now(), id));
                    }
                }
            })
        })
        .collect()
}

fn ids_in(db: &std::path::Path) -> HashSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut st = conn.prepare("SELECT id FROM notes").unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn file_token(s: &Server, su: &str) -> String {
    let (st, t) = s.call("POST", "/api/files/token", Some(su), None).await;
    assert_eq!(st, 200, "{t}");
    t["token"].as_str().unwrap().to_string()
}

async fn download(s: &Server, su: &str, key: &str) -> Vec<u8> {
    let token = file_token(s, su).await;
    let r = s
        .http
        .get(format!("{}/api/backups/{key}?token={token}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(key)
    );
    r.bytes().await.unwrap().to_vec()
}

/// Waits until the server answers again after a restore's restart and `gone` no longer
/// exists (so the restored data is what it serves); returns a new superuser token.
async fn wait_restored(s: &Server, gone: &str) -> String {
    wait_for("the restored server", || async {
        let (st, _) = try_get(s, &format!("/api/collections/notes/records/{gone}")).await?;
        (st == 404).then_some(())
    })
    .await;
    s.superuser_token().await
}

/// A guest GET that may find the server restarting (None then).
async fn try_get(s: &Server, path: &str) -> Option<(u16, Value)> {
    let r = s.http.get(format!("{}{path}", s.url)).send().await.ok()?;
    let st = r.status().as_u16();
    Some((st, r.json::<Value>().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn a_backup_under_write_load_restores_every_write_acknowledged_before_it() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    notes_collection(&s, &su).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let load = start_load(&s, stop.clone(), acked.clone());
    wait_for("some writes", || async {
        (acked.lock().unwrap().len() > 200).then_some(())
    })
    .await;

    let started = Instant::now();
    let (st, body) = s
        .call(
            "POST",
            "/api/backups",
            Some(&su),
            Some(json!({"name": "load.zip"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let finished = Instant::now();
    // The writes went on during the backup, and after it.
    let during = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t > started && *t < finished)
        .count();
    wait_for("writes after the backup", || async {
        (acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t > finished)
            .count()
            > 50)
            .then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in load {
        h.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let before: HashSet<String> = acked
        .iter()
        .filter(|(t, _)| *t < started)
        .map(|(_, id)| id.clone())
        .collect();
    let after: Vec<String> = acked
        .iter()
        .filter(|(t, _)| *t > finished)
        .map(|(_, id)| id.clone())
        .collect();
    eprintln!(
        "acknowledged: {} before the backup, {during} during, {} after",
        before.len(),
        after.len()
    );

    // A second backup of the same name is refused; an invalid name too.
    let (st, body) = s
        .call(
            "POST",
            "/api/backups",
            Some(&su),
            Some(json!({"name": "load.zip"})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["data"]["name"]["code"],
        "validation_backup_name_exists"
    );
    let (st, _) = s
        .call(
            "POST",
            "/api/backups",
            Some(&su),
            Some(json!({"name": "../x.zip"})),
        )
        .await;
    assert_eq!(st, 400);

    let (st, list) = s.call("GET", "/api/backups", Some(&su), None).await;
    assert_eq!(st, 200);
    assert_eq!(list[0]["key"], "load.zip", "{list}");
    assert!(list[0]["size"].as_u64().unwrap() > 0);

    // The archive: PocketBase's layout, a database that passes the integrity check and
    // holds every write acknowledged before the backup started.
    let zip_bytes = download(&s, &su, "load.zip").await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.to_string())
        .collect();
    assert!(names.contains(&"data.db".to_string()), "{names:?}");
    assert!(names.contains(&"auxiliary.db".to_string()), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with("-wal") || n.starts_with("backups"))
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Vec::new();
    zip.by_name("data.db")
        .unwrap()
        .read_to_end(&mut db)
        .unwrap();
    std::fs::write(tmp.path().join("data.db"), db).unwrap();
    let in_archive = ids_in(&tmp.path().join("data.db"));
    let missing: Vec<_> = before
        .iter()
        .filter(|id| !in_archive.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes missing",
        missing.len()
    );

    // A bad file token is refused.
    let r = s
        .http
        .get(format!("{}/api/backups/load.zip?token=nope", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Restore: 204, then the server restarts on the backup's data.
    let (st, body) = s
        .call("POST", "/api/backups/load.zip/restore", Some(&su), None)
        .await;
    assert_eq!(st, 204, "{body}");
    let su = wait_restored(&s, &after[after.len() - 1]).await;
    let live = ids_in(&s.dir.join("data.db"));
    let missing: Vec<_> = before.iter().filter(|id| !live.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost",
        missing.len()
    );
    assert!(
        after.iter().all(|id| !live.contains(id)),
        "writes after the backup are gone"
    );
    assert!(!s.dir.join(".restore_pending").exists());
    assert!(!s.dir.join(".restore_old").exists());
    // The backups folder itself is kept across a restore.
    let (_, list) = s.call("GET", "/api/backups", Some(&su), None).await;
    assert_eq!(list[0]["key"], "load.zip");
}

#[tokio::test]
async fn an_uploaded_backup_restores_and_backups_can_be_deleted() {
    let a = Server::start(BIN).await;
    let su_a = a.superuser_token().await;
    notes_collection(&a, &su_a).await;
    let (st, rec) = a
        .call(
            "POST",
            "/api/collections/notes/records",
            None,
            Some(json!({"title": "from a"})),
        )
        .await;
    assert_eq!(st, 200);
    let id_a = rec["id"].as_str().unwrap().to_string();
    // A stored file travels with the backup.
    let (st, _) = a
        .call(
            "POST",
            "/api/backups",
            Some(&su_a),
            Some(json!({"name": "a.zip"})),
        )
        .await;
    assert_eq!(st, 204);
    let bytes = download(&a, &su_a, "a.zip").await;

    let b = Server::start(BIN).await;
    let su_b = b.superuser_token().await;
    let upload = |name: &'static str, bytes: Vec<u8>| {
        let (http, url, su) = (b.http.clone(), b.url.clone(), su_b.clone());
        async move {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
            let r = http
                .post(format!("{url}/api/backups/upload"))
                .header("Authorization", su)
                .multipart(form)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, body) = upload("from_a.zip", bytes.clone()).await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = upload("from_a.zip", bytes.clone()).await;
    assert_eq!(st, 400);
    assert_eq!(
        body["data"]["file"]["code"],
        "validation_backup_name_exists"
    );
    let (st, body) = upload("junk.zip", b"not a zip".to_vec()).await;
    assert_eq!(st, 400);
    assert_eq!(body["data"]["file"]["code"], "validation_invalid_backup");
    let (st, _) = upload("../evil.zip", bytes.clone()).await;
    assert_eq!(st, 400);
    let (_, list) = b.call("GET", "/api/backups", Some(&su_b), None).await;
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["from_a.zip"]);
    // Guests and plain tokens cannot reach any of it.
    let (st, _) = b.call("GET", "/api/backups", None, None).await;
    assert_eq!(st, 401);

    let (st, _) = b
        .call("POST", "/api/backups/nope.zip/restore", Some(&su_b), None)
        .await;
    assert_eq!(st, 400);
    let (st, body) = b
        .call("POST", "/api/backups/from_a.zip/restore", Some(&su_b), None)
        .await;
    assert_eq!(st, 204, "{body}");
    // B now serves A's data (the superuser's token key came with it: sign in again).
    wait_for("B on A's data", || async {
        let (st, r) = try_get(&b, &format!("/api/collections/notes/records/{id_a}")).await?;
        (st == 200 && r["title"] == "from a").then_some(())
    })
    .await;
    let su_b = b.superuser_token().await;
    let (st, _) = b
        .call("DELETE", "/api/backups/from_a.zip", Some(&su_b), None)
        .await;
    assert_eq!(st, 204);
    let (st, body) = b
        .call("DELETE", "/api/backups/from_a.zip", Some(&su_b), None)
        .await;
    assert_eq!(st, 400, "{body}");
    let (_, list) = b.call("GET", "/api/backups", Some(&su_b), None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn core_cron_jobs_and_the_scheduled_backup() {
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (st, jobs) = s.call("GET", "/api/crons", Some(&su), None).await;
    assert_eq!(st, 200);
    let jobs = ids(&jobs);
    for j in [
        "__pbLogsCleanup__",
        "__pbDBOptimize__",
        "__pbMFACleanup__",
        "__pbOTPCleanup__",
    ] {
        assert!(jobs.iter().any(|x| x == j), "{j} in {jobs:?}");
    }
    assert!(!jobs.iter().any(|x| x == "__pbAutoBackup__"));
    let (st, body) = s.call("POST", "/api/crons/nope", Some(&su), None).await;
    assert_eq!(st, 404);
    assert_eq!(body["message"], "Missing or invalid cron job.");

    let (st, body) = s
        .call(
            "PATCH",
            "/api/settings",
            Some(&su),
            Some(json!({"backups": {"cron": "every day"}})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["data"]["backups"]["cron"]["code"],
        "validation_invalid_cron"
    );
    patch_settings(
        &s,
        &su,
        json!({"meta": {"appName": "Ops Test"}, "backups": {"cron": "0 3 * * *", "cronMaxKeep": 2}}),
    )
    .await;
    let (_, jobs) = s.call("GET", "/api/crons", Some(&su), None).await;
    let auto = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == "__pbAutoBackup__")
        .cloned()
        .expect("the auto-backup job is scheduled");
    assert_eq!(auto["expression"], "0 3 * * *");

    // Three runs (names carry the second), two kept.
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let (st, _) = s
            .call("POST", "/api/crons/__pbAutoBackup__", Some(&su), None)
            .await;
        assert_eq!(st, 204);
        let n = seen.len();
        let key = wait_for("a scheduled backup", || async {
            let (_, list) = s.call("GET", "/api/backups", Some(&su), None).await;
            list.as_array()
                .unwrap()
                .iter()
                .map(|b| b["key"].as_str().unwrap().to_string())
                .find(|k| !seen.contains(k))
        })
        .await;
        assert!(key.starts_with("@auto_pb_backup_ops_test_"), "{key}");
        seen.insert(key);
        assert_eq!(seen.len(), n + 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let (_, list) = s.call("GET", "/api/backups", Some(&su), None).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    patch_settings(&s, &su, json!({"backups": {"cron": ""}})).await;
    let (_, jobs) = s.call("GET", "/api/crons", Some(&su), None).await;
    assert!(!ids(&jobs).iter().any(|x| x == "__pbAutoBackup__"));
}

#[tokio::test]
async fn superusers_are_refused_outside_superuser_ips() {
    let mut s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (st, body) = s
        .call(
            "PATCH",
            "/api/settings",
            Some(&su),
            Some(json!({"superuserIPs": ["nope"]})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["data"]["superuserIPs"]["0"]["code"],
        "validation_invalid_ip_or_subnet"
    );
    patch_settings(
        &s,
        &su,
        json!({"trustedProxy": {"headers": ["X-Real-IP"]}, "superuserIPs": ["10.9.0.0/16"]}),
    )
    .await;
    let get = |ip: Option<&'static str>, token: Option<String>| {
        let (http, url) = (s.http.clone(), s.url.clone());
        async move {
            let mut r = http.get(format!("{url}/api/settings"));
            if let Some(ip) = ip {
                r = r.header("X-Real-IP", ip);
            }
            if let Some(t) = token {
                r = r.header("Authorization", t);
            }
            let r = r.send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, body) = get(None, Some(su.clone())).await;
    assert_eq!(st, 403);
    assert_eq!(
        body["message"],
        "You are not allowed to perform this request."
    );
    assert_eq!(get(Some("10.9.1.2"), Some(su.clone())).await.0, 200);
    assert_eq!(get(Some("10.8.1.2"), Some(su.clone())).await.0, 403);
    // Signing in as a superuser is refused too; guests are not affected.
    let (st, _) = s
        .call(
            "POST",
            "/api/collections/_superusers/auth-with-password",
            None,
            Some(json!({"identity": ferrobase_tests::SUPERUSER_EMAIL, "password": ferrobase_tests::SUPERUSER_PASSWORD})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call("GET", "/api/collections/users/auth-methods", None, None)
        .await;
    assert_eq!(st, 200);

    // Locked out: `superuser ips` without arguments clears the list (the server reads it at
    // its next start).
    s.terminate();
    let (ok, out) = ferrobase_tests::cli(&s.bin, &s.dir, &["superuser", "ips"]);
    assert!(ok, "{out}");
    let again = Server::start_in(&s.bin, &s.dir).await;
    let su = again.superuser_token().await;
    let (st, body) = again.call("GET", "/api/settings", Some(&su), None).await;
    assert_eq!(st, 200);
    assert_eq!(body["superuserIPs"], json!([]));
    drop(again);
    let (ok, out) = ferrobase_tests::cli(&s.bin, &s.dir, &["superuser", "ips", "not-an-ip"]);
    assert!(!ok && out.contains("invalid IP"), "{out}");
}

#[tokio::test]
async fn the_test_mail_goes_through_the_configured_smtp_server() {
    let s = Server::start(BIN).await;
    let sink = SmtpSink::start().await;
    let su = s.superuser_token().await;
    patch_settings(
        &s,
        &su,
        json!({"meta": {"appName": "MailTest"}, "smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port, "tls": false}}),
    )
    .await;
    let (st, body) = s
        .call(
            "POST",
            "/api/settings/test/email",
            Some(&su),
            Some(json!({"email": "ops@example.com", "template": "verification", "collection": "users"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let mail = sink.wait_for("ops@example.com").await;
    assert!(mail.text.contains("MailTest"), "{}", mail.text);
    let (st, body) = s
        .call(
            "POST",
            "/api/settings/test/email",
            Some(&su),
            Some(json!({"email": "x", "template": "nope", "collection": "notes"})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["message"], "Failed to send the test email.");
    assert_eq!(body["data"]["email"]["code"], "validation_is_email");
    assert_eq!(
        body["data"]["collection"]["code"],
        "validation_invalid_auth_collection"
    );
    let (st, body) = s
        .call(
            "POST",
            "/api/settings/test/s3",
            Some(&su),
            Some(json!({"filesystem": "storage"})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not implemented")
    );
}

#[tokio::test]
async fn sigterm_ends_realtime_streams_and_exits_cleanly() {
    let mut s = Server::start(BIN).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut sse = Sse::open(&addr).await;
    let (event, _) = sse.next().await.expect("PB_CONNECT");
    assert_eq!(event, "PB_CONNECT");
    let status = tokio::task::spawn_blocking(move || {
        let st = s.terminate();
        (st, s)
    });
    // The stream ends (no final event), and the process exits 0.
    assert!(sse.next().await.is_none());
    let (st, s) = status.await.unwrap();
    assert!(st.is_some_and(|st| st.success()), "{}", s.log());
    assert!(s.log().contains("realtime streams closed"), "{}", s.log());
}
