#!/usr/bin/env python3
"""64 concurrent writers: no 5xx, no "database is locked", nothing lost.

usage: concurrency.py BIN [--short] [--seconds S] [--threads T] [--keep]

T threads (default 64), each with its own keep-alive http.client connection, loop for S
seconds (default 10, short 3) over: create a record (45%), update one of the thread's own
records (35%), update one of 8 shared "hot" records that every thread writes (20%, row
contention). Afterwards the server's record count must equal the acknowledged creates plus
the hot records, and each thread's last acknowledged update of its own records must be what
the server holds.

Fails on any 5xx, any response body mentioning "database is locked" (or "busy"), any 4xx
(every request is valid), any transport error (reset, timeout) and any mismatch.
"""

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

RECORDS = "/api/collections/items/records"
HOT = 8


class Worker(threading.Thread):
    def __init__(self, idx, port, hot_ids, deadline, rng):
        super().__init__(daemon=True)
        self.idx, self.port, self.hot_ids, self.deadline, self.rng = idx, port, hot_ids, deadline, rng
        self.conn = None
        self.counts = {}
        self.latencies = []
        self.own = {}  # id -> last acknowledged (title, n)
        self.samples = []  # interesting bodies
        self.error = None

    def bump(self, k):
        self.counts[k] = self.counts.get(k, 0) + 1

    def call(self, method, path, obj):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        t0 = time.monotonic()
        try:
            self.conn.request(method, path, body=json.dumps(obj).encode(),
                              headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.bump(f"transport error {type(e).__name__}")
            self.bump("transport errors")
            self.conn.close()
            self.conn = None
            return None, None
        self.latencies.append(time.monotonic() - t0)
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        text = raw.decode("utf-8", "replace")
        low = text.lower()
        if "database is locked" in low or "database is busy" in low or "sqlite_busy" in low:
            self.bump("locked/busy bodies")
            self.samples.append(f"{resp.status} {text[:200]}")
        status = resp.status
        self.bump(f"{status // 100}xx")
        if status >= 400:
            self.bump(f"status {status}")
            if len(self.samples) < 5:
                self.samples.append(f"{method} {path} -> {status} {text[:200]}")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return status, body

    def run(self):
        try:
            seq = 0
            while time.monotonic() < self.deadline:
                seq += 1
                r = self.rng.random()
                if r < 0.45 or not self.own:
                    title, n = f"t{self.idx}-c{seq}", self.rng.randint(0, 10**6)
                    st, body = self.call("POST", RECORDS, {"title": title, "n": n})
                    if st == 200:
                        self.bump("acked creates")
                        self.own[body["id"]] = (title, n)
                elif r < 0.80:
                    rid = self.rng.choice(list(self.own))
                    title, n = f"t{self.idx}-u{seq}", self.rng.randint(0, 10**6)
                    st, _ = self.call("PATCH", f"{RECORDS}/{rid}", {"title": title, "n": n})
                    if st == 200:
                        self.bump("acked own updates")
                        self.own[rid] = (title, n)
                    elif st is None:
                        self.own.pop(rid)  # state unknown: not checked
                else:
                    rid = self.rng.choice(self.hot_ids)
                    st, _ = self.call("PATCH", f"{RECORDS}/{rid}",
                                      {"title": f"hot-{self.idx}-{seq}", "n+": 1})
                    if st == 200:
                        self.bump("acked hot updates")
        except Exception:
            import traceback
            self.error = traceback.format_exc()
        finally:
            if self.conn is not None:
                self.conn.close()


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(p / 100 * len(sorted_vals)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--short", action="store_true", help="CI size: 3 s")
    ap.add_argument("--seconds", type=float, default=None, help="default 10 (short: 3)")
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    seconds = args.seconds or (3.0 if args.short else 10.0)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    h.raise_nofile()
    checks = h.Checks()
    server = h.Server(args.binary, name="fb-conc", keep=args.keep)
    t_start = time.monotonic()
    h.log(f"concurrency: {args.threads} threads for {seconds:.0f}s, seed {seed}")
    try:
        server.upsert_superuser()
        server.start()
        server.login()
        server.create_items()
        hot_ids = []
        for i in range(HOT):
            st, body = server.req("POST", RECORDS, {"title": f"hot{i}", "n": 0})
            if st != 200:
                raise RuntimeError(f"hot record: {st} {body}")
            hot_ids.append(body["id"])
        deadline = time.monotonic() + seconds
        workers = [Worker(i, server.port, hot_ids, deadline, random.Random(rng.random()))
                   for i in range(args.threads)]
        t0 = time.monotonic()
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=seconds + 60)
        elapsed = time.monotonic() - t0
        alive = sum(1 for w in workers if w.is_alive())
        counts = {}
        lat = []
        samples = []
        for w in workers:
            for k, v in w.counts.items():
                counts[k] = counts.get(k, 0) + v
            lat.extend(w.latencies)
            samples.extend(w.samples)
        lat.sort()
        total = len(lat)
        crashed = [w.error for w in workers if w.error]

        # what the server holds now
        items = server.list_all()
        by_id = {it["id"]: it for it in items}
        mismatched = 0
        for w in workers:
            for rid, (title, n) in w.own.items():
                it = by_id.get(rid)
                if it is None or it["title"] != title or float(it["n"]) != float(n):
                    mismatched += 1
                    if len(samples) < 10:
                        samples.append(f"record {rid}: expected {(title, n)}, got "
                                       f"{(it or {}).get('title')!r}, {(it or {}).get('n')!r}")
        hot_sum = sum(float(by_id[r]["n"]) for r in hot_ids if r in by_id)
        rss = h.proc_status(server.pid)

        checks.add("threads / seconds", f"{args.threads} / {elapsed:.1f}s")
        checks.add("responses", total, total > 0)
        checks.add("throughput", f"{total / elapsed:.0f} req/s")
        checks.add("latency p50 / p99 / max",
                   f"{pct(lat, 50) * 1000:.1f} / {pct(lat, 99) * 1000:.1f} / "
                   f"{(lat[-1] if lat else 0) * 1000:.1f} ms")
        checks.add("2xx", counts.get("2xx", 0))
        checks.add("acked creates / own updates / hot updates",
                   f"{counts.get('acked creates', 0)} / {counts.get('acked own updates', 0)} / "
                   f"{counts.get('acked hot updates', 0)}")
        checks.add("5xx", counts.get("5xx", 0), counts.get("5xx", 0) == 0)
        checks.add('bodies with "database is locked"/busy', counts.get("locked/busy bodies", 0),
                   counts.get("locked/busy bodies", 0) == 0)
        checks.add("4xx (all requests are valid)", counts.get("4xx", 0), counts.get("4xx", 0) == 0)
        checks.add("transport errors (reset/timeout)", counts.get("transport errors", 0),
                   counts.get("transport errors", 0) == 0)
        want_rows = counts.get("acked creates", 0) + HOT
        checks.add("records on the server = acked creates + hot", f"{len(items)} vs {want_rows}",
                   len(items) == want_rows)
        checks.add("own records not as last acknowledged", mismatched, mismatched == 0)
        checks.add("hot counters sum = acked hot updates",
                   f"{hot_sum:.0f} vs {counts.get('acked hot updates', 0)}",
                   hot_sum == counts.get("acked hot updates", 0))
        checks.add("worker threads crashed / stuck", f"{len(crashed)} / {alive}",
                   not crashed and alive == 0)
        checks.add("server RSS after", f"{rss['rss_kib']} KiB, {rss['threads']} threads")
        rc = server.stop()
        checks.add("graceful stop exit code", rc, rc == 0)
        for k in sorted(counts):
            if k.startswith("status ") or k.startswith("transport error "):
                checks.add(k, counts[k])
        if crashed:
            print(crashed[0])
        if samples:
            print("sample responses:")
            for s in samples[:10]:
                print("  " + s)
    except Exception as e:
        checks.add("harness", f"{type(e).__name__}: {e}", False)
        print(server.tail_log())
    finally:
        server.cleanup()
    checks.add("wall time", f"{time.monotonic() - t_start:.1f}s")
    checks.exit(f"concurrency (seed {seed})")


if __name__ == "__main__":
    main()
