"""Where a create's controller CPU goes: ansible-playbook start-up, Ansible's cost per host and
task, ansible-runner and provisiond's own share.

    python bench/cpu_breakdown.py [--hosts 50] [--forks 2] [--repeat 3]

One batch of --hosts cPanel creates is rendered exactly as the worker renders it (same playbook,
inventory, secrets file and environment as execute.run) against a WHM simulator, then run:

- ``ansible-playbook`` directly with an empty play: the start-up of one run;
- ``ansible-playbook`` with only the first task (accountsummary through panel_call): the cost
  of one panel call per host;
- ``ansible-playbook`` with the whole create playbook: Ansible's cost per account;
- ``execute.run`` (ansible-runner, event collection, redaction) on the same spec: what the
  runner and provisiond add.

CPU is RUSAGE_CHILDREN around each subprocess (the playbook and every fork it reaped) and
RUSAGE_THREAD of the calling thread for execute.run. Medians of --repeat runs; the simulator's
accounts are cleared before each run so every create takes the same path.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import yaml  # noqa: E402

from provisiond import catalog, execute, render  # noqa: E402
from provisiond.config import bundled_dir  # noqa: E402
from provisiond.models import Job, Server  # noqa: E402
from provisiond.worker import Worker, connection_vars  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def build_spec(home: c.Home, hosts: int, forks: int) -> execute.RunSpec:
    ids = c.order_wave(home, hosts)
    worker = Worker(home.settings, home.vault, owner="breakdown")
    try:
        jobs = list(Job.select().where(Job.id.in_(ids)).order_by(Job.id))
        server = Server.get()
        panel = home.registry.get("cpanel")
        credentials = catalog.open_credentials(server.credentials, home.vault, server.name)
        accounts = [worker._account(job) for job in jobs]
        return render.build(panel, "create", connection_vars(panel, server, credentials), credentials,
                            accounts, timeout=600, forks=forks)
    finally:
        worker.shutdown()


def inventory_text(spec: execute.RunSpec) -> str:
    """The inventory file exactly as execute.run writes it."""
    if hasattr(execute, "inventory_text"):
        return execute.inventory_text(spec)
    return yaml.safe_dump(spec.inventory)


def secrets_text(spec: execute.RunSpec) -> str:
    if hasattr(execute, "secrets_text"):
        return execute.secrets_text(spec)
    return json.dumps(spec.secrets)


def direct(spec: execute.RunSpec, play: list, sim, repeat: int) -> float:
    """Median CPU seconds of ansible-playbook running ``play`` over the spec's inventory."""
    results = []
    for _ in range(repeat):
        sim.accounts.clear()
        folder = Path(tempfile.mkdtemp(prefix="breakdown-"))
        try:
            (folder / "main.yml").write_text(yaml.safe_dump(play, sort_keys=False))
            (folder / "hosts.yml").write_text(inventory_text(spec))
            (folder / "secrets.yml").write_text(secrets_text(spec))
            (folder / "ansible.cfg").write_text(f"[defaults]\ninternal_poll_interval = {spec.poll_interval}\n")
            env = {**os.environ, **execute._environment(spec, folder, folder, "breakdown")}
            defaults = bundled_dir("inventories") / "defaults.yml"  # execute.run passes it first
            inventories = ["-i", str(defaults)] if defaults.is_file() else []
            before = children_cpu()
            subprocess.run(["ansible-playbook", *inventories, "-i", "hosts.yml", "-e", "@secrets.yml",
                            "-f", str(spec.forks), "main.yml"], cwd=folder, env=env, check=True, capture_output=True)
            results.append(children_cpu() - before)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return statistics.median(results)


def through_runner(spec: execute.RunSpec, sim, repeat: int) -> tuple[float, float]:
    """Median (children CPU, this thread's CPU) of execute.run on the spec."""
    kids, own = [], []
    for _ in range(repeat):
        sim.accounts.clear()
        k0, t0 = children_cpu(), thread_cpu()
        result = execute.run(spec)
        own.append(thread_cpu() - t0)
        kids.append(children_cpu() - k0)
        assert all(h.ok for h in result.hosts.values()), result.status
    return statistics.median(kids), statistics.median(own)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--forks", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    c.print_machine()
    with c.simulators(1, 0.0) as sims:
        home = c.Home()
        try:
            c.add_whm_servers(home, sims)
            spec = build_spec(home, args.hosts, args.forks)
            plays = yaml.safe_load(spec.playbook)
            create = plays[0]
            n = args.hosts
            empty = direct(spec, [dict(create, tasks=[])], sims[0], args.repeat)
            one = direct(spec, [dict(create, tasks=create["tasks"][:1])], sims[0], args.repeat)
            full = direct(spec, plays, sims[0], args.repeat)
            runner_kids, runner_own = through_runner(spec, sims[0], args.repeat)
        finally:
            home.close()
    tasks = len(create["tasks"])
    print(f"\n== controller CPU of one create batch: {n} hosts, forks {args.forks}, median of {args.repeat} ==")
    print(f"ansible-playbook start-up (empty play over {n} hosts): {empty:.2f} s per run "
          f"= {empty / n * 1000:.0f} ms per account at this batch size")
    print(f"one panel_call task per host (accountsummary): {(one - empty) / n * 1000:.0f} ms per host")
    print(f"the create playbook ({tasks} tasks a host: {', '.join(t.get('name', '?') for t in create['tasks'])}): "
          f"{(full - empty) / n * 1000:.0f} ms per account "
          f"= {(full - empty) / n / tasks * 1000:.0f} ms per host and task")
    print(f"through execute.run (ansible-runner's callback and pexpect, in the playbook's processes): "
          f"{(runner_kids - full) / n * 1000:+.0f} ms per account")
    print(f"provisiond's thread in execute.run (reading events, redaction): {runner_own / n * 1000:.0f} ms per account")
    total = (runner_kids + runner_own) / n
    print(f"total for execute.run: {total * 1000:.0f} ms per account (target for the whole daemon: 50 ms)")
    print(f"\n# load average at the end: {c.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
