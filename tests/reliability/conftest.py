"""Fault-injection helpers shared by the reliability tests (one module per guarantee).

The ``database`` / ``settings`` fixtures of tests/conftest.py make every test run on SQLite and
on PostgreSQL. Here: a cPanel setup whose server has a name unique to the test (a run's marker
carries it, so a test finds its own playbook processes even when another test process of
``pytest -n 2`` runs the same test), real daemon processes, and /proc sampling.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from provisiond import catalog
from provisiond.execute import RUN_MARKER
from tests.conftest import WHM_TOKEN

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent


def wait_for(predicate, seconds: float = 60.0, interval: float = 0.05) -> bool:
    """Poll until ``predicate()`` is true; bounded, so a broken daemon fails instead of hanging."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# -- /proc -----------------------------------------------------------------------------------

def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """True for a process that exists and is not a zombie."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return False
    return stat.rsplit(b")", 1)[-1].split()[0] != b"Z"


def run_processes(fragment: str) -> dict[int, int]:
    """Live processes (pid → process group) whose run marker contains ``fragment``.

    Every process of a playbook run carries ``PROVISIOND_RUN=<ident>:<uuid>`` in its
    environment, and the ident names the server; the module processes Ansible starts in
    sessions of their own carry it too.
    """
    needle = f"{RUN_MARKER}=".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for item in _read(f"/proc/{entry.name}/environ").split(b"\0"):
            if item.startswith(needle) and fragment.encode() in item and alive(int(entry.name)):
                try:
                    found[int(entry.name)] = os.getpgid(int(entry.name))
                except ProcessLookupError:
                    pass
                break
    return found


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in process group ``pgid``."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _read(f"/proc/{entry.name}/stat")
            if stat:
                fields = stat.rsplit(b")", 1)[-1].split()
                if fields[0] != b"Z" and int(fields[2]) == pgid:
                    return True
    return False


def cmdlines() -> dict[int, bytes]:
    return {int(e.name): _read(f"/proc/{e.name}/cmdline") for e in os.scandir("/proc") if e.name.isdigit()}


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture
def server_name():
    return f"whm-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def shop(database, registry, vault, whm, server_name):
    """Group 'web', a server on the WHM simulator (unique name) and product 'starter' (basic)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name=server_name, panel="cpanel", host=whm.host,
                                port=whm.port, group_name="web", max_accounts=5000,
                                credentials={"api_token": WHM_TOKEN, "scheme": "http"})
    product = catalog.add_product(registry, name="starter", panel="cpanel", group_name="web",
                                  package="basic")
    return server, product


def daemon_env(settings, **overrides) -> dict[str, str]:
    """The environment of a `provisiond run` process on the test's home and database.

    Short lease, heartbeat and reaper, so a dead daemon's job comes back within seconds.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env.update(PROVISIOND_HOME=str(settings.home), PROVISIOND_DATABASE_URL=settings.database_url,
               PROVISIOND_TICK_SECONDS="3600", PROVISIOND_WAKE_CHECK_SECONDS="0.2",
               PROVISIOND_LEASE_SECONDS="6", PROVISIOND_HEARTBEAT_SECONDS="2",
               PROVISIOND_REAPER_SECONDS="1", PROVISIOND_RETRY_BASE="0.2", PROVISIOND_RETRY_CAP="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.update({f"PROVISIOND_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def daemons(settings, tmp_path):
    """``start(**settings)`` runs `python -m provisiond.cli run`; all are killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(**overrides) -> subprocess.Popen:
        log = open(tmp_path / f"daemon-{len(started)}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "provisiond.cli", "run"], cwd=ROOT,
                                env=daemon_env(settings, **overrides), stdout=log,
                                stderr=subprocess.STDOUT)
        log.close()
        proc.log_path = tmp_path / f"daemon-{len(started)}.log"
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
