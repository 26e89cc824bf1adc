"""The console's job page (/ui/jobs/ID): the failing task and the panel's answer first, then the
task tree and the stdout of this job's host only, the artifacts' download, and the forms its
status allows. One real batch run on the WHM simulator serves most assertions."""

from __future__ import annotations

import datetime
import html
import io
import json
import re
import tarfile

import pytest
from fastapi.testclient import TestClient

from provisiond import api, lifecycle, queue
from provisiond.models import Job, ProvisioningLog, Service, utcnow
from provisiond.render import host_name
from provisiond.ui.jobs import Attempt, choose, group_attempts
from tests.conftest import WHM_TOKEN
from tests.helpers import hold, last_log

SCRIPT = "<script>alert('panel')</script>"


def element(page: str, selector_id: str) -> str:
    """The text inside the element of id ``selector_id`` (unescaped), or '' when absent."""
    found = re.search(rf'<(\w+)[^>]* id="{selector_id}"[^>]*>(.*?)</\1>', page, re.S)
    return html.unescape(found.group(2)) if found else ""


def position(page: str, selector_id: str) -> int:
    at = page.find(f'id="{selector_id}"')
    assert at >= 0, f"#{selector_id} is missing"
    return at


def secrets_of(vault) -> list[str]:
    return [WHM_TOKEN, *(vault.decrypt(s.password) for s in Service.select() if s.password)]


@pytest.fixture
def batch(cpanel_setup, registry, vault, whm, worker):
    """Jobs A and B, two creates run in one batch: the panel refuses A with an answer holding a
    script tag (so it lands in the panel answer and in stdout); B succeeds."""
    original = whm.op_createacct

    def createacct(params):
        if params.get("domain") == "a.example.com":
            return whm._envelope("createacct", 0, f"{SCRIPT} Sorry, the domain a.example.com is taken.")
        return original(params)
    whm.op_createacct = createacct
    _, a = lifecycle.order(registry, vault, product="starter", domain="a.example.com", email="o@a.example.com")
    _, b = lifecycle.order(registry, vault, product="starter", domain="b.example.com", email="o@b.example.com")
    assert len(worker.tick(wait=True)) == 1, "the two creates share one run"
    a, b = Job.get_by_id(a.id), Job.get_by_id(b.id)
    assert (a.status, b.status) == ("failed", "succeeded")
    assert last_log(a).artifacts_path == last_log(b).artifacts_path
    whm.op_createacct = original
    return a, b


def test_a_failed_job_leads_with_its_failing_task_and_the_panel_answer_and_shows_only_its_host(
        console, batch, vault):
    a, b = batch
    answer = console.get(f"/ui/jobs/{a.id}")
    assert answer.status_code == 200
    page = answer.text
    assert element(page, "job-status") == "failed" and 'class="badge failed"' in page
    assert element(page, "failing-task") == "Create the account (createacct)"
    shown = element(page, "panel-answer")
    assert json.loads(shown) == json.loads(last_log(a).panel_answer)
    assert '\n  "metadata": {\n    "command": "createacct"' in shown  # pretty-printed
    # First the failing task and the answer, then the tree, the output and the download.
    order = [position(page, name) for name in ("failing-task", "panel-answer", "task-tree", "stdout", "artifacts")]
    assert order == sorted(order)
    assert re.search(r'<li data-status="failed"[^>]*>\s*<span class="badge failed">failed</span> '
                     r'Create the account \(createacct\)', page)
    assert f"fatal: [{host_name(a.id)}]" in element(page, "stdout")
    assert f'<span class="ansi-31">fatal: [{host_name(a.id)}]: FAILED!' in page  # Ansible's red, as a class
    assert re.search(r'<li data-attempt="1"[^>]*>\s*<a href="\?attempt=1">', page)
    assert f"/ui/services/{a.service.ref}" in page and "a.example.com" in page and "whm1" in page

    # The panel's script tag, in its answer, the message and stdout, is text, never markup.
    assert "<script>alert" not in page and "&lt;script&gt;alert(" in page
    assert SCRIPT in element(page, "panel-answer") and SCRIPT in element(page, "stdout")
    assert SCRIPT in element(page, "attempt-message")

    # Neither job's page shows the other's host, domain or failure, nor any secret.
    page_b = console.get(f"/ui/jobs/{b.id}").text
    assert element(page_b, "job-status") == "succeeded" and f"ok: [{host_name(b.id)}]" in page_b
    assert f"[{host_name(b.id)}]" not in page and "b.example.com" not in page
    assert f"[{host_name(a.id)}]" not in page_b and "a.example.com" not in page_b
    assert "script" not in page_b.lower().replace('<script src="/ui/static/console.js" defer></script>', "")
    assert 'id="failing-task"' not in page_b
    for secret in secrets_of(vault):
        assert secret not in page and secret not in page_b

    # The download: a tar.gz of job A's part of the run only.
    link = re.search(r'<a id="artifacts" href="([^"]+)"', page).group(1)
    assert link == f"/ui/attempts/{last_log(a).id}/artifacts"
    download = console.get(link)
    assert download.status_code == 200 and download.headers["content-type"] == "application/gzip"
    assert download.headers["content-disposition"].startswith("attachment; filename=")
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as bundle:
        files = {m.name: bundle.extractfile(m).read().decode() for m in bundle.getmembers() if m.isfile()}
    everything = "\n".join([*files, *files.values()])
    assert host_name(a.id) in everything and "Create the account (createacct)" in everything
    assert host_name(b.id) not in everything and "b.example.com" not in everything
    for secret in secrets_of(vault):
        assert secret not in everything


def test_forms_follow_the_status_and_the_chosen_attempt_is_the_latest_failed(console, batch, worker):
    a, _ = batch
    page = console.get(f"/ui/jobs/{a.id}").text
    assert f'action="/ui/jobs/{a.id}/retry"' in page
    assert f'/ui/jobs/{a.id}/cancel' not in page and f'/ui/jobs/{a.id}/resolve' not in page
    form = re.search(rf'<form[^>]*action="/ui/jobs/{a.id}/retry">(.*?)</form>', page, re.S).group(1)
    assert f'name="csrf" value="{console.csrf}"' in form and f'name="next" value="/ui/jobs/{a.id}"' in form

    queue.retry(a.id, utcnow(), 1)  # as the retry form's route does; the panel now takes it
    queued = console.get(f"/ui/jobs/{a.id}").text
    assert element(queued, "job-status") == "queued" and f'/ui/jobs/{a.id}/cancel' in queued
    assert f'/ui/jobs/{a.id}/retry' not in queued
    worker.tick(wait=True)
    assert Job.get_by_id(a.id).status == "succeeded"

    page = console.get(f"/ui/jobs/{a.id}").text
    assert re.findall(r'<li data-attempt="(\d+)"', page) == ["1", "2"]
    assert 'id="chosen-attempt" data-attempt="1"' in page  # the latest failed one
    assert element(page, "failing-task") == "Create the account (createacct)"
    assert "/retry" not in page and "/cancel" not in page and "/resolve" not in page
    second = console.get(f"/ui/jobs/{a.id}?attempt=2").text
    assert 'id="chosen-attempt" data-attempt="2"' in second and 'id="failing-task"' not in second
    assert f"changed: [{host_name(a.id)}]" in element(second, "stdout")
    assert console.get(f"/ui/jobs/{a.id}?attempt=3").status_code == 404


def test_a_held_job_offers_resolve_and_shows_its_product_steps_in_its_attempt(console, cpanel_setup, registry,
                                                                              vault, whm):
    _, job = lifecycle.order(registry, vault, product="starter", domain="held.example.com",
                             email="o@held.example.com")
    job = hold(job)
    now = utcnow()
    for action, status, task, message in (("create", "needs_attention", None, "the panel has another account"),
                                          ("create:dns", "failed", "dns", "dns: the zone was refused")):
        ProvisioningLog.create(job=job, attempt=1, server=job.server_id, panel="cpanel", action=action,
                               status=status, started_at=now, finished_at=now, duration=1.5,
                               failed_task=task, message=message)
    page = console.get(f"/ui/jobs/{job.id}").text
    assert element(page, "job-status") == "needs_attention"
    assert f'action="/ui/jobs/{job.id}/resolve"' in page and f'action="/ui/jobs/{job.id}/retry"' in page
    assert f'/ui/jobs/{job.id}/cancel' not in page
    resolve = re.search(rf'<form[^>]*action="/ui/jobs/{job.id}/resolve">(.*?)</form>', page, re.S).group(1)
    assert 'name="outcome" value="succeeded"' in resolve and 'name="outcome" value="failed"' in resolve
    assert 'name="note"' in resolve and f'value="{console.csrf}"' in resolve
    assert re.findall(r'<li data-attempt="(\d+)"', page) == ["1"]  # the step is part of attempt 1
    assert 'data-step="create:dns"' in page and "dns: the zone was refused" in page
    assert element(page, "failing-task") == "dns"
    assert 'id="chosen-attempt" data-attempt="1"' in console.get(f"/ui/jobs/{job.id}?attempt=").text


def test_a_queued_job_shows_when_its_next_attempt_is_due_and_can_be_cancelled(console, cpanel_setup, registry,
                                                                              vault, whm):
    _, job = lifecycle.order(registry, vault, product="starter", domain="later.example.com",
                             email="o@later.example.com")
    Job.update(run_after=utcnow() + datetime.timedelta(minutes=10)).where(Job.id == job.id).execute()
    page = console.get(f"/ui/jobs/{job.id}").text
    assert element(page, "job-status") == "queued"
    assert "(in 9 min" in element(page, "next-attempt") or "(in 10 min" in element(page, "next-attempt")
    assert f'action="/ui/jobs/{job.id}/cancel"' in page and "/retry" not in page
    assert 'id="no-attempt"' in page and 'id="attempts"' not in page
    [claimed] = queue.claim("a-worker", utcnow() + datetime.timedelta(minutes=11), 1, 60)
    running = console.get(f"/ui/jobs/{claimed.id}").text
    assert element(running, "job-status") == "running" and "Attempt 1 is running now" in running
    assert f'action="/ui/jobs/{job.id}/cancel"' in running and 'id="next-attempt"' not in running


@pytest.mark.parametrize("path", ["/ui/jobs/999", "/ui/jobs/abc", "/ui/jobs/99999999999", "/ui/jobs/-1",
                                  "/ui/attempts/999/artifacts", "/ui/attempts/x/artifacts"])
def test_an_unknown_or_malformed_id_is_a_404_page(console, path):
    answer = console.get(path)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in answer.text


@pytest.mark.parametrize("path", ["/ui/jobs/1", "/ui/jobs/1?attempt=2", "/ui/attempts/1/artifacts"])
def test_without_a_session_the_page_and_the_download_send_to_sign_in(database, settings, vault, path):
    with TestClient(api.create_app(settings, vault), follow_redirects=False) as client:
        answer = client.get(path)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next=%2Fui%2F")


def _row(attempt: int, status: str, action: str = "create") -> ProvisioningLog:
    return ProvisioningLog(attempt=attempt, action=action, status=status)


@pytest.mark.parametrize("rows, wanted, chosen", [
    ([], None, None),
    ([(1, "succeeded")], None, 1),
    ([(1, "retrying"), (2, "failed")], None, 2),
    ([(1, "retrying"), (2, "succeeded")], None, 1),
    ([(1, "timeout"), (2, "cancelled")], None, 1),
    ([(1, "retrying"), (2, "succeeded")], 2, 2),
    ([(1, "retrying")], 5, None),
    ([(1, "succeeded"), (1, "failed", "create:dns")], None, 1),
    ([(1, "failed"), (2, "succeeded"), (2, "failed", "create:dns")], None, 2),
])
def test_the_chosen_attempt_is_the_one_asked_else_the_latest_failed_else_the_latest(rows, wanted, chosen):
    attempts = group_attempts([_row(*row) for row in rows])
    found = choose(attempts, wanted)
    assert (found.number if found else None) == chosen


def test_a_step_row_joins_its_attempt_whichever_row_comes_first():
    [only] = group_attempts([_row(1, "failed", "create:dns"), _row(1, "succeeded")])
    assert isinstance(only, Attempt) and only.main.action == "create"
    assert [s.action for s in only.steps] == ["create:dns"] and only.failed
    assert only.failed_task is None


def test_a_refusal_panel_call_made_marks_the_read_that_refused_in_the_tree(cpanel_setup, console, registry, vault,
                                                                           whm, worker):
    """A check of panel_call (``refuse``) fails the task that read the panel, under the check's
    name: the tree marks that task as the failing one and names the check."""
    whm.op_createacct({"username": "taken", "domain": "elsewhere.example.com", "plan": "basic",
                       "password": "Zz3!squatter-long", "contactemail": "x@elsewhere.example.com"})
    _, job = lifecycle.order(registry, vault, product="starter", domain="taken.example.com",
                             email="o@taken.example.com")
    worker.tick(wait=True)
    log = last_log(Job.get_by_id(job.id))
    assert log.status == "failed"
    page = console.get(f"/ui/jobs/{job.id}").text
    assert element(page, "failing-task") == log.failed_task
    failing = re.findall(r'<li data-status="failed"[^>]*class="failing">(.*?)</li>', page, re.S)
    assert len(failing) == 1 and f"refused: {log.failed_task}" in html.unescape(failing[0])
