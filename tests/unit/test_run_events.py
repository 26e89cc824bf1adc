"""How one runner event becomes a RunEvent row, and how colour never hides a secret (pure)."""

from __future__ import annotations

import json

import pytest

from provisiond import execute, runs
from provisiond.crypto import Redactor


def event(name: str, res: dict, **data) -> dict:
    return {"event": name, "counter": 3, "stdout": "\x1b[0;32mok: [job_1]\x1b[0m\r\n",
            "event_data": {"play": "Create", "task": "Call", "res": res, **data}}


@pytest.mark.parametrize("name, res, data, status", [
    ("runner_on_ok", {"changed": False}, {}, "ok"),
    ("runner_on_ok", {"changed": True}, {}, "changed"),
    ("runner_on_failed", {}, {}, "failed"),
    ("runner_on_failed", {}, {"ignore_errors": True}, "ignored"),
    ("runner_on_skipped", {}, {}, "skipped"),
    ("runner_on_unreachable", {}, {}, "unreachable"),
    ("playbook_on_stats", {}, {}, None),
])
def test_each_result_gets_its_status(name, res, data, status):
    assert runs.event_fields(event(name, res, **data), 0)["status"] == status


def test_a_row_keeps_colours_times_and_a_trimmed_detail():
    fields = runs.event_fields(event("runner_on_failed", {"msg": "no", "rc": 1, "answer": {"x": "y" * 50_000},
                                                         "stdout_lines": ["z" * 50_000]},
                                     start="2026-11-28T10:00:00+01:00", duration=0.5), 4)
    assert fields["stdout"] == "\x1b[0;32mok: [job_1]\x1b[0m\n"
    assert fields["started_at"].isoformat() == "2026-11-28T09:00:00" and fields["duration"] == 0.5
    detail = fields["detail"]
    assert detail["msg"] == "no" and detail["rc"] == 1 and detail["truncated"] is True
    assert "stdout_lines" not in detail and len(json.dumps(detail)) <= runs.DETAIL_CHARS


def test_a_colour_code_inside_a_secret_leaves_the_output_plain_and_masked():
    redact = Redactor(["s3cret-value"])
    split = {"event": "runner_on_ok", "stdout": "token s3cret\x1b[0m-value here"}
    assert execute._plain_if_hiding(redact.data(split), redact)["stdout"] == "token ******** here"
    whole = {"event": "runner_on_ok", "stdout": "\x1b[0;32mtoken s3cret-value\x1b[0m"}
    kept = execute._plain_if_hiding(redact.data(whole), redact)["stdout"]
    assert kept.startswith("\x1b[0;32m") and "s3cret" not in kept
