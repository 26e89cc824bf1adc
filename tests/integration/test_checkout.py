"""Checkout fields end to end: a panel's and a product's fields, orders refused or stored (CLI,
API), the values in a real run as data, the schema a billing system renders its form from."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import yaml
from fastapi.testclient import TestClient

from provisiond import actions, api, catalog, execute, lifecycle, panels, tokens
from provisiond import db as dbmod
from provisiond.config import bundled_dir
from provisiond.models import Job, Product, Service, Setting
from provisiond.worker import Worker

PANEL_CHECKOUT = {"php_version": {"label": "PHP version", "choices": ["8.2", "8.3"], "default": "8.3"}}
PRODUCT_CHECKOUT = {"mailbox": {"label": "First mailbox", "pattern": "[a-z][a-z0-9.]{0,30}", "required": True},
                    "databases": {"type": "int", "min": 0, "max": 5, "default": 1},
                    "note": {"label": "A note for the installer"}}
ORDER = {"product": "hosting", "domain": "shop.example.com", "email": "owner@shop.example.com", "ref": "INV-7"}
INJECTION = "{{ lookup('pipe', 'id') }}"


@pytest.fixture
def shop(cpanel_setup, settings, tmp_path, monkeypatch):
    """A cpanel folder (in playbooks_path) declaring php_version, and product 'hosting' adding
    mailbox, databases and note; the settings and registry that see that folder."""
    folder = tmp_path / "panels" / "cpanel"
    shutil.copytree(bundled_dir("playbooks") / "cpanel", folder)
    manifest = yaml.safe_load((folder / "panel.yaml").read_text())
    (folder / "panel.yaml").write_text(yaml.safe_dump(manifest | {"checkout": PANEL_CHECKOUT}, sort_keys=False))
    monkeypatch.setenv("PROVISIOND_PLAYBOOKS_PATH", str(folder.parent))  # the CLI's settings
    settings = dataclasses.replace(settings, playbooks_path=(folder.parent,))
    registry = panels.discover(settings.panel_dirs())
    catalog.add_product(registry, name="hosting", panel="cpanel", group_name="web", package="basic",
                        checkout=PRODUCT_CHECKOUT)
    return settings, registry


def nothing_written():
    return Service.select().count() == 0 and Job.select().count() == 0


def test_the_cli_refuses_an_order_missing_a_field_and_stores_a_valid_one(shop, run):
    base = ["service", "order", "--product", "hosting", "--domain", "shop.example.com",
            "--email", "owner@shop.example.com", "--ref", "INV-7"]
    refused = [((), "fields.mailbox: is required"),
               (("--field", "mailbox=info", "--field", "php_version=7.4"), "fields.php_version: must be one of 8.2"),
               (("--field", "mailbox=info", "--field", "php=8.2"), "fields.php: product hosting has no such"),
               (("--field", "mailbox=info", "--field", "databases=two"), "fields.databases: expected a whole"),
               (("--field", "mailbox=Info!"), "fields.mailbox: has characters or a form"),
               (("--field", "mailbox=a", "--field", "mailbox=b"), "fields.mailbox: is given twice")]
    for extra, named in refused:
        code, out, err = run(*base, *extra)
        assert (code, named) == (2, named) and named in err, (extra, err)
        assert nothing_written()
    code, out, err = run(*base, "--field", "mailbox=info", "--field", "php_version=8.2", "--json")
    assert code == 0, err
    code, out, err = run("service", "show", "INV-7", "--json")
    assert json.loads(out)["fields"] == {"mailbox": "info", "php_version": "8.2", "databases": 1}
    code, out, err = run("service", "show", "INV-7")
    assert "php_version" in out and "info" in out


def test_product_add_and_edit_take_a_checkout_file(shop, run, tmp_path):
    catalog.add_group("shelf")  # no server: the package is not asked of a panel (no run)
    spec = tmp_path / "checkout.yaml"
    spec.write_text("php_version: {choices: ['8.1']}\n")
    code, out, err = run("product", "add", "clash", "--panel", "cpanel", "--group", "shelf", "--package", "basic",
                         "--checkout", str(spec))
    assert code == 2 and "checkout.php_version: panel cpanel declares a checkout field php_version" in err
    assert not Product.select().where(Product.name == "clash").exists()
    spec.write_text("site_name: {label: Site name, required: true}\n")
    code, out, err = run("product", "add", "blog", "--panel", "cpanel", "--group", "shelf", "--package", "basic",
                         "--checkout", str(spec), "--json")
    assert code == 0, err
    assert json.loads(out)["checkout"]["required"] == ["site_name"]
    code, out, err = run("product", "show", "blog")
    assert "php_version (string, default 8.3, one of 8.2, 8.3; the panel's); site_name (string, required; " \
           "the product's)" in out
    code, out, err = run("product", "edit", "blog", "--no-checkout", "--json")
    assert code == 0, err
    assert list(json.loads(out)["checkout"]["properties"]) == ["php_version"]  # the panel's stay
    assert Product.get(Product.name == "blog").checkout == []


@pytest.fixture
def billing(shop, vault):
    settings, _ = shop
    admin = tokens.create("ops", scope="admin")
    with TestClient(api.create_app(settings, vault)) as client:
        client.headers["Authorization"] = f"Bearer {tokens.create('whmcs')}"
        yield client, {"Authorization": f"Bearer {admin}"}


def test_the_api_refuses_an_order_missing_a_field_and_stores_a_valid_one(billing):
    client, _ = billing
    for fields, named in (({}, "fields.mailbox"), ({"mailbox": "info", "databases": True}, "fields.databases"),
                          ({"mailbox": "info", "shell": "bash"}, "fields.shell")):
        answer = client.post("/v1/orders", json=ORDER | {"fields": fields})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", named]
        assert nothing_written()
    answer = client.post("/v1/orders", json=ORDER | {"fields": {"mailbox": "info", "databases": 3}})
    assert answer.status_code == 201, answer.text
    stored = {"mailbox": "info", "databases": 3, "php_version": "8.3"}
    assert answer.json()["service"]["fields"] == stored
    assert client.get("/v1/services/INV-7").json()["fields"] == stored
    replay = client.post("/v1/orders", json=ORDER | {"fields": {"mailbox": "sales", "databases": 3}})
    assert replay.status_code == 409 and "fields" in replay.json()["detail"]
    assert client.post("/v1/orders", json=ORDER | {"fields": {"mailbox": "info", "databases": 3}}).status_code == 200


def test_the_schema_a_billing_system_renders_its_form_from(billing):
    client, admin = billing
    schema = client.get("/v1/products/hosting/checkout")
    assert schema.status_code == 200, schema.text
    assert schema.json() == {
        "type": "object", "additionalProperties": False, "required": ["mailbox"],
        "properties": {
            "php_version": {"type": "string", "title": "PHP version", "enum": ["8.2", "8.3"], "default": "8.3",
                            "maxLength": 255, "x-declared-by": "panel"},
            "mailbox": {"type": "string", "title": "First mailbox", "pattern": "^(?:[a-z][a-z0-9.]{0,30})$",
                        "maxLength": 255, "x-declared-by": "product"},
            "databases": {"type": "integer", "title": "databases", "minimum": 0, "maximum": 5, "default": 1,
                          "x-declared-by": "product"},
            "note": {"type": "string", "title": "A note for the installer", "maxLength": 255,
                     "x-declared-by": "product"}}}
    assert client.get("/v1/products/nothing/checkout").status_code == 404
    assert client.get("/v1/products/hosting").status_code == 403  # the rest of products is the fleet's
    product = client.get("/v1/products/hosting", headers=admin).json()
    assert product["checkout"] == schema.json()
    document = client.get("/openapi.json").json()
    order = document["components"]["schemas"]["OrderIn"]["properties"]["fields"]
    assert "GET /v1/products/{name}/checkout" in order["description"]
    route = document["paths"]["/v1/products/{name}/checkout"]["get"]
    assert route["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CheckoutSchema"}


def test_products_take_checkout_fields_over_the_api(billing):
    client, admin = billing
    catalog.add_group("shelf")  # no server: the package is not asked of a panel (no run)
    body = {"name": "blog", "panel": "cpanel", "group": "shelf", "package": "basic",
            "checkout": {"php_version": {"choices": ["8.1"]}}}
    answer = client.post("/v1/products", json=body, headers=admin)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "checkout.php_version"]
    answer = client.post("/v1/products", json=body | {"checkout": {"theme": {"choices": ["dark", "light"]}}},
                         headers=admin)
    assert answer.status_code == 201, answer.text
    assert answer.json()["checkout"]["properties"]["theme"]["enum"] == ["dark", "light"]
    answer = client.patch("/v1/products/blog", json={"checkout": {"theme": {"type": "bool"}}}, headers=admin)
    assert answer.status_code == 200 and answer.json()["changed"] == ["checkout"]
    assert answer.json()["checkout"]["properties"]["theme"]["type"] == "boolean"


def test_migration_19_adds_checkout_to_a_database_of_version_17(database, cpanel_setup):
    from playhouse.migrate import SchemaMigrator, migrate
    migrator = SchemaMigrator.from_database(database)
    migrate(migrator.drop_column("product", "checkout"), migrator.drop_column("service", "fields"))
    Setting.update(value="17").where(Setting.key == "schema_version").execute()
    assert "19: checkout fields: a product's own, and the values each order gave" in dbmod.upgrade(database)
    assert Product.get(Product.name == "starter").checkout == []
    assert dbmod.upgrade(database) == []


ROLE = """---
- name: Write what the order's checkout fields were
  ansible.builtin.copy:
    dest: "{{ lookup('ansible.builtin.env', 'FIELDS_DIR_FOR_TEST') }}/{{ account.username }}.json"
    content: "{{ {'fields': account.fields | default({}), 'ref': account.ref} | to_json }}"
    mode: "0600"
- name: Write the note alone, as a role would pass it to a panel
  ansible.builtin.copy:
    dest: "{{ lookup('ansible.builtin.env', 'FIELDS_DIR_FOR_TEST') }}/{{ account.username }}.note"
    content: "{{ account.fields.note }}"
    mode: "0600"
"""


def test_the_values_reach_the_playbook_as_data(shop, vault, whm, tmp_path, monkeypatch):
    settings, registry = shop
    roles = tmp_path / "roles"
    (roles / "fields_probe" / "tasks").mkdir(parents=True)
    (roles / "fields_probe" / "tasks" / "main.yml").write_text(ROLE)
    settings = dataclasses.replace(settings, roles_path=(roles,))
    catalog.add_product(registry, name="probed", panel="cpanel", group_name="web", package="basic",
                        steps=["fields_probe"], role_dirs=settings.role_dirs(),
                        checkout={"note": {"label": "A note"}})
    service, job = lifecycle.order(registry, vault, product="probed", domain="probe.example.com",
                                   email="me@probe.example.com", ref="1001", fields={"note": INJECTION})
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("FIELDS_DIR_FOR_TEST", str(out))
    worker = Worker(settings, vault)
    try:
        worker.tick(wait=True)
    finally:
        worker.shutdown()
    assert Job.get_by_id(job.id).status == "succeeded", Job.get_by_id(job.id).last_error
    username = Service.get_by_id(service.id).username
    # Text stays text: "8.3" is no float, the ref "1001" no number (the run files' unsafe form)
    assert json.loads((out / f"{username}.json").read_text()) == {
        "fields": {"note": INJECTION, "php_version": "8.3"}, "ref": "1001"}
    assert (out / f"{username}.note").read_text() == INJECTION  # the lookup was not run


class Captured(Exception):
    """Raised in place of the run, with the spec it would have run."""


def test_an_admin_action_gets_the_fields_as_lifecycle_jobs_do(shop, vault, monkeypatch):
    """A login link's run sees ``account.fields`` (as data), like a create's; the spec is what
    ansible-runner would be given, caught before it runs."""
    settings, registry = shop
    service, _ = lifecycle.order(registry, vault, **{k: v for k, v in ORDER.items() if k != "product"},
                                 product="hosting", fields={"mailbox": "info", "note": INJECTION})
    Service.update(status="active").where(Service.id == service.id).execute()

    def capture(spec):
        raise Captured(spec)
    monkeypatch.setattr(actions.execute, "run", capture)
    with pytest.raises(Captured) as caught:
        actions.run(settings, vault, registry, action="login_link", service=Service.get_by_id(service.id))
    [account] = [host["account"] for host in caught.value.args[0].inventory["all"]["hosts"].values()]
    assert account["fields"] == {"mailbox": "info", "note": INJECTION, "php_version": "8.3", "databases": 1}
    assert isinstance(account["fields"]["note"], execute.Data)   # never templated
