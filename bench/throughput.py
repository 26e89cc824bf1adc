"""Throughput: a wave of creates over simulated WHM servers, provisiond vs the seeds' model.

    python bench/throughput.py [--jobs 200] [--servers 4] [--latency 0 --latency 0.2]
                               [--naive-jobs 20] [--panels-servers 10 --panels-latency 0.2]
                               [--panels-jobs 200] [--per-server 2] [--lognormal-mean 8]
                               [--set batch_size=20 ...]

The scenarios of issue 13 ("never the bottleneck"), against the panels alone:

    --only-panels --panels-latency 2 --panels-servers 10 --panels-jobs 200 --per-server 2
    --only-panels --panels-latency 2 --panels-servers 50 --panels-jobs 1000 --per-server 2
    --only-panels --panels-latency 0.2 --lognormal-mean 8 --panels-servers 10 --panels-jobs 200
    --skip-naive --skip-panels --latency 0 --servers 4 --jobs 200        (the 0 ms floor)

Every simulator serves at most --per-server calls at once (a further call waits, as a busy panel
would), and each server is added with that max_concurrency.

provisiond: a real daemon process (``python -m provisiond.cli run``) on SQLite with the default
settings (or ``--set`` overrides); the N orders are committed in one transaction while the
daemon idles, and the wave lasts from that commit until the last job is recorded. Controller CPU
is the daemon's utime+stime plus that of every child it reaped (ansible-playbook and its forks),
read from /proc/<pid>/stat before and after the wave.

Naive baseline (the seeds' model): one ansible-runner run per job, in sequence, whose playbook
(bench/naive/create_uri.yml) makes the same WHM calls with ansible.builtin.uri. It runs on a
sample of --naive-jobs jobs in a subprocess (CPU from RUSAGE_CHILDREN around it); its
per-account figures are extrapolated to N.

Panels alone: the time the panels need if the controller cost nothing, at the per-server
concurrency limit: T = max over servers of max(sum of that server's call times / per_server,
its longest call), i.e. each server answers per_server calls at a time; with a fixed latency
that is (calls to the busiest server) x latency / per_server. The call times are those the
simulators drew in this very wave (--lognormal-mean draws createacct's from a log-normal).

Memory: the PSS (shared pages divided among their sharers) of the daemon and every descendant
(runs, forks), summed from /proc/<pid>/smaps_rollup once a second during the wave; the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

NAIVE = Path(__file__).resolve().parent / "naive" / "run_naive.py"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def provisiond_wave(jobs: int, servers: int, latency: float, overrides: dict, per_server: int = 2,
                    lognormal_mean: float | None = None) -> dict:
    slow = {"createacct": lognormal_mean} if lognormal_mean else None
    with c.simulators(servers, latency, max_concurrency=per_server, slow_calls=slow) as sims:
        home = c.Home(settings=overrides)
        try:
            c.add_whm_servers(home, sims)
            before_all = children_cpu()
            daemon = c.DaemonProcess(home).start(settle=2.0)
            try:
                t_order = time.time()
                cpu0, own0 = c.cpu_seconds(daemon.pid), c.own_cpu_seconds(daemon.pid)
                with c.PssSampler(daemon.pid) as pss:
                    ids = c.order_wave(home, jobs)
                    t0 = time.time()
                    counts = c.wait_jobs(ids, timeout=max(600, jobs * 5))
                    wave = time.time() - t0
                cpu = c.cpu_seconds(daemon.pid) - cpu0
                own = c.own_cpu_seconds(daemon.pid) - own0
            finally:
                daemon.stop()
            whole = children_cpu() - before_all
            created = sum(len(s.accounts) for s in sims)
            per_server_calls = [len(s.requests) for s in sims]
            panels_alone = max(max(sum(s.delays) / per_server, max(s.delays, default=0.0)) for s in sims)
            settings = home.settings
            return {"jobs": jobs, "servers": servers, "latency": latency, "wave_s": wave,
                    "per_server": per_server, "lognormal_mean": lognormal_mean, "panels_alone_s": panels_alone,
                    "peak_in_flight": max(s.peak_in_flight for s in sims),
                    "pss_peak_mib": pss.peak_kib / 1024, "pss_peak_processes": pss.peak_processes,
                    "order_s": t0 - t_order, "statuses": counts, "created": created,
                    "per_min": jobs / wave * 60, "cpu_s": cpu, "cpu_per_account": cpu / jobs,
                    "daemon_own_cpu_per_account": own / jobs,
                    "daemon_cpu_whole_life_s": whole, "calls": per_server_calls,
                    "settings": {"batch_size": settings.batch_size, "forks": settings.forks,
                                 "max_runs": settings.run_slots(), "per_server_runs": settings.per_server_runs,
                                 "max_concurrency": per_server}}
        finally:
            home.close()


def naive_sample(jobs: int, servers: int, latency: float) -> dict:
    with c.simulators(servers, latency) as sims, tempfile.TemporaryDirectory() as tmp:
        accounts = [{"panel_url": sims[i % servers].url, "username": f"naive{i:05d}",
                     "domain": f"naive{i:05d}.example.com", "email": f"owner@naive{i:05d}.example.com",
                     "package": "basic", "password": f"Pw-{i:05d}-x9!Qz"} for i in range(jobs)]
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"token": c.TOKEN, "accounts": accounts}))
        cpu0 = children_cpu()
        t0 = time.time()
        out = subprocess.run([sys.executable, str(NAIVE), str(spec)], capture_output=True, text=True)
        elapsed = time.time() - t0
        cpu = children_cpu() - cpu0
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        ok = sum(1 for line in lines if line.get("status") == "successful")
        created = sum(len(s.accounts) for s in sims)
        if out.returncode or created != jobs:
            print(out.stdout[-2000:], out.stderr[-3000:], file=sys.stderr)
        return {"jobs": jobs, "latency": latency, "elapsed_s": elapsed, "ok": ok, "created": created,
                "per_account_s": elapsed / jobs, "per_min": jobs / elapsed * 60,
                "cpu_per_account": cpu / jobs}


def parse_overrides(pairs: list[str]) -> dict:
    import yaml
    result = {}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        result[key] = yaml.safe_load(value)
    return result


def report_provisiond(p: dict) -> None:
    print(f"\n== {p['jobs']} creates over {p['servers']} WHM servers, panel latency {p['latency'] * 1000:.0f} ms ==")
    print(f"provisiond daemon ({_fmt_settings(p['settings'])}):")
    print(f"  wave {p['wave_s']:.2f} s (commit of the {p['jobs']} orders -> last job recorded; placing "
          f"the orders took {p['order_s']:.2f} s before that), statuses {p['statuses']}, "
          f"accounts on the panels {p['created']}")
    print(f"  {p['per_min']:.0f} accounts/min; controller CPU {p['cpu_s']:.2f} s = "
          f"{p['cpu_per_account']:.4f} s per account (daemon + children during the wave; "
          f"whole daemon life incl. start-up and stop {p['daemon_cpu_whole_life_s']:.2f} s)")
    print(f"  daemon tree memory: peak PSS {p['pss_peak_mib']:.0f} MiB over at most "
          f"{p['pss_peak_processes']} processes; load average {c.load_average()}")


def report_vs_naive(p: dict, n: dict) -> dict:
    ratio = p["per_min"] / n["per_min"]
    print(f"naive baseline (one ansible-runner run per job, ansible.builtin.uri), measured on "
          f"{n['jobs']} jobs and extrapolated per account:")
    print(f"  {n['elapsed_s']:.2f} s for {n['jobs']} ({n['ok']} ok) = {n['per_account_s']:.3f} s per account "
          f"-> {n['per_account_s'] * p['jobs']:.0f} s for {p['jobs']} (extrapolated); "
          f"{n['per_min']:.1f} accounts/min; CPU {n['cpu_per_account']:.3f} s per account")
    target = f"; target >= 25: {'met' if ratio >= 25 else 'NOT met'}" if p["latency"] == 0 else ""
    print(f"ratio: throughput x{ratio:.1f} (provisiond / naive{target}); CPU per account "
          f"x{n['cpu_per_account'] / p['cpu_per_account']:.1f} less (target <= 0.05 s per account: "
          f"{'met' if p['cpu_per_account'] <= 0.05 else 'NOT met'})")
    return {"ratio": ratio}


def report_vs_panels(p: dict) -> dict:
    panels = p["panels_alone_s"]
    ratio = p["wave_s"] / panels if panels else float("nan")
    calls = "createacct log-normal, mean %.1f s; other calls %.3f s" % (p["lognormal_mean"], p["latency"]) \
        if p["lognormal_mean"] else f"{p['latency'] * 1000:.0f} ms per call"
    print(f"\n== {p['jobs']} creates over {p['servers']} WHM servers ({calls}, {p['per_server']} calls at a "
          f"time per server): provisiond vs the panels alone ==")
    print(f"provisiond daemon ({_fmt_settings(p['settings'])}): wave {p['wave_s']:.2f} s, statuses "
          f"{p['statuses']}, {p['per_min']:.0f} accounts/min, CPU {p['cpu_s']:.1f} s = "
          f"{p['cpu_per_account']:.4f} s per account, of which the daemon's own process "
          f"{p['daemon_own_cpu_per_account']:.4f} s (the rest: ansible-playbook and its forks)")
    print(f"panels alone = busiest server's call time / {p['per_server']} = {panels:.2f} s "
          f"(calls per server: min {min(p['calls'])}, max {max(p['calls'])}; most calls seen at once on "
          f"one server: {p['peak_in_flight']})")
    print(f"ratio: wave / panels alone = {ratio:.2f} (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")
    cpu_floor = p["cpu_s"] / (os.cpu_count() or 1)
    print(f"  (the controller's CPU alone, {p['cpu_s']:.1f} CPU-s spread over {os.cpu_count()} cores, needs "
          f"{cpu_floor:.1f} s: ratio to the panels alone {cpu_floor / panels:.2f})")
    print(f"  daemon tree memory: peak PSS {p['pss_peak_mib']:.0f} MiB over at most "
          f"{p['pss_peak_processes']} processes (target <= 1.5 GB at 50 servers); load average {c.load_average()}")
    return {"ratio": ratio, "panels_s": panels, "cpu_floor_s": cpu_floor}


def _fmt_settings(s: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in s.items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--latency", type=float, action="append",
                        help="simulator latency in seconds (repeatable; default 0 and 0.2)")
    parser.add_argument("--naive-jobs", type=int, default=20)
    parser.add_argument("--panels-servers", type=int, default=10)
    parser.add_argument("--panels-latency", type=float, default=0.2,
                        help="seconds per panel call in the panels wave (every call but a log-normal one)")
    parser.add_argument("--panels-jobs", type=int, help="creates in the panels wave (default: --jobs)")
    parser.add_argument("--per-server", type=int, default=2,
                        help="calls each simulator serves at once, and each server's max_concurrency")
    parser.add_argument("--lognormal-mean", type=float,
                        help="draw createacct's time from a log-normal with this mean (s), in the panels wave")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-panels", action="store_true")
    parser.add_argument("--only-panels", action="store_true")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="daemon setting override written to its provisiond.yaml")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.set)
    c.print_machine()
    figures = {"machine": c.machine(), "overrides": overrides, "runs": []}
    if not args.only_panels:
        for latency in args.latency or [0.0, 0.2]:
            p = provisiond_wave(args.jobs, args.servers, latency, overrides, args.per_server)
            entry = {"provisiond": p}
            report_provisiond(p)
            if not args.skip_naive:
                n = naive_sample(args.naive_jobs, args.servers, latency)
                entry["naive"] = n
                entry.update(report_vs_naive(p, n))
            figures["runs"].append(entry)
    if not args.skip_panels:
        p = provisiond_wave(args.panels_jobs or args.jobs, args.panels_servers, args.panels_latency, overrides,
                            args.per_server, args.lognormal_mean)
        figures["panels"] = {"provisiond": p, **report_vs_panels(p)}
    print(f"\n# load average at the end: {c.load_average()}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
