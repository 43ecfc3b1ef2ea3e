//! Connections to the embedded SQLite database.
//!
//! SQLite allows one writer at a time, so Ferrobase gives the database exactly one writer: a
//! dedicated OS thread owns the only read-write connection and runs every write as a closure
//! shipped to it over a channel. Concurrent writes are committed together (group commit): the
//! writer drains what is queued (up to [`MAX_GROUP`]), opens one `BEGIN IMMEDIATE` transaction,
//! runs each job inside its own `SAVEPOINT` so a failing job rolls back alone, commits once, and
//! only then answers every caller. Nobody is told "done" before the commit is durable.
//!
//! Checkpoints (copying committed WAL pages back into the database file, with its fsyncs) run on
//! a third kind of thread, the checkpointer (at a lower priority), so the writer never stalls on
//! them: a WAL hook on the writer's connection nudges it each time the WAL has grown by
//! [`DbOptions::checkpoint_pages`] pages.
//! Under sustained writes a passive checkpoint never leaves the WAL empty (the writer appends
//! while it copies), and SQLite only starts the WAL over from its beginning after a checkpoint
//! that left nothing behind. So once the WAL holds [`DbOptions::checkpoint_restart_pages`]
//! pages, the checkpointer, right after a pass, asks the writer to copy the little that was
//! appended during that pass itself, between two transactions; the next transaction then
//! starts the WAL over. Past [`DbOptions::checkpoint_hard_pages`] (the checkpointer starved
//! of CPU) the writer checkpoints after every commit, as SQLite's auto-checkpoint would.
//!
//! Reads go to a small pool of reader threads, each owning a `query_only` connection; under WAL
//! they never block the writer nor each other. Pragmas are applied to *every* connection as it is
//! opened, never to "whichever pooled connection runs a PRAGMA".
//!
//! Statements are built with sea-query and bound with `sea-query-rusqlite`
//! ([`query_rows`], [`execute`]); values never enter SQL text.

pub mod entities;
pub mod migrate;
mod value;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::OpenFlags;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr};
use sea_query::SqliteQueryBuilder;
use tokio::sync::oneshot;

pub use value::{SqlValue, SqlValueRef, value_ref_to_json};

/// A row of a query result (SeaORM's).
pub type Row = sea_orm::QueryResult;

/// The most jobs the writer commits in one transaction.
pub const MAX_GROUP: usize = 64;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Orm(#[from] DbErr),
    #[error("the database executor has stopped")]
    Closed,
    #[error("a database job panicked")]
    Panicked,
    #[error("the write transaction could not begin")]
    Unavailable,
    #[error("the write transaction failed to commit")]
    CommitFailed,
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl DbError {
    /// True when the error is a UNIQUE constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self.sqlite(), Some(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    }

    /// The SQLite error underneath, whichever way it came (the raw connection or SeaORM).
    pub fn sqlite(&self) -> Option<&rusqlite::Error> {
        use sea_orm::RuntimeErr;
        match self {
            DbError::Sqlite(e) => Some(e),
            DbError::Orm(
                DbErr::Exec(RuntimeErr::Rusqlite(e))
                | DbErr::Query(RuntimeErr::Rusqlite(e))
                | DbErr::Conn(RuntimeErr::Rusqlite(e)),
            ) => Some(e),
            _ => None,
        }
    }
}

/// One executor thread's connection to the database, what every job is handed.
///
/// Statements go through SeaORM: a [`DatabaseConnection`] on its `rusqlite` driver, which owns
/// the SQLite connection the storage layer opened and configured. `Conn` implements
/// [`ConnectionTrait`], so entities ([`entities`]) take it directly
/// (`entities::param::Entity::find().all(conn)`), and the helpers below ([`query_rows`],
/// [`query_sql`], [`execute`], ...) run sea-query statements on it.
///
/// Beside it the writer keeps `raw`, a second `rusqlite::Connection` value on the same SQLite
/// handle, for what SeaORM has no API for: its own transaction control (`BEGIN IMMEDIATE`,
/// one savepoint per job, with cached statements), `total_changes()` and `is_autocommit()`,
/// and the record reads of [`scan_sql`] (rows read in place; why is said there).
/// It is private to this module and used only on the thread that owns the connection, between
/// SeaORM calls.
pub struct Conn {
    // Declared before `orm`, so it is dropped (its cached statements finalised) before `orm`
    // closes the handle.
    raw: rusqlite::Connection,
    orm: DatabaseConnection,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

impl Conn {
    /// Hands a configured connection to SeaORM (pragmas, hooks and the statement cache size
    /// are set before: SeaORM gives no way back to the connection it owns).
    fn wrap(conn: rusqlite::Connection) -> Result<Conn, DbError> {
        // SAFETY: `raw` does not own the handle (it never closes it) and is dropped before
        // `orm`, which does. Both are used only by the thread that owns this `Conn`, one call
        // at a time (the handle is opened `NO_MUTEX` and is never shared across threads).
        let raw = unsafe { rusqlite::Connection::from_handle(conn.handle())? };
        // Record reads (`scan_sql`) are cached here, one statement per collection and query shape.
        raw.set_prepared_statement_cache_capacity(256);
        let orm: DatabaseConnection =
            DatabaseConnectionType::RusqliteSharedConnection(conn.into()).into();
        Ok(Conn { raw, orm })
    }

    /// A connection to `path` for one-off work outside the executor threads (the start-up
    /// file sweep, tests): read-only unless `write`.
    pub fn open_standalone(path: &Path, write: bool) -> Result<Conn, DbError> {
        let flags = if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(64);
        Conn::wrap(conn)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Conn, DbError> {
        let conn = rusqlite::Connection::open_in_memory()?;
        conn.set_prepared_statement_cache_capacity(64);
        Conn::wrap(conn)
    }

    /// After a job panicked: SeaORM keeps its connection behind a mutex, which a panic inside
    /// SeaORM (e.g. its driver unwraps text that is not UTF-8) poisons for good. Then this
    /// connection is replaced by a fresh one from `reopen`, so one bad job fails alone.
    fn recover(&mut self, reopen: &impl Fn() -> Result<Conn, DbError>) {
        if self.orm.ping().is_ok() {
            return;
        }
        match reopen() {
            Ok(fresh) => {
                tracing::warn!("a database job broke its connection: reopened");
                *self = fresh;
            }
            Err(e) => tracing::error!(error = %e, "could not reopen a database connection"),
        }
    }

    /// The SeaORM connection.
    pub fn orm(&self) -> &DatabaseConnection {
        &self.orm
    }

    /// Runs SQL text without bound values (DDL, PRAGMAs, several statements at once).
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        self.orm.execute_unprepared(sql)?;
        Ok(())
    }
}

impl ConnectionTrait for Conn {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.orm.execute_raw(stmt)
    }

    fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.orm.execute_unprepared(sql)
    }

    fn query_one_raw(&self, stmt: sea_orm::Statement) -> Result<Option<Row>, DbErr> {
        self.orm.query_one_raw(stmt)
    }

    fn query_all_raw(&self, stmt: sea_orm::Statement) -> Result<Vec<Row>, DbErr> {
        self.orm.query_all_raw(stmt)
    }
}

type ReadJob = Box<dyn FnOnce(&Conn) + Send>;

/// What a write job hands back to the writer: whether its savepoint may be released, and how to
/// deliver its result once the outcome of the whole transaction is known.
struct Ran {
    ok: bool,
    deliver: Deliver,
}

/// Hands a job's result to its caller, given the commit error if the transaction failed.
type Deliver = Box<dyn FnOnce(Option<&DbError>) + Send>;

/// A write job's body; it is called with `None` when the transaction could not even begin.
type RunJob = Box<dyn FnOnce(Option<&Conn>) -> Ran + Send>;

struct WriteJob {
    isolation: Isolation,
    run: RunJob,
}

/// How the writer keeps a job's failure from touching the other jobs of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// The job runs in its own savepoint, rolled back if it fails. Any job may use it.
    Savepoint,
    /// For a job whose only write is one statement that nothing can fail after: SQLite undoes
    /// a failing statement by itself, so the job needs no savepoint (a savepoint copies every
    /// page the job touches into a sub-journal first: 11 % of the writer's time in creates).
    /// If such a job fails after all (its result is an error, yet rows changed) or panics,
    /// its whole group is rolled back and every job in it fails, so nothing half-written
    /// can commit.
    SingleStatement,
}

/// Tuning of the connections.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub readers: usize,
    /// Page cache per connection, in KiB.
    pub cache_kib: i64,
    pub busy_timeout_ms: u64,
    /// WAL growth (pages) after which the checkpointer is asked to copy the WAL back.
    pub checkpoint_pages: i32,
    /// WAL size (pages) from which the checkpointer, after a pass, asks the writer to copy the
    /// rest so the WAL starts over.
    pub checkpoint_restart_pages: i32,
    /// WAL size (pages) at which the writer checkpoints itself after every commit.
    pub checkpoint_hard_pages: i32,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            readers: 2,
            cache_kib: 16_000,
            busy_timeout_ms: 10_000,
            checkpoint_pages: 1000,
            checkpoint_restart_pages: 8000,
            checkpoint_hard_pages: 16000,
        }
    }
}

/// A handle to the database: one writer thread and a pool of reader threads. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Sender<WriteJob>,
    readers: Sender<ReadJob>,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn configure(conn: &rusqlite::Connection, opts: &DbOptions, writer: bool) -> Result<(), DbError> {
    conn.busy_timeout(std::time::Duration::from_millis(opts.busy_timeout_ms))?;
    if writer {
        // journal_mode is persistent in the file; setting it on the writer (which opens first) is
        // enough, but every other pragma below is per connection.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "could not switch the database to WAL mode");
        }
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous=NORMAL;
         PRAGMA foreign_keys=ON;
         PRAGMA temp_store=MEMORY;
         PRAGMA cache_size=-{};
         PRAGMA journal_size_limit=67108864;",
        opts.cache_kib
    ))?;
    if !writer {
        conn.execute_batch("PRAGMA query_only=1;")?;
    }
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// Opens and configures the writer's connection.
fn open_writer(path: &Path, opts: &DbOptions) -> Result<rusqlite::Connection, DbError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&conn, opts, true)?;
    Ok(conn)
}

/// The writer's connection with its WAL hook, handed to SeaORM (on the writer thread).
fn wrap_writer(conn: rusqlite::Connection) -> Result<Conn, DbError> {
    conn.wal_hook(Some(on_wal_commit));
    Conn::wrap(conn)
}

/// Opens and configures a reader's (`query_only`) connection.
fn open_reader(path: &Path, opts: &DbOptions) -> Result<rusqlite::Connection, DbError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&conn, opts, false)?;
    Ok(conn)
}

impl Db {
    /// Opens (creating if needed) the database file and starts the executor threads.
    pub fn open(path: &Path, opts: DbOptions) -> Result<Db, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let writer_conn = open_writer(path, &opts)?;

        // The checkpointer's own connection; nudges coalesce in a one-slot channel.
        let ckpt_conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        ckpt_conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        let (ntx, nrx) = crossbeam_channel::bounded::<()>(1);
        let catch_up = Arc::new(AtomicBool::new(false));
        let restart = opts.checkpoint_restart_pages.max(1);
        let wanted = catch_up.clone();
        thread::Builder::new()
            .name("fb-checkpoint".into())
            .spawn(move || {
                lower_priority();
                // Each thread wraps its own connection: SeaORM's connection is not `Send`.
                match Conn::wrap(ckpt_conn) {
                    Ok(conn) => checkpoint_loop(conn, nrx, restart, &wanted),
                    Err(e) => tracing::error!(error = %e, "the checkpointer's connection failed"),
                }
            })?;

        let (wtx, wrx) = crossbeam_channel::unbounded::<WriteJob>();
        let wal = WalTrigger {
            nudge: ntx,
            soft: opts.checkpoint_pages.max(1),
            hard: opts.checkpoint_hard_pages.max(opts.checkpoint_pages.max(1)),
            nudged_at: std::cell::Cell::new(0),
        };
        let (wpath, wopts) = (path.to_path_buf(), opts.clone());
        thread::Builder::new()
            .name("fb-writer".into())
            .spawn(move || {
                WAL_TRIGGER.with(|t| *t.borrow_mut() = Some(wal));
                let reopen = || open_writer(&wpath, &wopts).and_then(wrap_writer);
                match wrap_writer(writer_conn) {
                    Ok(conn) => writer_loop(conn, wrx, &catch_up, reopen),
                    Err(e) => tracing::error!(error = %e, "the writer connection failed"),
                }
            })?;

        let (rtx, rrx) = crossbeam_channel::unbounded::<ReadJob>();
        for i in 0..opts.readers.max(1) {
            let conn = open_reader(path, &opts)?;
            let rx = rrx.clone();
            let (rpath, ropts) = (path.to_path_buf(), opts.clone());
            thread::Builder::new()
                .name(format!("fb-reader-{i}"))
                .spawn(move || {
                    let reopen = || open_reader(&rpath, &ropts).and_then(Conn::wrap);
                    match Conn::wrap(conn) {
                        Ok(conn) => reader_loop(conn, rx, reopen),
                        Err(e) => tracing::error!(error = %e, "a reader connection failed"),
                    }
                })?;
        }
        Ok(Db {
            inner: Arc::new(Inner {
                writer: wtx,
                readers: rtx,
                path: path.to_path_buf(),
            }),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a reader connection. Ship one closure per request, not one per statement.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.inner
            .readers
            .send(job)
            .map_err(|_| E::from(DbError::Closed))?;
        rx.await.map_err(|_| E::from(DbError::Panicked))?
    }

    /// Runs `f` inside the writer's transaction (its own savepoint). The future resolves only
    /// after the transaction holding the job has committed; if `f` fails, its changes are rolled
    /// back and nothing else is affected. `f` must not commit or begin transactions itself.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.write_tx(move |conn, _| f(conn)).await
    }

    /// Like [`Db::write`], with an [`AfterCommit`] the job can register callbacks on.
    pub async fn write_tx<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Conn, &mut AfterCommit) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.write_isolated(Isolation::Savepoint, f).await
    }

    /// Like [`Db::write_tx`] with the given [`Isolation`]; [`Isolation::SingleStatement`] only
    /// for jobs that keep its promise.
    pub async fn write_isolated<T, E, F>(&self, isolation: Isolation, f: F) -> Result<T, E>
    where
        F: FnOnce(&Conn, &mut AfterCommit) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (job, rx) = write_job(isolation, f);
        self.inner
            .writer
            .send(job)
            .map_err(|_| E::from(DbError::Closed))?;
        rx.await.map_err(|_| E::from(DbError::Panicked))?
    }

    /// Blocking variant of [`Db::write`] for CLI commands that run outside an async runtime.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (job, rx) = write_job(Isolation::Savepoint, move |conn, _| f(conn));
        self.inner
            .writer
            .send(job)
            .map_err(|_| E::from(DbError::Closed))?;
        rx.blocking_recv().map_err(|_| E::from(DbError::Panicked))?
    }

    /// Blocking variant of [`Db::read`] for CLI commands.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.inner
            .readers
            .send(job)
            .map_err(|_| E::from(DbError::Closed))?;
        rx.blocking_recv().map_err(|_| E::from(DbError::Panicked))?
    }
}

/// Wraps a caller's closure into a job for the writer and the receiver of its final result.
/// Callbacks a write job registers to run right after its transaction commits, on the writer
/// thread and in commit order (e.g. handing realtime events to the broker). They are dropped
/// when the job or the transaction fails. Keep them short and non-blocking.
#[derive(Default)]
pub struct AfterCommit {
    callbacks: Vec<Box<dyn FnOnce() + Send>>,
}

impl AfterCommit {
    pub fn push(&mut self, f: impl FnOnce() + Send + 'static) {
        self.callbacks.push(Box::new(f));
    }
}

fn write_job<T, E, F>(isolation: Isolation, f: F) -> (WriteJob, oneshot::Receiver<Result<T, E>>)
where
    F: FnOnce(&Conn, &mut AfterCommit) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<Result<T, E>>();
    let run: RunJob = Box::new(move |conn: Option<&Conn>| {
        let mut after = AfterCommit::default();
        let res = match conn {
            Some(conn) => f(conn, &mut after),
            None => Err(E::from(DbError::Unavailable)),
        };
        Ran {
            ok: res.is_ok(),
            deliver: Box::new(move |commit_err| {
                let out = match (res, commit_err) {
                    (Ok(_), Some(_)) => Err(E::from(DbError::CommitFailed)),
                    (r, _) => r,
                };
                if out.is_ok() {
                    for cb in after.callbacks {
                        cb();
                    }
                }
                let _ = tx.send(out);
            }),
        }
    });
    (WriteJob { isolation, run }, rx)
}

/// When the writer's connection asks for checkpoints (see the module docs).
struct WalTrigger {
    nudge: Sender<()>,
    soft: i32,
    hard: i32,
    /// WAL size at the last nudge: the checkpointer is asked again only after `soft` more
    /// pages (not after every commit: each checkpoint costs two fsyncs).
    nudged_at: std::cell::Cell<i32>,
}

thread_local! {
    /// Set on the writer thread only: `on_wal_commit` runs there, inside `COMMIT`.
    static WAL_TRIGGER: std::cell::RefCell<Option<WalTrigger>> = const { std::cell::RefCell::new(None) };
}

/// The writer connection's WAL hook, called after each commit with the WAL's size in pages.
/// Registering it replaces SQLite's auto-checkpoint, which this takes over.
fn on_wal_commit(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_TRIGGER.with(|t| {
        let t = t.borrow();
        let Some(t) = t.as_ref() else {
            return Ok(());
        };
        // A smaller WAL than at the last nudge means it restarted from its beginning.
        let since = if pages < t.nudged_at.get() {
            pages
        } else {
            pages - t.nudged_at.get()
        };
        if pages >= t.hard {
            // Errors (e.g. the checkpointer holds the checkpoint lock right now) are not the
            // commit's: the commit already happened. The next commit tries again.
            if let Err(e) = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE) {
                tracing::debug!(error = %e, "writer checkpoint skipped");
            }
        } else if since >= t.soft {
            t.nudged_at.set(pages);
            let _ = t.nudge.try_send(());
        }
        Ok(())
    })
}

/// Lowers the calling thread's scheduling priority (nice 10) where the OS allows it per thread:
/// on two cores the checkpointer otherwise takes CPU time from the writer, whose commits every
/// write request waits for. Starving it is harmless: the writer checkpoints past the hard limit.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread's own id; no memory is passed.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
        if rc != 0 {
            tracing::debug!("could not lower the checkpointer's priority");
        }
    }
}

/// Copies the WAL back into the database file each time the writer nudges it. After a pass
/// that leaves a WAL of `restart` pages or more, it sets `catch_up`: the writer then copies the
/// pages appended during the pass (few) between two transactions, so the WAL can start over.
fn checkpoint_loop(conn: Conn, nudges: Receiver<()>, restart: i32, catch_up: &AtomicBool) {
    // Ends when the writer thread (which owns the only sender) has ended.
    while nudges.recv().is_ok() {
        // (busy, pages in the WAL, pages copied back)
        let pass = query_sql(&conn, "PRAGMA wal_checkpoint(PASSIVE)", vec![], |r| {
            Ok((r.try_get_by_index::<i64>(0)?, r.try_get_by_index::<i64>(1)?))
        });
        match pass.map(|rows| rows.into_iter().next()) {
            Ok(Some((0, log))) if log >= i64::from(restart) => {
                catch_up.store(true, Ordering::Release)
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

fn reader_loop(mut conn: Conn, rx: Receiver<ReadJob>, reopen: impl Fn() -> Result<Conn, DbError>) {
    while let Ok(job) = rx.recv() {
        // A panicking job drops its reply sender; the caller sees `Panicked`.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&conn))).is_err() {
            conn.recover(&reopen);
        }
    }
}

fn writer_loop(
    mut conn: Conn,
    rx: Receiver<WriteJob>,
    catch_up: &AtomicBool,
    reopen: impl Fn() -> Result<Conn, DbError>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = Vec::with_capacity(8);
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if run_group(&conn, group) {
            conn.recover(&reopen);
        }
        if catch_up.swap(false, Ordering::Acquire) {
            // Between transactions, so nothing is appended while it copies: unless a reader
            // still needs the old pages, the WAL is empty afterwards and the next commit
            // starts it over.
            if let Err(e) = query_sql(&conn, "PRAGMA wal_checkpoint(PASSIVE)", vec![], |_| Ok(())) {
                tracing::debug!(error = %e, "writer catch-up checkpoint skipped");
            }
        }
    }
}

/// Runs one group in one transaction; true when a job panicked.
fn run_group(job_conn: &Conn, group: Vec<WriteJob>) -> bool {
    // Transaction control on the raw handle (see `Conn`): cached statements, and the
    // autocommit and change-count checks SeaORM does not expose.
    let conn = &job_conn.raw;
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "could not begin a write transaction");
        for job in group {
            ((job.run)(None).deliver)(None);
        }
        return false;
    }
    let mut panicked = false;
    let mut delivered = Vec::with_capacity(group.len());
    // Set when the transaction cannot be committed as the jobs expect: a job without a
    // savepoint broke its promise (the transaction may hold part of it), or SQLite rolled the
    // whole transaction back itself (e.g. disk full). The rest of the group is not run.
    let mut poisoned = false;
    // Cached statements: these run for every job, and re-parsing them showed in profiles.
    let exec = |sql: &str| conn.prepare_cached(sql).and_then(|mut st| st.execute([]));
    for job in group {
        if poisoned || conn.is_autocommit() {
            poisoned = true;
            ((job.run)(None).deliver)(None);
            continue;
        }
        if job.isolation == Isolation::SingleStatement {
            let before = conn.total_changes();
            match std::panic::catch_unwind(AssertUnwindSafe(|| (job.run)(Some(job_conn)))) {
                Ok(ran) => {
                    if !ran.ok && conn.total_changes() != before {
                        tracing::error!(
                            "a single-statement write job failed after writing: rolling back its group"
                        );
                        poisoned = true;
                    }
                    delivered.push(ran.deliver);
                }
                Err(_) => {
                    poisoned = true;
                    panicked = true;
                }
            }
            continue;
        }
        if let Err(e) = exec("SAVEPOINT job") {
            tracing::error!(error = %e, "could not open a savepoint");
            ((job.run)(None).deliver)(None);
            continue;
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| (job.run)(Some(job_conn)))) {
            Ok(ran) => {
                if !ran.ok {
                    let _ = exec("ROLLBACK TO job");
                }
                let _ = exec("RELEASE job");
                delivered.push(ran.deliver);
            }
            Err(_) => {
                panicked = true;
                let _ = exec("ROLLBACK TO job");
                let _ = exec("RELEASE job");
            }
        }
    }
    let commit = if poisoned {
        Err(DbError::CommitFailed)
    } else {
        exec("COMMIT").map(|_| ()).map_err(DbError::from)
    };
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let err = commit.err();
    for deliver in delivered {
        deliver(err.as_ref());
    }
    panicked
}

/// Copies the database at `src` into a new file `dst` from one read snapshot, with SQLite's
/// online backup API (which SeaORM does not wrap; backups use it on connections of their
/// own, so neither the writer nor the readers are held).
pub fn snapshot_file(src: &Path, dst: &Path) -> Result<(), DbError> {
    use rusqlite::backup::{Backup, StepResult};
    let source = rusqlite::Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut dest = rusqlite::Connection::open(dst)?;
    {
        let backup = Backup::new(&source, &mut dest)?;
        // All pages in one step: one read transaction, so one consistent snapshot (a backup
        // in several steps starts over whenever another connection writes).
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                _ => {}
            }
        }
    }
    // A backup is one self-contained file: no WAL beside it.
    dest.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))?;
    dest.close().map_err(|(_, e)| e)?;
    std::fs::File::open(dst)?.sync_all()?;
    Ok(())
}

/// Runs a sea-query SELECT and maps each row with `f`.
pub fn query_rows<T>(
    conn: &Conn,
    stmt: &sea_query::SelectStatement,
    f: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let (sql, values) = stmt.build(SqliteQueryBuilder);
    run_select(conn, sql, values.0, f)
}

/// Runs a sea-query SELECT (built without `limit`/`offset`) with `LIMIT limit OFFSET offset`.
///
/// The limit is written into the SQL text as an integer, not bound: when a LIMIT is a bound
/// parameter SQLite's planner reads its value and marks the statement to be re-prepared
/// whenever that parameter is bound again, i.e. on every execution (it cost a fifth of all
/// CPU of a read by id). It is a `u64`, never input text. The offset stays bound, so every page
/// of a list shares one prepared statement.
pub fn query_rows_limit<T>(
    conn: &Conn,
    stmt: &sea_query::SelectStatement,
    limit: u64,
    offset: u64,
    f: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let (sql, values) = build_limited(stmt, limit, offset);
    run_select(conn, sql, values, f)
}

fn build_limited(
    stmt: &sea_query::SelectStatement,
    limit: u64,
    offset: u64,
) -> (String, Vec<sea_query::Value>) {
    let (mut sql, mut values) = stmt.build(SqliteQueryBuilder);
    sql.push_str(&format!(" LIMIT {limit}"));
    if offset > 0 {
        sql.push_str(" OFFSET ?");
        values.0.push(sea_query::Value::BigUnsigned(Some(offset)));
    }
    (sql, values.0)
}

/// One row of a [`scan_sql`] read: its columns as SQLite returned them, borrowed from the
/// statement (no copy).
pub struct ScanRow<'a>(&'a rusqlite::Row<'a>);

impl ScanRow<'_> {
    /// Column `i`, with the storage class SQLite returned it in.
    pub fn value(&self, i: usize) -> Result<SqlValueRef<'_>, DbError> {
        Ok(self.0.get_ref(i)?)
    }
}

/// Runs a sea-query statement that returns record rows (a SELECT, or an `INSERT`/`UPDATE`
/// with `RETURNING`; SQL text built once and cached, as for [`query_sql`]) and maps each row in
/// place, through the handle's own statement cache (`raw`). It runs on the connection of the
/// job that calls it, so a write stays on the writer, inside its transaction.
///
/// This is the one statement path that does not go through SeaORM (the writer's transaction
/// control on `raw` aside, see [`Conn`]): SeaORM's rusqlite driver copies
/// every row into an owned row (each column's value, and the column names) before handing it
/// out, and a list page of records then paid for each value twice (SeaORM's copy, then the
/// typed copy read from it). Measured in the same sitting against the pre-SeaORM build, that
/// cost lists about 12 % of their throughput (`docs/performance.md`, issue #22); here each
/// column is borrowed from the statement and decoded once. The statement is still built
/// with sea-query and its values bound by `sea-query-rusqlite`, the binder SeaORM's driver
/// uses, so a value binds the same on both paths.
pub fn scan_sql<T>(
    conn: &Conn,
    sql: &str,
    values: Vec<sea_query::Value>,
    mut f: impl FnMut(ScanRow<'_>) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let values = sea_query_rusqlite::RusqliteValues(
        values
            .into_iter()
            .map(sea_query_rusqlite::RusqliteValue)
            .collect(),
    );
    let mut stmt = conn.raw.prepare_cached(sql)?;
    let mut rows = stmt.query(&*values.as_params())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(ScanRow(row))?);
    }
    Ok(out)
}

/// [`scan_sql`] for a sea-query SELECT built without `limit`/`offset`, with them added as
/// [`query_rows_limit`] does.
pub fn scan_rows_limit<T>(
    conn: &Conn,
    stmt: &sea_query::SelectStatement,
    limit: u64,
    offset: u64,
    f: impl FnMut(ScanRow<'_>) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let (sql, values) = build_limited(stmt, limit, offset);
    scan_sql(conn, &sql, values, f)
}

/// Runs SQL text (a statement built with sea-query once and cached, see
/// `schema::collection::StatementCache`) with `values` bound in order, mapping each row.
pub fn query_sql<T>(
    conn: &Conn,
    sql: &str,
    values: Vec<sea_query::Value>,
    f: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    run_select(conn, sql.to_owned(), values, f)
}

/// Executes SQL text (a statement built with sea-query once and cached) with bound values and
/// returns the number of rows it changed.
///
/// It goes through SeaORM's query path, not `execute_raw`: the rusqlite driver prepares every
/// `execute` anew, while its queries use the connection's statement cache, and a write
/// statement run as a query simply yields no rows. Parsing an `INSERT` of a collection on
/// every create cost more than the insert itself (`docs/performance.md`). The count is
/// SQLite's `sqlite3_changes()` of the same handle, read through `raw` (SeaORM's query path
/// reports none); a `SELECT changes()` round through SeaORM cost 2 % of the writer's time.
pub fn execute_sql(
    conn: &Conn,
    sql: &str,
    values: Vec<sea_query::Value>,
) -> Result<usize, DbError> {
    let stmt = sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql, values);
    conn.orm.query_all_raw(stmt)?;
    // The statement has run to completion (its rows were collected) on the handle `raw`
    // aliases, and nothing ran on it since.
    Ok(usize::try_from(conn.raw.changes()).unwrap_or(usize::MAX))
}

/// SeaORM's rusqlite driver prepares each SELECT through the connection's statement cache
/// (256 statements, set in `configure`), so a statement text seen before is not parsed again.
fn run_select<T>(
    conn: &Conn,
    sql: String,
    values: Vec<sea_query::Value>,
    f: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let stmt = sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql, values);
    conn.orm.query_all_raw(stmt)?.iter().map(f).collect()
}

/// Statements that can be executed with bound values.
pub trait Executable {
    fn build_sqlite(&self) -> (String, sea_query::Values);
}

macro_rules! executable {
    ($t:ty) => {
        impl Executable for $t {
            fn build_sqlite(&self) -> (String, sea_query::Values) {
                sea_query::QueryStatementWriter::build(self, SqliteQueryBuilder)
            }
        }
    };
}
executable!(sea_query::InsertStatement);
executable!(sea_query::UpdateStatement);
executable!(sea_query::DeleteStatement);
executable!(sea_query::SelectStatement);

/// Executes a sea-query INSERT/UPDATE/DELETE and returns the number of changed rows.
pub fn execute(conn: &Conn, stmt: &impl Executable) -> Result<usize, DbError> {
    let (sql, values) = stmt.build_sqlite();
    execute_sql(conn, &sql, values.0)
}

/// Executes a schema statement (DDL) built by sea-query or by the schema module's validated
/// builders. DDL carries no bound values.
pub fn execute_ddl(conn: &Conn, sql: &str) -> Result<(), DbError> {
    conn.execute_batch(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("data.db"), DbOptions::default()).unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn failed_job_rolls_back_alone() {
        let (_d, db) = open();
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (v INTEGER)")?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
        let ok = db.write(|c| {
            execute_sql(c, "INSERT INTO t VALUES (1)", vec![])?;
            Ok::<_, DbError>(())
        });
        let bad = db.write(|c| {
            execute_sql(c, "INSERT INTO t VALUES (2)", vec![])?;
            Err::<(), DbError>(DbError::Closed)
        });
        let (a, b) = tokio::join!(ok, bad);
        assert!(a.is_ok());
        assert!(b.is_err());
        assert_eq!(values_of_t(&db).await, vec![1]);
    }

    /// The values in test table `t`, in order.
    async fn values_of_t(db: &Db) -> Vec<i64> {
        db.read(|c| {
            query_sql(c, "SELECT v FROM t ORDER BY v", vec![], |r| {
                Ok(r.try_get_by_index::<i64>(0)?)
            })
        })
        .await
        .unwrap()
    }

    use std::future::Future;

    type Job = Box<dyn FnOnce(&Conn) -> Result<(), DbError> + Send>;

    /// Runs `jobs` as one group of the writer (it is held on a first job until every one of
    /// them is queued) and returns their results and the values of `t` afterwards.
    async fn one_group(db: &Db, jobs: Vec<(Isolation, Job)>) -> (Vec<bool>, Vec<i64>) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let hold = db.write(move |_| {
            let _ = started.send(());
            let _ = wait.recv();
            Ok::<_, DbError>(())
        });
        // Polled once by hand: that sends the job to the writer.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut hold = Box::pin(hold);
        assert!(hold.as_mut().poll(&mut cx).is_pending());
        // The writer runs it: its group is formed, the next jobs queue behind it.
        running.recv().unwrap();
        let mut queued = Vec::new();
        for (isolation, job) in jobs {
            let mut fut = Box::pin(db.write_isolated(isolation, move |c, _| job(c)));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            queued.push(fut);
        }
        release.send(()).unwrap();
        hold.await.unwrap();
        let mut ok = Vec::new();
        for fut in queued {
            ok.push(fut.await.is_ok());
        }
        (ok, values_of_t(db).await)
    }

    fn insert(v: i64) -> Job {
        Box::new(move |c| {
            execute_sql(c, "INSERT INTO t VALUES (?1)", vec![v.into()])?;
            Ok(())
        })
    }

    async fn table_with_one() -> (tempfile::TempDir, Db) {
        let (d, db) = open();
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (v INTEGER UNIQUE); INSERT INTO t VALUES (1);")?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
        (d, db)
    }

    #[tokio::test]
    async fn a_failing_single_statement_job_fails_alone() {
        let (_d, db) = table_with_one().await;
        let (ok, vals) = one_group(
            &db,
            vec![
                (Isolation::SingleStatement, insert(2)),
                // a unique violation: SQLite undoes the statement, no savepoint needed
                (Isolation::SingleStatement, insert(1)),
                (Isolation::Savepoint, insert(3)),
                (Isolation::SingleStatement, insert(4)),
            ],
        )
        .await;
        assert_eq!(ok, vec![true, false, true, true]);
        assert_eq!(vals, vec![1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_single_statement_job_that_fails_after_writing_rolls_back_its_group() {
        let (_d, db) = table_with_one().await;
        let broken: Job = Box::new(|c| {
            execute_sql(c, "INSERT INTO t VALUES (10)", vec![])?;
            Err(DbError::Closed)
        });
        let (ok, vals) = one_group(
            &db,
            vec![
                (Isolation::Savepoint, insert(2)),
                (Isolation::SingleStatement, insert(3)),
                (Isolation::SingleStatement, broken),
                (Isolation::SingleStatement, insert(4)),
            ],
        )
        .await;
        assert_eq!(ok, vec![false, false, false, false]);
        assert_eq!(vals, vec![1]);
        // The writer goes on with the next group.
        db.write(|c| {
            execute_sql(c, "INSERT INTO t VALUES (5)", vec![])?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_panicking_single_statement_job_rolls_back_its_group() {
        let (_d, db) = table_with_one().await;
        let panics: Job = Box::new(|c| {
            execute_sql(c, "INSERT INTO t VALUES (10)", vec![])?;
            panic!("a bug in a job");
        });
        let (ok, vals) = one_group(
            &db,
            vec![
                (Isolation::SingleStatement, insert(2)),
                (Isolation::SingleStatement, panics),
            ],
        )
        .await;
        assert_eq!(ok, vec![false, false]);
        assert_eq!(vals, vec![1]);
    }

    #[tokio::test]
    async fn concurrent_writes_all_land_and_pragmas_hold() {
        let (_d, db) = open();
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (v INTEGER)")?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write(move |c| {
                    execute_sql(c, "INSERT INTO t VALUES (?1)", vec![i.into()])?;
                    Ok::<_, DbError>(())
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let (n, fk, mode, qo): (i64, i64, String, i64) = db
            .read(|c| {
                let one = |sql: &str| {
                    scan_sql(c, sql, vec![], |r| Ok(SqlValue::from(r.value(0)?)))
                        .map(|mut v| v.remove(0))
                };
                let int = |v: SqlValue| match v {
                    SqlValue::Integer(i) => i,
                    other => panic!("{other:?}"),
                };
                let n = int(one("SELECT count(*) FROM t")?);
                let fk = int(one("PRAGMA foreign_keys")?);
                let SqlValue::Text(mode) = one("PRAGMA journal_mode")? else {
                    panic!("journal_mode")
                };
                let qo = int(one("PRAGMA query_only")?);
                Ok::<_, DbError>((n, fk, mode, qo))
            })
            .await
            .unwrap();
        assert_eq!(n, 200);
        assert_eq!(fk, 1);
        assert_eq!(mode, "wal");
        assert_eq!(qo, 1, "readers must not be able to write");
    }

    /// Text that is not UTF-8 makes SeaORM's rusqlite driver panic while it holds its
    /// connection's mutex (poisoning it): the job fails, the connection is reopened, and the
    /// next job runs.
    #[tokio::test]
    async fn a_panic_inside_seaorm_fails_its_job_alone() {
        let (_d, db) = open();
        let bad = "SELECT CAST(x'ff00ff' AS TEXT)";
        let r = db
            .read(move |c| query_sql(c, bad, vec![], |r| Ok(r.try_get_by_index::<String>(0)?)))
            .await;
        assert!(matches!(r, Err(DbError::Panicked)), "{r:?}");
        for _ in 0..4 {
            let ok = db
                .read(|c| query_sql(c, "SELECT 1", vec![], |r| Ok(r.try_get_by_index::<i64>(0)?)))
                .await
                .unwrap();
            assert_eq!(ok, vec![1]);
        }
        let w = db
            .write(move |c| query_sql(c, bad, vec![], |r| Ok(r.try_get_by_index::<String>(0)?)))
            .await;
        assert!(matches!(w, Err(DbError::Panicked)), "{w:?}");
        db.write(|c| c.execute_batch("CREATE TABLE t (v INTEGER)"))
            .await
            .unwrap();
        db.write(|c| execute_sql(c, "INSERT INTO t VALUES (7)", vec![]))
            .await
            .unwrap();
        assert_eq!(values_of_t(&db).await, vec![7]);
    }

    #[tokio::test]
    async fn entities_and_change_counts_go_through_the_same_connection() {
        use sea_orm::{ActiveValue::Set, EntityTrait};
        let (_d, db) = open();
        crate::db::migrate::run_system_migrations(&db)
            .await
            .unwrap();
        let n = db
            .write(|c| {
                entities::param::Entity::insert(entities::param::ActiveModel {
                    id: Set("k".into()),
                    value: Set(Some(entities::Text("{}".into()))),
                    created: Set("2026-01-01 00:00:00.000Z".into()),
                    updated: Set("2026-01-01 00:00:00.000Z".into()),
                })
                .exec_without_returning(c)?;
                // A write run through the query path reports what it changed.
                execute_sql(
                    c,
                    "UPDATE _params SET value = ? WHERE id = ?",
                    vec!["[]".into(), "k".into()],
                )
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
        // PocketBase writes the value as a BLOB: `Text` reads it.
        db.write(|c| execute_sql(c, "UPDATE _params SET value = CAST(value AS BLOB)", vec![]))
            .await
            .unwrap();
        let row = db
            .read(|c| Ok::<_, DbError>(entities::param::Entity::find_by_id("k").one(c)?))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.value, Some(entities::Text("[]".into())));
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let (_d, db) = open();
        let r = db.read(|c| c.execute_batch("CREATE TABLE x (a)")).await;
        assert!(r.is_err());
    }

    /// Writes ~200 pages in small commits and waits until the database file (not only the
    /// WAL) holds them: checkpoints happen although SQLite's auto-checkpoint is replaced.
    async fn checkpoints_reach_the_file(opts: DbOptions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let db = Db::open(&path, opts).unwrap();
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (v BLOB)")?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
        for _ in 0..100 {
            db.write(|c| {
                execute_sql(c, "INSERT INTO t VALUES (zeroblob(8000))", vec![])?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let len = std::fs::metadata(&path).unwrap().len();
            if len >= 150 * 4096 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "database file still {len} bytes: the WAL was never checkpointed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn checkpointer_copies_the_wal_back() {
        checkpoints_reach_the_file(DbOptions {
            checkpoint_pages: 20,
            checkpoint_hard_pages: 1_000_000,
            ..DbOptions::default()
        })
        .await;
    }

    #[tokio::test]
    async fn writer_checkpoints_past_the_hard_limit() {
        // soft == hard: the checkpointer is never asked, the writer does it.
        checkpoints_reach_the_file(DbOptions {
            checkpoint_pages: 20,
            checkpoint_hard_pages: 20,
            ..DbOptions::default()
        })
        .await;
    }
}
