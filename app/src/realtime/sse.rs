//! The SSE response stream of one client: `PB_CONNECT` first, then queued messages; closed
//! after [`IDLE`] without messages or [`MAX_LIFETIME`] in all (PocketBase's limits; the SDK
//! reconnects and resubscribes).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

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
    /// Reset after every message (one timer per client, not one per message).
    idle: Pin<Box<Sleep>>,
    end: Pin<Box<Sleep>>,
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
        idle: Box::pin(tokio::time::sleep(IDLE)),
        end: Box::pin(tokio::time::sleep(MAX_LIFETIME)),
        _guard: Guard {
            broker,
            id: client.id.clone(),
        },
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if let Some(first) = st.first.take() {
            return Some((Ok(first), st));
        }
        let msg = tokio::select! {
            msg = st.rx.recv() => msg,
            _ = &mut st.idle => None,
            _ = &mut st.end => None,
        };
        let msg = msg?;
        st.idle.as_mut().reset(Instant::now() + IDLE);
        Some((Ok(msg), st))
    })
}
