"""Listing services and jobs over the API: filters, search, paging, errors naming the field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from provisiond import api, catalog, tokens
from provisiond.models import Job, Service
from tests.conftest import WHM_TOKEN
from tests.helpers import add_services


@pytest.fixture
def shop(cpanel_setup, registry, vault, whm, settings):
    """Six services on whm1 and one on whm2, a billing token's client, and the secrets none of
    its answers may carry."""
    server, product = cpanel_setup
    other = catalog.add_server(registry, vault, name="whm2", panel="cpanel", host=whm.host, port=whm.port,
                               group_name="web", max_accounts=50,
                               credentials={"api_token": WHM_TOKEN, "scheme": "http"})
    add_services(vault, product, server, [("INV-1", "alpha.example.com", "active"),
                                          ("INV-2", "Beta-Shop.example.org", "suspended"),
                                          ("INV-3", "gamma.example.net", "active"),
                                          ("INV-4", "delta.example.com", "failed"),
                                          ("INV-5", "epsilon.example.com", "active"),
                                          ("INV-6", "zeta.test", "terminated")])
    add_services(vault, product, other, [("WEB-7", "eta.example.com", "active")])
    token = tokens.create("shop")  # a billing token: listing is what billing systems call
    with TestClient(api.create_app(settings, vault), headers={"Authorization": f"Bearer {token}"}) as client:
        client.secrets = [WHM_TOKEN, token, *(vault.decrypt(s.password) for s in Service.select())]
        yield client


def refs(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [s["ref"] for s in answer.json()["services"]]


def test_services_newest_first_with_filters_and_search(shop):
    assert refs(shop.get("/v1/services")) == ["WEB-7", "INV-6", "INV-5", "INV-4", "INV-3", "INV-2", "INV-1"]
    assert refs(shop.get("/v1/services?status=active")) == ["WEB-7", "INV-5", "INV-3", "INV-1"]
    assert refs(shop.get("/v1/services?server=whm2")) == ["WEB-7"]
    assert refs(shop.get("/v1/services?status=active&server=whm1")) == ["INV-5", "INV-3", "INV-1"]
    # q: part of a domain, any case; part of a ref, of a username, of an email.
    assert refs(shop.get("/v1/services?q=beta-SHOP")) == ["INV-2"]
    assert refs(shop.get("/v1/services?q=example.com")) == ["WEB-7", "INV-5", "INV-4", "INV-1"]
    assert refs(shop.get("/v1/services?q=web-")) == ["WEB-7"]
    assert refs(shop.get("/v1/services?q=user3")) == ["INV-3"]
    assert refs(shop.get("/v1/services?q=owner@zeta")) == ["INV-6"]
    # LIKE's wildcards are plain characters in q.
    assert refs(shop.get("/v1/services?q=%25")) == [] and refs(shop.get("/v1/services?q=_")) == []
    one = shop.get("/v1/services?q=gamma").json()["services"][0]
    assert one["domain"] == "gamma.example.net" and one["server"] == "whm1" and one["product"] == "starter"
    assert one["created_at"].endswith("Z") and "password" not in one
    for answer in [shop.get("/v1/services").text, shop.get("/v1/services?q=INV").text]:
        assert not any(secret in answer for secret in shop.secrets)


def test_services_paging_keeps_the_total(shop):
    first = shop.get("/v1/services?limit=3").json()
    second = shop.get("/v1/services?limit=3&offset=3").json()
    last = shop.get("/v1/services?limit=3&offset=6").json()
    assert [first["total"], second["total"], last["total"]] == [7, 7, 7]
    assert [s["ref"] for s in first["services"] + second["services"] + last["services"]] == \
        ["WEB-7", "INV-6", "INV-5", "INV-4", "INV-3", "INV-2", "INV-1"]
    assert (first["limit"], second["offset"]) == (3, 3)
    assert [first["more"], second["more"], last["more"]] == [True, True, False]
    assert shop.get("/v1/services?limit=3&offset=30").json() == {"services": [], "total": 7, "more": False,
                                                                 "limit": 3, "offset": 30}


@pytest.mark.parametrize("query, field", [("status=sleeping", "status"), ("server=whm9", "server"),
                                          ("limit=0", "limit"), ("limit=501", "limit"),
                                          ("offset=-1", "offset"), ("q=a%00b", "q"),
                                          ("q=alpha%0Aowner", "q")])
def test_bad_service_filters_are_refused_naming_the_field(shop, query, field):
    answer = shop.get(f"/v1/services?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["query", field]


def test_jobs_of_one_service_newest_first_with_paging(shop):
    inv1, inv2 = Service.get(Service.ref == "INV-1"), Service.get(Service.ref == "INV-2")
    made = [Job.create(service=s, server=s.server, action=a, status=st)
            for s, a, st in [(inv1, "create", "succeeded"), (inv2, "create", "succeeded"),
                             (inv1, "suspend", "failed"), (inv1, "unsuspend", "queued")]]
    answer = shop.get("/v1/jobs?service=INV-1")
    assert answer.status_code == 200 and answer.json()["total"] == 3
    assert [j["id"] for j in answer.json()["jobs"]] == [made[3].id, made[2].id, made[0].id]
    assert {j["service"] for j in answer.json()["jobs"]} == {"INV-1"}
    assert [j["action"] for j in shop.get("/v1/jobs?service=INV-1&status=failed").json()["jobs"]] == ["suspend"]
    page = shop.get("/v1/jobs?service=INV-1&limit=1&offset=1").json()
    assert [j["id"] for j in page["jobs"]] == [made[2].id] and page["total"] == 3
    assert shop.get("/v1/jobs").json()["total"] == 4
    unknown = shop.get("/v1/jobs?service=INV-404")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["query", "service"]


def test_the_list_routes_are_documented(shop):
    document = shop.get("/openapi.json").json()
    services = document["paths"]["/v1/services"]["get"]
    assert {p["name"] for p in services["parameters"]} == {"status", "server", "q", "limit", "offset"}
    assert services["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ServicePage")
    assert "service" in {p["name"] for p in document["paths"]["/v1/jobs"]["get"]["parameters"]}


def test_one_service_is_its_views_with_its_jobs_oldest_first(shop):
    """GET /v1/services/{ref} reads one compiled statement into plain data: the answer is still
    the service's view with each job's view, field for field, with and without a server or jobs."""
    from provisiond import listing
    from provisiond.api.base import job_view
    from provisiond.views import service_view
    inv1, inv2 = Service.get(Service.ref == "INV-1"), Service.get(Service.ref == "INV-2")
    inv2.server = None
    inv2.save()
    Job.create(service=inv1, server=inv1.server, action="create", status="succeeded", params={"a": [1]},
               secret_params="canary-secret-param")
    Job.create(service=inv1, server=None, action="suspend", status="failed", last_error="refused")
    for ref in ("INV-1", "INV-2"):
        found = Service.get(Service.ref == ref)
        expected = service_view(found) | {"jobs": [job_view(j) for j in found.jobs.order_by(Job.id)]}
        assert listing.service_detail(ref) == expected
        answer = shop.get(f"/v1/services/{ref}")
        assert answer.status_code == 200
        assert answer.json()["jobs"] == [dict(j, run_after=j["run_after"].isoformat() + "Z") | {
            k: (j[k].isoformat() + "Z" if j[k] else None) for k in ("created_at", "updated_at", "finished_at")}
            for j in expected["jobs"]]
    detail = shop.get("/v1/services/INV-1").json()
    assert [j["action"] for j in detail["jobs"]] == ["create", "suspend"]
    assert [j["server"] for j in detail["jobs"]] == ["whm1", None] and detail["jobs"][0]["params"] == {"a": [1]}
    assert shop.get("/v1/services/INV-2").json()["server"] is None
    assert "canary-secret-param" not in shop.get("/v1/services/INV-1").text
    assert shop.get("/v1/services/INV-404").status_code == 404
