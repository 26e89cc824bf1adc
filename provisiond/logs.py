"""How provisiond logs: plain lines for a terminal or journald, or one JSON object a line
for log shippers (``log_format: json``).

APScheduler says at INFO every time it runs a job ("Running job ...", "executed
successfully"): with the wake check every half second that buried the lines an operator needs.
Its INFO lines (and its warning of a skipped overlapping tick, which the daemon expects) are
DEBUG lines here; they show with ``log_level: DEBUG`` (or ``-v``).
"""

from __future__ import annotations

import datetime
import json
import logging

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the fields
    given with ``extra=`` (job, ref, action, server, ...), and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
                 .isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class SchedulerChatter(logging.Filter):
    """Turns APScheduler's INFO records into DEBUG ones, kept only when DEBUG is on; so is its
    warning that a job was skipped while still running (the daemon expects that of its tick,
    and runs the tick again itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("apscheduler"):
            return True
        if record.levelno == logging.INFO or "skipped: maximum number of running" in str(record.msg):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def setup(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format``; like ``logging.basicConfig``, a process
    whose logging is already set up by its host (a test runner, an embedding app) keeps it."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    if root.handlers:
        return
    handler = _Handler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SchedulerChatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


class _Handler(logging.StreamHandler):
    """provisiond's own handler, told apart from a host's when set up again."""
