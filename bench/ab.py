#!/usr/bin/env python3
"""A/B of two or more Ferrobase binaries on the same machine in the same run (for changes on
a hot path): the same cases, client and seeding as bench/run.py, runs alternating between
the binaries; medians reported, and a paired ratio (per round, geometric mean) that cancels
the machine's drift between rounds.

    python3 bench/ab.py OLD_BINARY NEW_BINARY [--cases create,view,list] [--repeat 5]
"""
import argparse, math, os, random, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--cases", default="list,filter,view,create,update")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    records = 10_000
    servers = [run.Server(f"bin{i}", b) for i, b in enumerate(args.binaries)]
    ids_files, results = {}, {}
    try:
        for s in servers:
            s.start()
            ids = run.setup(s, records)
            f = tempfile.NamedTemporaryFile("w", delete=False)
            f.write("\n".join(random.sample(ids, 1000))); f.close()
            ids_files[s.name] = f.name
        for case in args.cases.split(","):
            runs = {s.name: [] for s in servers}
            for rep in range(args.repeat):
                order = servers if rep % 2 == 0 else servers[::-1]
                for s in order:
                    coll = "bench"
                    if case == "create":
                        coll = f"bench_create_{rep + 1}"
                        run.setup(s, records, coll)
                    run.settle(servers)
                    r = run.wrk(s, case, args, ids_files[s.name], records, coll)
                    runs[s.name].append(r)
                    print(f"{s.name} {case:7} run {rep + 1}: {r['rps']:9.0f} req/s  p99 {r['p99']:.1f} ms", flush=True)
            results[case] = {n: run.median_run(r) for n, r in runs.items()}
    finally:
        for s in servers:
            if hasattr(s, "proc"):
                s.stop()
        for f in ids_files.values():
            os.unlink(f)
    print()
    for i, b in enumerate(args.binaries):
        print(f"bin{i} = {b}")
    # The median ratio compares runs made at different moments; on a shared machine whose speed
    # drifts by up to 2x between rounds it can read 10 % either way. The paired ratio compares
    # the two binaries within each round (runs seconds apart), then takes the geometric mean.
    print("\n| case | " + " | ".join(f"bin{i} req/s (p99 ms)" for i in range(len(servers)))
          + " | bin_last / bin0 (medians) | paired bin_last / bin0 (geo. mean of per-round ratios) | runs |")
    print("|---|" + "---:|" * (len(servers) + 2) + "---|")
    for case, by in results.items():
        cells = [f"{by[s.name]['rps']:.0f} ({by[s.name]['p99']:.1f})" for s in servers]
        ratio = by[servers[-1].name]["rps"] / by[servers[0].name]["rps"]
        runs_txt = " / ".join(" ".join(f"{x:.0f}" for x in by[s.name]["all_rps"]) for s in servers)
        last, first = by[servers[-1].name]["all_rps"], by[servers[0].name]["all_rps"]
        paired = math.exp(sum(math.log(a / b) for a, b in zip(last, first)) / len(first))
        print(f"| {case} | " + " | ".join(cells) + f" | {ratio:.2f}x | {paired:.3f}x | {runs_txt} |")


if __name__ == "__main__":
    main()
