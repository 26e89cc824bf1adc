"""The daemon: woken at once by an enqueue, picks up new panel folders, stops cleanly."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from provisiond import catalog, config, lifecycle, panels
from provisiond.daemon import Daemon
from provisiond.models import Job, ProvisioningLog
from tests.conftest import WHM_TOKEN


def wait_for(predicate, seconds: float = 60.0):
    """Poll until predicate() is true; bounded, so a broken daemon fails the test instead of hanging."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def job_status(job_id: int) -> str:
    return Job.get_by_id(job_id).status


@pytest.fixture
def extra_panels(tmp_path):
    path = tmp_path / "team-playbooks"
    path.mkdir()
    return path


def test_enqueue_wakes_the_daemon_and_new_panel_folders_are_used_without_restart(
        cpanel_setup, settings, vault, whm, extra_panels):
    settings = dataclasses.replace(settings, tick_seconds=3600, wake_check_seconds=0.2,
                                   playbooks_path=(extra_panels,))
    daemon = Daemon(settings, vault, owner="daemon-under-test")
    daemon.start()
    try:
        registry = panels.discover(settings.panel_dirs())
        _, job = lifecycle.order(registry, vault, product="starter", domain="woken.example.com",
                                 email="me@woken.example.com")
        assert wait_for(lambda: job_status(job.id) == "succeeded"), job_status(job.id)

        # An infrastructure team drops a copy of the cPanel folder under a new name.
        folder = extra_panels / "cpanel_eu"
        shutil.copytree(config.bundled_dir("playbooks") / "cpanel", folder)
        manifest = folder / "panel.yaml"
        manifest.write_text(manifest.read_text().replace("id: cpanel", "id: cpanel_eu"))
        registry = panels.discover(settings.panel_dirs())
        catalog.add_group("eu")
        catalog.add_server(registry, vault, name="whm-eu", panel="cpanel_eu", host=whm.host, port=whm.port,
                           group_name="eu", credentials={"api_token": WHM_TOKEN, "scheme": "http"})
        catalog.add_product(registry, name="eu-starter", panel="cpanel_eu", group_name="eu", package="basic")
        _, job = lifecycle.order(registry, vault, product="eu-starter", domain="eu.example.com",
                                 email="me@eu.example.com")
        assert wait_for(lambda: job_status(job.id) == "succeeded"), job_status(job.id)
        assert Job.get_by_id(job.id).logs.first().panel == "cpanel_eu"
        assert whm.accounts["eu"].domain == "eu.example.com"
    finally:
        daemon.stop()


def test_a_hanging_playbook_times_out_and_leaves_no_process(cpanel_setup, settings, vault, registry, extra_panels):
    folder = extra_panels / "hangs"
    shutil.copytree(config.bundled_dir("playbooks") / "cpanel", folder)
    (folder / "panel.yaml").write_text((folder / "panel.yaml").read_text().replace("id: cpanel", "id: hangs"))
    (folder / "create.yml").write_text(
        "---\n- name: Hang\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Sleep in a child process\n      ansible.builtin.command: sleep 300\n"
        "      changed_when: false\n")
    settings = dataclasses.replace(settings, playbooks_path=(extra_panels,), timeout_create=3,
                                   retry_max_attempts=1)
    registry = panels.discover(settings.panel_dirs())
    catalog.add_product(registry, name="hanging", panel="hangs", group_name="web", package="basic")
    server = catalog.server("whm1")
    server.panel = "hangs"
    server.save()
    from provisiond.worker import Worker
    worker = Worker(settings, vault)
    _, job = lifecycle.order(registry, vault, product="hanging", domain="hang.example.com",
                             email="me@hang.example.com")
    started = time.monotonic()
    worker.tick(wait=True)
    elapsed = time.monotonic() - started
    worker.shutdown()
    log = ProvisioningLog.get(ProvisioningLog.job == job.id)
    assert log.status in ("timeout", "retrying") and "timed out" in log.message
    assert elapsed < 60  # bounded by the 3 s limit, far below the playbook's 300 s sleep
    leftover = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def test_sigterm_lets_the_current_run_finish_then_exits(cpanel_setup, settings, vault, registry, whm):
    whm.latency = 1.5  # each panel call takes a while: SIGTERM lands mid-run
    env = dict(os.environ, PROVISIOND_HOME=str(settings.home), PROVISIOND_DATABASE_URL=settings.database_url,
               PROVISIOND_TICK_SECONDS="3600", PROVISIOND_WAKE_CHECK_SECONDS="0.2")
    _, job = lifecycle.order(registry, vault, product="starter", domain="term.example.com",
                             email="me@term.example.com")
    daemon = subprocess.Popen([sys.executable, "-m", "provisiond.cli", "run"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: len(whm.requests) >= 1, 60), "the daemon never called the panel"
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=90)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, out
    assert "provisiond stopped" in out
    assert job_status(job.id) == "succeeded"
    assert "term" in whm.accounts
