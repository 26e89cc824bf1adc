"""What every command module shares: the runtime, the command registry, input parsers, views and
text layout."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from typing import Any, Callable

from provisiond import config, crypto, db, panels, views
from provisiond.errors import ValidationError
from provisiond.models import Job, ProvisioningLog


COMMANDS: dict[str, Callable] = {}


def command(name: str):
    def register(func):
        COMMANDS[name] = func
        return func
    return register


def json_value(value: Any) -> Any:
    """What ``--json`` prints for a value JSON has no type for: times in ISO 8601 with their
    zone (stored times are UTC), as the HTTP API gives them."""
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


# -- runtime ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Runtime:
    settings: config.Settings
    json: bool

    _vault: crypto.Vault | None = None

    @property
    def vault(self) -> crypto.Vault:
        if self._vault is None:
            self._vault = crypto.Vault.from_settings(self.settings)
        return self._vault

    @property
    def policy(self):
        from provisiond.worker import retry_policy
        return retry_policy(self.settings)

    def registry(self) -> panels.Registry:
        return panels.discover(self.settings.panel_dirs())

    def open_db(self, pool: bool = False) -> None:
        """Bind the database; ``pool`` for a process that serves the API (``db.connect``)."""
        database = db.connect(self.settings.database_url, pool=pool)
        db.require_current(database)

    def out(self, data: Any, text: Callable[[Any], str] | str | None = None) -> None:
        if self.json:
            print(json.dumps(data, indent=2, default=json_value))
        elif callable(text):
            print(text(data))
        else:
            print(text if text is not None else data)


# -- input -----------------------------------------------------------------------------------

def kv(pairs: list[str] | None, field: str) -> dict[str, str]:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(field, f"{pair!r} must look like KEY=VALUE")
        result[key] = value
    return result


def read_credentials(pairs: list[str] | None) -> dict[str, str]:
    """``--credential`` values: ``K=VALUE``, ``K=@FILE`` (the file's text) or ``K=-`` (stdin),
    so a token or a PEM key need not sit in ``ps`` or the shell's history."""
    values = kv(pairs, "credential")
    if list(values.values()).count("-") > 1:
        raise ValidationError("credential", "only one credential can be read from stdin (K=-)")
    for key, value in values.items():
        if value == "-":
            values[key] = sys.stdin.read().rstrip("\r\n")
        elif value.startswith("@"):
            try:
                with open(value[1:], encoding="utf-8") as handle:
                    values[key] = handle.read().rstrip("\r\n")
            except (OSError, UnicodeError) as exc:
                raise ValidationError(f"credential.{key}", f"cannot read {value[1:]!r}: "
                                      f"{getattr(exc, 'strerror', None) or exc}") from None
    return values


def read_password_file(path: str | None) -> str | None:
    """The password in FILE (``-``: standard input), without its line end; never echoed."""
    if path is None:
        return None
    try:
        if path == "-":
            text = sys.stdin.read(PASSWORD_FILE_LIMIT)
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(PASSWORD_FILE_LIMIT)  # bounded: /dev/zero is a file too
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("password_file", f"cannot be read ({type(exc).__name__})") from None
    return text.removesuffix("\n").removesuffix("\r")


def parse_date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return number


PASSWORD_FILE_LIMIT = 1024  # characters; the panel's rules refuse a longer password anyway

PASSWORD_FILE_HELP = ("read the account password the billing system chose from FILE (- for standard "
                      "input; one trailing newline is dropped); checked against the panel's rules")


SERVICE_KEY_HELP = ("the service's billing reference, or its id written id:7 (a bare number that is "
                    "the ref of one service and the id of another is refused)")


# -- text ------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    """A value as a person reads it: no Python reprs, times to the second, lists by commas."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_text(r.get(c)).replace("\n", " ") for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def fields(data: dict) -> str:
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {_text(v)}" for k, v in data.items())


# -- views -----------------------------------------------------------------------------------

def job_view(job: Job) -> dict:
    return {"id": job.id, "action": job.action, "status": job.status,
            "service": job.service.ref if job.service_id else None,
            "server": job.server.name if job.server_id else None, "params": job.params,
            "attempts": job.attempts, "max_attempts": job.max_attempts, "run_after": job.run_after,
            "last_error": job.last_error, "created_at": job.created_at, "finished_at": job.finished_at}


server_view = views.server_view  # one view for the CLI and the API


def panel_answer(text: str | None) -> Any:
    """The panel's answer as JSON where it is JSON (an object or a list), else the text."""
    if text and text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def log_view(row: ProvisioningLog) -> dict:
    return {"attempt": row.attempt, "status": row.status, "action": row.action, "panel": row.panel,
            "rc": row.rc, "started_at": row.started_at, "duration": row.duration,
            "failed_task": row.failed_task, "message": row.message,
            "panel_answer": panel_answer(row.panel_answer),
            "stdout_excerpt": row.stdout_excerpt, "artifacts": row.artifacts_path,
            "playbook_folder": row.playbook_folder}


def warn(warnings: list[str]) -> None:
    """Warnings go to stderr in both layouts (``--json`` carries them in its ``warnings``)."""
    for warning in warnings:
        print(f"provisiond: warning: {warning}", file=sys.stderr)


def edited_text(kind: str, name: str, changed: list[str]) -> str:
    return f"{kind} {name}: " + (f"changed {', '.join(changed)}" if changed else "nothing changed")
