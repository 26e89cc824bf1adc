"""Step secrets (provisiond.step_secrets): declared by a role's meta/provisiond.yml, made once per
service and kept encrypted, handed to the run and its redaction, mailed only when the product
says so. No ansible run here: tests/integration/test_cpanel_steps.py runs real ones."""

from __future__ import annotations

import dataclasses
import re

import pytest

from provisiond import catalog, crypto, db as dbmod, lifecycle, notify, render, step_secrets
from provisiond.errors import ValidationError
from provisiond.models import Job, Product, Setting, StepSecret
from provisiond.worker import Worker

TASKS = "---\n- name: Nothing\n  ansible.builtin.meta: noop\n"


def make_role(root, name, meta: str | None):
    (root / name / "tasks").mkdir(parents=True)
    (root / name / "tasks" / "main.yml").write_text(TASKS)
    if meta is not None:
        (root / name / "meta").mkdir()
        (root / name / "meta" / "provisiond.yml").write_text(meta)


@pytest.fixture
def team(tmp_path, settings, cpanel_setup, registry):
    """Roles 'mailbox' (a password of 24 without symbols, and a pin of 12), 'ssl' (no secrets),
    and a product 'mail' running both."""
    roles = tmp_path / "team-roles"
    make_role(roles, "mailbox", "secrets:\n  password: {length: 24, symbols: ''}\n  pin: {length: 12}\n")
    make_role(roles, "ssl", None)
    settings = dataclasses.replace(settings, roles_path=(roles,))
    catalog.add_product(registry, name="mail", panel="cpanel", group_name="web", package="basic",
                        steps=["ssl", "mailbox"], role_dirs=settings.role_dirs())
    return settings, roles


def test_a_secret_is_made_once_per_service_and_kept_encrypted(team, registry, vault):
    settings, _ = team
    one, _ = lifecycle.order(registry, vault, product="mail", domain="one.example.com", email="a@one.example.com")
    two, _ = lifecycle.order(registry, vault, product="mail", domain="two.example.com", email="a@two.example.com")
    first = step_secrets.for_run(one.id, ["ssl", "mailbox"], settings.role_dirs(), vault)
    assert set(first) == {"mailbox"} and set(first["mailbox"]) == {"password", "pin"}
    password = first["mailbox"]["password"]
    assert len(password) == 24 and password.isalnum() and len(first["mailbox"]["pin"]) == 12
    again = step_secrets.for_run(one.id, ["ssl", "mailbox"], settings.role_dirs(), vault)
    assert again == first  # a retry gets the same values
    other = step_secrets.for_run(two.id, ["mailbox"], settings.role_dirs(), vault)
    assert other["mailbox"]["password"] != password
    rows = list(StepSecret.select().where(StepSecret.service == one.id))
    assert sorted((r.step, r.name) for r in rows) == [("mailbox", "password"), ("mailbox", "pin")]
    assert all(password not in r.value and vault.decrypt(r.value) in first["mailbox"].values() for r in rows)


def test_the_worker_hands_them_to_a_create_and_redacts_them(team, registry, vault):
    settings, _ = team
    service, job = lifecycle.order(registry, vault, product="mail", domain="run.example.com",
                                   email="a@run.example.com")
    worker = Worker(settings, vault)
    try:
        panel = registry.get("cpanel")
        dirs = render.roles_path(panel, tuple(settings.role_dirs()))
        account = worker._account(Job.get_by_id(job.id), dirs)
        retried = worker._account(Job.get_by_id(job.id), dirs)
    finally:
        worker.shutdown()
    made = account.secrets["steps"]
    assert set(made) == {"mailbox"} and retried.secrets["steps"] == made
    spec = render.build(panel, "create", {"url": "http://x", "id": "cpanel"}, {"api_token": "t"}, [account],
                        timeout=10, forks=1)
    assert spec.secrets["account_secrets"][account.host]["steps"]["mailbox"]["password"] == made["mailbox"]["password"]
    assert made["mailbox"]["password"] in spec.secrets["redact_values"]
    assert spec.redactor.text(f"answer: {made['mailbox']['pin']}") == "answer: ********"
    assert made["mailbox"]["password"] not in str(spec.inventory)


def test_the_welcome_mail_lists_them_only_when_the_product_sends_passwords(team, registry, vault):
    settings, _ = team
    service, _ = lifecycle.order(registry, vault, product="mail", domain="mail.example.com",
                                 email="a@mail.example.com")
    made = step_secrets.for_run(service.id, ["mailbox"], settings.role_dirs(), vault)["mailbox"]
    _, body = notify.welcome_text(settings, vault, service)
    assert made["password"] not in body and made["pin"] not in body
    Product.update(welcome_password=True).where(Product.name == "mail").execute()
    service = type(service).get_by_id(service.id)
    _, body = notify.welcome_text(settings, vault, service)
    assert re.search(rf"^  mailbox password: +{re.escape(made['password'])}$", body, re.M)
    assert re.search(rf"^  mailbox pin: +{re.escape(made['pin'])}$", body, re.M)


@pytest.mark.parametrize("meta, problem", [
    ("secrets:\n  password: {length: 4}\n", "length must be 10 to 128"),
    ("secrets:\n  password: {size: 20}\n", "must be a lowercase name with rules"),
    ("secrets:\n  Pass-Word: {}\n", "must be a lowercase name with rules"),
    ("secrets:\n  password: {symbols: '\"{'}\n", "symbols may only be some of"),
    ("secrets: [password]\n", "'secrets' must map each secret's name"),
    ("password: {length: 20}\n", "expected a mapping of the keys needs, panel, secrets"),
    ("secrets: {password: [\n", "cannot be read"),
])
def test_a_step_with_a_broken_meta_file_is_refused_at_product_add(cpanel_setup, registry, tmp_path, meta, problem):
    roles = tmp_path / "roles"
    make_role(roles, "broken", meta)
    with pytest.raises(ValidationError) as refused:
        catalog.add_product(registry, name="b", panel="cpanel", group_name="web", package="basic",
                            steps=["broken"], role_dirs=[roles])
    assert refused.value.field == "step" and problem in refused.value.message
    assert not Product.select().where(Product.name == "b").exists()


def test_migration_18_adds_the_step_secret_table_to_a_database_of_version_17(database):
    database.drop_tables([StepSecret])
    Setting.update(value="17").where(Setting.key == "schema_version").execute()
    after = [f"{v}: {name}" for v, name, _ in dbmod.MIGRATIONS if v > 17]
    assert after[0].startswith("18: the secrets a product's steps make")
    assert dbmod.upgrade(database) == after
    assert database.table_exists("step_secret")
    assert dbmod.upgrade(database) == []


def test_key_rotation_re_encrypts_them(team, registry, vault):
    from provisiond import keys
    settings, _ = team
    service, _ = lifecycle.order(registry, vault, product="mail", domain="keys.example.com", email="a@keys.example.com")
    made = step_secrets.for_run(service.id, ["mailbox"], settings.role_dirs(), vault)
    before = {r.name: r.value for r in StepSecret.select()}
    counts = keys.rotate_all(settings)
    assert counts["step secrets"] == 2
    after = {r.name: r.value for r in StepSecret.select()}
    assert all(after[name] != before[name] for name in before)
    assert step_secrets.stored(service.id, crypto.Vault.from_settings(settings)) == {"mailbox": made["mailbox"]}
