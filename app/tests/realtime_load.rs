//! Realtime under load: many SSE clients on one server, many writes. Every client must get
//! every event it may see, none it may not, none lost; and a client that stops reading must
//! not hold the others back (it is disconnected when its queue fills).
//!
//! Size: `FERROBASE_LOAD_CLIENTS` (default 5000) x `FERROBASE_LOAD_WRITES` (default 1000);
//! `FERROBASE_LOAD_STALLED=0` leaves out the client that stops reading (to compare p99).
//! Latency percentiles are printed, never asserted (timing does not belong in tests).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrobase_tests::{Server, Sse};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_ferrobase");

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn subscribe(s: &Server, client_id: &str, topic: &str) {
    let (st, body) = s
        .call(
            "POST",
            "/api/realtime",
            None,
            Some(json!({"clientId": client_id, "subscriptions": [topic]})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_subscribers_lose_nothing_and_see_only_what_they_may() {
    let clients = env_usize("FERROBASE_LOAD_CLIENTS", 5000);
    let writes = env_usize("FERROBASE_LOAD_WRITES", 1000);
    let s = Server::start(BIN).await;
    let su = s.superuser_token().await;
    let (st, body) = s
        .call(
            "POST",
            "/api/collections",
            Some(&su),
            Some(json!({"name":"feed","listRule":"secret = false",
            "fields":[{"name":"n","type":"number"},{"name":"secret","type":"bool"}]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let addr = s.url.trim_start_matches("http://").to_string();

    // A client that subscribes and never reads again.
    let with_stalled = env_usize("FERROBASE_LOAD_STALLED", 1) != 0;
    let mut stalled = None;
    if with_stalled {
        let mut c = Sse::open(&addr).await;
        let (_, data) = c.next().await.expect("PB_CONNECT");
        let id = serde_json::from_str::<Value>(&data).unwrap()["clientId"]
            .as_str()
            .unwrap()
            .to_string();
        subscribe(&s, &id, "feed/*").await;
        stalled = Some(c);
    }

    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; writes]));
    let mut readers = Vec::with_capacity(clients);
    for batch in (0..clients).collect::<Vec<_>>().chunks(250) {
        let mut opened = Vec::new();
        for _ in batch {
            let addr = addr.clone();
            opened.push(tokio::spawn(async move {
                let mut c = Sse::open(&addr).await;
                let (event, data) = c.next().await.expect("PB_CONNECT");
                assert_eq!(event, "PB_CONNECT");
                let id = serde_json::from_str::<Value>(&data).unwrap()["clientId"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (c, id)
            }));
        }
        for o in opened {
            let (mut c, id) = o.await.unwrap();
            subscribe(&s, &id, "feed/*").await;
            let sent_at = sent_at.clone();
            let expected = writes - writes.div_ceil(10);
            readers.push(tokio::spawn(async move {
                let mut seen = HashSet::new();
                let mut latencies = Vec::with_capacity(expected);
                let deadline = Instant::now() + Duration::from_secs(300);
                while seen.len() < expected && Instant::now() < deadline {
                    let Ok(Some((event, data))) =
                        tokio::time::timeout(Duration::from_secs(60), c.next()).await
                    else {
                        break;
                    };
                    assert_eq!(event, "feed/*");
                    let v: Value = serde_json::from_str(&data).unwrap();
                    let n = v["record"]["n"].as_u64().unwrap() as usize;
                    assert_eq!(
                        v["record"]["secret"], false,
                        "a client got an event it may not see"
                    );
                    assert!(seen.insert(n), "duplicate event {n}");
                    if let Some(t) = sent_at.lock().await[n] {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                (seen.len(), latencies)
            }));
        }
    }
    assert_eq!(readers.len(), clients);

    let started = Instant::now();
    for n in 0..writes {
        let secret = n % 10 == 0;
        sent_at.lock().await[n] = Some(Instant::now());
        let (st, body) = s
            .call(
                "POST",
                "/api/collections/feed/records",
                Some(&su),
                Some(json!({"n": n, "secret": secret})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }
    let write_secs = started.elapsed().as_secs_f64();
    let expected = writes - writes.div_ceil(10);
    let mut all = Vec::new();
    for r in readers {
        let (count, lat) = r.await.unwrap();
        assert_eq!(count, expected, "a client lost events");
        all.extend(lat);
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!(
        "realtime load: {clients} clients x {writes} writes in {write_secs:.1}s; {} deliveries; latency p50 {:.1} ms, p99 {:.1} ms ({})",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        if with_stalled {
            "with one stalled client"
        } else {
            "no stalled client"
        }
    );
    drop(stalled);
}
