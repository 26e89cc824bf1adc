"""Product variants (issue 14 items 3 and 4, "scale"): a variant's package settings over the
product's reach the panel at create, and a change-package to another variant sets them again on
the panel (the WHM simulator's account keeps its quota and bandwidth limit), through the CLI and
the API, on SQLite and PostgreSQL. Bad input names the field and writes nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from provisiond import api, catalog, lifecycle, tokens, variants
from provisiond import db as dbmod
from provisiond.errors import Conflict, StateError, ValidationError
from provisiond.models import AuditEntry, Job, Product, ProductVariant, Service, Setting
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.sandbox.directadmin import DirectAdminSimulator
from provisiond.sandbox.hestia import HestiaSimulator
from tests.conftest import WHM_TOKEN
from tests.helpers import settle

# The plans' own limits (listpkgs' QUOTA and BWLIMIT, in MB): what changepackage sets.
PLANS = {"basic": {"QUOTA": 1000, "BWLIMIT": 5000}, "pro": {"QUOTA": 10000, "BWLIMIT": 50000}}


@pytest.fixture
def whm():
    with WhmSimulator(token=WHM_TOKEN, plans=PLANS) as simulator:
        yield simulator


@pytest.fixture
def hosting(cpanel_setup, registry):
    """Product 'hosting' (plan basic, quota 2048) with variants 'pro' (quota 8192, bwlimit
    20480) and 'lite' (quota 512; bandwidth left to the plan)."""
    catalog.add_product(registry, name="hosting", panel="cpanel", group_name="web", package="basic",
                        config={"quota": 2048})
    variants.add(registry, "hosting", "pro", {"quota": "8192", "bwlimit": 20480}, actor="test")
    variants.add(registry, "hosting", "lite", {"quota": 512}, actor="test")


def limits(whm: WhmSimulator, username: str) -> tuple[str, int, int]:
    account = whm.accounts[username]
    return account.plan, account.quota, account.bwlimit


def test_an_order_of_a_variant_gets_the_merged_quota_and_a_move_to_another_sets_it_again(
        hosting, run, worker, whm):
    code, out, err = run("--json", "product", "variant", "list", "hosting")
    assert code == 0, err
    assert [(v["name"], v["panel_package"], v["panel_config"]) for v in json.loads(out)] == [
        ("lite", "basic", {"quota": 512}), ("pro", "basic", {"quota": 8192, "bwlimit": 20480})]

    code, out, err = run("--json", "service", "order", "--product", "hosting", "--variant", "pro",
                         "--domain", "shop.example.com", "--email", "me@shop.example.com", "--ref", "INV-1")
    assert code == 0, err
    ordered = json.loads(out)
    assert (ordered["variant"], ordered["package"]) == ("pro", "basic")
    assert settle(worker, Job.get_by_id(ordered["job"])).status == "succeeded"
    assert limits(whm, ordered["username"]) == ("basic", 8192, 20480)  # the variant's over the product's 2048

    code, out, err = run("--json", "service", "change-package", "INV-1", "--variant", "lite")
    assert code == 0, err
    moved = json.loads(out)
    assert moved["params"] == {"package": "basic", "variant": "lite"}
    assert settle(worker, Job.get_by_id(moved["id"])).status == "succeeded"
    # Same plan, new variant: changepackage gave back the plan's bandwidth, editquota set lite's quota.
    assert limits(whm, ordered["username"]) == ("basic", 512, 5000)
    code, out, err = run("service", "show", "INV-1")
    assert code == 0 and any(line.split() == ["variant", "lite"] for line in out.splitlines()), out

    code, out, err = run("service", "change-package", "INV-1", "--variant", "gold")
    assert code == 2 and "variant: product hosting has no variant 'gold' (its variants: lite, pro)" in err
    assert Job.select().where(Job.action == "change_package").count() == 1


def test_the_api_orders_a_variant_of_another_plan_and_moves_it_back(hosting, settings, vault, worker, whm):
    token = tokens.create("ops", scope="admin")
    with TestClient(api.create_app(settings, vault), headers={"Authorization": f"Bearer {token}"}) as client:
        refused = client.post("/v1/products/hosting/variants", json={"name": "big", "config": {"quota": "lots"}})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "config.quota"]
        refused = client.post("/v1/products/hosting/variants", json={"name": "big", "package": "gold"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "package"]
        assert "it offers: basic, pro" in refused.json()["detail"][0]["msg"]  # asked of the panel
        added = client.post("/v1/products/hosting/variants", json={"name": "big", "package": "pro"})
        assert added.status_code == 201, added.text
        assert (added.json()["panel_package"], added.json()["panel_config"]) == ("pro", {"quota": 2048})

        order = {"product": "hosting", "domain": "api.example.com", "email": "me@api.example.com", "ref": "INV-7"}
        refused = client.post("/v1/orders", json=order | {"variant": "gold"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "variant"]
        assert Service.select().count() == 0  # nothing half-written
        ordered = client.post("/v1/orders", json=order | {"variant": "big"})
        assert ordered.status_code == 201, ordered.text
        assert ordered.json()["service"]["variant"] == "big"
        assert settle(worker, Job.get_by_id(ordered.json()["job"]["id"])).status == "succeeded"
        username = ordered.json()["service"]["username"]
        assert limits(whm, username) == ("pro", 2048, 50000)  # pro's bandwidth, the product's quota

        refused = client.post("/v1/services/INV-7/change-package", json={"variant": "gold"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "variant"]
        moved = client.post("/v1/services/INV-7/change-package", json={"variant": "pro"})
        assert moved.status_code == 202 and moved.json()["params"] == {"package": "basic", "variant": "pro"}
        assert settle(worker, Job.get_by_id(moved.json()["id"])).status == "succeeded"
        assert limits(whm, username) == ("basic", 8192, 20480)
        shown = client.get("/v1/services/INV-7").json()
        assert (shown["variant"], shown["package"]) == ("pro", "basic")
        assert [v["name"] for v in client.get("/v1/products/hosting/variants").json()] == ["big", "lite", "pro"]


DA_PASSWORD = "canary-da-password-4Hq8Wm"
HESTIA_KEY, HESTIA_SECRET = "PROVISIONDACCESS0001", "canary-hestia-secret-5Rt8Yv-0123456789ab"


@pytest.fixture
def da_and_hestia(database, registry, vault):
    """Servers da1 and hst1 in group 'web'; product 'dahost' (package basic, quota 2048) with
    variants 'pro' (quota 8192, bandwidth 20480) and 'lite' (unlimited bandwidth); product
    'hshost' (package basic) with variants 'big' (package pro) and 'small' (package basic)."""
    with DirectAdminSimulator(password=DA_PASSWORD, packages={
            "basic": {"quota": 1000, "bandwidth": 5000}, "pro": {"quota": 10000, "bandwidth": 50000}}) as da, \
            HestiaSimulator(access_key=HESTIA_KEY, secret_key=HESTIA_SECRET, permissions="billing",
                            packages={"basic": {"DISK_QUOTA": 1000}, "pro": {"DISK_QUOTA": 10000}}) as hestia:
        catalog.add_group("web")
        catalog.add_server(registry, vault, name="da1", panel="directadmin", host=da.host, port=da.port,
                           group_name="web", credentials={"password": DA_PASSWORD, "scheme": "http"})
        catalog.add_server(registry, vault, name="hst1", panel="hestia", host=hestia.host, port=hestia.port,
                           group_name="web", credentials={"access_key": HESTIA_KEY, "secret_key": HESTIA_SECRET,
                                                          "scheme": "http"})
        catalog.add_product(registry, name="dahost", panel="directadmin", group_name="web", package="basic",
                            config={"quota": 2048})
        variants.add(registry, "dahost", "pro", {"quota": 8192, "bandwidth": 20480}, actor="test")
        variants.add(registry, "dahost", "lite", {"bandwidth": 0}, actor="test")
        catalog.add_product(registry, name="hshost", panel="hestia", group_name="web", package="basic")
        variants.add(registry, "hshost", "big", package="pro", actor="test")
        variants.add(registry, "hshost", "small", package="basic", actor="test")
        yield da, hestia


def test_directadmin_and_hestia_get_the_variant_and_a_move_sets_it_again(da_and_hestia, registry, vault, worker):
    da, hestia = da_and_hestia
    with pytest.raises(ValidationError) as refused:  # Hestia's packages hold every limit
        variants.add(registry, "hshost", "huge", {"quota": 1}, actor="test")
    assert refused.value.field == "config.quota"
    on_da, create_da = lifecycle.order(registry, vault, product="dahost", variant="pro", domain="da.example.com",
                                       email="me@da.example.com")
    on_hestia, create_hestia = lifecycle.order(registry, vault, product="hshost", variant="big",
                                               domain="hs.example.com", email="me@hs.example.com")
    assert len(worker.tick(wait=True)) == 2  # one run a server, side by side
    assert {Job.get_by_id(j.id).status for j in (create_da, create_hestia)} == {"succeeded"}

    def da_limits():
        account = da.accounts[on_da.username]
        return account.package, account.disk_limit_mb, account.bandwidth_limit_mb

    def hestia_limits():
        code, out = hestia.run("v-list-user", [on_hestia.username, "json"])
        record = json.loads(out)[on_hestia.username]
        return record["PACKAGE"], record["DISK_QUOTA"]

    assert da_limits() == ("basic", 8192, 20480)
    assert hestia_limits() == ("pro", "10000")

    moves = [lifecycle.request(registry, vault, on_da.id, "change_package", variant="lite"),
             lifecycle.request(registry, vault, on_hestia.id, "change_package", variant="small")]
    worker.tick(wait=True)
    assert [Job.get_by_id(j.id).status for j in moves] == ["succeeded", "succeeded"]
    assert da_limits() == ("basic", 2048, None)  # the product's quota, lite's unlimited bandwidth
    assert hestia_limits() == ("basic", "1000")
    assert [Service.get_by_id(s.id).variant.name for s in (on_da, on_hestia)] == ["lite", "small"]


def test_bad_variants_are_refused_by_field_and_nothing_is_written(hosting, run):
    cases = [(["product", "variant", "add", "hosting", "x", "--config", "disk=5"], "config.disk: "),
             (["product", "variant", "add", "hosting", "x", "--config", "quota=-1"], "config.quota: "),
             (["product", "variant", "add", "hosting", "x"], "config: a variant sets at least one"),
             (["product", "variant", "add", "hosting", "pro", "--config", "quota=1"], "name: product hosting "
                                                                                      "has a variant 'pro' already"),
             (["product", "variant", "add", "hosting", "bad name", "--config", "quota=1"], "name: "),
             (["product", "variant", "add", "nope", "x", "--config", "quota=1"], "product: unknown product"),
             (["product", "variant", "add", "hosting", "x", "--package", "a/b"], "package: "),
             (["service", "order", "--product", "hosting", "--variant", "gold", "--domain", "a.example.com",
               "--email", "a@a.example.com"], "variant: product hosting has no variant 'gold'")]
    for argv, message in cases:
        code, out, err = run(*argv)
        assert code == 2 and message in err, (argv, err)
    assert ProductVariant.select().count() == 2
    assert Service.select().count() == 0 and Job.select().count() == 0
    assert AuditEntry.select().where(AuditEntry.action == "variant.add").count() == 2


def test_a_replayed_order_must_name_the_same_variant(hosting, registry, vault):
    order = dict(product="hosting", domain="r.example.com", email="me@r.example.com", ref="INV-2")
    first = lifecycle.place_order(registry, vault, variant="pro", **order)
    assert lifecycle.place_order(registry, vault, variant="pro", **order).service.id == first.service.id
    assert lifecycle.place_order(registry, vault, **order).service.id == first.service.id  # asks nothing new
    with pytest.raises(Conflict) as conflict:
        lifecycle.place_order(registry, vault, variant="lite", **order)
    assert conflict.value.fields == ["variant"]
    plain = dict(product="hosting", domain="p.example.com", email="me@p.example.com", ref="INV-4")
    lifecycle.place_order(registry, vault, **plain)
    with pytest.raises(Conflict) as conflict:
        lifecycle.place_order(registry, vault, variant="pro", **plain)  # asks for something new
    assert conflict.value.fields == ["variant"]


def test_a_variant_named_by_a_service_stays_and_a_removed_product_takes_its_variants(hosting, registry, vault, run):
    service, job = lifecycle.order(registry, vault, product="hosting", variant="pro", domain="v.example.com",
                                   email="me@v.example.com")
    code, out, err = run("product", "variant", "remove", "hosting", "pro")
    assert code == 2 and "named by 1 services" in err
    code, out, err = run("product", "variant", "remove", "hosting", "lite")
    assert code == 0 and "variant lite of product hosting removed" in out
    code, out, err = run("--json", "product", "show", "hosting")
    assert code == 0 and json.loads(out)["variants"] == ["pro"], err
    code, out, err = run("product", "show", "hosting")
    assert code == 0 and any(line.split() == ["variants", "pro"] for line in out.splitlines()), out
    with pytest.raises(ValidationError) as refused:
        lifecycle.request(registry, vault, service.id, "suspend", variant="pro")
    assert refused.value.field == "variant"

    catalog.add_product(registry, name="spare", panel="cpanel", group_name="web", package="basic")
    variants.add(registry, "spare", "x", {"quota": 1}, actor="test")
    code, out, err = run("product", "remove", "spare")
    assert code == 0, err
    assert not Product.select().where(Product.name == "spare").exists()
    assert [v.name for v in ProductVariant.select()] == ["pro"]


def test_a_variant_with_a_queued_move_to_it_is_not_removed(hosting, registry, vault):
    service, job = lifecycle.order(registry, vault, product="hosting", domain="q.example.com",
                                   email="me@q.example.com")
    Service.update(status="active").where(Service.id == service.id).execute()
    Job.update(status="succeeded").where(Job.id == job.id).execute()
    moving = lifecycle.request(registry, vault, service.id, "change_package", variant="lite")
    with pytest.raises(StateError) as refused:
        variants.remove("hosting", "lite", actor="test")
    assert f"change-package jobs {moving.id}" in str(refused.value)
    assert ProductVariant.select().where(ProductVariant.name == "lite").exists()


def test_migration_20_adds_variants_to_a_database_of_version_17(database):
    from playhouse.migrate import SchemaMigrator, migrate
    migrator = SchemaMigrator.from_database(database)
    # SQLite drops a column with a foreign key only by rebuilding the table (legacy=True).
    migrate(migrator.drop_column("service", "variant_id", **({} if dbmod.is_postgres(database) else
                                                          {"legacy": True})))
    database.execute_sql("DROP TABLE product_variant")
    Setting.update(value="17").where(Setting.key == "schema_version").execute()
    after_17 = [f"{v}: {name}" for v, name, _ in dbmod.MIGRATIONS if v > 17]
    assert "20: product variants, and the variant of each service" in after_17
    assert dbmod.upgrade(database) == after_17
    assert "variant_id" in {c.name for c in database.get_columns("service")}
    assert database.table_exists("product_variant")
    assert dbmod.upgrade(database) == []
