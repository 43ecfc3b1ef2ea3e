//! Realtime: PocketBase's SSE protocol (`GET`/`POST /api/realtime`) and the broker that fans
//! committed record changes out to subscribers.
//!
//! - Record changes reach the broker from the writer thread right after their transaction
//!   commits, in commit order (`db::AfterCommit`), through a bounded channel ([`EVENTS`]
//!   batches) read by one fan-out task. The fan-out task only matches topics and hands each
//!   batch to the interested clients' own workers: it never runs a rule, a filter or a render.
//! - Every client has its own worker (a task) with a bounded queue of batches
//!   ([`CLIENT_BATCHES`]). The worker checks each delivery against the subscriber's rule (list
//!   rule for `collection` / `collection/*` topics, view rule for `collection/<id>`) and its
//!   `filter` option, on a snapshot of the record (so deletes are checked on the row as it
//!   was), and serialises it as that subscriber may see it (hidden fields, email visibility,
//!   `expand`, `fields`). Workers share one render per (change, identity, options) through the
//!   batch, so 200 guests on a topic cost one serialisation. An expensive or failing
//!   subscription (a filter that errors at run time, thousands of filtered topics) delays and
//!   fails only its own client; the others' workers run beside it.
//! - A client whose worker falls [`CLIENT_BATCHES`] batches behind, or whose SSE queue falls
//!   [`QUEUE`] messages behind, is disconnected (the SDK reconnects); if the fan-out task
//!   itself falls [`EVENTS`] batches behind, every client is disconnected rather than left
//!   silently missing events.

pub mod sse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use sea_query::{Alias, Expr, Query};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::auth::AuthRecord;
use crate::db::{self, Db, DbError};
use crate::query::compile::{self, Env, Frag};
use crate::query::fexpr;
use crate::records::expand::{self, Tree};
use crate::records::ops::{Access, Caller, RecordError, rule_access, rule_needs_no_row};
use crate::records::{Action, Change, Record, storage_value};
use crate::schema::{Collection, CollectionStore, CollectionType, Registry};

/// Messages a client may fall behind before it is disconnected.
pub const QUEUE: usize = 1024;
/// Change batches a client's worker may fall behind before the client is disconnected.
pub const CLIENT_BATCHES: usize = 256;
/// Change batches the fan-out task may fall behind before every client is disconnected.
pub const EVENTS: usize = 16_384;
/// Deliveries a worker checks in one job on a reader thread, so one client's thousands of
/// filtered topics never hold a reader for long.
const READ_CHUNK: usize = 64;

/// One topic a client subscribed to, with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The topic exactly as subscribed (the SSE event name).
    pub raw: String,
    pub collection: String,
    /// `None` for `collection` and `collection/*`.
    pub record: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// What decides how a change looks to this subscription besides the subscriber's identity
    /// (single-record topic or not, query and headers); computed once, compared per delivery.
    view: String,
}

impl Subscription {
    /// Parses `collection[/*|/id][?options={"query":{},"headers":{}}]`.
    pub fn parse(raw: &str) -> Subscription {
        let (topic, opts) = match raw.split_once("?options=") {
            Some((t, o)) => (t, Some(o)),
            None => (raw, None),
        };
        let (collection, record) = match topic.split_once('/') {
            Some((c, "*")) | Some((c, "")) => (c.to_string(), None),
            Some((c, id)) => (c.to_string(), Some(id.to_string())),
            None => (topic.to_string(), None),
        };
        let mut query = Vec::new();
        let mut headers = Vec::new();
        if let Some(o) = opts {
            let decoded: String = form_urlencoded::parse(format!("x={o}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&decoded) {
                let flat = |v: &Value| -> Vec<(String, String)> {
                    v.as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| {
                                    let s = match v {
                                        Value::String(s) => s.clone(),
                                        other => other.to_string(),
                                    };
                                    (k.clone(), s)
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                query = m.get("query").map(flat).unwrap_or_default();
                headers = m
                    .get("headers")
                    .map(flat)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.to_lowercase().replace('-', "_"), v))
                    .collect();
            }
        }
        let view = format!("{}\u{1}{query:?}\u{1}{headers:?}", record.is_some());
        Subscription {
            raw: raw.to_string(),
            collection,
            record,
            query,
            headers,
            view,
        }
    }

    fn param(&self, key: &str) -> &str {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

#[derive(Debug, Default)]
struct ClientState {
    subscriptions: Vec<Arc<Subscription>>,
    /// Shared with each pending delivery (cloned per change only when a view is rendered).
    auth: Option<Arc<AuthRecord>>,
    /// Set by the first subscribe request; later ones must carry the same auth.
    auth_bound: bool,
}

/// A connected SSE client.
pub struct Client {
    pub id: String,
    tx: mpsc::Sender<Bytes>,
    /// The client's worker; dropped with the client, which ends the worker.
    work: mpsc::Sender<Arc<Batch>>,
    state: Mutex<ClientState>,
}

/// One commit's changes as handed to the clients' workers, with the renders they share.
struct Batch {
    changes: Vec<Change>,
    registry: Arc<Registry>,
    renders: Mutex<HashMap<OwnedViewKey, Option<String>>>,
}

type OwnedViewKey = (usize, Option<(String, String)>, String);

impl Client {
    fn state(&self) -> std::sync::MutexGuard<'_, ClientState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Queues a raw SSE message; false when the client is gone or too far behind.
    pub fn send(&self, msg: Bytes) -> bool {
        self.tx.try_send(msg).is_ok()
    }

    /// Removes the subscription to `topic`; true if the client had it. The OAuth2 redirect
    /// uses it so that a `state` (the client id) delivers one code only.
    pub fn take_subscription(&self, topic: &str) -> bool {
        let mut st = self.state();
        let before = st.subscriptions.len();
        st.subscriptions
            .retain(|s| s.raw != topic && s.collection != topic);
        st.subscriptions.len() != before
    }

    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.state()
            .subscriptions
            .iter()
            .any(|s| s.raw == topic || s.collection == topic)
    }
}

/// Formats one SSE message as PocketBase does (no space after the colons).
pub fn message(client_id: &str, event: &str, data: &str) -> Bytes {
    Bytes::from(format!("id:{client_id}\nevent:{event}\ndata:{data}\n\n"))
}

/// Errors of subscription requests.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("missing or invalid client id")]
    UnknownClient,
    #[error("the current and the previous request authorization don't match")]
    AuthMismatch,
}

/// The realtime broker. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    clients: RwLock<HashMap<String, Arc<Client>>>,
    events: mpsc::Sender<Vec<Change>>,
    db: Db,
}

impl Broker {
    /// Starts the broker and its fan-out task.
    pub fn start(db: Db, collections: CollectionStore) -> Broker {
        let (tx, mut rx) = mpsc::channel::<Vec<Change>>(EVENTS);
        let broker = Broker {
            inner: Arc::new(Inner {
                clients: RwLock::new(HashMap::new()),
                events: tx,
                db,
            }),
        };
        let b = broker.clone();
        tokio::spawn(async move {
            while let Some(changes) = rx.recv().await {
                b.fan_out(&collections, changes);
            }
        });
        broker
    }

    /// Hands committed changes to the fan-out task (called right after commit, on the
    /// writer thread). With no client connected there is no one to tell, and the changes are
    /// dropped here instead of waking the fan-out task for every commit: a client that
    /// connects later only sees changes committed after it subscribed, as with any timing.
    pub fn publish(&self, changes: Vec<Change>) {
        if !changes.is_empty()
            && self.client_count() > 0
            && let Err(mpsc::error::TrySendError::Full(_)) = self.inner.events.try_send(changes)
        {
            tracing::error!(
                "realtime fan-out is {EVENTS} commits behind; disconnecting every client"
            );
            self.clients_write().clear();
        }
    }

    fn clients_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Client>>> {
        match self.inner.clients.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn clients_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Client>>> {
        match self.inner.clients.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Registers a new client; returns it and the receiving end of its queue.
    pub fn connect(&self) -> (Arc<Client>, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (work, work_rx) = mpsc::channel(CLIENT_BATCHES);
        let client = Arc::new(Client {
            id: crate::schema::ids::random_alphanumeric(40),
            tx,
            work,
            state: Mutex::new(ClientState::default()),
        });
        tokio::spawn(client_worker(
            self.clone(),
            Arc::downgrade(&client),
            work_rx,
        ));
        self.clients_write()
            .insert(client.id.clone(), client.clone());
        (client, rx)
    }

    /// Ends every client's stream (at shutdown): each SSE response finishes cleanly, with no
    /// final event, as PocketBase's do.
    pub fn close_all(&self) {
        let n = {
            let mut g = self.clients_write();
            let n = g.len();
            g.clear();
            n
        };
        if n > 0 {
            tracing::info!(clients = n, "realtime streams closed");
        }
    }

    pub fn disconnect(&self, id: &str) {
        self.clients_write().remove(id);
    }

    pub fn client(&self, id: &str) -> Option<Arc<Client>> {
        self.clients_read().get(id).cloned()
    }

    pub fn client_count(&self) -> usize {
        self.clients_read().len()
    }

    /// Replaces a client's subscriptions; binds its auth on the first call.
    pub fn subscribe(
        &self,
        client_id: &str,
        auth: Option<AuthRecord>,
        topics: Vec<String>,
    ) -> Result<(), RealtimeError> {
        let client = self.client(client_id).ok_or(RealtimeError::UnknownClient)?;
        let mut st = client.state();
        let same = |a: Option<&AuthRecord>, b: Option<&AuthRecord>| match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.collection.id == y.collection.id && x.record.id() == y.record.id()
            }
            _ => false,
        };
        if st.auth_bound && st.auth.is_some() && !same(st.auth.as_deref(), auth.as_ref()) {
            return Err(RealtimeError::AuthMismatch);
        }
        st.auth = auth.map(Arc::new);
        st.auth_bound = true;
        st.subscriptions = topics
            .iter()
            .map(|t| Arc::new(Subscription::parse(t)))
            .collect();
        Ok(())
    }

    /// Keeps signed-in clients' auth in step with their record: refreshed on update, dropped
    /// to guest when the record is deleted or its token key changed.
    fn refresh_auth(&self, changes: &[Change]) {
        let clients: Vec<Arc<Client>> = self.clients_read().values().cloned().collect();
        for ch in changes.iter().filter(|c| c.collection.is_auth()) {
            for client in &clients {
                let mut st = client.state();
                let Some(a) = &st.auth else { continue };
                if a.collection.id != ch.collection.id || a.record.id() != ch.record.id() {
                    continue;
                }
                let key_changed = a.record.get_str("tokenKey") != ch.record.get_str("tokenKey");
                if ch.action == Action::Delete || key_changed {
                    st.auth = None;
                } else if let Some(a) = &mut st.auth {
                    Arc::make_mut(a).record = ch.record.clone();
                }
            }
        }
    }

    /// Hands a commit's changes to the workers of the clients subscribed to any of them.
    fn fan_out(&self, collections: &CollectionStore, changes: Vec<Change>) {
        self.refresh_auth(&changes);
        let clients: Vec<Arc<Client>> = self.clients_read().values().cloned().collect();
        if clients.is_empty() {
            return;
        }
        let batch = Arc::new(Batch {
            changes,
            registry: collections.snapshot(),
            renders: Mutex::new(HashMap::new()),
        });
        for client in clients {
            let interested = {
                let st = client.state();
                batch.changes.iter().any(|ch| {
                    ch.collection.kind != CollectionType::View
                        && st.subscriptions.iter().any(|sub| matches(sub, ch))
                })
            };
            if !interested {
                continue;
            }
            let b = batch.clone();
            if client.work.try_send(b).is_err() {
                tracing::info!(client = %client.id, "realtime client too far behind; disconnecting");
                self.disconnect(&client.id);
            }
        }
    }
}

fn matches(sub: &Subscription, ch: &Change) -> bool {
    (sub.collection == ch.collection.id || sub.collection.eq_ignore_ascii_case(&ch.collection.name))
        && sub.record.as_deref().is_none_or(|r| r == ch.record.id())
}

/// One client's worker: checks and renders the batches handed to it, in order, and queues the
/// messages on the client's SSE stream. Ends when the client is dropped.
async fn client_worker(
    broker: Broker,
    client: std::sync::Weak<Client>,
    mut rx: mpsc::Receiver<Arc<Batch>>,
) {
    while let Some(batch) = rx.recv().await {
        let Some(client) = client.upgrade() else {
            return;
        };
        let work: Vec<Delivery> = {
            let st = client.state();
            let mut w = Vec::new();
            for (i, ch) in batch.changes.iter().enumerate() {
                if ch.collection.kind == CollectionType::View {
                    continue;
                }
                for sub in st.subscriptions.iter().filter(|s| matches(s, ch)) {
                    w.push((i, client.clone(), sub.clone(), st.auth.clone()));
                }
            }
            w
        };
        if work.is_empty() {
            continue;
        }
        let mut messages = Vec::new();
        if renders_without_db(&batch.changes, &work) {
            messages = render_deliveries(None, &batch, &work);
        } else {
            let mut work = work;
            while !work.is_empty() {
                let rest = work.split_off(work.len().min(READ_CHUNK));
                let (b, chunk) = (batch.clone(), std::mem::replace(&mut work, rest));
                match broker
                    .inner
                    .db
                    .read(move |conn| Ok::<_, DbError>(render_deliveries(Some(conn), &b, &chunk)))
                    .await
                {
                    Ok(m) => messages.extend(m),
                    Err(e) => {
                        tracing::warn!(client = %client.id, error = %e, "realtime delivery failed")
                    }
                }
            }
        }
        for msg in messages {
            if !client.send(msg) {
                tracing::info!(client = %client.id, "realtime client too far behind; disconnecting");
                broker.disconnect(&client.id);
                return;
            }
        }
    }
}

/// A row snapshot usable as `FROM (…) AS m` in rule checks.
fn snapshot_select(c: &Collection, r: &Record) -> sea_query::SelectStatement {
    let mut q = Query::select();
    for f in &c.fields {
        let v = r.data.get(&f.name).cloned().unwrap_or(Value::Null);
        q.expr_as(Expr::val(storage_value(f, &v)), Alias::new(&f.name));
    }
    q
}

/// The subscriber may see the change, checked with a query when the rule or the
/// subscription's filter has a condition on the row. `conn` is `None` only when
/// [`renders_without_db`] said no query is needed.
fn allowed(
    conn: Option<&crate::db::Conn>,
    registry: &Registry,
    c: &Collection,
    r: &Record,
    caller: &Caller,
    sub: &Subscription,
) -> Result<bool, RecordError> {
    let rule = if sub.record.is_some() {
        &c.rules.view
    } else {
        &c.rules.list
    };
    let access = match rule_access(registry, c, rule, caller, &Map::new()) {
        Ok(a) => a,
        Err(RecordError::Forbidden(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut conds: Vec<Frag> = Vec::new();
    if let Access::Where(f) = access {
        conds.push(f);
    }
    let filter = sub.param("filter");
    if !filter.trim().is_empty() {
        let request = caller.request_info(&Map::new());
        let env = Env {
            registry,
            request: &request,
            trusted: false,
            superuser: caller.is_superuser(),
        };
        match fexpr::parse(filter)
            .map_err(|e| e.to_string())
            .and_then(|e| compile::compile(&e, c, "m", &env).map_err(|e| e.to_string()))
        {
            Ok(f) => conds.push(f),
            Err(_) => return Ok(false),
        }
    }
    if conds.is_empty() {
        return Ok(true);
    }
    let conn = conn.ok_or_else(no_connection)?;
    let mut q = Query::select();
    q.expr(Expr::val(1))
        .from_subquery(snapshot_select(c, r), Alias::new("m"));
    for f in conds {
        q.and_where(f.into_expr());
    }
    Ok(!db::query_rows(conn, &q, |_| Ok(()))?.is_empty())
}

/// One delivery to check: which change, to whom, for which subscription, as whom.
type Delivery = (
    usize,
    Arc<Client>,
    Arc<Subscription>,
    Option<Arc<AuthRecord>>,
);

/// What makes two deliveries look the same: the change, the identity (collection id, record
/// id) and the subscription's view.
type ViewKey<'a> = (usize, Option<(&'a str, &'a str)>, &'a str);

fn no_connection() -> DbError {
    DbError::Internal("realtime delivery needs a query but has no connection".into())
}

/// At most this many distinct views are rendered on the broker's task instead of a reader.
const INLINE_VIEWS: usize = 16;

/// True when every delivery can be checked and rendered without a query: its rule is public
/// (`""`), superuser-only (`null`) or bypassed by a superuser, and it has no `filter` and no
/// `expand`. Only a few distinct views qualify, so rendering them never holds an async worker
/// for long. Such a fan-out skips the hand-off to a reader thread and back (on a busy machine
/// each thread hand-off waits for a core).
fn renders_without_db(changes: &[Change], work: &[Delivery]) -> bool {
    let mut views: Vec<ViewKey<'_>> = Vec::new();
    for (i, _, sub, auth) in work {
        let c = &changes[*i].collection;
        let rule = if sub.record.is_some() {
            &c.rules.view
        } else {
            &c.rules.list
        };
        let superuser = auth.as_ref().is_some_and(|a| a.is_superuser());
        if !rule_needs_no_row(rule, superuser)
            || !sub.param("filter").trim().is_empty()
            || !sub.param("expand").trim().is_empty()
        {
            return false;
        }
        let key = view_key(*i, auth, sub);
        if !views.contains(&key) {
            if views.len() == INLINE_VIEWS {
                return false;
            }
            views.push(key);
        }
    }
    true
}

fn view_key<'a>(i: usize, auth: &'a Option<Arc<AuthRecord>>, sub: &'a Subscription) -> ViewKey<'a> {
    let who = auth
        .as_ref()
        .map(|a| (a.collection.id.as_str(), a.record.id()));
    (i, who, sub.view.as_str())
}

/// Checks and serialises one client's deliveries of a batch; views already rendered for
/// another client of the batch are reused. A delivery that fails (e.g. a filter that errors at
/// run time) is skipped for this subscription alone. `conn` is `None` when
/// [`renders_without_db`] holds.
fn render_deliveries(
    conn: Option<&crate::db::Conn>,
    batch: &Batch,
    work: &[Delivery],
) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(work.len());
    for (i, client, sub, auth) in work {
        let ch = &batch.changes[*i];
        let key: OwnedViewKey = {
            let (i, who, view) = view_key(*i, auth, sub);
            (
                i,
                who.map(|(a, b)| (a.to_string(), b.to_string())),
                view.to_string(),
            )
        };
        let cached = batch
            .renders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let data = match cached {
            Some(d) => d,
            None => {
                let d = match render_one(conn, &batch.registry, ch, sub, auth) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::debug!(client = %client.id, topic = %sub.raw, error = %e, "realtime subscription check failed; skipped for this subscriber");
                        None
                    }
                };
                batch
                    .renders
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, d.clone());
                d
            }
        };
        if let Some(data) = data {
            out.push(message(&client.id, &sub.raw, &data));
        }
    }
    out
}

/// The event data of change `ch` for one subscription and identity, or `None` when the
/// subscriber may not see it.
fn render_one(
    conn: Option<&crate::db::Conn>,
    registry: &Registry,
    ch: &Change,
    sub: &Subscription,
    auth: &Option<Arc<AuthRecord>>,
) -> Result<Option<String>, DbError> {
    let caller = Caller {
        auth: auth.as_deref().cloned(),
        query: sub.query.clone(),
        headers: sub.headers.clone(),
        method: "GET".into(),
        context: "realtime".into(),
        system: false,
    };
    match allowed(conn, registry, &ch.collection, &ch.record, &caller, sub) {
        Ok(true) => {
            let spec = sub.param("expand");
            let expanded = if spec.trim().is_empty() {
                vec![expand::Expanded {
                    record: ch.record.clone(),
                    expand: None,
                }]
            } else {
                expand::expand(
                    conn.ok_or_else(no_connection)?,
                    registry,
                    &caller,
                    &ch.collection,
                    vec![ch.record.clone()],
                    &Tree::parse(spec),
                )
                .map_err(|e| match e {
                    RecordError::Db(d) => d,
                    other => DbError::Internal(other.to_string()),
                })?
            };
            let rec = expanded
                .first()
                .map(|e| expand::render(registry, e, &caller))
                .unwrap_or(Value::Null);
            let fields = sub.param("fields");
            let rec = crate::api::fields::pick(rec, Some(fields));
            Ok(Some(
                json!({"action": ch.action.as_str(), "record": rec}).to_string(),
            ))
        }
        Ok(false) => Ok(None),
        Err(RecordError::Db(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_topics_and_options() {
        let s = Subscription::parse("posts/*");
        assert_eq!(
            (s.collection.as_str(), s.record.as_deref()),
            ("posts", None)
        );
        let s = Subscription::parse("posts/abc");
        assert_eq!(s.record.as_deref(), Some("abc"));
        let opts = form_urlencoded::byte_serialize(
            br#"{"query":{"filter":"a = 1","expand":"author"},"headers":{"X-Token":"t"}}"#,
        )
        .collect::<String>();
        let s = Subscription::parse(&format!("posts?options={opts}"));
        assert_eq!(s.collection, "posts");
        assert_eq!(s.param("filter"), "a = 1");
        assert_eq!(s.param("expand"), "author");
        assert_eq!(s.headers, vec![("x_token".to_string(), "t".to_string())]);
    }

    #[test]
    fn messages_have_no_space_after_colons() {
        let m = message("cid", "posts/*", "{}");
        assert_eq!(&m[..], b"id:cid\nevent:posts/*\ndata:{}\n\n");
    }
}
