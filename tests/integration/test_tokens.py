"""API token scopes, the token listing (CLI and API), last use, and migration 12 (tokens made
before scopes keep working as admin tokens)."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from fastapi.testclient import TestClient
from playhouse.migrate import SchemaMigrator, migrate

from provisiond import api, db as dbmod, tokens
from provisiond.errors import ValidationError
from provisiond.models import ApiToken, Job, Service, utcnow

ORDER = {"product": "starter", "domain": "shop.example.com", "email": "owner@shop.example.com",
         "ref": "INV-1"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(cpanel_setup, settings, vault):
    with TestClient(api.create_app(settings, vault)) as client:
        yield client


def assert_insufficient_scope(response, token_name: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="admin"'
    detail = response.json()["detail"]
    assert "scope admin" in detail and f"token {token_name} has scope billing" in detail


def test_a_billing_token_may_order_and_pay_but_not_use_admin_routes(app):
    billing = tokens.create("whmcs")  # the default scope
    assert ApiToken.get(ApiToken.name == "whmcs").scope == "billing"
    ordered = app.post("/v1/orders", json=ORDER, headers=bearer(billing))
    assert ordered.status_code == 201, ordered.text
    job_id = ordered.json()["job"]["id"]
    for method, path in (("GET", "/v1/services/INV-1"), ("GET", "/v1/jobs"), ("GET", f"/v1/jobs/{job_id}"),
                         ("GET", "/v1/queue/stats")):
        assert app.request(method, path, headers=bearer(billing)).status_code == 200, path
    paid = app.post("/v1/services/INV-1/payments", json={"paid_until": "2031-01-31"}, headers=bearer(billing))
    assert paid.status_code == 200, paid.text

    for method, path, body in (("POST", f"/v1/jobs/{job_id}/cancel", None),
                               ("POST", f"/v1/jobs/{job_id}/retry", None),
                               ("POST", f"/v1/jobs/{job_id}/resolve", {"outcome": "failed"}),
                               ("GET", "/v1/services/INV-1/credentials", None),
                               ("POST", "/v1/services/INV-1/close", None),
                               ("GET", "/v1/tokens", None)):
        assert_insufficient_scope(app.request(method, path, json=body, headers=bearer(billing)), "whmcs")
    # Refused before anything was done: the create job is still queued, the service pending.
    assert Job.get_by_id(job_id).status == "queued"
    assert Service.get(Service.ref == "INV-1").status == "pending"


def test_an_admin_token_may_use_admin_routes(app):
    admin = tokens.create("ops", scope="admin")
    job_id = app.post("/v1/orders", json=ORDER, headers=bearer(admin)).json()["job"]["id"]
    cancelled = app.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(admin))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    closed = app.post("/v1/services/INV-1/close", headers=bearer(admin))
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    listed = app.get("/v1/tokens", headers=bearer(admin))
    assert listed.status_code == 200
    assert [(t["name"], t["scope"], t["revoked"]) for t in listed.json()] == [("ops", "admin", False)]


def test_listings_never_show_a_token_or_its_hash(app, run):
    admin = tokens.create("ops", scope="admin")
    billing = tokens.create("whmcs")
    tokens.revoke("whmcs")
    secrets = [admin, billing, *(hashlib.sha256(t.encode()).hexdigest() for t in (admin, billing))]
    answer = app.get("/v1/tokens", headers=bearer(admin))
    code, text, _ = run("token", "list")
    json_code, as_json, _ = run("token", "list", "--json")
    assert answer.status_code == 200 and code == json_code == 0
    for shown in (answer.text, str(answer.headers), text, as_json):
        for secret in secrets:
            assert secret not in shown
    rows = json.loads(as_json)
    assert [r["name"] for r in rows] == [r["name"] for r in answer.json()]
    assert [(r["name"], r["scope"], r["revoked"]) for r in rows] == [("ops", "admin", False),
                                                                     ("whmcs", "billing", True)]
    assert set(rows[0]) == {"name", "scope", "created_at", "last_used_at", "revoked"}
    assert rows[0]["last_used_at"] is not None and rows[1]["last_used_at"] is None
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "SCOPE", "CREATED_AT", "LAST_USED_AT", "REVOKED"]
    assert lines[1].startswith("ops") and "admin" in lines[1] and lines[2].split()[-1] == "yes"


def test_token_create_takes_a_scope_and_refuses_an_unknown_one(database, run, capsys):
    assert run("init")[0] == 0
    code, out, _ = run("token", "create", "whmcs", "--json")
    assert code == 0 and json.loads(out)["scope"] == "billing"
    code, out, _ = run("token", "create", "ops", "--scope", "admin")
    assert code == 0 and "scope admin" in out
    assert {t.name: t.scope for t in ApiToken.select()} == {"whmcs": "billing", "ops": "admin"}
    with pytest.raises(SystemExit) as refused:
        run("token", "create", "root", "--scope", "root")
    assert refused.value.code == 2 and "--scope" in capsys.readouterr().err
    with pytest.raises(ValidationError) as bad:
        tokens.create("root", scope="root")
    assert bad.value.field == "scope"
    assert not ApiToken.select().where(ApiToken.name == "root").exists()


def test_last_use_is_written_at_most_once_a_minute(app):
    token = tokens.create("whmcs")
    start = datetime.datetime(2020, 1, 1, 12, 0, 0)  # before the real clock, used below
    stored = lambda: ApiToken.get(ApiToken.name == "whmcs").last_used_at  # noqa: E731
    assert stored() is None
    tokens.verify(token, now=start)
    assert stored() == start
    tokens.verify(token, now=start + datetime.timedelta(seconds=59))
    assert stored() == start  # no write within the minute
    tokens.verify(token, now=start + datetime.timedelta(seconds=60))
    assert stored() == start + datetime.timedelta(seconds=60)
    # Through the API, with the real clock: the use shows in the listing.
    before = utcnow()
    assert app.get("/v1/queue/stats", headers=bearer(token)).status_code == 200
    assert before - datetime.timedelta(seconds=1) <= stored() <= utcnow()


def _schema_before_scopes(conn) -> None:
    """The database as the last release before migration 12 left it: no scope column."""
    table = ApiToken._meta.table_name
    migrate(SchemaMigrator.from_database(conn).drop_column(table, "scope"))
    before = max(v for v, _, _ in dbmod.MIGRATIONS if v < 12)
    conn.execute_sql(f"UPDATE setting SET value = {conn.param} WHERE key = 'schema_version'", (str(before),))


def test_migration_12_keeps_a_token_made_before_scopes_working_as_admin(cpanel_setup, database, settings,
                                                                         vault):
    _schema_before_scopes(database)
    assert "scope" not in {c.name for c in database.get_columns(ApiToken._meta.table_name)}
    old = "pvd_made-before-scopes-existed"
    values = ", ".join([database.param] * 4)
    database.execute_sql(f"INSERT INTO {ApiToken._meta.table_name} (name, token_hash, created_at, revoked) "
                         f"VALUES ({values})",
                         ("whmcs-2024", hashlib.sha256(old.encode()).hexdigest(), utcnow(), False))
    step = "12: api token scopes: tokens made before them are admin tokens"
    assert dbmod.pending_migrations(database)[0] == step

    assert step in dbmod.upgrade(database)
    assert dbmod.upgrade(database) == []
    assert ApiToken.get(ApiToken.name == "whmcs-2024").scope == "admin"
    new = tokens.create("whmcs-2026")
    with TestClient(api.create_app(settings, vault)) as client:
        assert client.post("/v1/orders", json=ORDER, headers=bearer(old)).status_code == 201
        assert client.get("/v1/tokens", headers=bearer(old)).status_code == 200  # as before: everything
        assert_insufficient_scope(client.get("/v1/tokens", headers=bearer(new)), "whmcs-2026")
