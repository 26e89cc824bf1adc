"""Guarantee 6: timeouts, cancel and a killed daemon kill the whole process tree.

A playbook that hangs in a child process ends as timed out within seconds of its limit, and
no process of the run (nor of its process groups) is left. `provisiond job cancel` on a running
job stops its playbook the same way. A cancelled queued job is never claimed, even when the
cancel races a claim. A daemon killed with SIGKILL mid-run takes its run with it (its watchdog
ends the run and removes the run dir, secrets included, which never was in $TMPDIR); when the
watchdog died too, the next daemon to start ends the orphan run and removes what it left.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import random
import signal
import shutil
import subprocess
import sys
import threading
import time

import pytest

from provisiond import catalog, config, lifecycle, panels, queue
from provisiond.models import Job, ProvisioningLog, Service, utcnow
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN
from tests.reliability.conftest import (ROOT, alive, cmdlines, daemon_env, group_alive, run_processes,
                                        wait_for)


@pytest.fixture
def hanging(tmp_path, shop, settings, server_name):
    """A panel 'hangs' whose create sleeps in a child process; the server is switched to it.

    Returns (settings with the panel folder, registry, the sleep's unique argument)."""
    token = f"300.{random.randrange(10**8):08d}"  # unique: another test process may hang too
    folder = tmp_path / "team-playbooks" / "hangs"
    shutil.copytree(config.bundled_dir("playbooks") / "cpanel", folder)
    (folder / "panel.yaml").write_text((folder / "panel.yaml").read_text().replace("id: cpanel", "id: hangs"))
    (folder / "create.yml").write_text(
        "---\n- name: Hang\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        f"    - name: Sleep in a child process\n      ansible.builtin.command: sleep {token}\n"
        "      changed_when: false\n")
    hung = dataclasses.replace(settings, playbooks_path=(folder.parent,), retry_max_attempts=1)
    registry = panels.discover(hung.panel_dirs())
    catalog.add_product(registry, name="hanging", panel="hangs", group_name="web", package="basic")
    server = catalog.server(server_name)
    server.panel = "hangs"
    server.save()
    return hung, registry, token


class Sampler:
    """Records every process of the test's runs (pid → group) while they are in flight."""

    def __init__(self, fragment: str):
        self.fragment, self.seen, self.stop = fragment, {}, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stop.is_set():
            self.seen.update(run_processes(self.fragment))
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def assert_nothing_left(seen: dict[int, int], token: str) -> None:
    assert seen, "no process of the run was ever seen"
    assert [pid for pid in seen if alive(pid)] == []
    assert [pgid for pgid in set(seen.values()) if group_alive(pgid)] == []
    assert not any(token.encode() in line for line in cmdlines().values())


def test_a_hanging_playbook_times_out_near_its_limit_and_leaves_no_process(hanging, vault, server_name):
    settings, registry, token = hanging
    settings = dataclasses.replace(settings, timeout_create=3)
    _, job = lifecycle.order(registry, vault, product="hanging", domain="hang.example.com",
                             email="me@hang.example.com")
    worker = Worker(settings, vault)
    try:
        with Sampler(server_name) as sampler:
            worker.tick(wait=True)
    finally:
        worker.shutdown()
    log = ProvisioningLog.get(ProvisioningLog.job == job.id)
    assert log.status == "timeout" and "timed out" in log.message
    assert 3 <= log.duration < 3 + 6  # within seconds of the limit, far from the 300 s sleep
    retried = Job.get_by_id(job.id)  # an ambiguous outcome: queued again, to read the panel first
    assert retried.status == "queued" and "timed out" in retried.last_error
    assert_nothing_left(sampler.seen, token)


def test_job_cancel_stops_a_running_playbook(hanging, vault, server_name):
    settings, registry, token = hanging
    settings = dataclasses.replace(settings, timeout_create=120)
    _, job = lifecycle.order(registry, vault, product="hanging", domain="cancel.example.com",
                             email="me@cancel.example.com")
    worker = Worker(settings, vault)
    try:
        with Sampler(server_name) as sampler:
            [run] = worker.tick()
            assert wait_for(lambda: any(token.encode() in c for c in cmdlines().values()), 60)
            out = subprocess.run([sys.executable, "-m", "provisiond.cli", "job", "cancel", str(job.id)],
                                 cwd=ROOT, env=daemon_env(settings), capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 0, out.stderr
            assert "asked to stop" in out.stdout
            asked = time.monotonic()
            run.result(timeout=60)
            stopped_after = time.monotonic() - asked
    finally:
        worker.shutdown()
    assert stopped_after < 7  # the run guard looks every 2 s
    done = Job.get_by_id(job.id)
    assert done.status == "cancelled" and "cancelled while running" in done.last_error
    assert ProvisioningLog.get(ProvisioningLog.job == job.id).status == "cancelled"
    assert_nothing_left(sampler.seen, token)


def test_a_cancelled_queued_job_is_never_claimed(shop, registry, vault, settings, whm):
    _, job = lifecycle.order(registry, vault, product="starter", domain="never.example.com",
                             email="me@never.example.com")
    assert queue.cancel(job.id, utcnow()).status == "cancelled"
    worker = Worker(settings, vault)
    try:
        assert worker.tick(wait=True) == []
    finally:
        worker.shutdown()
    assert (Job.get_by_id(job.id).status, Job.get_by_id(job.id).attempts) == ("cancelled", 0)
    assert whm.requests == []


def test_cancel_racing_claims_never_lets_a_cancelled_job_run(shop, database):
    server, _ = shop
    ids = [queue.enqueue("test_connection", server=server, params={"n": i})[0].id for i in range(150)]
    claimed, problems = [], []
    start = threading.Barrier(2)

    def claim_all():
        try:
            start.wait()
            while True:
                jobs = queue.claim("racer", utcnow(), 3, 60)
                if not jobs and Job.select().where(Job.status == "queued").count() == 0:
                    return
                claimed.extend(j.id for j in jobs)
        except Exception as exc:  # noqa: BLE001
            problems.append(exc)
        finally:
            database.close()

    def cancel_all():
        try:
            start.wait()
            for job_id in random.sample(ids, len(ids)):
                queue.cancel(job_id, utcnow())
        except Exception as exc:  # noqa: BLE001
            problems.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=claim_all), threading.Thread(target=cancel_all)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert problems == []
    rows = {j.id: j for j in Job.select()}
    cancelled = {i for i, j in rows.items() if j.status == "cancelled"}
    # The invariant, whichever way the race went this time (on a busy machine one thread may
    # take every job before the other starts): no job is both cancelled and claimed.
    assert cancelled.isdisjoint(claimed)
    assert all(rows[i].attempts == 0 for i in cancelled)
    assert all((rows[i].status, rows[i].attempts, rows[i].cancel_requested) == ("running", 1, True)
               for i in claimed)  # a claimed job can only be asked to stop
    assert cancelled | set(claimed) == set(ids)


def test_a_cancel_between_claim_and_run_stops_the_job_before_the_panel(shop, registry, vault, settings, whm,
                                                                        monkeypatch):
    service, job = lifecycle.order(registry, vault, product="starter", domain="late.example.com",
                                   email="me@late.example.com")
    real_claim = queue.claim

    def claim_then_cancel(*args, **kwargs):
        claimed = real_claim(*args, **kwargs)
        for taken in claimed:  # the admin's cancel lands just after the claim
            assert queue.cancel(taken.id, utcnow()).cancel_requested
        return claimed

    monkeypatch.setattr(queue, "claim", claim_then_cancel)
    worker = Worker(settings, vault)
    try:
        worker.tick(wait=True)
    finally:
        worker.shutdown()
    done = Job.get_by_id(job.id)
    assert (done.status, done.last_error, done.lease_owner) == ("cancelled", "cancelled before it ran", None)
    assert whm.requests == []                                   # nothing reached the panel
    assert ProvisioningLog.select().where(ProvisioningLog.job == job.id).count() == 0
    assert "service close" in Service.get_by_id(service.id).pending_reason


def test_a_dead_workers_cancelled_job_is_cancelled_by_the_reaper_and_never_runs(shop, registry, vault,
                                                                               settings, whm):
    service, job = lifecycle.order(registry, vault, product="starter", domain="dead.example.com",
                                   email="me@dead.example.com")
    [held] = queue.claim("dead-worker", utcnow(), 1, lease_seconds=60)
    assert queue.cancel(held.id, utcnow()).cancel_requested
    Job.update(lease_expires_at=queue.clock() - datetime.timedelta(seconds=1)).where(Job.id == job.id).execute()
    worker = Worker(settings, vault)
    try:
        assert worker.tick(wait=True) == []                     # reaped, and not claimed again
        assert worker.tick(wait=True) == []
    finally:
        worker.shutdown()
    done = Job.get_by_id(job.id)
    assert (done.status, done.attempts, done.cancel_requested) == ("cancelled", 1, True)
    assert whm.requests == []
    after = Service.get_by_id(service.id)
    assert after.status == "pending" and "was cancelled" in after.pending_reason


# -- a daemon killed mid-run -------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat.rsplit(b")", 1)[-1].split()[1]) == pid and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.fixture
def hung_daemon(hanging, vault, daemons, monkeypatch, tmp_path):
    """A real daemon, with $TMPDIR of its own, in the middle of a hanging create.

    Returns (daemon, settings, run dir, $TMPDIR, the sleep's unique argument)."""
    settings, registry, token = hanging
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    lifecycle.order(registry, vault, product="hanging", domain="killed.example.com", email="me@killed.example.com")
    # A long lease: the job stays the dead daemon's, so no later run muddles what is seen.
    daemon = daemons(playbooks_path=settings.playbooks_path[0], timeout_create=600, lease_seconds=600)
    assert wait_for(lambda: hangs(token), 120), open(daemon.log_path).read()
    [run_dir] = list(settings.runs_dir.iterdir())
    assert (run_dir / "secrets.yml").exists()
    assert {oct(p.stat().st_mode & 0o777) for p in (settings.runs_dir, run_dir)} == {"0o700"}
    return daemon, settings, run_dir, tmpdir, token


def hangs(token: str) -> bool:
    return any(token.encode() in line for line in cmdlines().values())


def assert_no_secret_in(folder) -> None:
    assert list(folder.rglob("secrets.yml")) == []
    assert not any(WHM_TOKEN in p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_a_daemon_killed_mid_run_takes_its_run_and_its_secrets_with_it(hung_daemon, server_name):
    daemon, settings, run_dir, tmpdir, token = hung_daemon
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.wait(10)
    assert wait_for(lambda: not hangs(token) and run_processes(server_name) == {}, 30)
    assert wait_for(lambda: not run_dir.exists(), 30)
    assert_no_secret_in(tmpdir)


def test_a_starting_daemon_ends_the_run_and_removes_the_run_dir_a_dead_one_left(hung_daemon, daemons,
                                                                                server_name):
    daemon, settings, run_dir, tmpdir, token = hung_daemon
    watchdogs = [pid for pid in children(daemon.pid) if b"provisiond.orphans" in cmdlines().get(pid, b"")]
    assert len(watchdogs) == 1
    for pid in (*watchdogs, daemon.pid):  # the daemon and its watchdog die together (a reboot, say)
        os.kill(pid, signal.SIGKILL)
    daemon.wait(10)
    orphans = run_processes(server_name)
    assert orphans and hangs(token) and (run_dir / "secrets.yml").exists()  # left behind, unfenced
    assert_no_secret_in(tmpdir)

    second = daemons(playbooks_path=settings.playbooks_path[0], lease_seconds=600)
    assert wait_for(lambda: not hangs(token) and not any(alive(pid) for pid in orphans), 60)
    assert wait_for(lambda: not run_dir.exists(), 30)
    assert second.poll() is None
    assert wait_for(lambda: "cleaned up after a provisiond that died" in open(second.log_path).read(), 30)
