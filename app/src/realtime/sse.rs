//! The SSE response stream of one client: `PB_CONNECT` first, then queued messages; closed
//! after [`IDLE`] without messages or [`MAX_LIFETIME`] in all (PocketBase's limits; the SDK
//! reconnects and resubscribes).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Broker, Client, message};

pub const IDLE: Duration = Duration::from_secs(5 * 60);
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Unregisters the client when the stream is dropped (client gone, timeout, shutdown).
struct Guard {
    broker: Broker,
    id: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.broker.disconnect(&self.id);
    }
}

struct State {
    rx: mpsc::Receiver<Bytes>,
    first: Option<Bytes>,
    deadline: Instant,
    _guard: Guard,
}

/// The body stream for a newly connected client.
pub fn stream(
    broker: Broker,
    client: Arc<Client>,
    rx: mpsc::Receiver<Bytes>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let connect = message(
        &client.id,
        "PB_CONNECT",
        &serde_json::json!({"clientId": client.id}).to_string(),
    );
    let state = State {
        rx,
        first: Some(connect),
        deadline: Instant::now() + MAX_LIFETIME,
        _guard: Guard {
            broker,
            id: client.id.clone(),
        },
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if let Some(first) = st.first.take() {
            return Some((Ok(first), st));
        }
        let idle = tokio::time::sleep(IDLE);
        let end = tokio::time::sleep_until(st.deadline);
        tokio::select! {
            msg = st.rx.recv() => msg.map(|m| (Ok(m), st)),
            _ = idle => None,
            _ = end => None,
        }
    })
}
