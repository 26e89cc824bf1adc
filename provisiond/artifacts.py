"""What a run leaves for admins: a ProvisioningLog row per attempt and a kept artifacts folder.

The kept folder is ``<artifacts_dir>/<run ident>/``: ``stdout.txt`` for the whole run and
``<host>.json`` for each job (its outcome and job events). Everything kept was redacted by
execute.run; the private_data_dir with the rendered inputs is gone by then.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from pathlib import Path

from provisiond.execute import HostResult, RunResult
from provisiond.models import ProvisioningLog

EXCERPT_CHARS = 4000


def keep_run(artifacts_dir: Path, ident: str, result: RunResult) -> Path:
    folder = Path(artifacts_dir) / ident
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "stdout.txt").write_text(result.stdout, encoding="utf-8")
    for name, host in result.hosts.items():
        outcome = {k: v for k, v in host.__dict__.items() if k != "events"}
        payload = {"outcome": outcome, "run": {"status": result.status, "rc": result.rc},
                   "events": host.events}
        (folder / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    return folder


def stdout_excerpt(stdout: str, host: str) -> str:
    """The task headers and the lines about this host, so a batch's log reads like a single run."""
    lines, header = [], None
    for line in stdout.splitlines():
        if line.startswith(("TASK [", "PLAY [", "RUNNING HANDLER [")):
            header = line
        elif f"[{host}]" in line or f"{host} " in line or f"[{host} " in line:
            if header:
                lines.append(header)
                header = None
            lines.append(line)
    text = "\n".join(lines) or stdout
    return text[-EXCERPT_CHARS:]


def _panel_answer(host: HostResult) -> str | None:
    if host.panel_answer is None:
        return None
    if isinstance(host.panel_answer, str):
        return host.panel_answer[:EXCERPT_CHARS]
    return json.dumps(host.panel_answer, sort_keys=True, ensure_ascii=False)[:EXCERPT_CHARS]


def record_attempt(job, host: HostResult, result: RunResult, *, status: str, panel: str | None,
                   kept: Path | None, message: str | None = None) -> ProvisioningLog:
    started = datetime.datetime.fromtimestamp(result.started, datetime.timezone.utc).replace(tzinfo=None)
    return ProvisioningLog.create(
        job=job, attempt=job.attempts, server=job.server_id, panel=panel, action=job.action,
        status=status, rc=result.rc, started_at=started,
        finished_at=started + datetime.timedelta(seconds=result.duration),
        duration=round(result.duration, 3), failed_task=None if host.ok else host.failed_task,
        message=message if message is not None else (None if host.ok else host.message),
        panel_answer=_panel_answer(host),
        stdout_excerpt=stdout_excerpt(result.stdout, host.host) if result.stdout else None,
        artifacts_path=str(kept) if kept else None)


def prune(artifacts_dir: Path, keep_days: float, now: float | None = None) -> int:
    """Remove kept run folders older than ``keep_days``; returns how many went."""
    now = now or time.time()
    removed = 0
    base = Path(artifacts_dir)
    if not base.is_dir():
        return 0
    for folder in base.iterdir():
        if folder.is_dir() and now - os.stat(folder).st_mtime > keep_days * 86400:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def record_step(job, step: str, problem: str | None, result: RunResult, *, panel: str | None,
                kept: Path | None) -> ProvisioningLog:
    """One row for one extra step of a product (a role run after create), so each is seen alone."""
    started = datetime.datetime.fromtimestamp(result.started, datetime.timezone.utc).replace(tzinfo=None)
    return ProvisioningLog.create(
        job=job, attempt=job.attempts, server=job.server_id, panel=panel, action=f"{job.action}:{step}",
        status="failed" if problem else "succeeded", rc=result.rc, started_at=started,
        finished_at=started + datetime.timedelta(seconds=result.duration), duration=round(result.duration, 3),
        failed_task=problem.split(": ", 1)[0] if problem else None, message=problem,
        artifacts_path=str(kept) if kept else None)
