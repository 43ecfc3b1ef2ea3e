"""Shared helpers for the reliability scripts (standard library only).

Each script in this directory imports this module; it starts a Ferrobase binary in a fresh
temporary directory on a free loopback port, talks HTTP to it, and stops it in `finally`.
"""

import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import uuid

SUPERUSER_EMAIL = "reliability@example.com"
SUPERUSER_PASSWORD = "reliability-password-123"

ITEMS_COLLECTION = {
    "name": "items",
    "type": "base",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "updateRule": "",
    "deleteRule": "",
    "fields": [
        {"name": "title", "type": "text"},
        {"name": "n", "type": "number"},
        {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 1000000},
    ],
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    """A loopback port that was free a moment ago (the server start retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    """Raises the soft RLIMIT_NOFILE to the hard limit; returns (soft, hard) in effect.

    Servers started afterwards inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def random_id(rng=random):
    """A PocketBase record id: 15 characters of [a-z0-9]."""
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(15))


def proc_status(pid):
    """VmRSS (KiB), Threads and open file descriptors of a process, from /proc."""
    out = {"rss_kib": None, "threads": None, "fds": None}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss_kib"] = int(line.split()[1])
                elif line.startswith("Threads:"):
                    out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        pass
    return out


def multipart(fields, files):
    """Encodes a multipart/form-data body. files: [(field, filename, bytes, content_type)]."""
    boundary = "----fbrel" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        )
    for field, filename, data, ctype in files:
        parts.append(
            (
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class HttpError(Exception):
    pass


def request(port, method, path, body=None, token=None, timeout=10.0, headers=None):
    """One request on a fresh connection; returns (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = token
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, parsed
    finally:
        conn.close()


def health_ok(port, timeout=2.0):
    """(ok, seconds) of one GET /api/health on a new connection."""
    t0 = time.monotonic()
    try:
        status, _ = request(port, "GET", "/api/health", timeout=timeout)
        return status == 200, time.monotonic() - t0
    except (OSError, http.client.HTTPException):
        return False, time.monotonic() - t0


class Server:
    """A Ferrobase server in its own temporary directory."""

    def __init__(self, binary, name="fbrel", keep=False, env=None):
        self.binary = os.path.abspath(binary)
        if not os.access(self.binary, os.X_OK):
            raise SystemExit(f"not an executable: {binary}")
        self.root = tempfile.mkdtemp(prefix=f"{name}-")
        self.dir = os.path.join(self.root, "fb_data")
        self.migrations = os.path.join(self.root, "fb_migrations")
        self.keep = keep
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.port = None
        self.token = None
        self.log_path = os.path.join(self.root, "server.log")
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def upsert_superuser(self):
        r = subprocess.run(
            [self.binary, "superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD,
             "--dir", self.dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, env=self.env,
        )
        if r.returncode != 0:
            raise RuntimeError(f"superuser upsert failed: {r.stdout.decode(errors='replace')}")

    def start(self, port=None, timeout=60.0):
        """Starts `serve` and waits for /api/health; retries on another port if the bind fails."""
        last = None
        for _attempt in range(5):
            self.port = port or free_port()
            self.starts += 1
            logf = open(self.log_path, "ab")
            logf.write(f"\n==== start {self.starts} on port {self.port}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--http", f"127.0.0.1:{self.port}", "--dir", self.dir,
                 "--migrationsDir", self.migrations],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            )
            logf.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                ok, _ = health_ok(self.port, timeout=1.0)
                if ok:
                    return self
                time.sleep(0.05)
            last = f"exit code {self.proc.poll()}"
            self.kill9()
            if port is not None:
                break
        raise RuntimeError(f"server did not become healthy ({last}); log: {self.tail_log()}")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, grace=15.0):
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)
            else:
                log(f"kept {self.root}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def wait_log(self, text, count, timeout=30.0):
        """Waits until `text` appears `count` times in the server log (e.g. once per start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.log_path, "rb") as f:
                    if f.read().count(text.encode()) >= count:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def tail_log(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return "(no log)"

    # -- API ---------------------------------------------------------------------------------

    def req(self, method, path, body=None, auth=True, timeout=30.0):
        return request(self.port, method, path, body, self.token if auth else None, timeout)

    def login(self):
        status, body = self.req(
            "POST", "/api/collections/_superusers/auth-with-password",
            {"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD}, auth=False,
        )
        if status != 200:
            raise RuntimeError(f"superuser sign-in: {status} {body}")
        self.token = body["token"]
        return self.token

    def create_items(self):
        status, body = self.req("POST", "/api/collections", ITEMS_COLLECTION)
        if status != 200:
            raise RuntimeError(f"create collection: {status} {body}")
        return body["id"]

    def enable_batch(self, max_requests=50):
        status, body = self.req(
            "PATCH", "/api/settings", {"batch": {"enabled": True, "maxRequests": max_requests}}
        )
        if status != 200:
            raise RuntimeError(f"enable batch: {status} {body}")
        return body

    def settings(self):
        status, body = self.req("GET", "/api/settings")
        if status != 200:
            raise RuntimeError(f"settings: {status} {body}")
        return body

    def list_all(self, collection="items", per_page=1000):
        out = []
        page = 1
        while True:
            status, body = self.req(
                "GET",
                f"/api/collections/{collection}/records?perPage={per_page}&page={page}"
                "&skipTotal=1&sort=id",
                timeout=60.0,
            )
            if status != 200:
                raise RuntimeError(f"list {collection} page {page}: {status} {body}")
            items = body.get("items", [])
            out.extend(items)
            if len(items) < per_page:
                return out
            page += 1


def table(title, rows, headers=("check", "value", "result")):
    """Prints rows as an aligned text table."""
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"\n{title}")
    print(line)
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(line, flush=True)


class Checks:
    """Collects (name, value, ok) rows; `ok=None` means reported only."""

    def __init__(self):
        self.rows = []

    def add(self, name, value, ok=None):
        self.rows.append((name, value, ok))
        return ok

    @property
    def failed(self):
        return [r for r in self.rows if r[2] is False]

    def print(self, title):
        table(title, [(n, v, "report" if ok is None else ("PASS" if ok else "FAIL"))
                      for n, v, ok in self.rows])

    def exit(self, title):
        self.print(title)
        if self.failed:
            print(f"RESULT: FAIL ({len(self.failed)} check(s) failed: "
                  f"{', '.join(r[0] for r in self.failed)})", flush=True)
            sys.exit(1)
        print("RESULT: PASS", flush=True)
        sys.exit(0)
