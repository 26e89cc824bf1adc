"""What only CloudPanel shows: a site through `clpctl` over real SSH, with real ansible-runner runs.

The server is an OpenSSH sshd on loopback whose sessions find the clpctl simulator first on PATH
(CloudPanelAdapter in ssh_adapters.py). The lifecycle (with the suspension's own server block),
a refused key, an unreachable host, a site user of another site and a site:add whose answer was
lost are the conformance suite's (test_conformance.py).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from provisiond import actions, catalog, lifecycle
from provisiond.models import Service
from tests.helpers import last_log, settle
from tests.integration.panels.ssh_adapters import MAINTENANCE, SYSTEM_PATH

pytestmark = pytest.mark.parametrize("adapter", ["cloudpanel"], indirect=True)


@pytest.fixture
def cloudpanel(adapter):
    return adapter


def test_the_site_user_is_chosen_not_the_domains_first_label(adapter, registry, vault, cloudpanel, worker):
    # The core names the user after the first label ("www"); a CloudPanel site's user is chosen.
    service, job = lifecycle.order(registry, vault, product="starter", domain="www.shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100", username="shop")
    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    assert service.status == "active" and service.remote_id == "shop"
    site = cloudpanel.sites["www.shop.example.com"]
    assert (site["siteUser"], site["siteUserPassword"]) == ("shop", vault.decrypt(service.password))
    assert (cloudpanel.home / "shop" / "htdocs" / "www.shop.example.com").is_dir()


def test_unsuspend_restores_a_site_suspended_by_the_former_vhost_swap(adapter, registry, vault,
                                                                     cloudpanel, worker):
    """Services suspended before the suspension had its own file come back with their own vhost."""
    service, job = lifecycle.order(registry, vault, product="starter", domain="old.example.com",
                                   email="me@old.example.com", username="old")
    assert settle(worker, job).status == "succeeded", job.last_error
    vhost, saved = cloudpanel.vhost("old.example.com"), cloudpanel.saved("old.example.com")
    own_vhost = vhost.read_text()
    saved.parent.mkdir(parents=True)                    # what the former suspend.yml left behind
    saved.write_text(own_vhost)
    vhost.write_text(f"{MAINTENANCE}. old.example.com's own vhost is kept in {saved}.\nserver {{\n"
                     "  server_name old.example.com;\n  location / {\n    return 503;\n  }\n}\n")
    subprocess.run([str(adapter.bin / "usermod"), "-L", "-e", "1", "old"], env={"PATH": SYSTEM_PATH}, check=True)
    Service.update(status="suspended").where(Service.id == service.id).execute()

    job = settle(worker, lifecycle.request(registry, vault, service.ref, "unsuspend"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "active"
    assert vhost.read_text() == own_vhost and not saved.exists()
    assert cloudpanel.serving("old.example.com") == vhost
    site = cloudpanel.sites["old.example.com"]
    assert not site["suspended"] and site["expiredate"] == ""
    assert cloudpanel.shim_calls() == ["nginx -t", "systemctl reload nginx"]


def test_terminate_of_a_suspended_site_leaves_no_suspension_behind(adapter, registry, vault, cloudpanel,
                                                                   worker):
    """The suspension's block names the site's certificate: it must not outlive the site."""
    service, job = lifecycle.order(registry, vault, product="starter", domain="gone.example.com",
                                   email="me@gone.example.com")
    assert settle(worker, job).status == "succeeded", job.last_error
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "suspend", reason="overdue"))
    assert job.status == "succeeded", job.last_error
    assert cloudpanel.serving("gone.example.com") == cloudpanel.suspension("gone.example.com")
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "succeeded", job.last_error
    assert cloudpanel.sites == {} and not cloudpanel.suspension("gone.example.com").exists()
    assert cloudpanel.serving("gone.example.com") is None


@pytest.mark.parametrize("case", ["duplicate_domain", "unknown_template"])
def test_refusals_fail_once_with_the_panel_reason(case, adapter, registry, vault, cloudpanel, worker):
    product, domain = "starter", "taken.example.com"
    if case == "duplicate_domain":
        cloudpanel.add_php_site("taken.example.com", "squatter")
        expected_task, expected = "Check clpctl's answer to site:add", \
            "clpctl site:add:php: domainName: This value already exists."
    else:
        catalog.add_product(registry, name="odd", panel="cloudpanel", group_name="web", package="odd",
                            config={"vhost_template": "Nope"})
        product = "odd"
        expected_task, expected = "Check clpctl's answer to site:add", \
            "vhostTemplate: The value you selected is not a valid choice."
    before = cloudpanel.sites
    service, job = lifecycle.order(registry, vault, product=product, domain=domain, email="me@taken.example.com")
    assert service.username == "taken"
    job = settle(worker, job)
    log = last_log(job)
    assert job.attempts == 1 and log.failed_task == expected_task, (log.failed_task, log.message)
    assert expected in log.message
    assert cloudpanel.sites == before
    adapter.assert_kept_clean(log, vault.decrypt(service.password))
    assert job.status == "failed" and Service.get_by_id(service.id).status == "failed"


def test_list_accounts_reads_every_site_from_its_vhost_and_site_root(adapter, registry, vault, cloudpanel,
                                                                   worker, settings):
    """Sites made by provisiond (one suspended) and one made in CloudPanel by hand, each once;
    provisiond's suspension file is no site of its own."""
    server = catalog.server(adapter.server_name)
    for domain, user, ref in (("shop.example.com", "shop", "INV-1"), ("late.example.com", "late", "INV-2")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain, email=f"owner@{domain}",
                                 ref=ref, username=user)
        assert settle(worker, job).status == "succeeded", job.last_error
    assert settle(worker, lifecycle.request(registry, vault, "INV-2", "suspend", reason="overdue")).status == "succeeded"
    assert cloudpanel.suspension("late.example.com").exists()
    cloudpanel.add_php_site("hand.example.net", "handmade")

    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert sorted(answer["accounts"], key=lambda a: a["username"]) == [
        {"username": "handmade", "domain": "hand.example.net", "package": None, "suspended": False, "email": None},
        {"username": "late", "domain": "late.example.com", "package": None, "suspended": True, "email": None},
        {"username": "shop", "domain": "shop.example.com", "package": None, "suspended": False, "email": None},
    ]
    text = json.dumps(answer)
    assert "Other-password-123" not in text
    assert not any(vault.decrypt(s.password) in text for s in Service.select())
