"""The HTTP API, against the running app (and once over real HTTP), on the WHM simulator."""

from __future__ import annotations

import contextlib
import datetime
import os
import select
import signal
import socket
import threading
import time

import psycopg2
import pytest
import requests
from fastapi.testclient import TestClient

from provisiond import api, audit, health, queue, tokens
from provisiond import db as dbmod
from provisiond.errors import ValidationError
from provisiond.models import ApiToken, Job, Service, utcnow
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN
from tests.helpers import free_port, serving

ORDER = {"product": "starter", "domain": "shop.example.com", "email": "owner@shop.example.com",
         "ref": "INV-1"}


class Api:
    """A TestClient with the bearer token; keeps every answer to look for secrets in."""

    def __init__(self, client: TestClient, token: str):
        self.client = client
        self.token = token
        self.answers: list[str] = []

    def call(self, method: str, path: str, token: str | None = "default", **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.answers.append(f"{response.headers}\n{response.text}")
        return response

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.call("POST", path, **kwargs)


@pytest.fixture
def client(cpanel_setup, settings, vault):
    # An admin token: these tests call admin routes too (retry, cancel, resolve, reveal, close);
    # what a billing token may not do is in test_tokens.py.
    token = tokens.create("billing", scope="admin")
    with TestClient(api.create_app(settings, vault)) as test_client:
        calls = Api(test_client, token)
        yield calls
    # No answer of any test carries a secret: the server's API token, a service password or
    # the bearer token itself.
    secrets = [WHM_TOKEN, token, *(vault.decrypt(s.password) for s in Service.select() if s.password)]
    for answer in calls.answers:
        for secret in secrets:
            assert secret not in answer


@pytest.fixture
def woken(database, settings):
    """woken() → whether the daemons were woken since the last call: the wake file beside a
    SQLite database was touched, or a NOTIFY arrived on PostgreSQL."""
    path = dbmod.wake_file(database)
    if path is not None:
        path.unlink(missing_ok=True)

        def touched(wait: float = 0.0) -> bool:
            found = path.exists()
            path.unlink(missing_ok=True)
            return found
        yield touched
        return
    listener = psycopg2.connect(settings.database_url)
    listener.autocommit = True
    listener.cursor().execute(f"LISTEN {dbmod.WAKE_CHANNEL}")

    def notified(wait: float = 2.0) -> bool:
        select.select([listener], [], [], wait)
        listener.poll()
        found = bool(listener.notifies)
        listener.notifies.clear()
        return found
    yield notified
    listener.close()


@pytest.fixture
def worker(settings, vault):
    w = Worker(settings, vault, owner="api-test-worker")
    yield w
    w.shutdown()


def order(client: Api, **changes) -> dict:
    response = client.post("/v1/orders", json=ORDER | changes)
    assert response.status_code == 201, response.text
    return response.json()


def active_services(client: Api, worker: Worker, *refs: str) -> list[dict]:
    for ref in refs:
        order(client, ref=ref, domain=f"{ref.lower()}.example.com")
    worker.tick(wait=True)
    services = [client.get(f"/v1/services/{ref}").json() for ref in refs]
    assert [s["status"] for s in services] == ["active"] * len(refs), services
    return services


def run(worker: Worker, client: Api, job: dict) -> dict:
    worker.tick(wait=True)
    return client.get(f"/v1/jobs/{job['id']}").json()


# -- health ----------------------------------------------------------------------------------

def test_health_is_503_naming_why_until_a_daemon_ticked_within_three_tick_intervals(client, settings):
    answer = client.get("/v1/health", token=None)
    assert answer.status_code == 503 and "no daemon has ticked yet" in answer.json()["detail"]

    three_ticks = datetime.timedelta(seconds=3 * settings.tick_seconds)
    health.beat("a-daemon", utcnow() - three_ticks - datetime.timedelta(seconds=5))
    answer = client.get("/v1/health", token=None)
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("no daemon has ticked for 6 min")

    health.beat("a-daemon", utcnow() - three_ticks + datetime.timedelta(seconds=30))
    assert client.get("/v1/health", token=None).status_code == 200


def test_health_is_503_when_the_database_cannot_be_reached(client):
    import peewee as pw
    from provisiond.models import database as proxy
    health.beat("a-daemon", utcnow())
    working = proxy.obj
    proxy.initialize(pw.PostgresqlDatabase("gone", host="127.0.0.1", port=free_port(), connect_timeout=2))
    try:
        answer = client.get("/v1/health", token=None)
    finally:
        proxy.initialize(working)
    assert answer.status_code == 503 and answer.json() == {"detail": "the database cannot be reached"}
    assert client.get("/v1/health", token=None).status_code == 200


# -- auth and documents ----------------------------------------------------------------------

def test_health_and_openapi_need_no_token(client):
    health.beat("a-daemon", utcnow())
    assert client.get("/v1/health", token=None).json() == {"status": "ok"}
    document = client.get("/openapi.json", token=None).json()
    assert {"/v1/orders", "/v1/services/{service}/payments", "/v1/jobs", "/v1/queue/stats"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer pvd_not-a-token"},
    {"Authorization": "Basic YmlsbGluZzpzZWNyZXQ="},
    {"Authorization": "Bearer"},
])
def test_requests_without_a_valid_token_are_401(client, headers):
    for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/orders"), ("GET", "/v1/services/INV-1"),
                         ("GET", "/v1/queue/stats")):
        response = client.call(method, path, token=None, headers=dict(headers), json=ORDER)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert Service.select().count() == 0


def test_a_revoked_token_is_refused_and_use_is_recorded(client):
    other = tokens.create("reseller")
    assert client.get("/v1/queue/stats", token=other).status_code == 200
    assert ApiToken.get(ApiToken.name == "reseller").last_used_at is not None
    tokens.revoke("reseller")
    response = client.get("/v1/queue/stats", token=other)
    assert response.status_code == 401 and "invalid_token" in response.headers["WWW-Authenticate"]
    assert client.get("/v1/queue/stats").status_code == 200


def test_tokens_are_stored_hashed_and_names_are_unique(client):
    token = tokens.create("stored")
    row = ApiToken.get(ApiToken.name == "stored")
    assert token.startswith("pvd_") and token not in row.token_hash and len(row.token_hash) == 64
    with pytest.raises(ValidationError) as raised:
        tokens.create("stored")
    assert raised.value.field == "name"


# -- orders and services ---------------------------------------------------------------------

def test_order_is_201_queues_the_job_and_wakes_the_daemon(client, worker, woken):
    answer = order(client, paid_until="2030-01-31")
    service, job = answer["service"], answer["job"]
    assert service["status"] == "pending" and service["server"] == "whm1" and service["username"] == "shop"
    assert service["paid_until"] == "2030-01-31" and "password" not in service
    for moment in (service["created_at"], job["run_after"], job["created_at"]):  # ISO 8601, zone UTC
        assert datetime.datetime.fromisoformat(moment).utcoffset() == datetime.timedelta(0), moment
    assert job["action"] == "create" and job["status"] == "queued"
    assert Job.get_by_id(job["id"]).service_id == service["id"]
    assert woken()

    again = client.post("/v1/orders", json=ORDER)  # the billing system retries: same service
    assert again.status_code == 200 and again.json()["service"]["id"] == service["id"]
    assert Service.select().count() == 1

    assert run(worker, client, job)["status"] == "succeeded"
    shown = client.get("/v1/services/INV-1").json()
    assert shown["status"] == "active" and shown["remote_id"] == "shop"
    assert [(j["action"], j["status"]) for j in shown["jobs"]] == [("create", "succeeded")]
    assert client.get("/v1/services/INV-1").json()["id"] == service["id"]


def test_an_order_replayed_with_other_data_is_409_naming_the_fields(client):
    first = order(client)["service"]
    again = client.post("/v1/orders", json=ORDER)
    assert again.status_code == 200 and again.json()["service"]["id"] == first["id"]
    for changes, named in (({"domain": "other.example.com"}, "domain"),
                           ({"email": "x@other.example.com", "product": "starter"}, "email"),
                           ({"domain": "other.example.com", "username": "other"}, "domain, username")):
        refused = client.post("/v1/orders", json=ORDER | changes)
        assert refused.status_code == 409, refused.text
        assert f"order INV-1 is known with another {named};" in refused.json()["detail"]
    assert Service.select().count() == Job.select().count() == 1
    assert Service.get().domain == "shop.example.com"


@pytest.mark.parametrize("changes, field", [
    ({"domain": "bad domain.com"}, "domain"),
    ({"domain": "{{ lookup('pipe','id') }}.com"}, "domain"),
    ({"email": "nope"}, "email"),
    ({"product": "nope"}, "product"),
    ({"product": "bad\x00name"}, "product"),
    ({"username": "root"}, "username"),
    ({"ref": "bad ref"}, "ref"),
    ({"ref": "INV\x00-1"}, "ref"),
    ({"ref": "id:7"}, "ref"),  # the CLI's way to write an id is never a reference
    ({"domain": 42}, "domain"),
    ({"paid_until": "next tuesday"}, "paid_until"),
    ({"paid_until": "2030-02-30"}, "paid_until"),
    ({"paid_until": 1900000000}, "paid_until"),
    ({"surprise": True}, "surprise"),
    ({"email": None}, "email"),
])
def test_bad_order_is_422_naming_the_field_and_writes_nothing(client, woken, changes, field):
    body = {k: v for k, v in (ORDER | changes).items() if v is not None}
    response = client.post("/v1/orders", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert ["body", field] in [item["loc"] for item in detail]
    assert all(item["msg"] and item["type"] for item in detail)
    assert Service.select().count() == Job.select().count() == 0
    assert not woken(wait=0.2)


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/v1/services/INV-404", None),
    ("GET", "/v1/services/424242", None),
    ("GET", "/v1/services/99999999999999999999999", None),
    ("POST", "/v1/services/INV-404/suspend", {"reason": "abuse"}),
    ("POST", "/v1/services/INV-404/terminate", None),
    ("POST", "/v1/services/INV-404/payments", {"paid_until": "2030-01-01"}),
    ("GET", "/v1/jobs/424242", None),
    ("POST", "/v1/jobs/424242/retry", None),
    ("POST", "/v1/jobs/424242/cancel", None),
])
def test_unknown_service_or_job_is_404(client, method, path, body):
    response = client.call(method, path, json=body)
    assert response.status_code == 404, response.text
    assert "does not exist" in response.json()["detail"]


def test_the_api_addresses_services_by_ref_never_by_id(client):
    # WHMCS service ids are numbers: ref "2" gets id 1 and ref "1" gets id 2.
    first, second = (order(client, ref=ref, domain=f"n{ref}.example.com")["service"] for ref in ("2", "1"))
    assert (first["id"], second["id"]) == (1, 2)
    assert client.get("/v1/services/1").json()["ref"] == "1"
    paid = client.post("/v1/services/1/payments", json={"paid_until": "2031-01-31"})
    assert paid.status_code == 200 and paid.json()["service"]["ref"] == "1"
    assert Service.get(Service.ref == "1").paid_until == datetime.date(2031, 1, 31)
    assert Service.get(Service.ref == "2").paid_until is None
    third = order(client, ref="INV-3", domain="n3.example.com")["service"]
    assert client.get(f"/v1/services/{third['id']}").status_code == 404  # an id is no ref


def test_actions_in_the_wrong_state_are_409(client, worker):
    pending = order(client)
    response = client.post("/v1/services/INV-1/suspend", json={"reason": "admin"})
    assert response.status_code == 409 and "pending" in response.json()["detail"]
    run(worker, client, pending["job"])
    response = client.post("/v1/services/INV-1/unsuspend")
    assert response.status_code == 409 and "active" in response.json()["detail"]
    assert client.post(f"/v1/jobs/{pending['job']['id']}/retry").status_code == 409
    assert client.post(f"/v1/jobs/{pending['job']['id']}/cancel").status_code == 409
    response = client.post("/v1/services/INV-1/change-package", json={"package": "bad/package"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "package"]


def test_payment_unsuspends_an_overdue_suspension_but_not_an_admin_one(client, worker):
    active_services(client, worker, "INV-1", "INV-2")
    client.post("/v1/services/INV-1/suspend", json={"reason": "overdue"})
    client.post("/v1/services/INV-2/suspend", json={"reason": "admin"})
    worker.tick(wait=True)
    assert [client.get(f"/v1/services/{r}").json()["status_reason"] for r in ("INV-1", "INV-2")] == [
        "overdue", "admin"]

    today = utcnow().date()
    late = client.post("/v1/services/INV-1/payments",
                       json={"paid_until": str(today - datetime.timedelta(days=1))}).json()
    assert late["job"] is None and late["service"]["status"] == "suspended"

    paid = client.post("/v1/services/INV-1/payments", json={"paid_until": str(today + datetime.timedelta(days=30))})
    assert paid.status_code == 200
    assert paid.json()["job"]["action"] == "unsuspend"
    assert paid.json()["service"]["paid_until"] == str(today + datetime.timedelta(days=30))
    admin = client.post("/v1/services/INV-2/payments", json={"paid_until": "2099-12-31"}).json()
    assert admin["job"] is None and admin["service"]["paid_until"] == "2099-12-31"

    worker.tick(wait=True)
    assert client.get("/v1/services/INV-1").json()["status"] == "active"
    assert client.get("/v1/services/INV-2").json()["status"] == "suspended"
    assert client.post("/v1/services/INV-1/payments", json={"paid_until": "soon"}).json()["detail"][0]["loc"] == [
        "body", "paid_until"]


# -- jobs and the queue ----------------------------------------------------------------------

def test_cancel_and_retry_a_job(client, worker, woken):
    job = order(client)["job"]
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
    woken()
    retried = client.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    assert [(e.actor, e.action, e.detail) for e in audit.entries(f"job:{job['id']}")] == [
        ("api:billing", "job.retry", {"job_action": "create"})]  # the service was pending: no move
    assert woken()
    assert run(worker, client, job)["status"] == "succeeded"
    assert client.get("/v1/services/INV-1").json()["status"] == "active"


def test_queue_stats_and_the_failed_jobs_list(client):
    jobs = [order(client, ref=f"INV-{n}", domain=f"site{n}.example.com")["job"] for n in range(4)]
    client.post(f"/v1/jobs/{jobs[0]['id']}/cancel")
    now = utcnow()
    for claimed in queue.claim("test", now, 2, 60):  # a worker took two, the panel refused both
        queue.fail(claimed, now, "the panel said no")

    stats = client.get("/v1/queue/stats").json()
    assert stats["counts"] == {"queued": 1, "running": 0, "succeeded": 0, "failed": 2,
                               "cancelled": 1, "needs_attention": 0}
    assert stats["queued"] == 1 and stats["running"] == 0
    assert 0 <= stats["oldest_queued_age_seconds"] < 600

    failed = client.get("/v1/jobs", params={"status": "failed"}).json()
    assert failed["total"] == 2 and [j["id"] for j in failed["jobs"]] == [jobs[2]["id"], jobs[1]["id"]]
    assert all(j["last_error"] == "the panel said no" for j in failed["jobs"])
    first = client.get("/v1/jobs", params={"status": "failed", "limit": 1}).json()
    second = client.get("/v1/jobs", params={"status": "failed", "limit": 1, "offset": 1}).json()
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == [jobs[2]["id"], jobs[1]["id"]]
    assert client.get("/v1/jobs").json()["total"] == 4
    assert client.get("/v1/jobs", params={"status": "lost"}).status_code == 422
    assert client.get("/v1/jobs", params={"limit": 0}).status_code == 422


def test_actions_queue_their_jobs_and_no_secret_is_in_any_answer(client, worker, vault, whm):
    active_services(client, worker, "INV-1")
    job = client.post("/v1/services/INV-1/change-password")
    assert job.status_code == 202 and job.json()["action"] == "change_password"
    assert run(worker, client, job.json())["status"] == "succeeded"
    service = Service.get(Service.ref == "INV-1")
    password = vault.decrypt(service.password)
    assert whm.accounts[service.username].password == password  # the new one, in use

    queued = [client.post("/v1/services/INV-1/change-package", json={"package": "pro"}),
              client.post("/v1/services/INV-1/suspend", json={"reason": "abuse"}),
              client.post("/v1/services/INV-1/suspend"),  # reason admin by default
              client.post("/v1/services/INV-1/terminate")]
    assert [r.status_code for r in queued] == [202] * 4
    assert [(r.json()["action"], r.json()["params"]) for r in queued] == [
        ("change_package", {"package": "pro"}), ("suspend", {"reason": "abuse"}),
        ("suspend", {"reason": "admin"}), ("terminate", {})]

    for path in ("/v1/services/INV-1", f"/v1/jobs/{job.json()['id']}", "/v1/jobs",
                 "/v1/queue/stats", "/openapi.json"):
        text = client.get(path).text
        assert password not in text and WHM_TOKEN not in text and client.token not in text
    shown = client.get("/v1/services/INV-1")
    assert "password" not in shown.json() and "api_token" not in shown.text
    assert [j["status"] for j in shown.json()["jobs"]] == ["succeeded"] * 2 + ["queued"] * 4


def test_a_password_the_billing_system_chose_is_used_and_never_revealed(client, worker, vault, whm, caplog):
    caplog.set_level("DEBUG")
    chosen, changed = "Shop2026-spring", "Next2027-summer"
    refused = client.post("/v1/orders", json=ORDER | {"password": "short"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "password"]
    assert "short" not in refused.text and Service.select().count() == 0
    answer = order(client, password=chosen)
    assert chosen not in str(answer)
    assert run(worker, client, answer["job"])["status"] == "succeeded"
    service = Service.get(Service.ref == "INV-1")
    assert whm.accounts[service.username].password == chosen
    assert chosen not in service.password and vault.decrypt(service.password) == chosen  # encrypted
    hidden = client.get("/v1/services/INV-1/credentials")
    assert hidden.status_code == 409 and "chosen by the billing system" in hidden.json()["detail"]

    job = client.post("/v1/services/INV-1/change-password", json={"password": changed}).json()
    assert job["params"] == {"password": "given"}
    again = client.post("/v1/services/INV-1/change-password", json={"password": changed}).json()
    assert again["id"] == job["id"]  # the same request merged
    other = client.post("/v1/services/INV-1/change-password", json={"password": "Third2028-autumn"})
    assert other.status_code == 409 and "another chosen password queued" in other.json()["detail"]
    assert run(worker, client, job)["status"] == "succeeded"
    assert whm.accounts[service.username].password == changed
    assert client.get("/v1/services/INV-1/credentials").status_code == 409
    assert chosen not in caplog.text and changed not in caplog.text


def test_a_generated_password_is_revealed_once_per_change_and_audited(client, worker, whm):
    answer = order(client)
    assert run(worker, client, answer["job"])["status"] == "succeeded"
    shown = client.get("/v1/services/INV-1/credentials")
    client.answers.pop()  # the one answer that carries the password, on purpose
    assert shown.status_code == 200, shown.text
    assert shown.json()["password"] == whm.accounts["shop"].password and shown.json()["username"] == "shop"
    again = client.get("/v1/services/INV-1/credentials")
    assert again.status_code == 409 and "revealed already" in again.json()["detail"]
    assert [(e.actor, e.action) for e in audit.entries("service:INV-1")] == [
        ("api:billing", "service.reveal_password")]

    job = client.post("/v1/services/INV-1/change-password").json()
    assert run(worker, client, job)["status"] == "succeeded"
    renewed = client.get("/v1/services/INV-1/credentials")
    client.answers.pop()
    assert renewed.status_code == 200 and renewed.json()["password"] == whm.accounts["shop"].password
    assert renewed.json()["password"] != shown.json()["password"]
    assert len(audit.entries("service:INV-1")) == 2


# -- over real HTTP --------------------------------------------------------------------------

def test_an_order_over_real_http(cpanel_setup, settings, vault, woken):
    token = tokens.create("billing")
    assert api.build_server(settings, vault=vault).config.host == "127.0.0.1"  # loopback unless told
    with serving(settings, vault) as port:
        base = f"http://127.0.0.1:{port}"
        assert requests.post(f"{base}/v1/orders", json=ORDER, timeout=10).status_code == 401
        response = requests.post(f"{base}/v1/orders", json=ORDER, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201, response.text
        job = response.json()["job"]
        shown = requests.get(f"{base}/v1/jobs/{job['id']}", timeout=10,
                             headers={"Authorization": f"Bearer {token}"}).json()
        assert shown["status"] == "queued" and shown["service"] == "INV-1"
        assert woken()


def test_sigterm_stops_the_server_and_returns_to_the_caller(database, settings, vault):
    """`run --api` stops the daemon after the API returns: SIGTERM must not end the process."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    server = api.build_server(settings, port=free_port(), vault=vault)
    health.beat("a-daemon", utcnow())
    before = signal.getsignal(signal.SIGTERM)
    answers = []

    def client():
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        answers.append(requests.get(f"http://127.0.0.1:{server.config.port}/v1/health", timeout=5).json())
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=client, daemon=True)
    helper.start()
    api.run_server(server)  # returns once uvicorn has shut down
    helper.join(5)
    assert answers == [{"status": "ok"}]
    assert signal.getsignal(signal.SIGTERM) is before


def test_service_actions_declared_by_the_panel(cpanel_setup, settings, vault, whm):
    from fastapi.testclient import TestClient
    from provisiond import api, tokens
    from provisiond.worker import Worker
    token = tokens.create("actions-test")
    client = TestClient(api.create_app(settings, vault), headers={"Authorization": f"Bearer {token}"})
    made = client.post("/v1/orders", json={"product": "starter", "domain": "apiact.example.com",
                                           "email": "me@apiact.example.com", "ref": "API-ACT"})
    assert made.status_code == 201
    assert client.post("/v1/services/API-ACT/actions/login_link").status_code == 409  # pending
    worker = Worker(settings, vault)
    worker.tick(wait=True)
    worker.shutdown()
    link = client.post("/v1/services/API-ACT/actions/login_link", json={"audience": "client"})
    assert link.status_code == 200 and "/cpsess" in link.json()["url"]
    refused = client.post("/v1/services/API-ACT/actions/login_link", json={"params": {"x": 1}})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "params.x"
    assert client.post("/v1/services/API-ACT/actions/nope").status_code == 422


def test_a_payment_earlier_than_the_current_date_is_a_conflict_unless_a_correction(client):
    from provisiond import audit
    order(client, paid_until="2027-01-01")
    refused = client.post("/v1/services/INV-1/payments", json={"paid_until": "2026-01-01"})
    assert refused.status_code == 409
    assert all(part in refused.json()["detail"] for part in ("paid_until", "2026-01-01", "2027-01-01"))
    assert client.get("/v1/services/INV-1").json()["paid_until"] == "2027-01-01"
    corrected = client.post("/v1/services/INV-1/payments", json={"paid_until": "2026-01-01", "correct": True})
    assert corrected.status_code == 200 and corrected.json()["service"]["paid_until"] == "2026-01-01"
    [entry] = audit.entries("service:INV-1")
    assert (entry.actor, entry.action) == ("api:billing", "payment.correct")


def _status_line(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n" not in answer:
        data = sock.recv(4096)
        if not data:
            break
        answer += data
    return answer.split(b"\r\n", 1)[0]


HEAD = b"POST /v1/orders HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"


def test_a_body_over_1_mib_is_refused_before_it_is_read(database, settings, vault):
    """An unauthenticated 300 MB POST took the API to 1 GB: the body is refused, unread."""
    with serving(settings, vault) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(HEAD + b"Content-Length: 314572800\r\n\r\n")  # not one byte of it follows
            assert _status_line(sock) == b"HTTP/1.1 413 Request Entity Too Large"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * 65536
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for _ in range(17):  # 1 MiB + 64 KiB and no last chunk: only a counting server answers
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            assert _status_line(sock) == b"HTTP/1.1 413 Request Entity Too Large"
        small = requests.post(f"http://127.0.0.1:{port}/v1/orders", json=ORDER, timeout=10)
        assert small.status_code == 401  # a normal body still reaches the token check


# -- resolve and close -------------------------------------------------------------------------------

def test_resolve_a_held_job_and_close_a_cancelled_order(client):
    from provisiond import audit
    from tests.helpers import hold
    job = order(client)["job"]
    assert client.post(f"/v1/jobs/{job['id']}/resolve", json={"outcome": "succeeded"}).status_code == 409
    hold(Job.get_by_id(job["id"]))
    bad = client.post(f"/v1/jobs/{job['id']}/resolve", json={"outcome": "maybe"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "outcome"]
    done = client.post(f"/v1/jobs/{job['id']}/resolve", json={"outcome": "succeeded", "note": "seen in WHM"})
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    assert client.get("/v1/services/INV-1").json()["status"] == "active"
    assert [(e.actor, e.detail["note"]) for e in audit.entries(f"job:{job['id']}")] == [("api:billing", "seen in WHM")]
    assert client.post("/v1/services/INV-1/close").status_code == 409   # it holds an account now

    other = order(client, ref="INV-2", domain="gone.example.com")
    client.post(f"/v1/jobs/{other['job']['id']}/cancel")
    closed = client.post("/v1/services/INV-2/close")
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["account_may_exist"]) == ("closed", False)
    assert [e.actor for e in audit.entries("service:INV-2")] == ["api:billing"]
