"""The daemon: woken at once by an enqueue, picks up new panel folders, stops cleanly."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from provisiond import catalog, config, lifecycle, panels
from provisiond.daemon import Daemon
from provisiond.models import Daemon as DaemonRow
from provisiond.models import Job, ProvisioningLog
from tests.conftest import WHM_TOKEN
from tests.reliability.conftest import run_processes


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


def add_team_panel(path) -> None:
    """A copy of the bundled cPanel folder as panel ``cpanel_eu`` in ``path``."""
    folder = path / "cpanel_eu"
    shutil.copytree(config.bundled_dir("playbooks") / "cpanel", folder)
    manifest = folder / "panel.yaml"
    manifest.write_text(manifest.read_text().replace("id: cpanel", "id: cpanel_eu"))


def team_shop(registry, vault, whm) -> None:
    """Group 'eu', a server of panel cpanel_eu on the simulator, and product 'eu-starter'."""
    catalog.add_group("eu")
    catalog.add_server(registry, vault, name="whm-eu", panel="cpanel_eu", host=whm.host, port=whm.port,
                       group_name="eu", credentials={"api_token": WHM_TOKEN, "scheme": "http"})
    catalog.add_product(registry, name="eu-starter", panel="cpanel_eu", group_name="eu", package="basic")


def order_on_team_panel(registry, vault, whm) -> Job:
    """The team shop, and an order on it."""
    team_shop(registry, vault, whm)
    return lifecycle.order(registry, vault, product="eu-starter", domain="eu.example.com",
                           email="me@eu.example.com")[1]


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
        add_team_panel(extra_panels)
        job = order_on_team_panel(panels.discover(settings.panel_dirs()), vault, whm)
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
    server.name = f"hangs-{uuid.uuid4().hex[:10]}"  # this test's runs carry it in their marker
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
    # Found by the run marker, never by command name: another `sleep 300` may run on the machine.
    assert run_processes(server.name) == {}


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


def test_the_daemon_prunes_old_run_folders_as_it_starts(database, settings, vault):
    old = settings.artifacts_dir / "20240101T000000-whm1-create-1-abcdef"
    old.mkdir(parents=True)
    month_ago = time.time() - (settings.artifacts_keep_days + 1) * 86400
    os.utime(old, (month_ago, month_ago))
    recent = settings.artifacts_dir / "20260101T000000-whm1-create-2-abcdef"
    recent.mkdir()
    daemon = Daemon(dataclasses.replace(settings, tick_seconds=3600), vault, owner="pruning-daemon")
    daemon.start()
    try:
        assert wait_for(lambda: not old.exists(), 30)  # not six hours later
    finally:
        daemon.stop()
    assert recent.exists()


def start_daemon(settings, log_path, *args: str, **overrides) -> subprocess.Popen:
    """`provisiond run [args]` in a process of its own, on the test's home and database, logging to a file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env.update(PROVISIOND_HOME=str(settings.home), PROVISIOND_DATABASE_URL=settings.database_url,
               PROVISIOND_TICK_SECONDS="3600", PROVISIOND_WAKE_CHECK_SECONDS="0.2",
               PROVISIOND_RETRY_BASE="0.2", PROVISIOND_RETRY_CAP="1")
    env.update({f"PROVISIOND_{k.upper()}": str(v) for k, v in overrides.items()})
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "provisiond.cli", "run", *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def stop_daemon(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(90)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)


def test_the_log_has_one_line_per_run_and_per_job_outcome_and_no_scheduler_chatter_in_json(
        cpanel_setup, settings, vault, registry, whm, tmp_path):
    whm.fail_next(1)  # the first attempt meets a 503: the job is retried, and the log says when
    log_path = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log_path, log_format="json", tick_seconds=1)  # the retry is soon
    try:
        _, job = lifecycle.order(registry, vault, product="starter", domain="logs.example.com",
                                 email="me@logs.example.com", ref="INV-LOG")
        assert wait_for(lambda: job_status(job.id) == "succeeded"), log_path.read_text()
        time.sleep(2)  # two ticks and ten wake checks more: each was two INFO lines of APScheduler's
    finally:
        stop_daemon(daemon)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]  # every line is JSON

    assert not [e for e in lines if e["logger"].startswith("apscheduler") and e["level"] == "INFO"]
    runs = [e for e in lines if e["message"].startswith("run on ")]
    assert [(e["server"], e["action"], e["jobs"], e["outcome"]) for e in runs] == [
        ("whm1", "create", 1, "failed"), ("whm1", "create", 1, "successful")]
    assert all(e["level"] == "INFO" and e["duration"] > 0 for e in runs)
    outcomes = [e for e in lines if e.get("job") == job.id]
    assert [(e["ref"], e["action"], e["status"]) for e in outcomes] == [
        ("INV-LOG", "create", "retrying"), ("INV-LOG", "create", "succeeded")]
    assert outcomes[0]["next_attempt"] and outcomes[1]["next_attempt"] is None
    assert "next attempt at" in outcomes[0]["message"]
    assert {e["level"] for e in lines} <= {"INFO", "WARNING"}
    assert len(lines) < 20, [e["message"] for e in lines]


def test_sighup_rereads_the_settings_without_a_restart_or_stopping_a_running_playbook(
        cpanel_setup, settings, vault, registry, whm, tmp_path):
    config_file = settings.home / "provisiond.yaml"
    config_file.write_text(f"playbooks_path: [{tmp_path / 'none-yet'}]\n")
    team = tmp_path / "team-playbooks"
    add_team_panel(team)
    whm.latency = 1.5  # the first run is still at the panel when the signal comes
    log_path = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log_path)
    try:
        _, running = lifecycle.order(registry, vault, product="starter", domain="busy.example.com",
                                     email="me@busy.example.com")
        assert wait_for(lambda: len(whm.requests) >= 1), log_path.read_text()
        config_file.write_text(f"playbooks_path: [{team}]\n")
        daemon.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "settings reloaded" in log_path.read_text(), 30), log_path.read_text()
        whm.latency = 0

        job = order_on_team_panel(panels.discover([team, config.bundled_dir("playbooks")]), vault, whm)
        assert wait_for(lambda: job_status(job.id) == "succeeded"), log_path.read_text()
        assert Job.get_by_id(job.id).logs.first().panel == "cpanel_eu"
        assert wait_for(lambda: job_status(running.id) == "succeeded"), log_path.read_text()
        assert Job.get_by_id(running.id).attempts == 1  # the reload did not stop the playbook

        # A file that does not load changes nothing and does not stop the daemon.
        config_file.write_text("log_format: xml\n")
        daemon.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "settings not reloaded" in log_path.read_text(), 30), log_path.read_text()
        assert daemon.poll() is None
        [row] = DaemonRow.select()
        assert row.pid == daemon.pid and row.stopped_at is None  # one process all along
    finally:
        stop_daemon(daemon)
    assert daemon.returncode == 0, log_path.read_text()
    assert DaemonRow.get().stopped_at is not None


def test_a_job_refused_before_any_run_still_gets_its_outcome_line(cpanel_setup, registry, vault, worker, caplog):
    service, job = lifecycle.order(registry, vault, product="starter", domain="refused.example.com",
                                   email="me@refused.example.com", ref="INV-REF")
    server = catalog.server("whm1")
    server.panel = "gone"  # its panel folder was removed: the core refuses to run the job
    server.save()
    with caplog.at_level("INFO", logger="provisiond.worker"):
        worker.tick(wait=True)
    assert job_status(job.id) == "failed"
    lines = [r for r in caplog.records if getattr(r, "job", None) == job.id]
    assert [(r.levelname, r.ref, r.action, r.status) for r in lines] == [("INFO", "INV-REF", "create", "failed")]


def test_sighup_to_run_api_lets_the_api_take_orders_on_a_panel_of_the_new_playbooks_path(
        cpanel_setup, settings, vault, whm, tmp_path):
    import requests
    from provisiond import tokens
    from tests.helpers import free_port
    team = tmp_path / "team-playbooks"
    add_team_panel(team)
    team_shop(panels.discover([team, config.bundled_dir("playbooks")]), vault, whm)
    token = tokens.create("billing")
    port = free_port()
    log_path = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log_path, "--api", api_port=port)
    order = {"product": "eu-starter", "domain": "api-eu.example.com", "email": "me@api-eu.example.com"}

    def post() -> requests.Response:
        return requests.post(f"http://127.0.0.1:{port}/v1/orders", json=order, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    try:
        assert wait_for(lambda: _answers(port), 60), log_path.read_text()
        assert post().status_code != 201  # cpanel_eu is not among the API's panels yet
        (settings.home / "provisiond.yaml").write_text(f"playbooks_path: [{team}]\n")
        daemon.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "settings reloaded" in log_path.read_text(), 30), log_path.read_text()
        answer = post()
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["job"]["id"]
        assert wait_for(lambda: job_status(job_id) == "succeeded"), log_path.read_text()
        # The console is served by `run --api` too, and shows the daemon's own run of the job.
        console = requests.Session()
        base = f"http://127.0.0.1:{port}/ui"
        assert console.get(f"{base}/jobs/{job_id}", allow_redirects=False).status_code == 303  # sign in first
        signed = console.post(f"{base}/login", data={"token": tokens.create("ops", scope="admin")}, timeout=10)
        assert signed.status_code == 200 and signed.url == f"{base}/", signed.text[:500]
        page = console.get(f"{base}/jobs/{job_id}", timeout=10).text
        assert 'id="job-status"' in page and ">succeeded<" in page and 'id="task-tree"' in page
        assert "api-eu.example.com" in page and WHM_TOKEN not in page
    finally:
        stop_daemon(daemon)
    assert daemon.returncode == 0, log_path.read_text()


def _answers(port: int) -> bool:
    import requests
    try:
        return requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code in (200, 503)
    except requests.ConnectionError:
        return False


def test_a_retry_runs_when_its_backoff_ends_not_at_the_next_tick(cpanel_setup, settings, vault, registry, whm):
    """A 503 is retried after ``retry_base`` seconds; the daemon ticks then, though its tick
    interval is an hour and nothing wakes it."""
    settings = dataclasses.replace(settings, tick_seconds=3600, wake_check_seconds=3600,
                                   retry_base=2.0, retry_factor=1.0)
    whm.fail_next(1, status=503)
    daemon = Daemon(settings, vault, owner="daemon-under-test")
    daemon.start()
    try:
        _, job = lifecycle.order(registry, vault, product="starter", domain="later.example.com",
                                 email="me@later.example.com")
        daemon.bring_tick_forward()  # the order itself; the retry must come on its own
        assert wait_for(lambda: Job.get_by_id(job.id).attempts >= 1)
        assert wait_for(lambda: job_status(job.id) == "succeeded"), Job.get_by_id(job.id).last_error
        assert Job.get_by_id(job.id).attempts == 2
    finally:
        daemon.stop()
