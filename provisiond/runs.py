"""What happened in a job's attempts, for the console and the API: attempts, task events,
the task tree, stdout and a download of the artifacts, always for the job's own host only.

A batch runs several jobs in one playbook; each attempt's ``RunEvent`` rows hold only its
job's host's events (``record_events``), so nothing read here can show a neighbour's tasks or
output. Attempts recorded before those rows existed (schema 15) are read from the kept
``<host>.json`` artifact instead, or else their ``stdout_excerpt``.
"""

from __future__ import annotations

import datetime
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import peewee as pw

from provisiond import ansi
from provisiond.errors import NotFound
from provisiond.execute import STEPS_PLAY_NAME
from provisiond.models import ProvisioningLog, RunEvent
from provisiond.render import host_name

FORMATS = ("txt", "ansi", "html")
DETAIL_KEYS = ("msg", "rc", "stderr", "answer", "transient", "censored", "check")  # check: panel_call's refusal
DETAIL_CHARS = 8 * 1024
STDOUT_CHARS = 32 * 1024          # one event's output kept; the whole of it is in the artifacts
STATUS_OF = {"runner_on_failed": "failed", "runner_on_skipped": "skipped",
             "runner_on_unreachable": "unreachable"}


# -- recording -------------------------------------------------------------------------------

def record_events(log: ProvisioningLog, events: list[dict], *, role: str | None = None) -> int:
    """Store a host's runner events as ``log``'s RunEvent rows in a few bulk inserts; with
    ``role``, only that extra step's events. Returns how many were stored."""
    rows = [dict(event_fields(event, seq), attempt=log.id)
            for seq, event in enumerate(_of_role(events, role))]
    for chunk in pw.chunked(rows, 100):
        RunEvent.insert_many(chunk).execute()
    return len(rows)


def event_fields(event: dict, seq: int) -> dict:
    """A RunEvent's columns from one runner event (already redacted)."""
    data = event.get("event_data") or {}
    res = data.get("res") if isinstance(data.get("res"), dict) else {}
    name = event.get("event") or ""
    stdout = (event.get("stdout") or "").replace("\r\n", "\n")
    if len(stdout) > STDOUT_CHARS:
        stdout = stdout[:STDOUT_CHARS] + f"\n... ({len(stdout) - STDOUT_CHARS} more characters in the artifacts)"
    return {"seq": seq, "event": name[:64], "play": data.get("play"), "task": data.get("task"),
            "status": _status(name, data, res), "started_at": _time(data.get("start")),
            "duration": data.get("duration") if isinstance(data.get("duration"), (int, float)) else None,
            "stdout": stdout or None, "detail": _detail(res)}


def _of_role(events: list[dict], role: str | None) -> list[dict]:
    events = sorted(events, key=lambda e: e.get("counter") or 0)
    if role is None:
        return events
    return [e for e in events if (e.get("event_data") or {}).get("role") == role
            and (e.get("event_data") or {}).get("play") == STEPS_PLAY_NAME]


def _status(name: str, data: dict, res: dict) -> str | None:
    if name == "runner_on_ok":
        return "changed" if res.get("changed") else "ok"
    if name == "runner_on_failed" and data.get("ignore_errors"):
        return "ignored"
    return STATUS_OF.get(name)


def _time(value) -> datetime.datetime | None:
    try:
        when = datetime.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return when


def _detail(res: dict) -> dict | None:
    """msg, rc, stderr and the panel's answer of a result, at most ~8 KB: the longest values
    are cut to text first."""
    detail = {key: res[key] for key in DETAIL_KEYS if res.get(key) not in (None, "", [], {})}
    if not detail:
        return None
    for key in sorted(detail, key=lambda k: -len(_json(detail[k]))):
        size = len(_json(detail))
        if size <= DETAIL_CHARS:
            break
        text = detail[key] if isinstance(detail[key], str) else _json(detail[key])
        detail[key] = text[:max(0, len(text) - (size - DETAIL_CHARS) - 200)] + "..."
        detail["truncated"] = True
    return detail


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# -- reading ---------------------------------------------------------------------------------

def attempts_of(job_id: int) -> list[ProvisioningLog]:
    """Every log row of a job, oldest first: its attempts and its product's extra steps."""
    return list(ProvisioningLog.select().where(ProvisioningLog.job == job_id).order_by(ProvisioningLog.id))


def get_attempt(log_id: int) -> ProvisioningLog:
    log = ProvisioningLog.get_or_none(ProvisioningLog.id == log_id)
    if log is None:
        raise NotFound(f"attempt {log_id} does not exist")
    return log


def answer_of(log: ProvisioningLog) -> Any:
    """The panel's answer as JSON where it was JSON (an object or a list), else its text."""
    text = log.panel_answer
    if not text or text[0] not in "{[":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text   # cut at the excerpt's length, or not JSON after all


def events_of(log_id: int, status: str | None = None, task: str | None = None) -> list[RunEvent]:
    """The attempt's events in run order (only its job's host), optionally one status or task."""
    query = RunEvent.select().where(RunEvent.attempt == log_id)
    if status:
        query = query.where(RunEvent.status == status)
    if task:
        query = query.where(RunEvent.task == task)
    found = list(query.order_by(RunEvent.seq))
    if found or RunEvent.select().where(RunEvent.attempt == log_id).exists():
        return found
    return [e for e in _kept_events(log_id) if (not status or e.status == status) and (not task or e.task == task)]


def task_tree(log_id: int) -> list[dict]:
    """The attempt's task results grouped by play, in run order. ``check`` is the name of the
    refusal a ``panel_call`` made after its call succeeded (the attempt's failing task then
    bears that name, not the task's)."""
    plays: list[dict] = []
    for event in events_of(log_id):
        if event.status is None:
            continue
        if not plays or plays[-1]["play"] != event.play:
            plays.append({"play": event.play or "", "tasks": []})
        plays[-1]["tasks"].append({"task": event.task or "", "status": event.status, "duration": event.duration,
                                   "started_at": event.started_at, "seq": event.seq,
                                   "check": (event.detail or {}).get("check")})
    return plays


def stdout_of(log_id: int, fmt: str = "txt") -> str:
    """The job's host's part of the run's output: the play and task headers, then each of its
    results as Ansible printed them. ``txt`` is plain, ``ansi`` keeps the colours, ``html`` is
    escaped with colours as classes (``Markup``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    text = _compose(events_of(log_id))
    if not text:
        log = ProvisioningLog.get_or_none(ProvisioningLog.id == log_id)
        text = (log.stdout_excerpt or "") if log else ""
    if fmt == "html":
        return ansi.to_html(text)
    return ansi.strip(text) if fmt == "txt" else text


def artifact_bundle(log: ProvisioningLog) -> tuple[str, bytes]:
    """A .tar.gz of this attempt's part of the run: the kept ``<host>.json``, the attempt's
    record, its events and its stdout; never the batch's other hosts or the whole stdout."""
    name = f"job-{log.job_id}-attempt-{log.attempt}-log-{log.id}"
    record = {key: _plain(value) for key, value in log.__data__.items()}
    events = [{key: _plain(value) for key, value in e.__data__.items() if key != "attempt"}
              for e in events_of(log.id)]
    files = {"attempt.json": json.dumps(record, indent=1, ensure_ascii=False),
             "events.json": json.dumps(events, indent=1, ensure_ascii=False),
             "stdout.txt": stdout_of(log.id, "txt"), "stdout.ansi": stdout_of(log.id, "ansi")}
    kept = _kept_file(log)
    if kept is not None:
        files[kept.name] = kept.read_text(encoding="utf-8")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for file_name, text in files.items():
            body = text.encode("utf-8")
            info = tarfile.TarInfo(f"{name}/{file_name}")
            info.size, info.mode, info.mtime = len(body), 0o600, int(log.finished_at.timestamp())
            tar.addfile(info, io.BytesIO(body))
    return f"{name}.tar.gz", buffer.getvalue()


def _plain(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def _compose(events: list[RunEvent]) -> str:
    parts: list[str] = []
    play = task = None
    for event in events:
        if event.play != play and event.play is not None:
            play, task = event.play, None
            parts.append(_banner("PLAY", play))
        if event.task != task and event.task is not None:
            task = event.task
            parts.append(_banner("TASK", task))
        if event.stdout:
            parts.append(event.stdout)
    return "\n".join(parts).strip("\n")


def _banner(kind: str, name: str) -> str:
    head = f"{kind} [{name}]"
    return f"\n{head} {'*' * max(3, 79 - len(head))}"


def _kept_file(log: ProvisioningLog) -> Path | None:
    if not log.artifacts_path:
        return None
    path = Path(log.artifacts_path) / f"{host_name(log.job_id)}.json"
    return path if path.is_file() else None


def _kept_events(log_id: int) -> list[RunEvent]:
    """An attempt recorded before RunEvent rows existed: its events from the kept artifact."""
    log = ProvisioningLog.get_or_none(ProvisioningLog.id == log_id)
    path = _kept_file(log) if log else None
    if path is None:
        return []
    try:
        events = json.loads(path.read_text(encoding="utf-8")).get("events") or []
    except (OSError, ValueError, AttributeError):
        return []
    role = log.action.split(":", 1)[1] if ":" in log.action else None
    return [RunEvent(attempt=log_id, **event_fields(event, seq))
            for seq, event in enumerate(_of_role(events, role))]
