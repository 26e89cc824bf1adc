"""The admin routes of servers, groups and products, against the app on the WHM simulator, on
SQLite and PostgreSQL. No answer carries a server's secret."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from provisiond import api, audit, catalog, lifecycle, tokens
from provisiond.models import AuditEntry, Product, Server, ServerGroup, Service
from tests.conftest import WHM_TOKEN


class Admin:
    """A TestClient with an admin token; keeps every answer to look for secrets in."""

    def __init__(self, client: TestClient, token: str):
        self.client, self.token, self.answers = client, token, []

    def __call__(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}"}
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.answers.append(f"{response.headers}\n{response.text}")
        return response


@pytest.fixture
def admin(cpanel_setup, settings, vault):
    token = tokens.create("admin", scope="admin")
    with TestClient(api.create_app(settings, vault)) as test_client:
        calls = Admin(test_client, token)
        yield calls
    for answer in calls.answers:
        assert WHM_TOKEN not in answer and "rotated-token" not in answer and token not in answer


def state() -> list:
    return [[(s.name, s.host, s.port, s.group_id, s.max_accounts, s.enabled, s.credentials)
             for s in Server.select().order_by(Server.id)],
            [(p.name, p.package, p.config) for p in Product.select().order_by(Product.id)],
            [(g.name, g.strategy) for g in ServerGroup.select().order_by(ServerGroup.id)],
            AuditEntry.select().count()]


def fields_of(response) -> list:
    return [e["loc"][-1] for e in response.json()["detail"]]


def test_every_fleet_route_needs_an_admin_token(admin):
    for method, path in (("GET", "/v1/servers"), ("PATCH", "/v1/servers/whm1"), ("DELETE", "/v1/groups/web"),
                         ("POST", "/v1/products"), ("POST", "/v1/servers/whm1/disable")):
        assert admin.client.request(method, path).status_code == 401
    billing = {"Authorization": f"Bearer {tokens.create('shop')}"}  # the default scope
    before = state()
    for method, path in (("GET", "/v1/servers"), ("PATCH", "/v1/servers/whm1"), ("DELETE", "/v1/groups/web"),
                         ("POST", "/v1/products"), ("POST", "/v1/servers/whm1/disable")):
        answer = admin.client.request(method, path, headers=billing, json={})
        assert answer.status_code == 403 and "admin" in answer.json()["detail"], (method, path)
    assert state() == before


def test_servers_list_show_edit_and_a_blank_secret_is_kept(admin, vault, whm):
    listed = admin("GET", "/v1/servers").json()
    assert [(s["name"], s["credentials"]["api_token"], s["placed"]) for s in listed] == [("whm1", "********", 0)]
    answer = admin("PATCH", "/v1/servers/whm1", json={"max_accounts": 9, "credentials": {"api_token": ""}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] == ["max_accounts"] and answer.json()["port"] == whm.port
    stored = Server.get(Server.name == "whm1")
    assert catalog.open_credentials(stored.credentials, vault, "whm1")["api_token"] == WHM_TOKEN
    answer = admin("PATCH", "/v1/servers/whm1", json={"credentials": {"api_token": "rotated-token-9"}})
    assert answer.json()["changed"] == ["credentials.api_token"]
    stored = Server.get(Server.name == "whm1")
    assert catalog.open_credentials(stored.credentials, vault, "whm1")["api_token"] == "rotated-token-9"
    assert [e.detail["fields"] for e in audit.entries("server:whm1")] == [["max_accounts"],
                                                                           ["credentials.api_token"]]
    assert audit.entries("server:whm1")[0].actor == "api:admin"
    assert admin("GET", "/v1/servers/whm1").json()["max_accounts"] == 9
    assert admin("GET", "/v1/servers/nope").status_code == 404


def test_a_server_s_max_concurrency_is_set_on_add_and_edit(admin, whm):
    assert admin("GET", "/v1/servers/whm1").json()["max_concurrency"] == 2
    answer = admin("PATCH", "/v1/servers/whm1", json={"max_concurrency": 6})
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] == ["max_concurrency"] and answer.json()["max_concurrency"] == 6
    assert Server.get(Server.name == "whm1").max_concurrency == 6
    answer = admin("POST", "/v1/servers", json={"name": "whm9", "panel": "cpanel", "host": "127.0.0.1",
                                                "port": whm.port, "group": "web", "max_concurrency": 3,
                                                "credentials": {"api_token": "t-9", "scheme": "http"}})
    assert answer.status_code == 201, answer.text
    assert answer.json()["max_concurrency"] == 3


@pytest.mark.parametrize("body, field", [
    ({"port": 0}, "port"),
    ({"host": "bad host"}, "host"),
    ({"group": "nogroup"}, "group"),
    ({"max_accounts": -1}, "max_accounts"),
    ({"max_accounts": "9"}, "max_accounts"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"max_concurrency": 65}, "max_concurrency"),
    ({"credentials": {"nosuch": "1"}}, "credential.nosuch"),
    ({"max_accounts": 3, "credentials": {"scheme": "gopher"}}, "credential.scheme"),
    ({"panel": "plesk"}, "panel"),
])
def test_server_edit_bad_input_is_422_naming_the_field_and_writes_nothing(admin, body, field):
    before = state()
    answer = admin("PATCH", "/v1/servers/whm1", json=body)
    assert answer.status_code == 422 and fields_of(answer) == [field]
    assert state() == before


def test_add_and_remove_a_server_and_a_refusal_names_the_services_it_holds(admin, registry, vault, settings):
    body = {"name": "whm2", "panel": "cpanel", "host": "whm2.example.net", "group": "web",
            "credentials": {"api_token": "rotated-token-2"}}
    created = admin("POST", "/v1/servers", json=body)
    assert created.status_code == 201 and created.json()["credentials"]["api_token"] == "********"
    assert admin("POST", "/v1/servers", json=body).status_code == 422
    lifecycle.place_order(registry, vault, product="starter", domain="a.example.com", email="a@a.example.com",
                          ref="HELD-1", settings=settings)
    held_on = Service.get(Service.ref == "HELD-1").server.name
    before = state()
    refused = admin("DELETE", f"/v1/servers/{held_on}")
    assert refused.status_code == 409 and f"{held_on} holds 1 services" in refused.json()["detail"]
    assert state() == before
    free = "whm1" if held_on == "whm2" else "whm2"
    removed = admin("DELETE", f"/v1/servers/{free}")
    assert removed.json() == {"name": free, "removed": True, "services_detached": 0, "jobs_detached": 0}
    assert [s["name"] for s in admin("GET", "/v1/servers").json()] == [held_on]


def test_a_disabled_server_takes_no_new_order(admin, registry, vault, settings):
    assert admin("POST", "/v1/servers/whm1/disable").json()["enabled"] is False
    ordered = lifecycle.place_order(registry, vault, product="starter", domain="b.example.com",
                                    email="b@b.example.com", ref="WAIT-1", settings=settings)
    assert ordered.job is None and ordered.service.server is None
    assert admin("POST", "/v1/servers/whm1/enable").json()["enabled"] is True
    placed = lifecycle.place_order(registry, vault, product="starter", domain="c.example.com",
                                   email="c@c.example.com", ref="GO-1", settings=settings)
    assert placed.service.server.name == "whm1"
    assert admin("POST", "/v1/servers/nope/disable").status_code == 404


def test_groups_list_add_edit_remove(admin):
    assert admin("POST", "/v1/groups", json={"name": "spare", "strategy": "round-robin"}).status_code == 201
    assert [(g["name"], g["servers"], g["products"]) for g in admin("GET", "/v1/groups").json()] == [
        ("spare", [], []), ("web", ["whm1"], ["starter"])]
    edited = admin("PATCH", "/v1/groups/web", json={"strategy": "fill-until-full"})
    assert edited.json()["strategy"] == "fill-until-full" and edited.json()["changed"] == ["strategy"]
    bad = admin("PATCH", "/v1/groups/web", json={"strategy": "random"})
    assert bad.status_code == 422 and fields_of(bad) == ["strategy"]
    before = state()
    refused = admin("DELETE", "/v1/groups/web")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("group web is used by servers whm1 and products starter")
    assert state() == before
    assert admin("DELETE", "/v1/groups/spare").json() == {"name": "spare", "removed": True}
    assert admin("DELETE", "/v1/groups/spare").status_code == 404


def test_products_add_edit_show_remove_and_the_package_check(admin, registry, vault, settings):
    unknown = admin("POST", "/v1/products", json={"name": "gold", "panel": "cpanel", "group": "web",
                                                  "package": "gold"})
    assert unknown.status_code == 422 and fields_of(unknown) == ["package"]
    assert "(it offers: basic, business, pro)" in unknown.json()["detail"][0]["msg"]
    added = admin("POST", "/v1/products", json={"name": "biz", "panel": "cpanel", "group": "web",
                                                "package": "business", "config": {"quota": 100}})
    assert added.status_code == 201 and added.json()["warnings"] == [] and added.json()["config"] == {"quota": 100}
    lifecycle.place_order(registry, vault, product="starter", domain="d.example.com", email="d@d.example.com",
                          ref="KEEP-1", settings=settings)
    edited = admin("PATCH", "/v1/products/starter", json={"package": "pro", "terminate_after_days": 30})
    assert edited.status_code == 200, edited.text
    assert edited.json()["changed"] == ["package", "terminate_after_days"]
    assert edited.json()["warnings"] == ["1 existing services of starter keep their package; queue "
                                         "`service change-package` for those that should move to pro"]
    assert Service.get(Service.ref == "KEEP-1").package == "basic"
    before = state()
    for body, field in (({"package": "gold"}, "package"), ({"config": {"quota": "lots"}}, "config.quota"),
                        ({"suspend_after_days": 40}, "terminate_after_days"), ({"name": "x"}, "name")):
        answer = admin("PATCH", "/v1/products/starter", json=body)
        assert answer.status_code == 422 and fields_of(answer) == [field], answer.text
    assert state() == before
    cleared = admin("PATCH", "/v1/products/starter", json={"terminate_after_days": None})
    assert cleared.json()["terminate_after_days"] is None
    shown = admin("GET", "/v1/products/starter").json()
    assert (shown["package"], shown["services"]) == ("pro", {"pending": 1})
    refused = admin("DELETE", "/v1/products/starter")
    assert refused.status_code == 409 and "used by 1 services (1 pending)" in refused.json()["detail"]
    assert admin("DELETE", "/v1/products/biz").json() == {"name": "biz", "removed": True}
    assert [p["name"] for p in admin("GET", "/v1/products").json()] == ["starter"]
    assert admin("GET", "/v1/products/biz").status_code == 404


def test_an_unreachable_panel_makes_the_package_check_a_warning(admin, whm):
    whm.stop()
    added = admin("POST", "/v1/products", json={"name": "maybe", "panel": "cpanel", "group": "web",
                                                "package": "gold"})
    assert added.status_code == 201
    assert added.json()["warnings"][0].startswith("package 'gold' is not checked: no server answered")
    assert Product.get(Product.name == "maybe").package == "gold"
