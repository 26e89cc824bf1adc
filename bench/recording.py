"""How long the daemon takes to record a wave's jobs once its runs end together.

    python bench/recording.py [--jobs 1000] [--servers 50] [--repeat 3]

The worker's own claim, render and record of --jobs creates over --servers WHM servers, with
each run's playbook replaced by an instant success (two events per host, as a create makes).
The runs are held until every one has been claimed, then all end at once, as the runs of a
50-server wave do; the time from then until the last job is recorded is the wave's tail.

Each repeat measures, in its own process:
- **chunks** (what the worker does): a run's jobs recorded ``RECORD_CHUNK`` to a transaction,
  the runs taking turns on SQLite;
- **per job** (the baseline): one transaction per job, the runs meeting in SQLite's busy wait.

To see a disk whose flush takes time (this VM's takes ~0.2 ms, a real disk's 1-10 ms), run it
under ``strace --seccomp-bpf -f -qq -o /dev/null -e trace=fsync,fdatasync
-e inject=fsync,fdatasync:delay_enter=2000`` (2 ms per flush).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from provisiond import execute, worker  # noqa: E402
from provisiond.execute import HostResult, RunResult  # noqa: E402

ENDED = threading.Event()


def _event(host: str, task: str, n: int) -> dict:
    return {"uuid": str(uuid.uuid4()), "counter": n, "stdout": f"ok: [{host}]", "event": "runner_on_ok",
            "event_data": {"play": "Create a cPanel account", "task": task, "host": host,
                           "start": "2026-11-29T02:00:00", "end": "2026-11-29T02:00:02", "duration": 2.0,
                           "res": {"changed": n == 2, "status": 200,
                                   "answer": {"metadata": {"result": 1, "reason": "OK"}}}}}


def instant_success(spec: execute.RunSpec) -> RunResult:
    """A create that succeeded on every host, once the wave's runs may end."""
    ENDED.wait()
    hosts = list(spec.inventory["all"]["hosts"])
    lines = []
    for task in ("Look the account up (accountsummary)", "Create the account (createacct)"):
        lines += [f"TASK [{task}] ***", *(f"ok: [{h}]" for h in hosts)]
    lines += ["PLAY RECAP ***", *(f"{h} : ok=2 changed=1" for h in hosts)]
    return RunResult("successful", 0, time.time(), 1.0, "\n".join(lines),
                     {h: HostResult(h, ok=True, stats={"remote_id": h, "username": h},
                                    events=[_event(h, "Look the account up", 1), _event(h, "Create the account", 2)])
                      for h in hosts})


def measure(jobs: int, servers: int, per_job: bool) -> None:
    execute.run = instant_success
    if per_job:
        worker.RECORD_CHUNK = 1
        worker._recording_turn = contextlib.nullcontext
    with c.simulators(servers, 0) as sims:
        home = c.Home()
        try:
            c.add_whm_servers(home, sims)
            ids = c.order_wave(home, jobs)
            w = worker.Worker(home.settings, home.vault)
            started = w.tick()
            t0 = time.perf_counter()
            ENDED.set()
            w.wait(started)
            tail = time.perf_counter() - t0
            counts = c.wait_jobs(ids, timeout=5)
            print(f"{tail:.3f} {len(started)} {counts}")
        finally:
            home.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", choices=["chunks", "per-job"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure(args.jobs, args.servers, per_job=args.one == "per-job")
        return
    c.print_machine()
    tails = {"chunks": [], "per-job": []}
    for _ in range(args.repeat):
        for mode in tails:   # interleaved, so a busy moment of the machine falls on both
            out = subprocess.run([sys.executable, __file__, "--one", mode, "--jobs", str(args.jobs),
                                  "--servers", str(args.servers)], capture_output=True, text=True, check=True)
            tail, runs, counts = out.stdout.strip().split(" ", 2)
            tails[mode].append(float(tail))
            print(f"  {mode:8} {runs} runs ended at once; their {args.jobs} jobs recorded {float(tail):.2f} s "
                  f"later; {counts}")
    chunks, per_job = statistics.median(tails["chunks"]), statistics.median(tails["per-job"])
    print(f"median: chunks {chunks:.2f} s, per job {per_job:.2f} s; per job / chunks = {per_job / chunks:.2f}")


if __name__ == "__main__":
    main()
