"""The shipped DirectAdmin and HestiaCP step roles (mailbox, database, Let's Encrypt), run for real
against the simulators: one order provisions all three, a second create changes nothing, and a
Hestia key of the billing preset fails the step with Hestia's own refusal.

Each test makes few ansible runs (an order, then the same create again) and asserts much on them.
"""

from __future__ import annotations

import base64
import copy
import json
import urllib.parse

import pytest

from provisiond import catalog, fleet, lifecycle, queue, step_secrets
from provisiond.models import Job, ProvisioningLog, RunEvent, Service
from provisiond.sandbox.hestia import HestiaSimulator
from tests.helpers import kept_texts, settle
from tests.integration.panels.adapters import ACCESS_KEY, DA_PASSWORD, HESTIA_SECRET

DA_STEPS = ["directadmin_mailbox", "directadmin_database", "directadmin_ssl"]
HESTIA_STEPS = ["hestia_mailbox", "hestia_database", "hestia_letsencrypt"]
ADMIN_KEY = "ADMINKEYWITHOUTPERMS"   # v-add-access-key admin (no PERMISSIONS): every command


def again(job: Job) -> Job:
    """The same create once more (as test_conformance sends a repeated request)."""
    return queue.enqueue(job.action, service=job.service, server=job.server, params=job.params)[0]


def step_rows(job: Job) -> dict[str, ProvisioningLog]:
    rows = ProvisioningLog.select().where(ProvisioningLog.job == job.id)
    return {row.action: row for row in rows if row.action.startswith("create:")}


def changed_tasks(row: ProvisioningLog) -> list[str]:
    return [e.task for e in RunEvent.select().where(RunEvent.attempt == row.id) if e.status == "changed"]


def create_again(worker, job: Job, steps: list[str], sim, user: str) -> list:
    """The same create once more: it succeeds, every step again, no step task changes anything and
    the account on the panel is as it was. Returns the requests it sent."""
    before, seen = copy.deepcopy(sim.accounts[user]), len(sim.requests)
    job = settle(worker, again(job))
    assert job.status == "succeeded", job.last_error
    rows = assert_steps_succeeded(job, steps)
    assert all(changed_tasks(row) == [] for row in rows.values())
    assert sim.accounts[user] == before
    return sim.requests[seen:]


def assert_secrets_kept_out(rows, made: dict) -> None:
    """No step secret in any step row or its kept artifacts."""
    for row in rows:
        for text in kept_texts(row):
            assert not any(v in text for secrets in made.values() for v in secrets.values()), row.action


def order(registry, vault, product: str, domain: str):
    return lifecycle.order(registry, vault, product=product, domain=domain, email=f"owner@{domain}")


def assert_steps_succeeded(job: Job, steps: list[str]) -> dict[str, ProvisioningLog]:
    rows = step_rows(job)
    assert sorted(rows) == sorted(f"create:{s}" for s in steps)
    assert all(row.status == "succeeded" for row in rows.values()), {a: r.message for a, r in rows.items()}
    return rows


@pytest.mark.parametrize("adapter", ["directadmin"], indirect=True)
def test_directadmin_steps_make_mailbox_database_and_certificate_once(adapter, registry, vault, worker, settings):
    sim = adapter.sim
    catalog.add_product(registry, name="full", panel="directadmin", group_name="web", package="basic",
                        steps=DA_STEPS, role_dirs=settings.role_dirs())
    service, job = order(registry, vault, "full", "shop.example.com")
    job = settle(worker, job)
    assert job.status == "succeeded", job.last_error
    rows = assert_steps_succeeded(job, DA_STEPS)
    made = step_secrets.stored(service.id, vault)
    account = sim.accounts["shop"]
    assert account.pops == {"info@shop.example.com": {"password": made["directadmin_mailbox"]["password"], "quota": 0}}
    assert account.dbs == {"shop_db": {"user": "shop_db", "password": made["directadmin_database"]["password"]}}
    assert account.certificate == {"hosts": ["shop.example.com", "www.shop.example.com"], "keysize": "secp384r1"}
    # Every user-level call was made logged in as the account (login-as), none as the admin.
    user_level = [r for r in sim.requests if r.path in ("/CMD_API_POP", "/CMD_API_DATABASES", "/CMD_API_SSL")]
    assert len(user_level) == 6
    assert {r.headers["authorization"] for r in user_level} == {adapter_basic("admin|shop")}
    assert all(changed_tasks(row) for row in rows.values())   # each step acted the first time
    assert_secrets_kept_out(rows.values(), made)
    for row in rows.values():   # nor the server's password, nor the login-as header made of it
        adapter.assert_kept_clean(row, adapter_basic("admin|shop").split()[1])

    sent = create_again(worker, job, DA_STEPS, sim, "shop")
    assert [r.method for r in sent if r.path in ("/CMD_API_POP", "/CMD_API_DATABASES", "/CMD_API_SSL")] == ["GET"] * 3
    assert step_secrets.stored(service.id, vault) == made   # the same secrets, not new ones


def adapter_basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{DA_PASSWORD}".encode()).decode()


def hestia_commands(requests) -> list[str]:
    """The v-* commands of these requests, in order."""
    return [dict(urllib.parse.parse_qsl(r.body.decode())).get("cmd", "") for r in requests]


@pytest.mark.parametrize("adapter", ["hestia"], indirect=True)
def test_hestia_steps_with_an_admin_key_and_refused_with_a_billing_key(adapter, registry, vault, worker, settings):
    billing = adapter.sim   # the adapter's server hst1 has a key of the billing preset only
    catalog.add_group("wide")
    with HestiaSimulator(access_key=ADMIN_KEY, secret_key=HESTIA_SECRET, permissions="",
                         packages=["basic"]) as wide:
        catalog.add_server(registry, vault, name="hst2", panel="hestia", host=wide.host, port=wide.port,
                           group_name="wide", max_accounts=50,
                           credentials={"access_key": ADMIN_KEY, "secret_key": HESTIA_SECRET, "scheme": "http",
                                        "key_presets": "all"})
        added = fleet.add_product(settings, vault, registry, name="full", panel="hestia", group_name="wide",
                                  package="basic", steps=HESTIA_STEPS)
        assert not [w for w in added.warnings if "key" in w], added.warnings
        narrow = fleet.add_product(settings, vault, registry, name="mail", panel="hestia", group_name="web",
                                   package="basic", steps=["hestia_mailbox"])
        [warning] = [w for w in narrow.warnings if "key" in w]
        assert warning.startswith("server hst1's key (key_presets=billing) may not run v-list-mail-accounts, "
                                  "v-add-mail-account of step hestia_mailbox")
        service, job = order(registry, vault, "full", "shop.example.com")
        _, refused = order(registry, vault, "mail", "post.example.com")
        worker.tick(wait=True)
        job, refused = Job.get_by_id(job.id), Job.get_by_id(refused.id)

        assert job.status == "succeeded", job.last_error
        rows = assert_steps_succeeded(job, HESTIA_STEPS)
        made = step_secrets.stored(service.id, vault)
        assert_secrets_kept_out(rows.values(), made)
        account = wide.accounts["shop"]
        assert account.mailboxes == {"shop.example.com": {
            "info": {"password": made["hestia_mailbox"]["password"], "quota": "unlimited"}}}
        assert account.dbs == {"shop_db": {"DBUSER": "shop_db", "password": made["hestia_database"]["password"],
                                           "TYPE": "mysql"}}
        assert account.letsencrypt == ["shop.example.com"]
        listed = json.loads(wide.run("v-list-web-domain", ["shop", "shop.example.com", "json"])[1])
        assert (listed["shop.example.com"]["SSL"], listed["shop.example.com"]["LETSENCRYPT"]) == ("yes", "yes")

        # The billing key: the account is made (its commands are the preset's), the step is refused.
        assert refused.status == "failed"
        assert billing.accounts["post"].mail_domains == ["post.example.com"] and billing.accounts["post"].mailboxes == {}
        row = step_rows(refused)["create:hestia_mailbox"]
        assert row.status == "failed"
        assert row.failed_task == "List the domain's mailboxes (v-list-mail-accounts)"
        refusal = f"HTTP 401: Error: Key {ACCESS_KEY} don't have permission to run the command v-list-mail-accounts"
        assert row.message == f"List the domain's mailboxes (v-list-mail-accounts): {refusal}"
        assert refusal in refused.last_error
        assert "v-add-mail-account" not in hestia_commands(billing.requests)
        assert Service.get_by_id(service.id).status == "active"

        # The same create again: only the three reads are sent, nothing changes.
        sent = hestia_commands(create_again(worker, job, HESTIA_STEPS, wide, "shop"))
        assert [c for c in sent if c.startswith("v-add-")] == []
        assert {"v-list-mail-accounts", "v-list-databases", "v-list-web-domain"} <= set(sent)
