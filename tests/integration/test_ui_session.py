"""Signing in to the console: an admin token starts an HttpOnly, SameSite=Strict session; a
billing or unknown token does not; forms without the session's CSRF value change nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from provisiond import api, tokens
from provisiond.ui import session


@pytest.fixture
def app_client(database, settings, vault):
    with TestClient(api.create_app(settings, vault), follow_redirects=False) as client:
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_an_admin_token_starts_a_strict_http_only_session(app_client):
    token = tokens.create("ops", scope="admin")
    form = app_client.get("/ui/login?next=/ui/servers")
    assert form.status_code == 200 and 'name="token"' in form.text
    answer = app_client.post("/ui/login", data={"token": token, "next": "/ui/servers"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/servers"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(session.COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Max-Age=28800" in cookie and token not in cookie


@pytest.mark.parametrize("scope", ["billing", "unknown"])
def test_a_billing_or_unknown_token_is_refused_saying_why(app_client, scope):
    token = tokens.create("shop") if scope == "billing" else "pvd_not-a-token"
    answer = app_client.post("/ui/login", data={"token": token})
    assert answer.status_code == 401 and session.COOKIE not in answer.headers.get("set-cookie", "")
    assert ("needs an admin token" if scope == "billing" else "not valid") in answer.text


def test_sign_in_never_sends_to_another_site(app_client):
    token = tokens.create("ops", scope="admin")
    for target in ("https://evil.example/", "//evil.example/", "/v1/tokens", "/ui/\\evil"):
        answer = app_client.post("/ui/login", data={"token": token, "next": target})
        assert answer.headers["location"] == "/ui/"


def test_sign_out_needs_the_csrf_value_and_revoking_the_token_ends_the_session(app_client, vault):
    token = tokens.create("ops", scope="admin")
    app_client.post("/ui/login", data={"token": token})
    assert app_client.post("/ui/logout", data={}).status_code == 403
    assert app_client.post("/ui/logout", data={"csrf": "forged"}).status_code == 403
    cookie = app_client.cookies.get(session.COOKIE)
    assert session.read(vault, cookie) is not None
    tokens.revoke("ops")
    assert session.read(vault, cookie) is None
    assert session.read(vault, cookie[:-4] + "AAAA") is None


def test_a_session_ends_after_its_hours(database, vault):
    token = tokens.create("ops", scope="admin")
    row = tokens.verify(token)
    cookie, csrf = session.start(vault, row, now=1_000_000)
    assert session.read(vault, cookie, now=1_000_000 + 60)[1] == csrf
    assert session.read(vault, cookie, now=1_000_000 + session.SESSION_HOURS * 3600 + 1) is None


def test_console_pages_carry_a_strict_content_security_policy(app_client):
    answer = app_client.get("/ui/login")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    css = app_client.get("/ui/static/console.css")
    assert css.status_code == 200 and "--fg" in css.text


def test_the_console_fixture_signs_in_and_can_sign_out(console):
    assert console.csrf
    answer = console.post("/ui/logout")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    assert console.get("/ui/login").text.count("Signed out.") == 1


class CountingSlots:
    """The API's connection slots (``api.base._slots``), counting how many were taken."""

    def __init__(self, size: int):
        import threading
        self.semaphore, self.taken = threading.BoundedSemaphore(size), 0

    def acquire(self, timeout=None):
        self.taken += 1
        return self.semaphore.acquire(timeout=timeout)

    def release(self):
        self.semaphore.release()


@pytest.mark.parametrize("path", ["/ui/", "/ui/servers", "/ui/overview", "/ui/services"])
def test_a_page_takes_one_database_connection_for_its_session_check_and_itself(console, monkeypatch, path):
    from provisiond.api import base
    slots = CountingSlots(1)  # one slot: the page must need no second one
    monkeypatch.setattr(base, "_slots", slots)
    assert console.get(path).status_code == 200
    assert slots.taken == 1


def test_a_revoked_token_is_sent_to_sign_in_before_a_page_reads_or_acts(console, cpanel_setup):
    from provisiond.models import Job, Service
    server, product = cpanel_setup
    service = Service.create(ref="INV-1", product=product, server=server, domain="one.example.com",
                             email="me@one.example.com", package="basic", status="failed")
    job = Job.create(service=service, server=server, action="create", status="failed")
    tokens.revoke("ops")
    for path in ("/ui/servers", f"/ui/jobs/{job.id}", "/ui/services/INV-1"):
        answer = console.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next=")
    retried = console.post(f"/ui/jobs/{job.id}/retry")  # with the session's CSRF value
    assert retried.status_code == 303 and retried.headers["location"].startswith("/ui/login")
    assert Job.get_by_id(job.id).status == "failed"
