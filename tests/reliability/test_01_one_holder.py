"""Guarantee 1: one holder per job.

Eight worker processes claim and finish 2,000 jobs (one per service) at once on the same
database: every job is finished exactly once, by one process, on its first claim, and no
exception ("database is locked", a serialization failure, ...) escapes a claim or a finish.
Only the claim/finish path runs; no playbook.
"""

from __future__ import annotations

import json
import subprocess
import sys

from provisiond import queue
from provisiond.models import Job, Service, utcnow
from tests.reliability.conftest import ROOT, SCRIPTS, daemon_env

JOBS = 2000
WORKERS = 8


def make_jobs(server, product, n: int) -> list[int]:
    """n services with one queued job each, inserted in bulk."""
    now = utcnow()
    rows = [{"ref": f"R1-{i}", "product": product.id, "server": server.id, "domain": f"s{i}.example.com",
             "email": f"o@s{i}.example.com", "username": f"s{i}", "package": "basic", "status": "active",
             "created_at": now, "updated_at": now} for i in range(n)]
    for start in range(0, n, 500):
        Service.insert_many(rows[start:start + 500]).execute()
    services = [sid for (sid,) in Service.select(Service.id).order_by(Service.id).tuples()]
    added = queue.enqueue_many([{"action": "test_connection", "service": sid, "server": server.id,
                                 "params": {}, "idempotency_key": f"claim-test:{sid}", "max_attempts": 1}
                                for sid in services], now)
    assert added == n
    return [jid for (jid,) in Job.select(Job.id).tuples()]


def test_eight_processes_finish_every_job_exactly_once(shop, settings):
    server, product = shop
    job_ids = make_jobs(server, product, JOBS)
    env = daemon_env(settings)
    procs = [subprocess.Popen([sys.executable, str(SCRIPTS / "_claim_loop.py"), settings.database_url,
                               f"w{i}", "10"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(WORKERS)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for proc in procs:  # all start claiming together
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    errors = [e for r in results for e in r["errors"]]
    assert errors == [], errors[:5]
    assert [j for r in results for j in r["not_owned"]] == []
    finished = [j for r in results for j in r["finished"]]
    assert len(finished) == len(set(finished)) == JOBS
    assert set(finished) == set(job_ids)
    assert sum(1 for r in results if r["finished"]) >= WORKERS // 2  # the claims really competed
    rows = list(Job.select(Job.status, Job.attempts, Job.fence, Job.lease_owner).tuples())
    assert {(status, attempts, fence, owner) for status, attempts, fence, owner in rows} == {
        ("succeeded", 1, 1, None)}
