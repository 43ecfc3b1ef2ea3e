#!/usr/bin/env python3
"""Slowloris: many connections trickling a request head byte by byte.

usage: slowloris.py BIN [--short] [--conns N] [--interval S] [--deadline S] [--keep]

Opens N TCP connections (default 2000, short 500) that each send
"GET /api/health HTTP/1.1\\r\\nHost: ...\\r\\n" and then endless "X-Slow-k: aaaa\\r\\n" header
lines, one byte every S seconds (default 1), never the blank line that ends the head.
Meanwhile a normal client opens a new connection every 0.5 s and must get /api/health 200
within 2 s every time. The script measures how long after opening the server closes each
trickling connection (the server is expected to close a connection whose head has not
arrived after a header-read timeout).

Fails if a normal client is not served within 2 s, if fewer than 95% of the trickling
connections could be opened, or if any trickling connection is still open --deadline seconds
(default 90, short 30; the server's header-read timeout is 15 s) after it was opened.
"""

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402


def trickle_bytes(k):
    yield from b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    i = 0
    while True:
        i += 1
        yield from f"X-Slow-{k}-{i}: aaaaaaaaaaaaaaaa\r\n".encode()


class Conn:
    __slots__ = ("opened", "closed", "how", "responded", "sent")

    def __init__(self):
        self.opened = None
        self.closed = None
        self.how = None
        self.responded = b""
        self.sent = 0


async def trickle(k, port, interval, stop_at, conn, open_sem):
    async with open_sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout=10)
        except (OSError, asyncio.TimeoutError) as e:
            conn.how = f"connect failed: {type(e).__name__}"
            return
    conn.opened = time.monotonic()
    gen = trickle_bytes(k)
    # spread the sends over the interval
    await asyncio.sleep((k % 100) / 100 * interval)
    try:
        while time.monotonic() < stop_at:
            try:
                writer.write(bytes([next(gen)]))
                await asyncio.wait_for(writer.drain(), timeout=5)
                conn.sent += 1
            except (ConnectionError, OSError):
                conn.closed, conn.how = time.monotonic(), "write failed (reset/pipe)"
                return
            except asyncio.TimeoutError:
                pass  # the send buffer is full: keep waiting for the server
            try:
                data = await asyncio.wait_for(reader.read(4096), timeout=interval)
            except asyncio.TimeoutError:
                continue
            except (ConnectionError, OSError):
                conn.closed, conn.how = time.monotonic(), "read reset"
                return
            if not data:
                conn.closed, conn.how = time.monotonic(), "EOF"
                return
            conn.responded += data[:200]
        conn.how = "still open at deadline"
    finally:
        writer.close()


class Prober(threading.Thread):
    """A normal client: a new connection and GET /api/health every 0.5 s, 2 s budget."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.results = []  # (t, ok, seconds)

    def run(self):
        while not self.stop.is_set():
            ok, dt = h.health_ok(self.port, timeout=2.0)
            self.results.append((time.monotonic(), ok and dt <= 2.0, dt))
            self.stop.wait(0.5)


async def run_all(port, n, interval, deadline):
    conns = [Conn() for _ in range(n)]
    open_sem = asyncio.Semaphore(200)
    t0 = time.monotonic()
    # each connection trickles until `deadline` seconds after the start (plus opening time)
    stop_at = t0 + deadline + 15
    tasks = [asyncio.ensure_future(trickle(k, port, interval, stop_at, conns[k], open_sem))
             for k in range(n)]
    # wait until everything opened is closed, or every opened connection passed its deadline
    while True:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        pending = [c for c in conns if c.opened and c.closed is None and c.how is None]
        opening = [c for c in conns if c.opened is None and c.how is None]
        if not pending and not opening:
            break
        if not opening and all(now - c.opened >= deadline for c in pending):
            break
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return conns, t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--short", action="store_true", help="CI size: 500 connections, 30 s")
    ap.add_argument("--conns", type=int, default=None, help="default 2000 (short: 500)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between bytes")
    ap.add_argument("--deadline", type=float, default=None,
                    help="seconds a trickling connection may stay open (default 90, short 30)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    n = args.conns or (500 if args.short else 2000)
    deadline = args.deadline or (30.0 if args.short else 90.0)
    soft, hard = h.raise_nofile()
    checks = h.Checks()
    t_start = time.monotonic()
    h.log(f"slowloris: {n} connections, a byte every {args.interval}s, deadline {deadline:.0f}s,"
          f" RLIMIT_NOFILE {soft}/{hard}")
    if soft < n + 100:
        h.log(f"warning: RLIMIT_NOFILE {soft} is too low for {n} connections")
    server = h.Server(args.binary, name="fb-slowloris", keep=args.keep)
    prober = None
    try:
        server.upsert_superuser()
        server.start()
        base = h.proc_status(server.pid)
        prober = Prober(server.port)
        prober.start()
        peak = {"fds": 0, "rss_kib": 0}

        def sample():
            while prober.is_alive() and not prober.stop.is_set():
                s = h.proc_status(server.pid)
                for k in peak:
                    if s[k] is not None:
                        peak[k] = max(peak[k], s[k])
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        conns, t0 = asyncio.run(run_all(server.port, n, args.interval, deadline))
        after_ok, after_dt = h.health_ok(server.port, timeout=2.0)
        prober.stop.set()
        prober.join(timeout=5)

        opened = [c for c in conns if c.opened is not None]
        closed = [c for c in opened if c.closed is not None]
        still = [c for c in opened if c.closed is None]
        times = sorted(c.closed - c.opened for c in closed)
        responded = [c for c in closed if c.responded]
        kinds = {}
        for c in conns:
            kinds[c.how] = kinds.get(c.how, 0) + 1
        probes = prober.results
        bad = [p for p in probes if not p[1]]
        worst = max((p[2] for p in probes), default=float("nan"))
        bytes_sent = sorted(c.sent for c in opened)

        checks.add("trickling connections opened", f"{len(opened)} / {n}", len(opened) >= 0.95 * n)
        checks.add("server fds before / peak", f"{base['fds']} / {peak['fds']}")
        checks.add("server RSS before / peak", f"{base['rss_kib']} / {peak['rss_kib']} KiB")
        checks.add("normal-client probes (200 within 2 s)",
                   f"{len(probes) - len(bad)} / {len(probes)} ok, worst {worst:.3f}s",
                   len(probes) >= 5 and not bad)
        if bad:
            checks.add("  first failed probe at", f"{bad[0][0] - t0:.1f}s after start")
        checks.add("health after the test", f"{after_ok} in {after_dt:.3f}s", after_ok)
        if times:
            checks.add("closed by the server", f"{len(closed)} / {len(opened)}")
            checks.add("time to close: min / median / max",
                       f"{times[0]:.1f} / {statistics.median(times):.1f} / {times[-1]:.1f} s")
        else:
            checks.add("closed by the server", f"0 / {len(opened)}")
        checks.add("bytes of head sent before close (median)",
                   statistics.median(bytes_sent) if bytes_sent else 0)
        checks.add("closed with a response first (e.g. 408)",
                   f"{len(responded)}" + (f": {responded[0].responded[:40]!r}" if responded else ""))
        for k, v in sorted(kinds.items(), key=lambda kv: str(kv[0])):
            checks.add(f"  outcome: {k}", v)
        checks.add(f"still open {deadline:.0f}s after opening", len(still), len(still) == 0)
        rc = server.stop()
        checks.add("graceful stop exit code", rc, rc == 0)
    except Exception as e:
        checks.add("harness", f"{type(e).__name__}: {e}", False)
        print(server.tail_log())
    finally:
        if prober:
            prober.stop.set()
        server.cleanup()
    checks.add("wall time", f"{time.monotonic() - t_start:.1f}s")
    checks.exit(f"slowloris ({n} connections{', short' if args.short else ''})")


if __name__ == "__main__":
    main()
