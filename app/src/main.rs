//! The `ferrobase` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ferrobase::superusers::{self, Mode};
use ferrobase::{App, Config};

#[derive(Parser)]
#[command(
    name = "ferrobase",
    version,
    about = "A PocketBase-compatible backend in one binary: collections, records, auth and realtime over SQLite."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DirArg {
    /// The data directory (created on first start).
    #[arg(long, env = "FERROBASE_DIR", default_value = "./fb_data")]
    dir: PathBuf,
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
    },
    /// Manage superuser accounts.
    Superuser {
        #[command(subcommand)]
        action: SuperuserAction,
    },
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
}

fn init_tracing(dev: bool) {
    let default = if dev { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROBASE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

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

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            http,
            dir,
            dev,
            origins,
        } => {
            init_tracing(dev);
            let mut config = Config::new(dir.dir);
            config.http = http;
            config.dev = dev;
            config.origins = origins;
            let app = App::open(config).await.map_err(|e| e.to_string())?;
            let plugins: Vec<Box<dyn ferrobase::plugin::Plugin>> = vec![];
            let router = app.router(&plugins);
            let listener = tokio::net::TcpListener::bind(http)
                .await
                .map_err(|e| format!("cannot listen on {http}: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            println!("Server started at http://{addr}\n├─ REST API:  http://{addr}/api/");
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| e.to_string())
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
                SuperuserAction::Delete { email, dir } => {
                    let app = App::open(Config::new(dir.dir))
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
            let app = App::open(Config::new(dir.dir))
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
