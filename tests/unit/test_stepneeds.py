"""What a step role needs of a server's key (stepneeds.py), against the bundled panels and roles:
``panels check`` names a Hestia step the billing key cannot run, and what key would."""

from __future__ import annotations

import types

import pytest

from provisiond import panelcheck, panels, stepneeds
from provisiond.config import bundled_dir

ROLES = [bundled_dir("roles")]
REGISTRY = panels.discover([bundled_dir("playbooks")])
HESTIA, DIRECTADMIN = REGISTRY.panels["hestia"], REGISTRY.panels["directadmin"]


def server(name: str, **credentials):
    return types.SimpleNamespace(name=name, credentials=credentials)


def test_panels_check_warns_of_each_hestia_step_the_billing_key_cannot_run(monkeypatch):
    monkeypatch.setattr(panelcheck, "_syntax_check", lambda playbooks, roles: None)  # not what is tested here
    [report] = panelcheck.check(REGISTRY, "hestia")
    assert report.ok and not report.problems   # a warning: a server's key may be wider than the default
    assert report.warnings == [
        "step hestia_database runs v-list-databases, v-add-database, which a key stated as key_presets=billing "
        "(the default) may not run: the server needs an admin key without a permission list, since no preset "
        "has them (key_presets: all)",
        "step hestia_letsencrypt runs v-list-web-domain, v-add-letsencrypt-domain, which a key stated as "
        "key_presets=billing (the default) may not run: the server needs an admin key without a permission "
        "list, since no preset has them (key_presets: all)",
        "step hestia_mailbox runs v-list-mail-accounts, v-add-mail-account, which a key stated as "
        "key_presets=billing (the default) may not run: the server needs a key with the preset mail-accounts "
        "as well (key_presets e.g. billing,mail-accounts)"]
    [da] = panelcheck.check(REGISTRY, "directadmin")
    assert da.ok and da.warnings == []   # a DirectAdmin login is unlimited unless key_commands says otherwise


@pytest.mark.parametrize("stated, lacking", [
    ("billing", ["v-list-mail-accounts", "v-add-mail-account"]),
    ("billing,mail-accounts", []),
    ("all", []),
    ("purge-nginx-cache", ["v-list-mail-accounts", "v-add-mail-account"]),
    ("v-list-mail-accounts,v-add-mail-account", ["v-list-mail-accounts", "v-add-mail-account"]),  # presets only
    (None, ["v-list-mail-accounts", "v-add-mail-account"]),   # a server made before key_presets: billing
])
def test_what_a_hestia_key_stated_by_its_presets_may_run(stated, lacking):
    meta = stepneeds.role_meta(ROLES, "hestia_mailbox")
    assert stepneeds.missing(HESTIA, meta, stated) == lacking


def test_product_add_warns_of_each_server_whose_key_cannot_run_a_step():
    servers = [server("hst1", key_presets="billing,mail-accounts"), server("hst2", key_presets="all"),
               server("hst3")]
    warnings = stepneeds.product_warnings(HESTIA, ["hestia_mailbox", "hestia_database"], servers, ROLES)
    assert [w.split(":")[0] for w in warnings] == [
        "server hst1's key (key_presets=billing,mail-accounts) may not run v-list-databases, v-add-database of "
        "step hestia_database", "server hst3's key (key_presets=billing) may not run v-list-mail-accounts, "
        "v-add-mail-account of step hestia_mailbox", "server hst3's key (key_presets=billing) may not run "
        "v-list-databases, v-add-database of step hestia_database"]
    restricted = server("da1", key_commands="CMD_API_SHOW_USERS,CMD_API_POP")
    assert [w.split(":")[0] for w in stepneeds.product_warnings(DIRECTADMIN, ["directadmin_ssl", "hestia_mailbox"],
                                                                [restricted], ROLES)] == [
        "step hestia_mailbox is a role for hestia, not directadmin",
        "server da1's key (key_commands=CMD_API_SHOW_USERS,CMD_API_POP) may not run CMD_API_SSL of step "
        "directadmin_ssl"]
