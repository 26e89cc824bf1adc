"""Daemon memory: RSS when idle and at the peak of a wave of creates.

    python bench/memory.py [--jobs 200] [--servers 4] [--idle 15] [--set name=value ...]

A real daemon (``python -m provisiond.cli run``, SQLite, default settings) is started against
WHM simulators. Idle: after start-up and --idle seconds of idling (its first tick, a sweep
catch-up, wake checks every wake_check_seconds), VmRSS from /proc/<pid>/status, and the CPU it
spent idling. Wave: --jobs orders committed at once; the daemon's VmRSS and the summed VmRSS of
all its descendants (ansible-playbook runs and their forks) are sampled every 0.1 s; the
daemon's own peak is also read from VmHWM. Sums of RSS count shared pages more than once, so
the tree figure is an upper bound.

Baseline: the RSS of a bare ``python -c "import provisiond.cli"`` process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
from throughput import parse_overrides  # noqa: E402


def bare_import_rss() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import sys, provisiond.cli; print('ready', flush=True); "
                             "sys.stdin.read()"], cwd=str(c.ROOT), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        return c.status_kib(proc.pid, "VmRSS")
    finally:
        proc.stdin.close()
        proc.wait()


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--idle", type=float, default=15.0)
    parser.add_argument("--set", action="append", metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    c.print_machine()
    base = bare_import_rss()
    with c.simulators(args.servers, 0.0) as sims:
        home = c.Home(settings=parse_overrides(args.set))
        try:
            c.add_whm_servers(home, sims)
            with c.DaemonProcess(home).start(settle=2.0) as daemon:
                cpu0 = c.cpu_seconds(daemon.pid)
                time.sleep(args.idle)
                idle_cpu = c.cpu_seconds(daemon.pid) - cpu0
                idle = c.status_kib(daemon.pid, "VmRSS")
                idle_children = len(c.descendants(daemon.pid))
                with c.RssSampler(daemon.pid) as sampler:
                    ids = c.order_wave(home, args.jobs)
                    t0 = time.time()
                    counts = c.wait_jobs(ids, timeout=max(600, args.jobs * 5))
                    wave = time.time() - t0
                hwm = c.status_kib(daemon.pid, "VmHWM")
                after = c.status_kib(daemon.pid, "VmRSS")
            settings = home.settings
        finally:
            home.close()
    print(f"\n== daemon memory (SQLite, batch_size={settings.batch_size}, forks={settings.forks}, "
          f"max_runs={settings.run_slots()}) ==")
    print(f"baseline: bare `python -c 'import provisiond.cli'`: RSS {mib(base)}")
    print(f"idle daemon ({args.idle:g} s after start-up, {idle_children} children): RSS {mib(idle)}  "
          f"-> x{idle / base:.2f} the bare import; target < 100 MB: {'met' if idle * 1024 < 100e6 else 'NOT met'}")
    print(f"  idle CPU: {idle_cpu:.2f} s over {args.idle:g} s ({idle_cpu / args.idle * 100:.2f} % of a core)")
    print(f"wave of {args.jobs} creates over {args.servers} servers ({wave:.1f} s, {counts}):")
    print(f"  daemon peak RSS {mib(max(hwm, sampler.peak_self))} (VmHWM), RSS after the wave {mib(after)}")
    print(f"  children: peak summed RSS {mib(sampler.peak_children)} (at most {sampler.max_children_count} "
          f"processes at once); daemon + children peak {mib(sampler.peak_tree)}")
    print(f"\n# load average at the end: {c.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
