"""`provisiond api --workers N`: the API served by several processes on one port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests

from provisiond import tokens
from tests.helpers import add_services, free_port


def marked(marker: str) -> list[int]:
    """The processes whose environment carries ``marker`` (never found by command name)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    if f"PROVISIOND_TEST_MARK={marker}".encode() in handle.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_two_workers_answer_on_one_port_and_stop_together(cpanel_setup, settings, vault, tmp_path):
    server, product = cpanel_setup
    add_services(vault, product, server, [("INV-1", "one.example.com", "active")])
    token = tokens.create("workers")
    marker, port = uuid.uuid4().hex, free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env.update(PROVISIOND_HOME=str(settings.home), PROVISIOND_DATABASE_URL=settings.database_url,
               PROVISIOND_TEST_MARK=marker)
    log_path = tmp_path / "api.log"
    with open(log_path, "w") as log:
        parent = subprocess.Popen([sys.executable, "-m", "provisiond.cli", "api", "--port", str(port),
                                   "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while len(workers(marker, parent.pid)) < 2 or not answers(port):
            assert parent.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert len(workers(marker, parent.pid)) == 2
        with requests.Session() as client:
            client.headers["Authorization"] = f"Bearer {token}"
            shown = [client.get(f"http://127.0.0.1:{port}/v1/services/INV-1", timeout=10) for _ in range(20)]
        assert {(a.status_code, a.json()["domain"]) for a in shown} == {(200, "one.example.com")}
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(30)
    deadline = time.monotonic() + 15
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked(marker) == []  # no worker outlives its supervisor


def workers(marker: str, parent: int) -> list[int]:
    """The API's worker processes: the supervisor's marked children but multiprocessing's own
    resource tracker."""
    found = []
    for pid in marked(marker):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == parent and b"resource_tracker" not in cmdline.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.mark.parametrize("value", ["0", "33", "two"])
def test_a_bad_worker_count_is_refused_naming_the_flag(run, database, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        run("api", "--workers", value)
    assert exit_.value.code == 2 and "argument --workers: must be a whole number from 1 to 32" in capsys.readouterr().err
