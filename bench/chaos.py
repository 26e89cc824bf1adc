"""Chaos: orders while daemons are SIGKILLed and restarted at random moments.

    python bench/chaos.py [--jobs 200] [--servers 3] [--daemons 3] [--kills 6] [--db sqlite|postgres]
                          [--lease 6] [--latency 0.05] [--seed N] [--timeout 900] [--json]

``--daemons`` real daemon processes (``python -m provisiond.cli run``, short lease, heartbeat and
reaper) work one database while orders for ``--jobs`` accounts arrive in four waves, spread by
placement over ``--servers`` WHM simulators. At random moments (mostly while the victim holds
leases, i.e. in the middle of a playbook) a daemon is SIGKILLed and restarted a little later.
When every create has ended (or ``--timeout``), the daemons are stopped and the run is judged:

- jobs lost: orders whose create did not succeed, or whose account is not on its server;
- jobs run twice: a create that reached the panel's createacct more than once, or whose
  attempts logged success more than once (attempt logs vs panel createacct calls);
- accounts duplicated: a domain on more than one account across the simulators;
- accounts orphaned: an account on a simulator that no service placed there owns;
- leftover run processes: playbook processes of the run still alive once every daemon stopped
  (a killed daemon's playbook must die with it).

Prints the figures (``--json``: one JSON object) and exits 1 when any of them is not zero.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from provisiond.models import Job, ProvisioningLog, Server, Service  # noqa: E402
from provisiond.sandbox.cpanel import WhmSimulator  # noqa: E402

DONE = ("succeeded", "failed", "cancelled", "needs_attention")
FIGURES = ("jobs_lost", "jobs_run_twice", "accounts_duplicated", "accounts_orphaned", "leftover_run_processes")


class CountingWhm(WhmSimulator):
    """A WHM simulator that counts every createacct call per username, and the ones that created."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: collections.Counter[str] = collections.Counter()
        self.created: collections.Counter[str] = collections.Counter()

    def op_createacct(self, params):
        response = super().op_createacct(params)
        user = params.get("username", "")
        self.calls[user] += 1
        if json.loads(response.body)["metadata"]["result"] == 1:
            self.created[user] += 1
        return response


class Node:
    """One daemon process; restarted under the same slot after each kill."""

    def __init__(self, home: c.Home, slot: int):
        self.home, self.slot = home, slot
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        log = open(self.home.path / f"daemon-{self.slot}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "provisiond.cli", "run"], cwd=str(c.ROOT),
                                     env=self.home.env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.kill()


def holds_leases(node: Node) -> bool:
    """Whether the node's daemon is in the middle of a run (its owner id carries its pid)."""
    return Job.select().where((Job.status == "running") & Job.lease_owner.contains(f":{node.proc.pid}:")).exists()


def chaos_monkey(nodes: list[Node], kills: int, stop: threading.Event, rng: random.Random,
                 events: list[str]) -> None:
    """Kill a daemon at random moments (preferring one that is running a playbook), restart it."""
    from provisiond.models import database
    try:
        for _ in range(kills):
            if stop.wait(rng.uniform(2.0, 7.0)):
                return
            live = [n for n in nodes if n.alive()]
            busy = [n for n in live if holds_leases(n)]
            victim = rng.choice(busy if busy and rng.random() < 0.8 else live)
            running = Job.select().where(Job.status == "running").count()
            victim.kill()
            events.append(f"{time.strftime('%H:%M:%S')} killed daemon {victim.slot} (pid {victim.proc.pid}, "
                          f"{'mid-run' if victim in busy else 'idle'}; {running} jobs running)")
            if stop.wait(rng.uniform(0.0, 3.0)):
                victim.start()
                return
            victim.start()
    finally:
        database.close()


def judge(sims: list[CountingWhm], job_ids: list[int], tag: str) -> dict:
    """The figures about jobs and accounts, and the details behind each."""
    servers = {s.name: s.id for s in Server.select()}
    by_server = {servers[f"{tag}-{n}"]: sim for n, sim in enumerate(sims, 1)}
    jobs = {j.id: j for j in Job.select().where(Job.id.in_(job_ids))}
    services = {s.id: s for s in Service.select()}
    logs = collections.Counter(job_id for (job_id,) in ProvisioningLog.select(ProvisioningLog.job)
                               .where((ProvisioningLog.status == "succeeded")
                                      & ProvisioningLog.job.in_(job_ids)).tuples())
    lost, twice = [], []
    for job in jobs.values():
        service = services[job.service_id]
        sim = by_server[service.server_id]
        account = sim.accounts.get(service.username)
        if job.status != "succeeded" or account is None or account.domain != service.domain:
            lost.append((job.id, job.status, job.last_error))
        if sim.calls[service.username] > 1 or logs[job.id] > 1:
            twice.append((job.id, sim.calls[service.username], logs[job.id]))
    domains = collections.Counter(a.domain for sim in sims for a in sim.accounts.values())
    duplicated = sorted(d for d, n in domains.items() if n > 1)
    owned = {(s.server_id, s.username, s.domain) for s in services.values()}
    orphaned = sorted((sid, a.user, a.domain) for sid, sim in by_server.items() for a in sim.accounts.values()
                      if (sid, a.user, a.domain) not in owned)
    return {"jobs_lost": len(lost), "jobs_run_twice": len(twice), "accounts_duplicated": len(duplicated),
            "accounts_orphaned": len(orphaned),
            "details": {"lost": lost[:20], "run_twice": twice[:20], "duplicated": duplicated[:20],
                        "orphaned": orphaned[:20]}}


def leftover_run_processes(tag: str) -> int:
    """Playbook processes of this run still alive after every daemon stopped (a run's marker
    names its server, and the servers' names carry this run's tag)."""
    needle = f"-{tag}-".encode()
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(item.startswith(b"PROVISIOND_RUN=") and needle in item for item in environ.split(b"\0")):
            count += 1
    return count


def run(args) -> dict:
    rng = random.Random(args.seed)
    tag = f"chaos{os.getpid()}"
    overrides = {"lease_seconds": args.lease, "heartbeat_seconds": max(1.0, args.lease / 3),
                 "reaper_seconds": 1, "tick_seconds": 10, "wake_check_seconds": 0.2,
                 "retry_base": 0.5, "retry_cap": 2.0, "batch_size": args.batch, "max_runs": 2}
    with c.throwaway_pg() if args.db == "postgres" else _nothing() as pg_url:
        home = c.Home(database_url=pg_url, settings=overrides)
        sims = [CountingWhm(token=c.TOKEN, latency=args.latency).start() for _ in range(args.servers)]
        for sim in sims:  # a killed daemon's half-sent request is expected: no tracebacks
            sim._server.handle_error = lambda request, address: None
        nodes = [Node(home, slot) for slot in range(args.daemons)]
        stop, events = threading.Event(), []
        started = time.monotonic()
        try:
            c.add_whm_servers(home, sims)
            for n in range(1, args.servers + 1):
                Server.update(name=f"{tag}-{n}").where(Server.name == f"whm{n}").execute()
            for node in nodes:
                node.start()
            monkey = threading.Thread(target=chaos_monkey, args=(nodes, args.kills, stop, rng, events), daemon=True)
            monkey.start()
            job_ids = []
            waves = 4
            for wave in range(waves):
                count = args.jobs // waves + (1 if wave < args.jobs % waves else 0)
                job_ids += c.order_wave(home, count, prefix=f"w{wave}c")
                time.sleep(rng.uniform(1.0, 4.0))
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                done = Job.select().where(Job.id.in_(job_ids) & Job.status.in_(DONE)).count()
                if done == len(job_ids):
                    break
                for node in nodes:  # a node that died on its own is restarted too
                    if node.proc is not None and not node.alive() and not monkey.is_alive():
                        events.append(f"daemon {node.slot} exited by itself (rc {node.proc.returncode}); restarted")
                        node.start()
                time.sleep(0.5)
            stop.set()
            monkey.join(30)
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            for node in nodes:
                node.stop()
        verdict = judge(sims, job_ids, tag)
        verdict["leftover_run_processes"] = leftover_run_processes(tag)
        retried = Job.select().where(Job.id.in_(job_ids) & (Job.attempts > 1)).count()
        statuses = collections.Counter(s for (s,) in Job.select(Job.status).where(Job.id.in_(job_ids)).tuples())
        for sim in sims:
            sim.stop()
        home.close()
    return {"db": args.db, "jobs": len(job_ids), "servers": args.servers, "daemons": args.daemons,
            "kills": sum(1 for e in events if "killed" in e), "seed": args.seed,
            "elapsed_s": round(elapsed, 1), "statuses": dict(statuses), "jobs_retried_after_a_kill": retried,
            "events": events, **verdict}


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--lease", type=float, default=6.0)
    parser.add_argument("--batch", type=int, default=10, help="jobs per run (small: more runs to interrupt)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per simulator call")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(10**6)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        c.print_machine()
        print(f"chaos on {result['db']}: {result['jobs']} creates over {result['servers']} WHM servers, "
              f"{result['daemons']} daemons, {result['kills']} kills (seed {result['seed']}), "
              f"{result['elapsed_s']} s")
        for event in result["events"]:
            print("  " + event)
        print(f"  final statuses: {result['statuses']}; jobs retried after a kill: "
              f"{result['jobs_retried_after_a_kill']}")
        for key in FIGURES:
            print(f"  {key.replace('_', ' ')}: {result[key]}")
        if any(result[k] for k in FIGURES):
            print("  details: " + json.dumps(result["details"], default=str))
    bad = any(result[k] for k in FIGURES)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
