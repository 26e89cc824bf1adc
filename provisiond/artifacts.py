"""What a run leaves for admins: a ProvisioningLog row per attempt and a kept artifacts folder.

Each attempt's row gets its host's task events as RunEvent rows (``runs.record_events``).
The kept folder is ``<artifacts_dir>/<run ident>/``: ``stdout.txt`` for the whole run and
``<host>.json`` for each job (its outcome and job events). Everything kept was redacted by
execute.run; the private_data_dir with the rendered inputs is gone by then.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import re
import shutil
import time
from pathlib import Path

from provisiond import runs
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


HEADERS = ("TASK [", "PLAY [", "RUNNING HANDLER [", "PLAY RECAP")
HOST_LINE = re.compile(r"^\S[^\[\]]*?: \[([^\]\s]+)")   # ok: [job_1], fatal: [job_1 -> localhost]: ...
RECAP_LINE = re.compile(r"^(\S+)\s+: ok=")
FINISHED = ("successful", "failed")   # the run went through its plays: each host has its own rc


def stdout_excerpt(stdout: str, host: str) -> str:
    """The task headers and the lines about this host, so a batch's log reads like a single run;
    never another host's lines.

    A host's lines are its result lines (``ok: [host]``, ``fatal: [host]: ...``), the lines that
    continue them, its recap line, and the ``[ERROR]`` block ansible-core prints just before a
    failed host's line. A host the output never names (the run failed before any task) gets
    the run's own lines instead.
    """
    named, run_text = _excerpts(stdout)
    return named.get(host, run_text)


@functools.lru_cache(maxsize=16)
def _excerpts(stdout: str) -> tuple[dict[str, str], str]:
    """Every named host's excerpt and the run's own lines, in one pass over the run's output:
    a run's jobs are recorded one after the other, each asking for its excerpt."""
    lines: dict[str, list[str]] = {}
    shown: dict[str, int] = {}   # host → the header it was last given, so each header comes once
    run_lines, error_block = [], []
    header, headers, owner = None, 0, None
    for line in stdout.splitlines():
        if line.startswith(HEADERS):
            header, headers, owner = line, headers + 1, None
            run_lines += error_block
            error_block = []
            continue
        if line.startswith(("[ERROR]", "[WARNING]", "[DEPRECATION WARNING]")):
            owner = None
            run_lines += error_block
            error_block = [line] if line.startswith("[ERROR]") else []
            if not error_block:
                run_lines.append(line)
            continue
        named = HOST_LINE.match(line) or RECAP_LINE.match(line)
        if named:
            owner, block, error_block = named.group(1), error_block, []
        elif error_block:
            error_block.append(line)
            continue
        else:
            block = []
            if owner is None and line.strip():
                run_lines.append(line)
        if owner is not None:
            own = lines.setdefault(owner, [])
            if header and shown.get(owner) != headers:
                own.append(header)
                shown[owner] = headers
            own += block
            own.append(line)
    return {host: _text(own) for host, own in lines.items()}, _text(run_lines)


def _text(lines: list[str]) -> str:
    return "\n".join(line for line in lines if line.strip())[-EXCERPT_CHARS:]


def host_rc(ok: bool, unreachable: bool, result: RunResult) -> int | None:
    """This host's return code as ansible-playbook gives it for one host (0 ok, 2 failed, 4
    unreachable), not the batch's: another host's failure is not this one's. A run that did not
    finish (timeout, cancel, error) gives its own rc to every host."""
    if result.status not in FINISHED:
        return result.rc
    if ok:
        return 0
    return 4 if unreachable else 2


def _panel_answer(host: HostResult) -> str | None:
    if host.panel_answer is None:
        return None
    if isinstance(host.panel_answer, str):
        return host.panel_answer[:EXCERPT_CHARS]
    return json.dumps(host.panel_answer, sort_keys=True, ensure_ascii=False)[:EXCERPT_CHARS]


def record_attempt(job, host: HostResult, result: RunResult, *, status: str, panel: str | None,
                   kept: Path | None, message: str | None = None, folder: str | None = None) -> ProvisioningLog:
    started = datetime.datetime.fromtimestamp(result.started, datetime.timezone.utc).replace(tzinfo=None)
    log = ProvisioningLog.create(
        job=job, attempt=job.attempts, server=job.server_id, panel=panel, action=job.action,
        status=status, rc=host_rc(host.ok, host.unreachable, result), started_at=started,
        finished_at=started + datetime.timedelta(seconds=result.duration),
        duration=round(result.duration, 3), failed_task=None if host.ok else host.failed_task,
        message=message if message is not None else (None if host.ok else host.message),
        panel_answer=_panel_answer(host),
        stdout_excerpt=stdout_excerpt(result.stdout, host.host) if result.stdout else None,
        artifacts_path=str(kept) if kept else None, playbook_folder=folder)
    runs.record_events(log, host.events)
    return log


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
                kept: Path | None, folder: str | None = None, events: list | None = None) -> ProvisioningLog:
    """One row for one extra step of a product (a role run after create), so each is seen alone."""
    started = datetime.datetime.fromtimestamp(result.started, datetime.timezone.utc).replace(tzinfo=None)
    log = ProvisioningLog.create(
        job=job, attempt=job.attempts, server=job.server_id, panel=panel, action=f"{job.action}:{step}",
        status="failed" if problem else "succeeded", rc=host_rc(not problem, False, result), started_at=started,
        finished_at=started + datetime.timedelta(seconds=result.duration), duration=round(result.duration, 3),
        failed_task=problem.split(": ", 1)[0] if problem else None, message=problem,
        artifacts_path=str(kept) if kept else None, playbook_folder=folder)
    runs.record_events(log, events or [], role=step)
    return log
