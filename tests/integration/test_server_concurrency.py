"""Each server's own limit of panel calls at once (``max_concurrency``): the CLI and the daemon's
runs. A server's runs never have more forks than it takes calls, a full server waits for its
own runs while the others go on, and a real run on a slow panel stays within the limit. One
run may serve several servers of an HTTP panel (``servers_per_run``), each within its own limit."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from provisiond import catalog, lifecycle, orphans
from provisiond import worker as worker_module
from provisiond.models import Job, Server, Service
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN


# -- the setting -----------------------------------------------------------------------------

def test_server_add_and_edit_take_max_concurrency_and_a_bad_value_names_the_field(run, whm):
    assert run("init")[0] == 0 and run("group", "add", "web")[0] == 0
    code, out, err = run("--json", "server", "add", "whm1", "--panel", "cpanel", "--host", "127.0.0.1",
                         "--port", str(whm.port), "--group", "web", "--max-concurrency", "4",
                         "--credential", f"api_token={WHM_TOKEN}", "--credential", "scheme=http")
    assert code == 0, err
    assert json.loads(out)["max_concurrency"] == 4
    for bad in ("0", "65"):
        code, out, err = run("server", "edit", "whm1", "--max-concurrency", bad)
        assert code != 0 and "max_concurrency" in err and "between 1 and 64" in err
        assert Server.get(Server.name == "whm1").max_concurrency == 4
    code, out, err = run("--json", "server", "edit", "whm1", "--max-concurrency", "8")
    assert code == 0, err
    assert json.loads(out)["changed"] == ["max_concurrency"] and json.loads(out)["max_concurrency"] == 8
    code, out, err = run("server", "add", "whm2", "--panel", "cpanel", "--host", "127.0.0.1", "--group", "web",
                         "--max-concurrency", "0", "--credential", f"api_token={WHM_TOKEN}")
    assert code != 0 and "max_concurrency" in err and not Server.select().where(Server.name == "whm2").exists()
    code, out, _ = run("server", "list")
    header, row = out.splitlines()[:2]
    assert row.split()[header.split().index("MAX_CONCURRENCY")] == "8"


# -- the daemon's runs -----------------------------------------------------------------------

@pytest.fixture
def two_servers(cpanel_setup, registry, vault, whm):
    """whm1 takes 2 calls at once, whm2 3; creates are placed on them by the test."""
    whm1, _product = cpanel_setup
    whm2 = catalog.add_server(registry, vault, name="whm2", panel="cpanel", host=whm.host, port=whm.port,
                              group_name="web", max_accounts=50, max_concurrency=3,
                              credentials={"api_token": WHM_TOKEN, "scheme": "http"})
    return whm1, whm2


def creates(registry, vault, server: Server, count: int, prefix: str) -> list[Job]:
    jobs = []
    for i in range(count):
        service, job = lifecycle.order(registry, vault, product="starter", domain=f"{prefix}{i}.example.com",
                                       email=f"me@{prefix}{i}.example.com", username=f"{prefix}{i}")
        Service.update(server=server).where(Service.id == service.id).execute()
        Job.update(server=server).where(Job.id == job.id).execute()
        jobs.append(job)
    return jobs


class HeldRuns:
    """Stands in for the playbook run only, to watch the scheduler: each run records, per
    server it serves, the server, its jobs and its forks (``started``), and lasts until the test
    lets it end (``release``, by its servers' names joined with +)."""

    def __init__(self, worker: Worker):
        self.started: list[tuple[str, int, int]] = []
        self.runs: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        worker._run_batch = self.run

    def run(self, registry, parts):
        names = [Server.get_by_id(jobs[0].server_id).name for jobs, _forks in parts]
        with self.lock:
            self.started.extend((name, len(jobs), forks) for name, (jobs, forks) in zip(names, parts))
            self.runs.append("+".join(names))
            gate = self.release.setdefault("+".join(names), threading.Event())
        assert gate.wait(60)
        for jobs, _forks in parts:
            for job in jobs:
                Job.update(status="succeeded", lease_owner=None).where(Job.id == job.id).execute()


def test_runs_take_a_fork_per_host_up_to_the_server_s_limit_and_a_busy_server_holds_back_no_other(
        settings, vault, registry, two_servers):
    whm1, whm2 = two_servers
    creates(registry, vault, whm1, 5, "a")
    on_whm2 = creates(registry, vault, whm2, 2, "b")
    worker = Worker(dataclasses.replace(settings, servers_per_run=1), vault, owner="sched-test")
    held = HeldRuns(worker)
    try:
        assert len(worker.tick()) == 2
        # One run per server: whm1's five hosts get its 2 places, whm2's two hosts a fork each.
        assert sorted(held_started(held, 2)) == [("whm1", 5, 2), ("whm2", 2, 2)]
        more = creates(registry, vault, whm1, 1, "c") + creates(registry, vault, whm2, 1, "d")
        assert len(worker.tick()) == 1            # whm1 is full (2 of 2 calls); whm2 has 1 of 3 free
        assert held_started(held, 3)[2] == ("whm2", 1, 1)
        held.release["whm2"].set()               # whm2's runs end while whm1's slow run goes on
        until(lambda: worker.free_slots() == settings.run_slots() - 1)   # only whm1's run is left
        assert {Job.get_by_id(j.id).status for j in [*on_whm2, more[1]]} == {"succeeded"}
        assert worker.tick() == []                # whm1 still full: its new job waits for it
        assert Job.get_by_id(more[0].id).status == "queued"
        held.release["whm1"].set()
        worker.wait()
        worker.tick(wait=True)
        assert held.started[-1] == ("whm1", 1, 1)
        assert {j.status for j in Job.select()} == {"succeeded"}
    finally:
        for gate in held.release.values():
            gate.set()
        worker.shutdown()


@pytest.fixture
def one_core(monkeypatch):
    """As on a one-core machine, where one run may serve every server (see the next test)."""
    monkeypatch.setattr(worker_module, "CORES", 1)


def test_a_run_serves_servers_per_run_servers_but_leaves_a_run_per_core(settings, vault, monkeypatch):
    worker = Worker(settings, vault, owner="sched-test")
    monkeypatch.setattr(worker_module, "CORES", 2)
    assert settings.servers_per_run == 8
    assert [worker._servers_per_run(n) for n in (1, 2, 4, 5, 16, 50)] == [1, 1, 2, 3, 8, 8]
    one = Worker(dataclasses.replace(settings, servers_per_run=1), vault, owner="sched-test")
    assert one._servers_per_run(50) == 1


def test_one_run_serves_several_servers_each_with_its_own_forks_and_a_full_one_waits_alone(
        settings, vault, registry, two_servers, one_core):
    whm1, whm2 = two_servers
    creates(registry, vault, whm1, 5, "a")
    on_whm2 = creates(registry, vault, whm2, 2, "b")
    worker = Worker(settings, vault, owner="sched-test")
    held = HeldRuns(worker)
    try:
        assert settings.servers_per_run > 1 and len(worker.tick()) == 1
        assert sorted(held_started(held, 2)) == [("whm1", 5, 2), ("whm2", 2, 2)] and held.runs == ["whm1+whm2"]
        more = creates(registry, vault, whm1, 1, "c") + creates(registry, vault, whm2, 1, "d")
        assert len(worker.tick()) == 1            # whm1 is full (2 of 2 calls); whm2 has 1 of 3 free
        assert held_started(held, 3)[2] == ("whm2", 1, 1) and held.runs[1] == "whm2"
        held.release["whm2"].set()
        until(lambda: worker.free_slots() == settings.run_slots() - 1)
        assert Job.get_by_id(more[1].id).status == "succeeded"
        assert worker.tick() == [] and Job.get_by_id(more[0].id).status == "queued"   # whm1 still full
        held.release["whm1+whm2"].set()
        held.release.setdefault("whm1", threading.Event()).set()   # the next run, on whm1 alone, ends at once
        worker.wait()
        worker.tick(wait=True)
        assert held.runs[-1] == "whm1" and {j.status for j in Job.select()} == {"succeeded"}
        assert {Job.get_by_id(j.id).status for j in on_whm2} == {"succeeded"}
    finally:
        for gate in held.release.values():
            gate.set()
        worker.shutdown()


def until(condition) -> None:
    while not condition():
        threading.Event().wait(0.01)


def held_started(held: HeldRuns, count: int) -> list:
    """The runs started so far, once ``count`` of them have (runs start on the pool's threads)."""
    while True:
        with held.lock:
            if len(held.started) >= count:
                return list(held.started)
        threading.Event().wait(0.01)


def test_a_real_run_on_a_slow_panel_makes_at_most_max_concurrency_calls_at_once(
        settings, vault, registry, cpanel_setup, worker):
    whm1, _product = cpanel_setup
    with WhmSimulator(token=WHM_TOKEN, plans=("basic",), latency=0.3) as sim:   # no limit of its own
        Server.update(port=sim.port, max_concurrency=2).where(Server.id == whm1.id).execute()
        during_calls = run_processes_during_calls(sim)
        jobs = creates(registry, vault, whm1, 5, "slow")
        worker.tick(wait=True)
        assert {Job.get_by_id(j.id).status for j in jobs} == {"succeeded"}
        assert len(sim.accounts) == 5 and 1 <= sim.peak_in_flight <= 2
    # The calls were made by ansible-playbook itself (threads of provisiond_linear), not by a
    # worker process forked per host and task: the run was one process whenever the panel answered,
    # and that process was Ansible's command started through provisiond's (no paramiko at start-up).
    assert len(during_calls) == 10 and {len(pids) for pids in during_calls} == {1}
    assert {command for pids in during_calls for command in pids.values()} == {"provisiond.ansible_plugins.playbook"}


def test_a_real_run_over_two_servers_sends_each_account_to_its_own_and_keeps_each_within_its_limit(
        settings, vault, registry, cpanel_setup, worker, one_core):
    whm1, _product = cpanel_setup
    with WhmSimulator(token=WHM_TOKEN, plans=("basic",), latency=0.3) as one, \
            WhmSimulator(token=WHM_TOKEN, plans=("basic",), latency=0.3) as two:
        Server.update(port=one.port, max_concurrency=1).where(Server.id == whm1.id).execute()
        whm2 = catalog.add_server(registry, vault, name="whm2", panel="cpanel", host="127.0.0.1", port=two.port,
                                  group_name="web", max_accounts=50, max_concurrency=2,
                                  credentials={"api_token": WHM_TOKEN, "scheme": "http"})
        during_calls = run_processes_during_calls(one)
        on_one, on_two = creates(registry, vault, whm1, 3, "one"), creates(registry, vault, whm2, 4, "two")
        assert len(worker.tick(wait=True)) == 1
        for jobs, sim in ((on_one, one), (on_two, two)):
            assert {Job.get_by_id(j.id).status for j in jobs} == {"succeeded"}
            users = {Service.get_by_id(j.service_id).username for j in jobs}
            assert set(sim.accounts) == users                  # each account on its own server only
        assert one.peak_in_flight == 1 and 1 <= two.peak_in_flight <= 2
    assert {len(pids) for pids in during_calls} == {1}   # one ansible-playbook for both servers


def test_in_a_run_over_two_servers_a_server_that_holds_its_calls_holds_back_no_other(
        settings, vault, registry, cpanel_setup, worker, one_core):
    """The first call to ``slow`` is answered only once ``quick`` has answered its four reads:
    in the same run, with each server taking one call at a time. Were the run to wait for the
    slow server's place before it started the next host, ``quick`` would get one call and the
    slow one would never be answered (the test would find ``released`` unset)."""
    whm1, _product = cpanel_setup
    with WhmSimulator(token=WHM_TOKEN, plans=("basic",)) as slow, WhmSimulator(token=WHM_TOKEN, plans=("basic",)) as quick:
        Server.update(port=slow.port, max_concurrency=1).where(Server.id == whm1.id).execute()
        whm2 = catalog.add_server(registry, vault, name="whm2", panel="cpanel", host="127.0.0.1", port=quick.port,
                                  group_name="web", max_accounts=50, max_concurrency=1,
                                  credentials={"api_token": WHM_TOKEN, "scheme": "http"})
        released, handle = threading.Event(), slow.handle

        def hold_the_first_call(request):
            if not released.is_set():
                deadline = threading.Event()
                for _ in range(600):   # up to 30 s, only if the run never gets to the quick server
                    if len(quick.requests) >= 4:
                        released.set()
                        break
                    deadline.wait(0.05)
            return handle(request)

        slow.handle = hold_the_first_call
        on_slow, on_quick = creates(registry, vault, whm1, 2, "slow"), creates(registry, vault, whm2, 4, "quick")
        assert len(worker.tick(wait=True)) == 1
        assert released.is_set()
        assert {Job.get_by_id(j.id).status for j in [*on_slow, *on_quick]} == {"succeeded"}
        assert slow.peak_in_flight == 1 and quick.peak_in_flight == 1


def run_processes_during_calls(sim: WhmSimulator) -> list[dict[int, str]]:
    """At each call the simulator answers, this test's run processes (by run marker): pid to the
    module its command line runs (``-m``), if any."""
    seen, handle, mine = [], sim.handle, orphans.owner()

    def handle_and_look(request):
        seen.append({pid: _module_run(pid) for pid, marker in orphans.run_processes()
                     if orphans.marker_owner(marker) == mine})
        return handle(request)

    sim.handle = handle_and_look
    return seen


def _module_run(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().decode(errors="replace").split("\0")
    except OSError:
        return ""
    return words[words.index("-m") + 1] if "-m" in words[:-1] else ""
