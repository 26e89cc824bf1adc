"""A product's extra steps: roles run after create, each step's outcome logged on its own."""

from __future__ import annotations

import dataclasses

import pytest

from provisiond import catalog, lifecycle
from provisiond.errors import ValidationError
from provisiond.models import Job, ProvisioningLog
from provisiond.worker import Worker

MARKER_ROLE = """---
- name: Write a marker for the account
  ansible.builtin.copy:
    dest: "{{ lookup('ansible.builtin.env', 'STEP_DIR_FOR_TEST') }}/{{ account.username }}.{{ step }}"
    content: "{{ account.domain }}\\n"
    mode: "0600"
"""
FAILING_ROLE = """---
- name: Ask the DNS provider for the zone
  ansible.builtin.fail:
    msg: "zone {{ account.domain }} refused by the DNS provider"
"""


@pytest.fixture
def team_roles(tmp_path):
    roles = tmp_path / "roles"
    for name, tasks in (("mailbox", MARKER_ROLE), ("ssl", MARKER_ROLE), ("dns_zone", FAILING_ROLE)):
        (roles / name / "tasks").mkdir(parents=True)
        (roles / name / "tasks" / "main.yml").write_text(tasks)
    return roles


def test_steps_run_after_create_and_each_is_logged(cpanel_setup, registry, vault, settings, whm,
                                                   team_roles, tmp_path, monkeypatch):
    settings = dataclasses.replace(settings, roles_path=(team_roles,))
    catalog.add_product(registry, name="bundle", panel="cpanel", group_name="web", package="basic",
                        steps=["ssl", "mailbox"], role_dirs=settings.role_dirs())
    catalog.add_product(registry, name="broken-dns", panel="cpanel", group_name="web", package="basic",
                        steps=["ssl", "dns_zone"], role_dirs=settings.role_dirs())
    step_dir = tmp_path / "steps"
    step_dir.mkdir()
    _, good = lifecycle.order(registry, vault, product="bundle", domain="steps.example.com",
                              email="me@steps.example.com")
    _, bad = lifecycle.order(registry, vault, product="broken-dns", domain="nodns.example.com",
                             email="me@nodns.example.com")
    monkeypatch.setenv("STEP_DIR_FOR_TEST", str(step_dir))
    worker = Worker(dataclasses.replace(settings, batch_size=5), vault)
    try:
        worker.tick(wait=True)
    finally:
        worker.shutdown()
    assert sorted(p.name for p in step_dir.iterdir()) == ["nodns.ssl", "steps.mailbox", "steps.ssl"]
    good, bad = Job.get_by_id(good.id), Job.get_by_id(bad.id)
    assert good.status == "succeeded", good.last_error
    rows = {r.action: r for r in ProvisioningLog.select().where(ProvisioningLog.job == good.id)}
    assert rows["create:ssl"].status == "succeeded" and rows["create:mailbox"].status == "succeeded"
    assert bad.status == "failed"
    bad_rows = {r.action: r for r in ProvisioningLog.select().where(ProvisioningLog.job == bad.id)}
    assert bad_rows["create:ssl"].status == "succeeded"
    assert bad_rows["create:dns_zone"].status == "failed"
    assert "zone nodns.example.com refused" in bad_rows["create:dns_zone"].message
    assert "nodns" in whm.accounts  # the account exists; the retry will find it and redo the steps


def test_a_step_must_name_an_existing_role(cpanel_setup, registry, settings):
    with pytest.raises(ValidationError) as refused:
        catalog.add_product(registry, name="typo", panel="cpanel", group_name="web", package="basic",
                            steps=["ssl_typo"], role_dirs=settings.role_dirs())
    assert refused.value.field == "step"
