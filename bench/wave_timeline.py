"""Where a wave's time goes: the 50-server wave of bench/throughput.py, with a timeline.

    python bench/wave_timeline.py [--servers 50] [--jobs 1000] [--latency 2] [--set key=value ...]

The same wave as ``throughput.py --only-panels`` (a real daemon, WHM simulators that serve 2
calls at a time), and, seconds after the orders were committed:

- when the panels got their first call (the first server, the median one, the last one), and
  when the last call ended;
- each server's idle place-time inside its own span (span less its calls' time over 2): what
  the runs' task-by-task steps cost it;
- the calls in flight per 2 s (at most servers x 2);
- each run's process, from when it was first to last seen (a look at /proc every 0.1 s);
- when the jobs were recorded (``finished_at``): the tail after the last run.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import throughput  # noqa: E402

from provisiond.models import Job  # noqa: E402
from provisiond.sandbox import base  # noqa: E402

RUN_COMMAND = b"provisiond.ansible_plugins.playbook"


class Timeline:
    def __init__(self):
        self.calls: list[tuple[int, float, float]] = []   # (simulator port, start, end)
        self.runs: dict[str, list[float]] = {}            # pid -> [first seen, last seen]
        self.ordered_at = None
        self.finished: list[datetime.datetime] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def install(self) -> None:
        serve, order, wait = base.PanelSimulator._serve_one, c.order_wave, c.wait_jobs
        timeline = self

        def timed_serve(sim, request):
            started = time.time()
            try:
                return serve(sim, request)
            finally:
                with timeline._lock:
                    timeline.calls.append((sim.port, started, time.time()))

        def timed_order(home, count, *args, **kwargs):
            ids = order(home, count, *args, **kwargs)
            timeline.ordered_at = time.time()
            threading.Thread(target=timeline._watch_runs, daemon=True).start()
            return ids

        def timed_wait(ids, *args, **kwargs):
            counts = wait(ids, *args, **kwargs)
            timeline._stop.set()
            timeline.finished = [f for (f,) in Job.select(Job.finished_at).where(Job.id.in_(ids)).tuples()]
            return counts

        base.PanelSimulator._serve_one, c.order_wave, c.wait_jobs = timed_serve, timed_order, timed_wait

    def _watch_runs(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        command = handle.read()
                except OSError:
                    continue
                if RUN_COMMAND in command:
                    self.runs.setdefault(pid, [now, now])[1] = now
            time.sleep(0.1)

    def report(self, per_server: int) -> None:
        t0 = self.ordered_at
        by_server = collections.defaultdict(list)
        for port, start, end in self.calls:
            by_server[port].append((start - t0, end - t0))
        firsts = sorted(min(s for s, _ in calls) for calls in by_server.values())
        lasts = sorted(max(e for _, e in calls) for calls in by_server.values())
        idle = [max(e for _, e in calls) - min(s for s, _ in calls) - sum(e - s for s, e in calls) / per_server
                for calls in by_server.values()]
        print(f"first call to a panel: {firsts[0]:.1f} s after the orders; median server {statistics.median(firsts):.1f} s, "
              f"last server {firsts[-1]:.1f} s")
        print(f"last call ended: median server {statistics.median(lasts):.1f} s, last server {lasts[-1]:.1f} s")
        print(f"idle place-time inside a server's span: median {statistics.median(idle):.1f} s, max {max(idle):.1f} s")
        in_flight = collections.Counter()
        for _port, start, end in self.calls:
            start, end = start - t0, end - t0
            while start < end:
                bucket = int(start // 2)
                step = min(end, (bucket + 1) * 2)
                in_flight[bucket] += step - start
                start = step
        print("calls in flight, mean per 2 s:", " ".join(f"{in_flight[b] / 2:.0f}" for b in range(int(lasts[-1] // 2) + 1)))
        spans = sorted((a - t0, b - t0) for a, b in self.runs.values() if b > a)
        print("runs (first .. last seen):", ", ".join(f"{a:.1f}..{b:.1f}" for a, b in spans))
        done = sorted(f.replace(tzinfo=datetime.timezone.utc).timestamp() - t0 for f in self.finished if f)
        print(f"jobs recorded: first {done[0]:.1f} s, median {statistics.median(done):.1f} s, last {done[-1]:.1f} s"
              + (f" ({done[-1] - spans[-1][1]:.1f} s after the last run ended)" if spans else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--per-server", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    c.print_machine()
    timeline = Timeline()
    timeline.install()
    overrides = throughput.parse_overrides(args.set)
    result = throughput.provisiond_wave(args.jobs, args.servers, args.latency, overrides, per_server=args.per_server)
    floor = args.jobs * 2 * args.latency / args.servers / args.per_server
    print(f"\n== {args.jobs} creates over {args.servers} servers, {args.latency:g} s a call ==")
    print(f"wave {result['wave_s']:.2f} s against {floor:.1f} s of panels alone ({result['wave_s'] / floor:.2f}x), "
          f"{result['cpu_per_account']:.4f} CPU-s per account")
    timeline.report(args.per_server)
    print(f"\n# load average at the end: {c.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
