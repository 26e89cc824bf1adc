"""Guarantee 12: crash-safe SQLite (WAL, synchronous=FULL, busy timeout).

Two processes enqueue as fast as they can (single jobs and bulk inserts) into one SQLite file,
printing each job's id (or idempotency key) to a pipe once its enqueue has returned; both are
killed with SIGKILL at random moments. Every acknowledged job is in the database afterwards,
the file passes SQLite's integrity check, and the queue still works.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading

import pytest

from provisiond import db, queue
from provisiond.models import Job, utcnow
from tests.reliability.conftest import ROOT, SCRIPTS, daemon_env, wait_for

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Enqueuer:
    def __init__(self, settings, server_id: int, prefix: str):
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, str(SCRIPTS / "_enqueue_loop.py"), settings.database_url,
                                      str(server_id), prefix], cwd=ROOT, env=daemon_env(settings),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.reader.join(10)


def test_every_acknowledged_job_survives_kill_9(shop, settings, database):
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.execute_sql("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
    server, _ = shop
    enqueuers = [Enqueuer(settings, server.id, f"p{i}") for i in range(2)]
    try:
        for enqueuer in enqueuers:
            target = random.randrange(150, 400)
            assert wait_for(lambda: len(enqueuer.lines) >= target or enqueuer.proc.poll() is not None, 120)
            assert enqueuer.proc.poll() is None, enqueuer.proc.stderr.read()
            enqueuer.kill()
    finally:
        for enqueuer in enqueuers:
            if enqueuer.proc.poll() is None:
                enqueuer.kill()
    assert all(e.proc.returncode == -signal.SIGKILL for e in enqueuers)

    acknowledged = [line for e in enqueuers for line in e.lines if line]
    job_ids = {int(line.split()[1]) for line in acknowledged if line.startswith("job ")}
    keys = {line.split()[1] for line in acknowledged if line.startswith("key ")}
    assert job_ids and keys and len(job_ids) + len(keys) == len(acknowledged)

    fresh = db.connect(settings.database_url)  # what a restarted daemon sees
    assert fresh.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    found_ids = {j for (j,) in Job.select(Job.id).where(Job.id.in_(list(job_ids))).tuples()}
    found_keys = {k for (k,) in Job.select(Job.idempotency_key).where(Job.idempotency_key.in_(list(keys))).tuples()}
    assert job_ids - found_ids == set() and keys - found_keys == set()
    assert queue.claim("after-the-crash", utcnow(), 5, 60)  # the queue still works
