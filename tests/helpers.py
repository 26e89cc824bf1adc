"""Helpers the integration tests share: drive the worker, read a job's log, gather what was kept."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

from provisiond import api, lifecycle, outcomes, queue
from provisiond.models import Job, JobStatus, ProvisioningLog, Service, utcnow
from provisiond.worker import Worker


def settle(worker: Worker, job: Job) -> Job:
    """One tick that waits for its runs; the job as it is afterwards."""
    worker.tick(wait=True)
    return Job.get_by_id(job.id)


def last_log(job: Job) -> ProvisioningLog:
    return job.logs.order_by(ProvisioningLog.id.desc()).first()


def refused_order(registry, vault, worker: Worker, product: str, task: str):
    """An order of taken.example.com that the panel refuses for good: one attempt, the job and
    the service failed, the attempt failed at ``task``. Returns (service, job, its last log)."""
    service, job = lifecycle.order(registry, vault, product=product, domain="taken.example.com",
                                   email="me@taken.example.com")
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.status == "failed" and log.failed_task == task
    return service, job, log


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(settings, vault):
    """The API app (the console included) over real HTTP on a free loopback port, served by
    uvicorn in a thread; yields the port, and stops the server at the end."""
    server = api.build_server(settings, port=free_port(), vault=vault)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        yield server.config.port
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def kept_texts(row: ProvisioningLog) -> list[str]:
    """Everything an admin can read about one attempt: the log row and its kept artifacts."""
    texts = [json.dumps([row.message, row.panel_answer, row.stdout_excerpt, row.failed_task])]
    if row.artifacts_path and Path(row.artifacts_path).is_dir():
        texts += [path.read_text() for path in Path(row.artifacts_path).iterdir()]
    return texts


def hmac_reference(key: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp><body>``, lowercase hex: written apart from the code it checks."""
    import hashlib
    import hmac
    return hmac.new(key.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256).hexdigest()


def hold(job: Job, message: str = "the panel has an account of that name with another domain") -> Job:
    """Claim the job and stop it as a run does when it cannot tell what the panel did
    (needs_attention); only this job is claimed."""
    [claimed] = queue.claim("holder", utcnow(), 1, 60, server_id=job.server_id, action=job.action)
    assert claimed.id == job.id, "another job of the same kind was due first"
    assert queue.fail(claimed, utcnow(), message, JobStatus.NEEDS_ATTENTION)
    outcomes.ended(claimed, JobStatus.NEEDS_ATTENTION.value, message)
    return Job.get_by_id(job.id)


def assert_kept_nowhere(secret: str, settings, log_text: str = "") -> None:
    """``secret`` (a login link's token) is in no log row, kept artifact, audit entry, file under
    provisiond's home (runs, artifacts) or log line (``log_text``): it was handed back, not stored."""
    from provisiond.models import AuditEntry
    texts = [text for row in ProvisioningLog.select() for text in kept_texts(row)]
    texts += [json.dumps([e.actor, e.action, e.subject, e.detail]) for e in AuditEntry.select()]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in Path(settings.home).rglob("*") if p.is_file()]
    assert not any(secret in text for text in [*texts, log_text])


def add_services(vault, product, server, rows: list[tuple[str, str, str]]) -> list:
    """Services made directly (ref, domain, status), each with an encrypted password that starts
    with ``canary-`` (so a page or answer that shows it is caught), username ``userN`` and email
    ``owner@DOMAIN``; in the order given, so the last is the newest."""
    import datetime
    from provisiond.models import Service
    made = []
    for ref, domain, status in rows:
        number = "".join(ch for ch in ref if ch.isdigit())
        made.append(Service.create(ref=ref, product=product, server=server, domain=domain,
                                   email=f"owner@{domain}", username=f"user{number}", package=product.package,
                                   password=vault.encrypt(f"canary-{ref}-pw"), status=status,
                                   paid_until=datetime.date(2026, 12, int(number) % 28 + 1)))
    return made
