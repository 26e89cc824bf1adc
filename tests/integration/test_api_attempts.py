"""A job's attempts over the API: each attempt, its task events, its stdout and its artifacts,
from real runs on the WHM simulator; a batch's jobs never see each other's."""

from __future__ import annotations

import datetime
import io
import json
import tarfile

import pytest
from fastapi.testclient import TestClient

from provisiond import api, lifecycle, tokens
from provisiond.models import Job, Service
from tests.conftest import WHM_TOKEN
from tests.integration.test_api import Api

SCRIPT = "<script>alert('pwned')</script>"


@pytest.fixture
def client(cpanel_setup, settings, vault):
    """A billing token's client (a billing system asking what happened to an order); every
    answer is checked for secrets at the end."""
    billing, admin = tokens.create("billing"), tokens.create("ops", scope="admin")
    with TestClient(api.create_app(settings, vault)) as test_client:
        calls = Api(test_client, billing)
        calls.admin = admin
        yield calls
    secrets = [WHM_TOKEN, billing, admin, *(vault.decrypt(s.password) for s in Service.select() if s.password)]
    for answer in calls.answers:
        for secret in secrets:
            assert secret not in answer


def utc(moment: str | None) -> bool:
    return moment is None or datetime.datetime.fromisoformat(moment).utcoffset() == datetime.timedelta(0)


def test_a_batch_of_two_jobs_shows_each_only_its_own_attempts_events_and_stdout(client, registry, vault, whm,
                                                                                worker):
    whm.op_createacct({"username": "squat", "domain": "p1.example.com", "plan": "basic",
                       "password": "Zz3!squatter-long", "contactemail": "s@p1.example.com"})
    jobs = [lifecycle.order(registry, vault, product="starter", domain=f"p{i}.example.com",
                            email=f"o@p{i}.example.com")[1] for i in range(2)]
    assert len(worker.tick(wait=True)) == 1  # one run for both creates; p1 fails in it
    assert [Job.get_by_id(j.id).status for j in jobs] == ["succeeded", "failed"]

    seen = {}
    for job in jobs:
        listed = client.get(f"/v1/jobs/{job.id}/attempts")
        assert listed.status_code == 200, listed.text
        [attempt] = listed.json()["attempts"]
        assert attempt["job_id"] == job.id and attempt["attempt"] == 1 and attempt["action"] == "create"
        assert all(utc(attempt[k]) for k in ("started_at", "finished_at"))
        events = client.get(f"/v1/attempts/{attempt['id']}/events").json()
        assert events["total"] == len(events["events"]) >= 2   # at least the read and the create
        assert all(utc(e["started_at"]) and "\x1b" not in (e["stdout"] or "") for e in events["events"])
        stdout = {fmt: client.get(f"/v1/attempts/{attempt['id']}/stdout", params={"format": fmt})
                  for fmt in ("txt", "ansi", "html")}
        assert stdout["txt"].headers["content-type"] == "text/plain; charset=utf-8"
        assert stdout["html"].headers["content-type"] == "text/html; charset=utf-8"
        assert "\x1b[0;3" in stdout["ansi"].text and "\x1b" not in stdout["txt"].text + stdout["html"].text
        assert '<span class="ansi-3' in stdout["html"].text
        assert client.get(f"/v1/attempts/{attempt['id']}/stdout").text == stdout["txt"].text
        seen[job.id] = (attempt, json.dumps(events) + "".join(r.text for r in stdout.values()))

    for mine, other, domain in ((jobs[0], jobs[1], "p1.example.com"), (jobs[1], jobs[0], "p0.example.com")):
        attempt, text = seen[mine.id]
        assert f"job_{mine.id}" in text and f"job_{other.id}" not in text and domain not in text

    good, bad = seen[jobs[0].id][0], seen[jobs[1].id][0]
    assert (good["status"], good["rc"], good["failed_task"], good["panel_answer"]) == ("succeeded", 0, None, None)
    assert bad["status"] == "failed" and bad["rc"] == 2 and bad["failed_task"] == "Create the account (createacct)"
    assert bad["panel_answer"]["metadata"]["reason"].startswith("Sorry, the domain p1.example.com")  # JSON
    failed = client.get(f"/v1/attempts/{bad['id']}/events", params={"status": "failed"}).json()
    assert failed["events"][0]["task"] == bad["failed_task"]
    assert failed["events"][0]["detail"]["answer"]["metadata"]["result"] == 0
    one = client.get(f"/v1/attempts/{bad['id']}/events", params={"task": bad["failed_task"]}).json()
    assert [e["seq"] for e in one["events"]] == [failed["events"][0]["seq"]]
    paged = client.get(f"/v1/attempts/{bad['id']}/events", params={"limit": 2, "offset": 1}).json()
    everything = client.get(f"/v1/attempts/{bad['id']}/events").json()["events"]
    assert paged["events"] == everything[1:3] and paged["total"] == len(everything)
    assert client.get(f"/v1/attempts/{good['id']}/events", params={"status": "failed"}).json()["total"] == 0

    # The artifacts: an admin's, and only this job's part of the run.
    assert client.get(f"/v1/attempts/{bad['id']}/artifacts").status_code == 403
    download = client.get(f"/v1/attempts/{bad['id']}/artifacts", token=client.admin)
    assert download.status_code == 200 and download.headers["content-type"] == "application/gzip"
    assert f"job-{jobs[1].id}-attempt-1-" in download.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(download.content)) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert {"attempt.json", "events.json", "stdout.txt", f"job_{jobs[1].id}.json"} <= set(files)
    bundle = "".join(files.values())
    assert f"job_{jobs[0].id}" not in bundle and "p0.example.com" not in bundle and WHM_TOKEN not in bundle
    assert "p1.example.com" in files["stdout.txt"]


def test_a_panel_answer_holding_markup_comes_back_escaped_as_html(client, registry, vault, whm, worker):
    _, job = lifecycle.order(registry, vault, product="starter", domain="x.example.com", email="o@x.example.com")
    whm.fail_next(1, status=503, body=SCRIPT.encode(), content_type="text/html")
    worker.tick(wait=True)
    [attempt] = client.get(f"/v1/jobs/{job.id}/attempts").json()["attempts"]
    assert attempt["status"] == "retrying" and attempt["panel_answer"] == SCRIPT   # text, not JSON
    html = client.get(f"/v1/attempts/{attempt['id']}/stdout", params={"format": "html"})
    assert "<script" not in html.text and "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html.text
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert SCRIPT in client.get(f"/v1/attempts/{attempt['id']}/stdout", params={"format": "txt"}).text


def test_bad_input_is_422_naming_the_field_and_unknown_ids_404(client):
    for path, params, field in (("/v1/attempts/1/stdout", {"format": "pdf"}, "format"),
                                ("/v1/attempts/1/events", {"status": "great"}, "status"),
                                ("/v1/attempts/1/events", {"limit": 0}, "limit"),
                                ("/v1/attempts/0/events", {}, "attempt_id")):
        answer = client.get(path, params=params)
        assert answer.status_code == 422, answer.text
        assert field in [item["loc"][-1] for item in answer.json()["detail"]]
    for path in ("/v1/attempts/999/events", "/v1/attempts/999/stdout", "/v1/jobs/999/attempts"):
        answer = client.get(path)
        assert answer.status_code == 404 and "999 does not exist" in answer.json()["detail"]
    assert client.get("/v1/attempts/999/artifacts", token=client.admin).status_code == 404


def test_the_routes_are_in_the_openapi_document_with_zoned_times(client):
    document = client.get("/openapi.json", token=None).json()
    assert {"/v1/jobs/{job_id}/attempts", "/v1/attempts/{attempt_id}/events",
            "/v1/attempts/{attempt_id}/stdout", "/v1/attempts/{attempt_id}/artifacts"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert schemas["AttemptOut"]["properties"]["started_at"]["format"] == "date-time"
    formats = document["paths"]["/v1/attempts/{attempt_id}/stdout"]["get"]["parameters"]
    assert [p["schema"]["enum"] for p in formats if p["name"] == "format"] == [["txt", "ansi", "html"]]
