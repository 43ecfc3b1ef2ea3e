#!/usr/bin/env python3
"""kill -9 under write load: no acknowledged write lost, no half batch, no corruption, no orphans.

usage: kill9.py BIN [--rounds N] [--short] [--writers W] [--seed S] [--signal kill|term] [--keep]

With --signal term each round ends with SIGTERM instead (a graceful stop: `docker stop`, a
deploy): the same ledger checks hold, and every stop must exit 0 within 10 s.

Each round: the server runs; W writer threads (keep-alive connections) mix JSON creates,
JSON updates, deletes, batches of 2-5 creates tagged with one batch tag, multipart creates
with a small file and multipart updates replacing the file; after a random 1-3 s the server
gets SIGKILL mid-load. Every write is recorded in the client's ledger before it is sent
(record ids are chosen by the client, so even an unanswered create is known):

- answered 2xx: the record's possible final states become {acknowledged state};
- sent, no answer (connection reset by the kill, timeout) or 5xx: {previous, new} and the
  record is not touched again until it has been observed;
- answered 4xx: nothing changed;
- connection refused before anything was sent: nothing changed.

Then, before the restart, `PRAGMA integrity_check` runs on a copy of every *.db (with its
-wal) as the kill left it; the server restarts on the same directory and the suite checks
through the API that every record is in one of its possible states (acknowledged creates and
updates present with their values, acknowledged deletes gone, nothing unknown present), that
every batch is all there or all absent, and on disk that every stored file belongs to a record
that names it (no orphan files or directories) and every named file exists with the bytes
uploaded (after the start-up storage sweep, which removes what a kill leaves between a file
write and its commit, has run). The observed state becomes the ledger's exact state for the next round. After the
last round the server is stopped with SIGTERM and integrity_check runs on data.db itself.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

RECORDS = "/api/collections/items/records"
DELETED = None  # the "absent" state


class Rec:
    __slots__ = ("states", "tainted", "batch")

    def __init__(self, states, batch=None):
        self.states = states  # list of possible final states: DELETED or (title, n, docspec)
        self.tainted = False
        self.batch = batch


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.recs = {}  # id -> Rec
        self.batches = {}  # tag -> {"ids": [...], "acked": bool|None}
        self.contents = {}  # uploaded file stem -> sha256 of the bytes
        self.stats = {}

    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + n


def doc_exact(name):
    return ("exact", name) if name else ("none",)


class NotSent(Exception):
    """The connection could not be opened: the request never left the client."""


class Writer(threading.Thread):
    def __init__(self, idx, port, ledger, owned, stop, rng, round_no):
        super().__init__(daemon=True)
        self.idx = idx
        self.port = port
        self.ledger = ledger
        self.stop = stop
        self.rng = rng
        self.round = round_no
        self.seq = 0
        self.conn = None
        # mutable records this writer may update/delete (exclusive ownership)
        self.live = list(owned)
        self.pos = {rid: i for i, rid in enumerate(self.live)}
        self.error = None

    # -- bookkeeping -------------------------------------------------------------------------

    def add_live(self, rid):
        self.pos[rid] = len(self.live)
        self.live.append(rid)

    def drop_live(self, rid):
        i = self.pos.pop(rid, None)
        if i is None:
            return
        last = self.live.pop()
        if i < len(self.live):
            self.live[i] = last
            self.pos[last] = i

    def pick(self):
        return self.rng.choice(self.live) if self.live else None

    # -- transport ---------------------------------------------------------------------------

    def send(self, method, path, body, ctype):
        """Returns (status, parsed json); raises NotSent, or OSError/HTTPException when the
        request may have been sent but no answer came."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.conn.connect()
            except OSError as e:
                self.conn = None
                raise NotSent(str(e)) from e
        try:
            self.conn.request(method, path, body=body,
                              headers={"Content-Type": ctype} if ctype else {})
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            try:
                self.conn.close()
            finally:
                self.conn = None
            raise
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, parsed

    def json_send(self, method, path, obj):
        return self.send(method, path, json.dumps(obj).encode(), "application/json")

    # -- outcome handling --------------------------------------------------------------------

    def outcome(self, kind, fn):
        """Runs fn(); returns ("ack", status, body) | ("rejected", status, body) |
        ("unknown", status, body) | ("notsent", None, None)."""
        try:
            status, body = fn()
        except NotSent:
            self.ledger.bump("not sent (refused)")
            return "notsent", None, None
        except (OSError, http.client.HTTPException):
            self.ledger.bump("in flight at kill (no answer)")
            return "unknown", None, None
        if 200 <= status < 300:
            self.ledger.bump(f"ack {kind}")
            self.ledger.bump("acknowledged writes")
            return "ack", status, body
        if status >= 500:
            self.ledger.bump("5xx")
            self.ledger.bump(f"5xx {status} {str(body)[:80]}")
            return "unknown", status, body
        self.ledger.bump(f"4xx {status}")
        self.ledger.bump(f"4xx {status} {str(body)[:80]}")
        return "rejected", status, body

    # -- operations --------------------------------------------------------------------------

    def name(self, kind):
        self.seq += 1
        return f"r{self.round}w{self.idx}{kind}{self.seq}"

    def op_create(self):
        rid = h.random_id(self.rng)
        title = self.name("c")
        n = self.rng.randint(0, 10**6)
        want = (title, n, ("none",))
        with self.ledger.lock:
            rec = self.ledger.recs[rid] = Rec([DELETED, want])
            rec.tainted = True
        res, _, body = self.outcome(
            "create", lambda: self.json_send("POST", RECORDS, {"id": rid, "title": title, "n": n}))
        with self.ledger.lock:
            if res == "ack":
                rec.states = [(body["title"], body["n"], doc_exact(body["doc"]))]
                rec.tainted = False
                if rec.states[0] != want:
                    self.ledger.stats["ack body differs from request"] = \
                        self.ledger.stats.get("ack body differs from request", 0) + 1
            elif res in ("rejected", "notsent"):
                rec.states = [DELETED]
                rec.tainted = False
        if res == "ack":
            self.add_live(rid)

    def op_update(self):
        rid = self.pick()
        if rid is None:
            return self.op_create()
        rec = self.ledger.recs[rid]
        old = rec.states[0]
        title = self.name("u")
        n = self.rng.randint(0, 10**6)
        payload = {"title": title, "n": n}
        newdoc = old[2]
        if old[2][0] == "exact" and self.rng.random() < 0.25:
            payload["doc"] = ""  # removes the file
            newdoc = ("none",)
        want = (title, n, newdoc)
        with self.ledger.lock:
            rec.states = [old, want]
            rec.tainted = True
        res, _, body = self.outcome("update", lambda: self.json_send(
            "PATCH", f"{RECORDS}/{rid}", payload))
        self.settle(rid, rec, old, res, body)

    def op_delete(self):
        rid = self.pick()
        if rid is None:
            return self.op_create()
        rec = self.ledger.recs[rid]
        old = rec.states[0]
        with self.ledger.lock:
            rec.states = [old, DELETED]
            rec.tainted = True
        res, _, _ = self.outcome("delete", lambda: self.send("DELETE", f"{RECORDS}/{rid}",
                                                             None, None))
        with self.ledger.lock:
            if res == "ack":
                rec.states = [DELETED]
                rec.tainted = False
            elif res in ("rejected", "notsent"):
                rec.states = [old]
                rec.tainted = False
        if res != "rejected" and res != "notsent":
            self.drop_live(rid)

    def settle(self, rid, rec, old, res, body):
        with self.ledger.lock:
            if res == "ack":
                rec.states = [(body["title"], body["n"], doc_exact(body["doc"]))]
                rec.tainted = False
            elif res in ("rejected", "notsent"):
                rec.states = [old]
                rec.tainted = False
        if res == "unknown":
            self.drop_live(rid)  # not touched again until observed

    def make_file(self):
        stem = self.name("f")
        data = self.rng.randbytes(self.rng.randint(100, 4000))
        with self.ledger.lock:
            self.ledger.contents[stem] = hashlib.sha256(data).hexdigest()
        return stem, data

    def op_upload_create(self):
        rid = h.random_id(self.rng)
        title = self.name("m")
        n = self.rng.randint(0, 10**6)
        stem, data = self.make_file()
        body, ctype = h.multipart({"id": rid, "title": title, "n": n},
                                  [("doc", f"{stem}.txt", data, "text/plain")])
        with self.ledger.lock:
            rec = self.ledger.recs[rid] = Rec([DELETED, (title, n, ("prefix", stem + "_"))])
            rec.tainted = True
        res, _, resp = self.outcome("multipart create",
                                    lambda: self.send("POST", RECORDS, body, ctype))
        with self.ledger.lock:
            if res == "ack":
                rec.states = [(resp["title"], resp["n"], doc_exact(resp["doc"]))]
                rec.tainted = False
            elif res in ("rejected", "notsent"):
                rec.states = [DELETED]
                rec.tainted = False
        if res == "ack":
            self.add_live(rid)

    def op_upload_update(self):
        rid = self.pick()
        if rid is None:
            return self.op_upload_create()
        rec = self.ledger.recs[rid]
        old = rec.states[0]
        title = self.name("p")
        stem, data = self.make_file()
        body, ctype = h.multipart({"title": title}, [("doc", f"{stem}.txt", data, "text/plain")])
        want = (title, old[1], ("prefix", stem + "_"))
        with self.ledger.lock:
            rec.states = [old, want]
            rec.tainted = True
        res, _, resp = self.outcome("multipart update",
                                    lambda: self.send("PATCH", f"{RECORDS}/{rid}", body, ctype))
        self.settle(rid, rec, old, res, resp)

    def op_batch(self):
        k = self.rng.randint(2, 5)
        tag = self.name("b")
        ids = [h.random_id(self.rng) for _ in range(k)]
        reqs = []
        with self.ledger.lock:
            self.ledger.batches[tag] = {"ids": ids, "acked": None}
            for j, rid in enumerate(ids):
                title = f"batch:{tag}:{j}"
                rec = self.ledger.recs[rid] = Rec([DELETED, (title, j, ("none",))], batch=tag)
                rec.tainted = True
                reqs.append({"method": "POST", "url": RECORDS,
                             "body": {"id": rid, "title": title, "n": j}})
        res, _, body = self.outcome("batch", lambda: self.json_send(
            "POST", "/api/batch", {"requests": reqs}))
        with self.ledger.lock:
            b = self.ledger.batches[tag]
            if res == "ack":
                b["acked"] = True
                for rid, sub in zip(ids, body):
                    rec = self.ledger.recs[rid]
                    rb = sub.get("body", {})
                    rec.states = [(rb.get("title"), rb.get("n"), doc_exact(rb.get("doc", "")))]
                    rec.tainted = False
            elif res in ("rejected", "notsent"):
                b["acked"] = False
                for rid in ids:
                    self.ledger.recs[rid].states = [DELETED]
                    self.ledger.recs[rid].tainted = False

    def run(self):
        ops = [(self.op_create, 25), (self.op_update, 25), (self.op_delete, 10),
               (self.op_batch, 12), (self.op_upload_create, 15), (self.op_upload_update, 13)]
        fns = [f for f, _ in ops]
        weights = [w for _, w in ops]
        try:
            while not self.stop.is_set():
                self.rng.choices(fns, weights)[0]()
        except Exception as e:  # a bug in the harness, not the server: fail loudly
            import traceback
            self.error = traceback.format_exc()
            self.ledger.bump("writer crashed")
            raise e
        finally:
            if self.conn is not None:
                self.conn.close()


# -- checks --------------------------------------------------------------------------------


def integrity(db_paths, scratch):
    """integrity_check on copies of each db (with -wal) as the crash left them."""
    results = {}
    for src in db_paths:
        base = os.path.basename(src)
        dst = os.path.join(scratch, base)
        for suffix in ("", "-wal"):
            if os.path.exists(src + suffix):
                shutil.copyfile(src + suffix, dst + suffix)
        results[base] = integrity_of(dst)
    return results


def integrity_of(path):
    try:
        c = sqlite3.connect(path, timeout=30)
        try:
            rows = c.execute("PRAGMA integrity_check").fetchall()
        finally:
            c.close()
        return "ok" if rows == [("ok",)] else "; ".join(r[0] for r in rows[:5])
    except sqlite3.DatabaseError as e:
        return f"error: {e}"


def state_matches(actual, possible):
    for p in possible:
        if p is DELETED or actual is DELETED:
            if p is actual:
                return True
            continue
        title, n, doc = p
        if actual[0] != title or float(actual[1]) != float(n):
            continue
        adoc = actual[2]
        if doc[0] == "none" and adoc == ("none",):
            return True
        if doc[0] == "exact" and adoc == doc:
            return True
        if doc[0] == "prefix" and adoc[0] == "exact" and adoc[1].startswith(doc[1]):
            return True
    return False


def verify(server, ledger, coll_id, problems, seen_orphans):
    """Compares the restarted server with the ledger; resolves the ledger to what was seen.
    Returns a dict of counts."""
    items = server.list_all()
    actual = {it["id"]: (it["title"], it["n"], doc_exact(it["doc"])) for it in items}
    counts = {"records in db": len(actual), "lost/wrong records": 0, "unknown records": 0,
              "partial batches": 0, "orphan files": 0, "orphan dirs": 0, "missing files": 0,
              "corrupt files": 0, "orphans after acked writes": 0}
    with ledger.lock:
        # records with a write in flight at the kill (before the ledger is resolved below)
        in_flight = {rid for rid, rec in ledger.recs.items() if rec.tainted}
        for rid, rec in ledger.recs.items():
            got = actual.get(rid, DELETED)
            if not state_matches(got, rec.states):
                counts["lost/wrong records"] += 1
                problems.append(f"record {rid}: expected one of {rec.states}, found {got}")
            rec.states = [got]
            rec.tainted = False
        for rid in actual:
            if rid not in ledger.recs:
                counts["unknown records"] += 1
                problems.append(f"record {rid} present but never written: {actual[rid]}")
        for tag, b in ledger.batches.items():
            present = sum(1 for rid in b["ids"] if rid in actual)
            if present not in (0, len(b["ids"])) or (b["acked"] and present != len(b["ids"])):
                counts["partial batches"] += 1
                problems.append(f"batch {tag} (acked={b['acked']}): {present}/{len(b['ids'])}"
                                " records present")
        contents = dict(ledger.contents)

    # files on disk against the records
    base = os.path.join(server.dir, "storage", coll_id)
    on_disk = {}
    if os.path.isdir(base):
        for rid in os.listdir(base):
            d = os.path.join(base, rid)
            if not os.path.isdir(d):
                counts["orphan files"] += 1
                problems.append(f"stray file {d}")
                continue
            on_disk[rid] = [f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f))]
    def orphan(key, path, what, rid, nfiles):
        # counted once, in the round it appears (it stays on disk in later rounds)
        if key in seen_orphans:
            return
        seen_orphans.add(key)
        cause = "write in flight at the kill" if rid in in_flight else "acknowledged writes only"
        if rid not in in_flight:
            counts["orphans after acked writes"] += 1
        counts["orphan files"] += nfiles
        if what == "dir":
            counts["orphan dirs"] += 1
        problems.append(f"orphan {what} {path} [{cause}]")

    for rid, files in on_disk.items():
        rec = actual.get(rid)
        if rec is None:
            orphan((rid, None), f"storage/{coll_id}/{rid}/ ({len(files)} files, record absent)",
                   "dir", rid, len(files))
            continue
        want = rec[2][1] if rec[2][0] == "exact" else None
        for f in files:
            if f != want:
                orphan((rid, f), f"storage/{coll_id}/{rid}/{f} (record's doc: {want!r})", "file",
                       rid, 1)
    for rid, rec in actual.items():
        if rec[2][0] != "exact":
            continue
        name = rec[2][1]
        path = os.path.join(base, rid, name)
        if not os.path.isfile(path):
            counts["missing files"] += 1
            problems.append(f"record {rid} names {name} but the file is missing")
            continue
        stem = re.sub(r"_[a-z0-9]+\.txt$", "", name)
        want = contents.get(stem)
        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if want is None or got != want:
            counts["corrupt files"] += 1
            problems.append(f"file {rid}/{name}: content differs from the upload")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=None, help="default 100 (short: 20)")
    ap.add_argument("--short", action="store_true", help="CI size: 20 rounds")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--signal", choices=("kill", "term"), default="kill",
                    help="SIGKILL (default) or SIGTERM mid-load")
    args = ap.parse_args()
    term = args.signal == "term"
    rounds = args.rounds or ((10 if args.short else 50) if term else (20 if args.short else 100))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    name = "sigterm" if term else "kill9"
    stops = []  # (exit code, seconds) of each SIGTERM
    h.log(f"{name}: {rounds} rounds, {args.writers} writers, seed {seed}, binary {args.binary}")

    checks = h.Checks()
    ledger = Ledger()
    problems = []
    server = h.Server(args.binary, name=f"fb-{name}", keep=args.keep)
    scratch = tempfile.mkdtemp(prefix="fb-kill9-copy-")
    t_start = time.monotonic()
    totals = {k: 0 for k in ("records in db", "lost/wrong records", "unknown records",
                             "partial batches", "orphan files", "orphan dirs", "missing files",
                             "corrupt files", "orphans after acked writes")}
    integrity_bad = []
    seen_orphans = set()
    per_round = []
    try:
        server.upsert_superuser()
        server.start()
        server.login()
        coll_id = server.create_items()
        server.enable_batch(50)
        rl = server.settings().get("rateLimits", {})
        h.log(f"collection items = {coll_id}; rateLimits.enabled = {rl.get('enabled')}")
        for rnd in range(1, rounds + 1):
            # hand the live, mutable records to the writers
            with ledger.lock:
                live = [rid for rid, r in ledger.recs.items()
                        if r.batch is None and r.states[0] is not DELETED]
            rng.shuffle(live)
            stop = threading.Event()
            writers = [Writer(i, server.port, ledger, live[i::args.writers], stop,
                              random.Random(rng.random()), rnd)
                       for i in range(args.writers)]
            before = dict(ledger.stats)
            for w in writers:
                w.start()
            load = rng.uniform(1.0, 3.0)
            time.sleep(load)
            if term:
                t_stop = time.monotonic()
                rc = server.stop(grace=30.0)
                stops.append((rc, time.monotonic() - t_stop))
            else:
                server.kill9()
            stop.set()
            for w in writers:
                w.join(timeout=30)
                if w.is_alive():
                    problems.append(f"writer {w.idx} did not stop")
                if w.error:
                    problems.append(f"writer {w.idx} crashed: {w.error}")
            dbs = [os.path.join(server.dir, f) for f in sorted(os.listdir(server.dir))
                   if f.endswith(".db")]
            integ = integrity(dbs, scratch)
            for db, res in integ.items():
                if res != "ok":
                    integrity_bad.append(f"round {rnd} {db}: {res}")
            server.start()
            # the start-up storage sweep removes what the kill left between file writes and
            # their commits; the files are checked once it is done
            if not server.wait_log("storage sweep done", server.starts):
                problems.append(f"round {rnd}: no 'storage sweep done' in the log within 30 s")
            server.login()
            counts = verify(server, ledger, coll_id, problems, seen_orphans)
            for k in totals:
                totals[k] = counts[k] if k == "records in db" else totals[k] + counts[k]
            acked = ledger.stats.get("acknowledged writes", 0) - before.get("acknowledged writes", 0)
            inflight = (ledger.stats.get("in flight at kill (no answer)", 0)
                        - before.get("in flight at kill (no answer)", 0))
            bad = sum(v for k, v in counts.items()
                      if k not in ("records in db", "orphans after acked writes"))
            per_round.append((rnd, f"{load:.2f}s", acked, inflight, counts["records in db"],
                              "ok" if all(v == "ok" for v in integ.values()) else "BAD",
                              bad))
            h.log(f"round {rnd}/{rounds}: load {load:.2f}s, acked {acked}, in flight {inflight},"
                  f" records {counts['records in db']}, problems {bad}")
        # last: graceful stop, then integrity_check on the files themselves
        rc = server.stop()
        checks.add("graceful stop exit code", rc, rc == 0)
        for f in sorted(os.listdir(server.dir)):
            if f.endswith(".db"):
                res = integrity_of(os.path.join(server.dir, f))
                if res != "ok":
                    integrity_bad.append(f"after stop {f}: {res}")
    except Exception as e:
        problems.append(f"harness error: {type(e).__name__}: {e}")
        checks.add("harness", f"{type(e).__name__}: {e}", False)
        h.log(server.tail_log())
    finally:
        server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)

    h.table("per round", per_round,
            ("round", "load", "acked", "in flight at kill", "records", "integrity", "problems"))
    st = ledger.stats
    for k in sorted(st):
        if k.startswith("ack ") or k.startswith("4xx ") or k.startswith("5xx "):
            checks.add(k, st[k], False if k.startswith("5xx ") else None)
    acked = st.get("acknowledged writes", 0)
    checks.add("rounds", rounds)
    if term:
        codes = sorted({rc for rc, _ in stops})
        checks.add("SIGTERM exit codes", codes, len(stops) == rounds and codes == [0])
        slowest = max((d for _, d in stops), default=0.0)
        checks.add("slowest SIGTERM stop under load", f"{slowest:.2f}s", slowest < 10.0)
    checks.add("acknowledged writes (total)", acked, acked > 0)
    checks.add("writes in flight at a kill", st.get("in flight at kill (no answer)", 0))
    checks.add("ack bodies differing from request", st.get("ack body differs from request", 0),
               st.get("ack body differs from request", 0) == 0)
    checks.add("lost or wrong records", totals["lost/wrong records"],
               totals["lost/wrong records"] == 0)
    checks.add("records never written but present", totals["unknown records"],
               totals["unknown records"] == 0)
    checks.add("partial batches", totals["partial batches"], totals["partial batches"] == 0)
    checks.add("integrity_check", "ok" if not integrity_bad else "; ".join(integrity_bad[:3]),
               not integrity_bad)
    checks.add("orphan files (of them in orphan dirs)",
               f"{totals['orphan files']} ({totals['orphan dirs']} dirs)",
               totals["orphan files"] == 0 and totals["orphan dirs"] == 0)
    checks.add("  orphans on records with no write in flight",
               totals["orphans after acked writes"])
    checks.add("records whose file is missing", totals["missing files"],
               totals["missing files"] == 0)
    checks.add("files with wrong content", totals["corrupt files"], totals["corrupt files"] == 0)
    checks.add("5xx responses", st.get("5xx", 0), st.get("5xx", 0) == 0)
    checks.add("harness problems", sum(1 for p in problems if p.startswith(("writer", "harness", "round"))),
               not any(p.startswith(("writer", "harness", "round")) for p in problems))
    checks.add("records in db at the end", totals["records in db"])
    checks.add("wall time", f"{time.monotonic() - t_start:.1f}s")
    if problems:
        print(f"\nfirst problems ({len(problems)} in all):")
        for p in problems[:25]:
            print("  " + p)
    checks.exit(f"{name} (seed {seed})")


if __name__ == "__main__":
    main()
