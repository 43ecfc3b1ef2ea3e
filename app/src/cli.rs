//! The `ferrobase` command line, shared by every binary built on the core: `serve`, the
//! schema, migration and superuser commands, `health`, and the plugins' commands. A binary's
//! `main` picks its plugins and calls [`main`] (see `app/src/main.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::plugin::Plugin;
use crate::superusers::{self, Mode};
use crate::{App, Config};

#[derive(Parser)]
#[command(
    name = "ferrobase",
    version,
    about = "A PocketBase-compatible backend in one binary: collections, records, auth and realtime over SQLite."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The name of the environment variable holding the 32-character key the settings are
    /// encrypted with at rest (as PocketBase's --encryptionEnv).
    #[arg(
        long = "encryptionEnv",
        env = "FERROBASE_ENCRYPTION_ENV",
        global = true
    )]
    encryption_env: Option<String>,
    /// Log lines as `human` text or `json` (one object per line: timestamp, level, target,
    /// fields; for log collectors). FERROBASE_LOG sets the level filter.
    #[arg(
        long = "log-format",
        env = "FERROBASE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Human,
        global = true
    )]
    log_format: LogFormat,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

#[derive(Args, Clone)]
struct DirArg {
    /// The data directory (created on first start).
    #[arg(
        long,
        env = "FERROBASE_DIR",
        default_value = "./fb_data",
        global = true
    )]
    dir: PathBuf,
}

#[derive(Args, Clone)]
struct MigrationsArg {
    /// Where migration files live (default: fb_migrations beside the data directory; fb_migrations_<name> for a data directory not named fb_data or pb_data).
    #[arg(
        long = "migrationsDir",
        env = "FERROBASE_MIGRATIONS_DIR",
        global = true
    )]
    migrations_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server (API and dashboard).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "FERROBASE_HTTP", default_value = "127.0.0.1:8090")]
        http: SocketAddr,
        #[command(flatten)]
        dir: DirArg,
        /// Development mode: debug logs (mails are printed instead of sent once mail lands).
        #[arg(long, env = "FERROBASE_DEV")]
        dev: bool,
        /// Allowed CORS origins, comma separated (default: any).
        #[arg(long, env = "FERROBASE_ORIGINS", value_delimiter = ',')]
        origins: Vec<String>,
        #[command(flatten)]
        migrations: MigrationsArg,
        /// Write a migration file for every schema change made through the API.
        #[arg(long, env = "FERROBASE_AUTOMIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
        automigrate: bool,
        /// Most connections open at once (default: what the open-files limit allows, at most
        /// 25000); past it, new connections wait until one closes.
        #[arg(long = "maxConnections", env = "FERROBASE_MAX_CONNECTIONS")]
        max_connections: Option<usize>,
    },
    /// Export or import collection schemas (full or portable JSON).
    Collections {
        #[command(subcommand)]
        action: CollectionsAction,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Schema migration files: apply, revert, create, snapshot, inspect.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        migrations: MigrationsArg,
    },
    /// Manage superuser accounts.
    Superuser {
        #[command(subcommand)]
        action: SuperuserAction,
    },
    /// Exit 0 when the server answers GET /api/health with 200 (for container health checks).
    Health {
        /// The server's base URL (default: from FERROBASE_HTTP, else http://127.0.0.1:8090).
        #[arg(long)]
        url: Option<String>,
    },
    /// A plugin's command (`ferrobase <command> --help` for its own help).
    #[command(external_subcommand)]
    Plugin(Vec<String>),
}

#[derive(Subcommand)]
enum CollectionsAction {
    /// Print the user collections as JSON (full: with ids; --portable: relations by name).
    Export {
        #[arg(long)]
        portable: bool,
    },
    /// Import collections from a JSON file (an export of either format, or a plain list).
    Import {
        file: PathBuf,
        /// Delete user collections that are not in the file.
        #[arg(long = "deleteMissing")]
        delete_missing: bool,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration file.
    Up,
    /// Revert the last N applied migrations (default 1).
    Down { n: Option<usize> },
    /// Create an empty migration file to fill in.
    Create { name: String },
    /// Write the whole current schema into one migration (recorded as applied).
    Collections,
    /// Forget applied migrations whose files were deleted.
    HistorySync,
    /// List applied and pending migrations.
    Status,
}

#[derive(Subcommand)]
enum SuperuserAction {
    /// Create a superuser, or set the password of an existing one.
    Upsert {
        email: String,
        password: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Create a new superuser (fails if the email is taken).
    Create {
        email: String,
        password: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Change an existing superuser's password (fails if there is none).
    Update {
        email: String,
        password: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Delete a superuser.
    Delete {
        email: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Set the `superuserIPs` list (IPs and CIDR subnets); no arguments clear it. A running
    /// server picks the change up at its next start.
    Ips {
        ips: Vec<String>,
        #[command(flatten)]
        dir: DirArg,
    },
}

fn init_tracing(dev: bool) {
    use std::io::IsTerminal;
    let default = if dev { "debug" } else { "info" };
    let spec = std::env::var("FERROBASE_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .ok()
        .filter(|_| !spec.trim().is_empty())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    // SeaORM logs every statement with its values inlined at debug level (password hashes,
    // tokens): held at info unless FERROBASE_LOG names it.
    if !spec.contains("sea_orm")
        && let Ok(quiet) = "sea_orm=info".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match LOG_FORMAT.get().copied().unwrap_or(LogFormat::Human) {
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        // colours only on a terminal: a log file or collector gets plain text
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// How long in-flight requests may take after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Replaces the process with a new run of the same binary and arguments (same PID, so a
/// container or service manager sees no exit). Returns only if that failed.
fn restart() -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => return format!("cannot restart: {e}"),
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .exec();
        format!("cannot restart: {err}")
    }
    #[cfg(not(unix))]
    {
        "restart the server to finish the restore".into()
    }
}

/// The settings encryption key named by `--encryptionEnv` (an error if the variable is unset
/// or malformed: starting without it would leave secrets unencrypted or unreadable).
fn encryption_key(env: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = env.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let key = std::env::var(name)
        .map_err(|_| format!("--encryptionEnv names {name}, which is not set"))?;
    crate::settings::crypt::check_key(&key).map_err(|e| format!("{name}: {e}"))?;
    Ok(Some(key))
}

/// A config for the data directory with the encryption key.
fn config_for(dir: PathBuf, key: &Option<String>) -> Config {
    let mut c = Config::new(dir);
    c.encryption_key = key.clone();
    c
}

/// `ferrobase health`: GET /api/health over plain HTTP/1.1, no client library needed.
fn health(url: Option<String>) -> Result<(), String> {
    use std::io::{Read, Write};
    let base = url.unwrap_or_else(|| {
        let addr = std::env::var("FERROBASE_HTTP").unwrap_or_else(|_| "127.0.0.1:8090".into());
        let addr = addr
            .replace("0.0.0.0", "127.0.0.1")
            .replace("[::]", "[::1]");
        format!("http://{addr}")
    });
    let rest = base
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    use std::net::ToSocketAddrs;
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let timeout = std::time::Duration::from_secs(5);
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path}/api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "unhealthy: {}",
            String::from_utf8_lossy(&head).trim()
        ))
    }
}

/// Runs a plugin's CLI command: `--dir` (or FERROBASE_DIR) picks the data directory, every
/// other argument goes to the command.
async fn run_plugin_command(
    args: Vec<String>,
    key: Option<String>,
    plugins: Vec<Box<dyn Plugin>>,
) -> Result<(), String> {
    let mut it = args.into_iter();
    let name = it.next().unwrap_or_default();
    let mut dir = std::env::var("FERROBASE_DIR").unwrap_or_else(|_| "./fb_data".into());
    let mut rest = Vec::new();
    while let Some(a) = it.next() {
        if a == "--dir" {
            dir = it.next().ok_or("--dir needs a value")?;
        } else if let Some(d) = a.strip_prefix("--dir=") {
            dir = d.to_string();
        } else {
            rest.push(a);
        }
    }
    init_tracing(false);
    let app = App::open(config_for(PathBuf::from(dir), &key))
        .await
        .map_err(|e| e.to_string())?;
    crate::plugin::start(&app, plugins)
        .await
        .map_err(|e| e.to_string())?;
    let rt = app.plugins();
    let Some((plugin, cmd)) = rt.commands.iter().find(|(_, c)| c.name == name) else {
        let known: Vec<String> = rt
            .commands
            .iter()
            .map(|(p, c)| format!("  {:<16} {} (plugin {p})", c.name, c.about))
            .collect();
        return Err(if known.is_empty() {
            format!("unknown command {name:?} (see --help)")
        } else {
            format!(
                "unknown command {name:?}; plugins' commands:\n{}",
                known.join("\n")
            )
        });
    };
    let handle = rt.handles.get(plugin).cloned().ok_or("the plugin is off")?;
    (cmd.run)(handle, rest).await.map_err(|e| e.message)
}

async fn run(cli: Cli, plugins: Vec<Box<dyn Plugin>>) -> Result<(), String> {
    let key = encryption_key(cli.encryption_env.as_deref())?;
    match cli.command {
        Command::Health { url } => health(url),
        Command::Plugin(args) => run_plugin_command(args, key, plugins).await,
        Command::Serve {
            http,
            dir,
            dev,
            origins,
            migrations,
            automigrate,
            max_connections,
        } => {
            let started = std::time::SystemTime::now();
            init_tracing(dev);
            let max_connections =
                max_connections.unwrap_or_else(crate::server::default_max_connections);
            let mut config = Config::new(dir.dir);
            config.http = http;
            config.dev = dev;
            config.origins = origins;
            config.automigrate = automigrate;
            if let Some(m) = migrations.migrations_dir {
                config.migrations_dir = m;
            }
            config.encryption_key = key;
            let app = App::open(config).await.map_err(|e| e.to_string())?;
            crate::plugin::start(&app, plugins)
                .await
                .map_err(|e| e.to_string())?;
            crate::jobs::register(&app);
            app.scheduler().start();
            app.sweep_storage(started);
            let router = app.router();
            let listener = tokio::net::TcpListener::bind(http)
                .await
                .map_err(|e| format!("cannot listen on {http}: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            println!(
                "Server started at http://{addr}\n├─ REST API:  http://{addr}/api/\n└─ Dashboard: http://{addr}/_/"
            );
            match crate::admin::installer_path(&app).await {
                Ok(Some(path)) => println!(
                    "\n(!) No superuser exists yet. Open this one-time link (valid 30 minutes) to create the first one:\n    http://{addr}{path}\n    (or run: ferrobase superuser upsert EMAIL PASSWORD)\n"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not check for superusers"),
            }
            // On SIGTERM/SIGINT, or when a restore asks for a restart: the listener closes,
            // realtime streams end, in-flight requests get SHUTDOWN_GRACE, buffered request
            // logs are written, then the process exits (or, for a restart, executes itself
            // again, keeping its PID: the next start swaps the restored data in).
            // Acknowledged writes are committed already either way.
            let stop = {
                let app = app.clone();
                async move {
                    tokio::select! {
                        () = shutdown_signal() => {}
                        () = app.restart_signal() => tracing::info!("restarting"),
                    }
                    app.realtime().close_all();
                }
            };
            crate::server::serve(listener, router, max_connections, SHUTDOWN_GRACE, stop)
                .await
                .map_err(|e| e.to_string())?;
            if tokio::time::timeout(SHUTDOWN_GRACE, app.logs().flush())
                .await
                .is_err()
            {
                tracing::warn!("request logs could not be written in time");
            }
            if app.restart_requested() {
                return Err(restart());
            }
            Ok(())
        }
        Command::Collections { action, dir } => {
            init_tracing(false);
            let app = App::open(config_for(dir.dir, &key))
                .await
                .map_err(|e| e.to_string())?;
            match action {
                CollectionsAction::Export { portable } => {
                    let items =
                        crate::schema::export::export(&app.collections().snapshot(), portable);
                    let doc = crate::schema::export::wrap(items, portable);
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
                    );
                }
                CollectionsAction::Import {
                    file,
                    delete_missing,
                } => {
                    let text = std::fs::read_to_string(&file)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let doc: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let items = match doc {
                        serde_json::Value::Array(a) => a,
                        serde_json::Value::Object(mut o) => match o.remove("collections") {
                            Some(serde_json::Value::Array(a)) => a,
                            _ => return Err("the file holds no \"collections\" list".into()),
                        },
                        _ => return Err("the file holds no collections".into()),
                    };
                    let n = items.len();
                    app.collections()
                        .import(items, delete_missing)
                        .await
                        .map_err(|e| match e {
                            crate::schema::SchemaError::Validation(v) => v.into_value().to_string(),
                            other => other.to_string(),
                        })?;
                    println!("Imported {n} collection(s).");
                }
            }
            Ok(())
        }
        Command::Migrate {
            action,
            dir,
            migrations,
        } => {
            init_tracing(false);
            let mut config = config_for(dir.dir, &key);
            config.run_migrations = false;
            config.automigrate = false;
            if let Some(m) = migrations.migrations_dir {
                config.migrations_dir = m;
            }
            let mdir = config.migrations_dir.clone();
            let app = App::open(config).await.map_err(|e| e.to_string())?;
            let (db, store) = (app.db(), app.collections());
            use crate::schema::migrations as m;
            match action {
                MigrateAction::Up => {
                    let ran = m::up(db, store, &mdir).await.map_err(|e| e.to_string())?;
                    println!("Applied {} migration(s).", ran.len());
                    for r in ran {
                        println!("  {r}");
                    }
                }
                MigrateAction::Down { n } => {
                    let done = m::down(db, store, &mdir, n.unwrap_or(1))
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("Reverted {} migration(s).", done.len());
                    for r in done {
                        println!("  {r}");
                    }
                }
                MigrateAction::Create { name } => {
                    let path = m::write_file(&mdir, &name, &[], &[]).map_err(|e| e.to_string())?;
                    println!("Created {}", path.display());
                }
                MigrateAction::Collections => {
                    let path = m::snapshot(db, store, &mdir)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("Wrote the current schema to {}", path.display());
                }
                MigrateAction::HistorySync => {
                    let n = m::history_sync(db, &mdir)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("Removed {n} stale migration record(s).");
                }
                MigrateAction::Status => {
                    let applied = m::applied(db).await.map_err(|e| e.to_string())?;
                    let files = m::read_dir(&mdir).map_err(|e| e.to_string())?;
                    for f in &files {
                        let state = if applied.contains(&f.name) {
                            "applied"
                        } else {
                            "pending"
                        };
                        println!("{state:8} {}", f.name);
                    }
                    if files.is_empty() {
                        println!("No migration files in {}", mdir.display());
                    }
                }
            }
            Ok(())
        }
        Command::Superuser { action } => {
            init_tracing(false);
            let (dir, result) = match action {
                SuperuserAction::Upsert {
                    email,
                    password,
                    dir,
                } => (dir, Some((email, password, Mode::Upsert))),
                SuperuserAction::Create {
                    email,
                    password,
                    dir,
                } => (dir, Some((email, password, Mode::Create))),
                SuperuserAction::Update {
                    email,
                    password,
                    dir,
                } => (dir, Some((email, password, Mode::Update))),
                SuperuserAction::Ips { ips, dir } => {
                    let app = App::open(config_for(dir.dir, &key))
                        .await
                        .map_err(|e| e.to_string())?;
                    app.patch_settings(serde_json::json!({ "superuserIPs": ips }))
                        .await
                        .map_err(|e| match e {
                            crate::settings::SettingsError::Validation(v) => {
                                format!("invalid IP or subnet: {}", v.into_value())
                            }
                            other => other.to_string(),
                        })?;
                    if ips.is_empty() {
                        println!("Cleared superuserIPs: superusers are accepted from any address.");
                    } else {
                        println!("superuserIPs set to: {}", ips.join(", "));
                    }
                    return Ok(());
                }
                SuperuserAction::Delete { email, dir } => {
                    let app = App::open(config_for(dir.dir, &key))
                        .await
                        .map_err(|e| e.to_string())?;
                    superusers::delete(&app, &email)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("Successfully deleted superuser {email}.");
                    return Ok(());
                }
            };
            let Some((email, password, mode)) = result else {
                return Ok(());
            };
            let app = App::open(config_for(dir.dir, &key))
                .await
                .map_err(|e| e.to_string())?;
            let created = superusers::save(&app, &email, &password, mode)
                .await
                .map_err(|e| e.to_string())?;
            if created {
                println!("Successfully created superuser {email}.");
            } else {
                println!("Successfully updated superuser {email}.");
            }
            Ok(())
        }
    }
}

/// Parses the command line and runs it with these plugins: what a binary's `main` calls.
pub fn main(plugins: Vec<Box<dyn Plugin>>) -> ExitCode {
    let cli = Cli::parse();
    let _ = LOG_FORMAT.set(cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, plugins)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
