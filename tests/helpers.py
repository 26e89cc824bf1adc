"""Helpers the integration tests share: drive the worker, read a job's log, gather what was kept."""

from __future__ import annotations

import json
from pathlib import Path

from provisiond.models import Job, ProvisioningLog
from provisiond.worker import Worker


def settle(worker: Worker, job: Job) -> Job:
    """One tick that waits for its runs; the job as it is afterwards."""
    worker.tick(wait=True)
    return Job.get_by_id(job.id)


def last_log(job: Job) -> ProvisioningLog:
    return job.logs.order_by(ProvisioningLog.id.desc()).first()


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
