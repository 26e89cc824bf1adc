"""The console's home page, Needs you (``/ui/``), and the job decisions every page posts
(``/ui/jobs/{id}/retry|cancel|resolve``, ``/ui/jobs/bulk``): one real failed run on the WHM
simulator, the other jobs made with the queue's own calls."""

from __future__ import annotations

import datetime
import html
from html.parser import HTMLParser
from urllib.parse import unquote

from fastapi.testclient import TestClient

from provisiond import api, lifecycle, queue
from provisiond.models import AuditEntry, Job, JobStatus, ProvisioningLog, Service, database, utcnow
from provisiond.ui import needs, render
from tests.conftest import WHM_TOKEN
from tests.helpers import hold, last_log, settle

SCRIPT = "<script>alert(1)</script>"


class Rows(HTMLParser):
    """The rows of one table (``table#ID``): for each ``tr[data-job]``, its cells' text by class,
    the actions of its forms and its links."""

    def __init__(self, table: str):
        super().__init__()
        self.table, self.inside, self.rows = table, False, {}
        self.row: dict | None = None
        self.cell: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.inside = attrs.get("id") == self.table
        elif self.inside and tag == "tr" and "data-job" in attrs:
            self.row = self.rows[int(attrs["data-job"])] = {"forms": [], "links": []}
        elif self.row is not None and tag == "td":
            self.cell = attrs.get("class")
            if self.cell:
                self.row[self.cell] = ""
        elif self.row is not None and tag == "form":
            self.row["forms"].append(attrs["action"])
        elif self.row is not None and tag == "a":
            self.row["links"].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif tag == "tr":
            self.row = None
        elif tag == "table":
            self.inside = False

    def handle_data(self, data):
        if self.row is not None and self.cell:
            self.row[self.cell] += data


def rows(text: str, table: str = "needs") -> dict[int, dict]:
    parser = Rows(table)
    parser.feed(text)
    return {job: {k: v.strip() if isinstance(v, str) else v for k, v in cells.items()}
            for job, cells in parser.rows.items()}


def flash(console) -> str:
    """The message the last action left, as the next page shows it."""
    page = console.get("/ui/").text
    start = page.find('class="flash"')
    return html.unescape(page[page.index(">", start) + 1:page.index("</p>", start)]) if start >= 0 else ""


def order(registry, vault, name: str) -> Job:
    return lifecycle.order(registry, vault, product="starter", domain=f"{name}.example.com",
                           email=f"me@{name}.example.com", ref=name.upper())[1]


def failed_copy(job: Job, name: str, registry, vault, **log_changes) -> Job:
    """Another failed job like ``job``, its latest log row copied with ``log_changes``."""
    other = order(registry, vault, name)
    Job.update(status=JobStatus.FAILED.value, attempts=1, last_error=job.last_error,
               finished_at=utcnow()).where(Job.id == other.id).execute()
    row = {f: getattr(last_log(job), f) for f in ("attempt", "server", "panel", "action", "status", "rc",
                                                   "started_at", "finished_at", "duration", "failed_task",
                                                   "message", "panel_answer")}
    ProvisioningLog.create(**(row | {"job": other.id} | log_changes))
    return Job.get_by_id(other.id)


def test_without_a_session_pages_and_actions_send_to_sign_in(database, settings, vault):
    with TestClient(api.create_app(settings, vault), follow_redirects=False) as client:
        answer = client.get("/ui/?page=2")
        assert answer.status_code == 303
        assert unquote(answer.headers["location"]) == "/ui/login?next=/ui/?page=2"
        answer = client.post("/ui/jobs/1/retry", data={"csrf": "x"})
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_a_failed_run_shows_its_task_and_the_panels_answer_escaped_and_retry_queues_it(
        cpanel_setup, console, registry, vault, whm, worker):
    job = order(registry, vault, "broken")
    whm.fail_next(1, status=403, body=f"Access denied {SCRIPT}\nsecond line".encode())
    job = settle(worker, job)
    assert job.status == "failed", job.last_error
    log = last_log(job)
    assert log.failed_task and SCRIPT in log.panel_answer

    page = console.get("/ui/")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    row = rows(page.text)[job.id]
    assert row["ref"] == "BROKEN" and "/ui/services/BROKEN" in row["links"]
    assert f"/ui/jobs/{job.id}" in row["links"]
    assert (row["server"], row["action"]) == ("whm1", "create")
    assert row["failed-task"] == log.failed_task == "Look the account up (accountsummary)"
    assert SCRIPT in row["answer"] and "second line" not in row["answer"]
    assert row["waiting"] == "just now" or row["waiting"].endswith(" ago")
    assert f"/ui/jobs/{job.id}/retry" in row["forms"]
    assert f"/ui/jobs/{job.id}/cancel" not in row["forms"]  # a failed job has nothing left to cancel
    # The panel's answer is text on the page, never markup; no secret is on the page.
    assert SCRIPT not in page.text and html.escape(SCRIPT) in page.text
    password = vault.decrypt(Service.get_by_id(job.service_id).password)
    assert WHM_TOKEN not in page.text and password not in page.text
    assert "<td>whm1</td><td>1</td>" in page.text
    assert "<td>cpanel</td><td>1</td>" in page.text

    # Without the session's CSRF value, or with another, the form is refused and nothing moves.
    assert console.post(f"/ui/jobs/{job.id}/retry", csrf=False).status_code == 403
    assert console.post(f"/ui/jobs/{job.id}/retry", {"csrf": "forged"}).status_code == 403
    assert console.post("/ui/jobs/bulk", {"csrf": "forged", "job": [str(job.id)], "do": "retry"}).status_code == 403
    assert Job.get_by_id(job.id).status == "failed"
    assert not AuditEntry.select().where(AuditEntry.subject == f"job:{job.id}").exists()

    answer = console.post(f"/ui/jobs/{job.id}/retry", {"next": "/ui/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    assert Job.get_by_id(job.id).status == "queued"
    entry = AuditEntry.get(AuditEntry.subject == f"job:{job.id}")   # who decided, for the timeline
    assert (entry.actor, entry.action) == ("ui:ops", "job.retry")
    page = console.get("/ui/").text
    assert f"Job {job.id} queued again" in page and "Nothing needs you." in page
    assert WHM_TOKEN not in page and password not in page


def test_bulk_retry_acts_on_each_job_and_names_the_one_it_refused(cpanel_setup, console, registry, vault):
    held = hold(order(registry, vault, "held"))
    waiting = order(registry, vault, "waiting")
    held_row = rows(console.get("/ui/").text)[held.id]   # a held job may be cancelled or resolved
    assert f"/ui/jobs/{held.id}/cancel" in held_row["forms"] and f"/ui/jobs/{held.id}#resolve" in held_row["links"]
    answer = console.post("/ui/jobs/bulk", {"job": [str(held.id), str(waiting.id), "999999"], "do": "retry",
                                            "next": "/ui/?page=1"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/?page=1"
    assert Job.get_by_id(held.id).status == "queued" and Job.get_by_id(waiting.id).status == "queued"
    assert flash(console) == (f"1 job queued again; not retried: job {waiting.id} is queued, "
                              "job 999999 does not exist")

    answer = console.post("/ui/jobs/bulk", {"job": [str(held.id), "7x"], "do": "cancel"})
    assert flash(console) == "Job: '7x' is not a job number; nothing was done."
    assert Job.get_by_id(held.id).status == "queued"
    console.post("/ui/jobs/bulk", {"do": "cancel"})
    assert flash(console) == "No job was ticked; nothing was done."
    console.post("/ui/jobs/bulk", {"job": [str(held.id)], "do": "delete"})
    assert flash(console) == "Do: choose retry, cancel or resolve; nothing was done."

    console.post("/ui/jobs/bulk", {"job": [str(held.id), str(waiting.id)], "do": "cancel"})
    assert flash(console) == "2 jobs cancelled"
    assert {Job.get_by_id(j.id).status for j in (held, waiting)} == {"cancelled"}

    # A running job is asked to stop; its run ends it.
    running = order(registry, vault, "running")
    [claimed] = queue.claim("runner", utcnow(), 1, 60, server_id=running.server_id, action="create")
    assert claimed.id == running.id
    console.post(f"/ui/jobs/{running.id}/cancel")
    assert flash(console) == f"Job {running.id} asked to stop (it is running)"
    assert Job.get_by_id(running.id).cancel_requested and Job.get_by_id(running.id).status == "running"


def test_resolve_ends_a_held_job_audited_and_a_wrong_state_is_a_message(cpanel_setup, console, registry, vault):
    job = hold(order(registry, vault, "held"))
    assert rows(console.get("/ui/").text)[job.id]["ref"] == "HELD"

    console.post(f"/ui/jobs/{job.id}/resolve", {"outcome": "maybe"})
    assert flash(console) == "Outcome: choose succeeded or failed; nothing was done."
    console.post(f"/ui/jobs/{job.id}/resolve", {"outcome": "succeeded", "note": "x" * 3000})
    assert flash(console).startswith("Note: must be at most")
    assert Job.get_by_id(job.id).status == "needs_attention"

    answer = console.post(f"/ui/jobs/{job.id}/resolve", {"outcome": "succeeded", "note": "account is there",
                                                         "next": f"/ui/jobs/{job.id}"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/jobs/{job.id}"
    assert Job.get_by_id(job.id).status == "succeeded"
    assert Service.get_by_id(job.service_id).status == "active"
    entry = AuditEntry.get(AuditEntry.subject == f"job:{job.id}")
    assert (entry.actor, entry.action, entry.detail["note"]) == ("ui:ops", "job.resolve", "account is there")
    page = console.get("/ui/").text
    assert f"Job {job.id} resolved as succeeded" in page and "Nothing needs you." in page

    # The same decision again, a cancel of a finished job, an unknown job: a message, not a 500;
    # and never a redirect off the console.
    answer = console.post(f"/ui/jobs/{job.id}/resolve", {"outcome": "failed", "next": "https://evil.example/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    assert flash(console) == (f"Job {job.id} is succeeded; only needs_attention jobs can be resolved")
    console.post(f"/ui/jobs/{job.id}/cancel", {"next": "//evil.example/"})
    assert flash(console) == f"Job {job.id} is succeeded; only queued or running jobs can be cancelled"
    console.post("/ui/jobs/424242/retry")
    assert flash(console) == "Job 424242 does not exist"


def test_the_page_shows_each_jobs_latest_attempt_counts_and_the_scheduled_jobs(
        cpanel_setup, console, registry, vault, monkeypatch):
    assert "Nothing needs you." in console.get("/ui/").text
    first = hold(order(registry, vault, "first"))
    ProvisioningLog.create(job=first.id, attempt=1, server=first.server_id, panel="cpanel", action="create",
                           status="failed", started_at=utcnow(), finished_at=utcnow(), duration=1.0,
                           failed_task="An old task", panel_answer="an old answer")
    ProvisioningLog.create(job=first.id, attempt=2, server=first.server_id, panel="cpanel", action="create",
                           status="needs_attention", started_at=utcnow(), finished_at=utcnow(), duration=1.0,
                           failed_task="Create the account (createacct)",
                           panel_answer='{"metadata": {"reason": "Timed out", "result": 0}}')
    row = rows(console.get("/ui/").text)[first.id]
    assert row["failed-task"] == "Create the account (createacct)"
    assert row["answer"] == html.unescape(render.first_line('{"metadata": {"reason": "Timed out", "result": 0}}'))

    # A page costs the same number of queries with two jobs as with six.
    second = failed_copy(first, "second", registry, vault)
    statements = Statements(monkeypatch)
    few = statements.of(lambda: console.get("/ui/"))
    assert few > 3
    for name in ("third", "fourth", "fifth", "sixth"):
        failed_copy(first, name, registry, vault)
    assert statements.of(lambda: console.get("/ui/")) == few
    page = console.get("/ui/").text
    assert list(rows(page)) == sorted(rows(page), reverse=True)  # the latest stopped first
    assert "<td>whm1</td><td>6</td>" in page and "<td>cpanel</td><td>6</td>" in page
    assert rows(page)[second.id]["answer"] == row["answer"]
    monkeypatch.setattr(needs, "PAGE_SIZE", 4)
    one, two = console.get("/ui/").text, console.get("/ui/?page=2").text
    assert len(rows(one)) == 4 and 'href="/ui/?page=2"' in one and "page 1 of 2" in one
    assert sorted([*rows(one), *rows(two)]) == sorted(rows(page)) and 'href="/ui/?page=1"' in two
    assert "past the last one (2)" in console.get("/ui/?page=3").text

    # A job backing off after a transient failure is listed with its next attempt; cancel it there.
    later = order(registry, vault, "later")
    due = utcnow() + datetime.timedelta(minutes=5)
    Job.update(attempts=2, run_after=due, last_error="HTTP 503 from the panel\nmore").where(Job.id == later.id).execute()
    scheduled = rows(console.get("/ui/").text, "scheduled")
    assert list(scheduled) == [later.id]
    assert scheduled[later.id]["last-error"] == "HTTP 503 from the panel"
    assert render.when(due) in scheduled[later.id]["next-attempt"] and "in 4 min" in scheduled[later.id]["next-attempt"]
    assert f"/ui/jobs/{later.id}/cancel" in scheduled[later.id]["forms"]
    console.post(f"/ui/jobs/{later.id}/cancel")
    assert flash(console) == f"Job {later.id} cancelled"
    assert Job.get_by_id(later.id).status == "cancelled"
    assert "No job is waiting for a later attempt." in console.get("/ui/").text


class Statements:
    """Counts the SQL statements run, by any thread, while a test lasts."""

    def __init__(self, monkeypatch):
        self.n = 0
        real = type(database.obj).execute_sql

        def counting(db, sql, *args, **kwargs):
            self.n += 1
            return real(db, sql, *args, **kwargs)
        monkeypatch.setattr(type(database.obj), "execute_sql", counting)

    def of(self, call) -> int:
        before = self.n
        call()
        return self.n - before


def test_bulk_resolve_ends_each_held_job_as_the_outcome_chosen_audited(cpanel_setup, console, registry, vault):
    first, second = hold(order(registry, vault, "first")), hold(order(registry, vault, "second"))
    waiting = order(registry, vault, "waiting")
    ticked = [str(first.id), str(second.id), str(waiting.id)]
    console.post("/ui/jobs/bulk", {"job": ticked, "do": "resolve"})
    assert flash(console) == "Outcome: choose succeeded or failed; nothing was done."
    assert Job.get_by_id(first.id).status == "needs_attention"

    console.post("/ui/jobs/bulk", {"job": ticked, "do": "resolve", "outcome": "failed", "note": "not on the panel"})
    assert flash(console).startswith(f"2 jobs resolved as failed; not resolved: job {waiting.id} ")
    assert {Job.get_by_id(j.id).status for j in (first, second)} == {"failed"}
    assert Job.get_by_id(waiting.id).status == "queued"
    entries = AuditEntry.select().where(AuditEntry.action == "job.resolve").order_by(AuditEntry.id)
    assert [(e.actor, e.subject, e.detail.get("note")) for e in entries] == [
        ("ui:ops", f"job:{first.id}", "not on the panel"), ("ui:ops", f"job:{second.id}", "not on the panel")]
