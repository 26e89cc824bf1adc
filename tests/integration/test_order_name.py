"""The customer's name an order may give: checked, kept on the service, compared on replays,
and sent where a panel keeps one (Opterius's client_name), through the CLI and the API."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from provisiond import api, catalog, lifecycle, notify, tokens
from provisiond import db as dbmod
from provisiond.errors import Conflict, ValidationError
from provisiond.models import Job, Service, Setting
from provisiond.sandbox.opterius import OpteriusSimulator
from tests.helpers import settle

KEY = "opt_canaryOpteriusKey" + "y" * 27
BAD_NAMES = [("", "must not be empty"), ("   ", "must not be empty"), ("J" * 192, "at most 191"),
             ("Jane\nDoe", "control character (U+000A)"), ("Jane\x00Doe", "control character (U+0000)")]


@pytest.fixture
def opterius():
    with OpteriusSimulator(api_key=KEY, packages=("basic", "pro")) as simulator:
        yield simulator


@pytest.fixture
def shop(database, registry, vault, opterius):
    """Group 'web', server 'opt1' on the simulator, product 'starter' (package basic)."""
    catalog.add_group("web")
    catalog.add_server(registry, vault, name="opt1", panel="opterius", host=opterius.host,
                       port=opterius.port, group_name="web", max_accounts=50,
                       credentials={"api_key": KEY, "scheme": "http"})
    catalog.add_product(registry, name="starter", panel="opterius", group_name="web", package="basic")


@pytest.fixture
def client(shop, settings, vault):
    token = tokens.create("billing")
    with TestClient(api.create_app(settings, vault), headers={"Authorization": f"Bearer {token}"}) as test:
        yield test


def test_a_cli_order_with_a_name_reaches_the_panel_as_client_name(shop, run, worker, opterius):
    code, out, err = run("--json", "service", "order", "--product", "starter", "--domain",
                         "jane.example.com", "--email", "jd@jane.example.com", "--name", "  Jane Doe ",
                         "--ref", "INV-1")
    assert code == 0, err
    ordered = json.loads(out)
    assert ordered["name"] == "Jane Doe"  # kept without the surrounding spaces
    assert settle(worker, Job.get_by_id(ordered["job"])).status == "succeeded"
    assert opterius.users["jd@jane.example.com"].name == "Jane Doe"

    code, out, err = run("--json", "service", "show", "INV-1")
    assert code == 0 and json.loads(out)["name"] == "Jane Doe"
    code, out, err = run("service", "show", "INV-1")
    assert code == 0 and any(line.split() == ["name", "Jane", "Doe"] for line in out.splitlines())

    # Replayed: the same name is the same order; another one is a conflict naming the field.
    code, out, err = run("--json", "service", "order", "--product", "starter", "--domain",
                         "jane.example.com", "--email", "jd@jane.example.com", "--name", "Jane Doe",
                         "--ref", "INV-1")
    assert code == 0 and json.loads(out)["created"] is False
    code, out, err = run("service", "order", "--product", "starter", "--domain", "jane.example.com",
                         "--email", "jd@jane.example.com", "--name", "John Doe", "--ref", "INV-1")
    assert code == 2 and "order INV-1 is known with another name;" in err
    assert Service.get().name == "Jane Doe" and Service.select().count() == 1


@pytest.mark.parametrize("name, problem", BAD_NAMES)
def test_a_bad_name_is_refused_on_the_cli_naming_the_field(name, problem, shop, run):
    code, out, err = run("service", "order", "--product", "starter", "--domain", "bad.example.com",
                         "--email", "x@bad.example.com", "--name", name)
    assert code == 2 and "name" in err and problem in err, err
    assert Service.select().count() == Job.select().count() == 0


def test_an_api_order_with_a_name_reaches_the_panel_as_client_name(client, worker, opterius):
    order = {"product": "starter", "domain": "jane.example.com", "email": "jd@jane.example.com",
             "name": "Jane Doe", "ref": "INV-2"}
    answer = client.post("/v1/orders", json=order)
    assert answer.status_code == 201, answer.text
    assert answer.json()["service"]["name"] == "Jane Doe"
    assert settle(worker, Job.get_by_id(answer.json()["job"]["id"])).status == "succeeded"
    assert opterius.users["jd@jane.example.com"].name == "Jane Doe"
    assert client.get("/v1/services/INV-2").json()["name"] == "Jane Doe"

    assert client.post("/v1/orders", json=order).status_code == 200
    refused = client.post("/v1/orders", json=order | {"name": "John Doe"})
    assert refused.status_code == 409, refused.text
    assert "order INV-2 is known with another name;" in refused.json()["detail"]
    # An order placed without a name is replayed unchanged without one, but not with one.
    plain = {"product": "starter", "domain": "plain.example.com", "email": "pat@plain.example.com",
             "ref": "INV-3"}
    assert client.post("/v1/orders", json=plain).status_code == 201
    assert client.get("/v1/services/INV-3").json()["name"] is None
    assert client.post("/v1/orders", json=plain).status_code == 200
    assert client.post("/v1/orders", json=plain | {"name": "Pat"}).status_code == 409
    assert [s.name for s in Service.select().order_by(Service.id)] == ["Jane Doe", None]


@pytest.mark.parametrize("name, problem", [*BAD_NAMES, (7, "string")])
def test_a_bad_name_is_refused_by_the_api_naming_the_field(name, problem, client):
    order = {"product": "starter", "domain": "bad.example.com", "email": "x@bad.example.com", "name": name}
    refused = client.post("/v1/orders", json=order)
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["detail"]
    assert detail["loc"] == ["body", "name"] and problem in detail["msg"]
    assert Service.select().count() == Job.select().count() == 0


def test_without_a_name_client_name_is_the_emails_local_part(shop, registry, vault, worker, opterius):
    service, job = lifecycle.order(registry, vault, product="starter", domain="anon.example.com",
                                   email="owner@anon.example.com")
    assert settle(worker, job).status == "succeeded" and Service.get_by_id(service.id).name is None
    assert opterius.users["owner@anon.example.com"].name == "owner"


def test_the_order_checks_the_name_itself(shop, registry, vault):
    with pytest.raises(ValidationError) as refused:
        lifecycle.order(registry, vault, product="starter", domain="a.example.com",
                        email="a@a.example.com", name="\x1b[31mred")
    assert refused.value.field == "name"
    lifecycle.order(registry, vault, product="starter", domain="a.example.com", email="a@a.example.com",
                    name="Zoë Ångström-Łukasz", ref="INV-9")
    with pytest.raises(Conflict) as conflict:
        lifecycle.order(registry, vault, product="starter", domain="a.example.com",
                        email="a@a.example.com", name="Zoe", ref="INV-9")
    assert conflict.value.fields == ["name"]


def test_the_welcome_mail_greets_by_name_when_the_order_gave_one(shop, registry, vault, settings):
    named, _ = lifecycle.order(registry, vault, product="starter", domain="jane.example.com",
                               email="jd@jane.example.com", name="Jane Doe")
    plain, _ = lifecycle.order(registry, vault, product="starter", domain="anon.example.com",
                               email="owner@anon.example.com")
    assert notify.welcome_text(settings, vault, named)[1].startswith("Hello Jane Doe,\n")
    assert notify.welcome_text(settings, vault, plain)[1].startswith("Hello,\n")


def test_migration_10_adds_the_name_to_a_database_of_version_9(database):
    from playhouse.migrate import SchemaMigrator, migrate
    migrate(SchemaMigrator.from_database(database).drop_column("service", "name"))
    Setting.update(value="9").where(Setting.key == "schema_version").execute()
    assert "name" not in {c.name for c in database.get_columns("service")}
    after_9 = [f"{v}: {name}" for v, name, _ in dbmod.MIGRATIONS if v > 9]
    assert after_9[0] == "10: the customer's name on a service"
    assert dbmod.upgrade(database) == after_9  # 10, then the later ones (each safe to run again)
    assert "name" in {c.name for c in database.get_columns("service")}
    assert dbmod.upgrade(database) == []
