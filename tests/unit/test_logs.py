"""The daemon's log: the scheduler's chatter only at DEBUG, JSON lines for log shippers."""

from __future__ import annotations

import json
import logging

import pytest

from provisiond import logs


def record(name: str, level: int, msg: str, *args, **extra) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


@pytest.fixture
def root_level():
    root = logging.getLogger()
    before = root.level
    yield root.setLevel
    root.setLevel(before)


@pytest.mark.parametrize("name, level, msg, shown_at_info", [
    ("apscheduler.executors.default", logging.INFO, 'Running job "Daemon._check_wake"', False),
    ("apscheduler.scheduler", logging.WARNING,
     'Execution of job "%s" skipped: maximum number of running instances reached (%d)', False),
    ("apscheduler.scheduler", logging.WARNING, 'Run time of job "%s" was missed by %s', True),
    ("provisiond.worker", logging.INFO, "run on whm1: create of 3 job(s), 4.2 s, successful", True),
])
def test_scheduler_chatter_is_shown_only_at_debug(root_level, name, level, msg, shown_at_info):
    chatter = logs.SchedulerChatter()
    root_level(logging.INFO)
    assert chatter.filter(record(name, level, msg)) is shown_at_info
    root_level(logging.DEBUG)
    shown = record(name, level, msg)
    assert chatter.filter(shown) is True
    assert (shown.levelname == "DEBUG") is (not shown_at_info)


def test_a_json_line_carries_the_message_and_the_fields_given_with_it():
    line = logs.JsonFormatter().format(record("provisiond.worker", logging.INFO, "job %s (ref %s): %s",
                                              7, "INV-7", "create succeeded", job=7, ref="INV-7",
                                              status="succeeded", next_attempt=None))
    entry = json.loads(line)
    assert entry["message"] == "job 7 (ref INV-7): create succeeded"
    assert (entry["level"], entry["logger"]) == ("INFO", "provisiond.worker")
    assert (entry["job"], entry["ref"], entry["status"], entry["next_attempt"]) == (7, "INV-7", "succeeded", None)
    assert entry["time"].endswith("+00:00") and "\n" not in line
