//! Test harness: starts the real `ferrobase` binary on a free port with a temporary data
//! directory, signs in a superuser, and stops the process when dropped.
//!
//! The end-to-end tests live in `app/tests/`, where Cargo builds the binary before running
//! them and hands its path over as `CARGO_BIN_EXE_ferrobase`; they pass it to
//! [`Server::start`]. `$FERROBASE_BIN`, when set, overrides it (to run the same tests against
//! another build).

pub mod stripe;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const SUPERUSER_EMAIL: &str = "root@example.com";
pub const SUPERUSER_PASSWORD: &str = "Root-Passw0rd-1";

/// The binary under test: `$FERROBASE_BIN` if set, else `default`.
pub fn binary(default: &str) -> PathBuf {
    std::env::var_os("FERROBASE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Runs a CLI command of the binary against `dir` and returns (success, stdout+stderr).
pub fn cli(bin: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run ferrobase");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running server.
pub struct Server {
    pub bin: PathBuf,
    pub url: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    log: PathBuf,
    pub http: reqwest::Client,
}

impl Server {
    /// A fresh data directory with a superuser, and a server on it.
    pub async fn start(bin: &str) -> Server {
        Server::start_with(bin, &[]).await
    }

    /// As [`Server::start`], with extra environment variables for the server
    /// (e.g. `FERROBASE_PLUGINS=none` for PocketBase's bare layout).
    pub async fn start_with(bin: &str, envs: &[(&str, &str)]) -> Server {
        let bin = binary(bin);
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let (ok, out) = cli(
            &bin,
            &dir,
            &["superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD],
        );
        assert!(ok, "superuser upsert failed: {out}");
        let mut s = Server::start_in_with(&bin, &dir, envs).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing data directory (kept when the server stops).
    pub async fn start_in(bin: &Path, dir: &Path) -> Server {
        Server::start_in_with(bin, dir, &[]).await
    }

    /// As [`Server::start_in`], with extra environment variables for the server.
    pub async fn start_in_with(bin: &Path, dir: &Path, envs: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log = dir.with_extension(format!("{port}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--dir"])
            .arg(dir)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn ferrobase");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{url}/api/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server did not become healthy: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server {
            bin: bin.to_path_buf(),
            url,
            dir: dir.to_path_buf(),
            _tmp: None,
            child: Some(child),
            log,
            http,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Signs in the harness superuser and returns the token.
    pub async fn superuser_token(&self) -> String {
        let r: Value = self
            .http
            .post(format!(
                "{}/api/collections/_superusers/auth-with-password",
                self.url
            ))
            .json(&json!({"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD}))
            .send()
            .await
            .expect("auth request")
            .json()
            .await
            .expect("auth json");
        r["token"].as_str().expect("token").to_string()
    }

    /// Sends a request with an optional token and JSON body; returns (status, JSON body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// Kills the process with SIGKILL (no chance to flush anything).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A raw HTTP/1.1 SSE connection: decodes chunked framing and yields SSE messages.
pub struct Sse {
    stream: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    headers_done: bool,
}

impl Sse {
    pub async fn open(addr: &str) -> Sse {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(format!("GET /api/realtime HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
            .await
            .expect("write");
        Sse {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
            headers_done: false,
        }
    }

    /// Moves complete chunks from `raw` into `body`.
    fn decode(&mut self) {
        if !self.headers_done {
            if let Some(p) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                self.raw.drain(..p + 4);
                self.headers_done = true;
            } else {
                return;
            }
        }
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let Ok(size) = usize::from_str_radix(
                std::str::from_utf8(&self.raw[..eol]).unwrap_or("").trim(),
                16,
            ) else {
                return;
            };
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[eol + 2..eol + 2 + size]);
            self.raw.drain(..eol + 2 + size + 2);
        }
    }

    /// The next SSE message as (event, data); None when the connection closed.
    pub async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(p) = self.body.windows(2).position(|w| w == b"\n\n") {
                let msg: Vec<u8> = self.body.drain(..p + 2).collect();
                let text = String::from_utf8_lossy(&msg).to_string();
                let mut event = String::new();
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = v.to_string();
                    }
                }
                return Some((event, data));
            }
            let mut buf = [0u8; 16384];
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    self.raw.extend_from_slice(&buf[..n]);
                    self.decode();
                }
            }
        }
    }
}

/// A mail received by [`SmtpSink`].
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    /// The message, with quoted-printable soft breaks and escapes decoded.
    pub text: String,
}

/// A minimal SMTP server on loopback that accepts every message (no TLS, no auth), for
/// tests of the mail flows.
pub struct SmtpSink {
    pub port: u16,
    mails: std::sync::Arc<tokio::sync::Mutex<Vec<ReceivedMail>>>,
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let mails = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let store = mails.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = tokio::io::BufReader::new(r);
                    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                    let mut to = Vec::new();
                    loop {
                        let mut line = String::new();
                        match tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let upper = line.to_ascii_uppercase();
                        if upper.starts_with("EHLO") {
                            let _ = w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await;
                        } else if upper.starts_with("RCPT TO:") {
                            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                            let _ = w.write_all(b"250 OK\r\n").await;
                        } else if upper.starts_with("DATA") {
                            let _ = w.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                match tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut l)
                                    .await
                                {
                                    Ok(0) | Err(_) => return,
                                    Ok(_) => {}
                                }
                                if l == ".\r\n" || l == ".\n" {
                                    break;
                                }
                                data.push_str(&l);
                            }
                            store.lock().await.push(ReceivedMail {
                                to: std::mem::take(&mut to),
                                text: decode_qp(&data),
                            });
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else if upper.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            let _ = w.write_all(b"250 OK\r\n").await;
                        }
                    }
                });
            }
        });
        SmtpSink { port, mails }
    }

    /// Waits (up to 10 s) for a mail to `to` and removes it from the sink.
    pub async fn wait_for(&self, to: &str) -> ReceivedMail {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut m = self.mails.lock().await;
                if let Some(pos) = m
                    .iter()
                    .position(|x| x.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
                {
                    return m.remove(pos);
                }
            }
            assert!(Instant::now() < deadline, "no mail to {to} within 10s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn count(&self) -> usize {
        self.mails.lock().await.len()
    }
}

/// The token in a mail link `…/auth/<page>/<token>`.
pub fn link_token(mail: &ReceivedMail, page: &str) -> String {
    let marker = format!("/auth/{page}/");
    let start = mail
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {page} link in: {}", mail.text))
        + marker.len();
    mail.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
        .collect()
}
