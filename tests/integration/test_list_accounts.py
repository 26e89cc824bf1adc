"""list_accounts (issue 11): every account of a server in one run, normalised, no secret kept.

Real ansible-runner runs of playbooks/<panel>/list_accounts.yml through provisiond.actions (and
the CLI's ``server action``) against the DirectAdmin and Virtualmin simulators.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from provisiond import actions, catalog, execute
from provisiond import cli
from provisiond.sandbox.directadmin import DirectAdminSimulator
from provisiond.sandbox.virtualmin import VirtualminSimulator

PANEL_PASSWORD = "canary-panel-pass-7Qw2Zr"


@pytest.fixture
def runs(monkeypatch):
    """Every RunResult the actions made, to look for secrets in what the run printed."""
    kept = []
    real = execute.run

    def keep(spec):
        result = real(spec)
        kept.append(result)
        return result
    monkeypatch.setattr(actions.execute, "run", keep)
    return kept


def everything_printed(results) -> str:
    return json.dumps([dataclasses.asdict(r) for r in results], default=str)


def run_cli(settings, *argv) -> int:
    return cli.main(["--home", str(settings.home), "--database-url", settings.database_url, *argv])


def add_server(registry, vault, panel, simulator):
    catalog.add_group("web")
    return catalog.add_server(registry, vault, name="s1", panel=panel, host=simulator.host,
                              port=simulator.port, group_name="web", max_accounts=50,
                              credentials={"password": PANEL_PASSWORD, "scheme": "http"})


# -- DirectAdmin -------------------------------------------------------------------------
@pytest.fixture
def da():
    with DirectAdminSimulator(password=PANEL_PASSWORD) as simulator:
        for user, domain, package in (("alice", "alice.example.com", "basic"),
                                      ("bobby", "bobby.example.com", "pro")):
            simulator.op_account_user({"action": "create", "add": "Submit", "username": user,
                                       "email": f"owner@{domain}", "passwd": f"{user}-Pw-9x!",
                                       "passwd2": f"{user}-Pw-9x!", "domain": domain,
                                       "package": package, "ip": "shared"})
        simulator.accounts["bobby"].suspended = True
        simulator.add_foreign_user("carol", "carol.example.com", creator="reseller2", package="business")
        simulator.accounts["carol"].email = ""
        simulator.add_foreign_user("reseller2", "resel.example.com", creator="admin", usertype="reseller")
        yield simulator


ALICE = {"username": "alice", "domain": "alice.example.com", "package": "basic", "suspended": False,
         "email": "owner@alice.example.com"}
BOBBY = {"username": "bobby", "domain": "bobby.example.com", "package": "pro", "suspended": True,
         "email": "owner@bobby.example.com"}
CAROL = {"username": "carol", "domain": "carol.example.com", "package": "business", "suspended": False,
         "email": None}


def test_directadmin_admin_lists_every_user_of_every_reseller(database, settings, registry, vault, da, runs):
    server = add_server(registry, vault, "directadmin", da)
    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    # The reseller account itself is no hosting account provisiond manages: left out.
    assert answer == {"accounts": [ALICE, BOBBY, CAROL]}
    reads = [r.query.get("user") for r in da.requests if r.path == "/CMD_API_SHOW_USER_CONFIG"]
    assert reads == ["alice", "bobby", "carol", "reseller2"]  # one loop, one read per user
    printed = everything_printed(runs)
    assert PANEL_PASSWORD not in printed and "alice-Pw-9x!" not in printed


def test_directadmin_reseller_lists_only_its_own_users(database, settings, registry, vault, da,
                                                       monkeypatch):
    monkeypatch.setattr(da, "level", "reseller")
    server = add_server(registry, vault, "directadmin", da)
    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert answer == {"accounts": [ALICE, BOBBY]}
    assert [r.path for r in da.requests][:2] == ["/CMD_API_SHOW_ALL_USERS", "/CMD_API_SHOW_USERS"]


def test_directadmin_empty_server_and_refused_login(database, settings, registry, vault, capsys):
    with DirectAdminSimulator(password=PANEL_PASSWORD) as empty:
        add_server(registry, vault, "directadmin", empty)
        assert run_cli(settings, "server", "action", "s1", "list_accounts", "--json") == 0
        assert json.loads(capsys.readouterr().out) == {"accounts": []}
        empty.password = "changed-elsewhere-1"
        assert run_cli(settings, "server", "action", "s1", "list_accounts") != 0
        assert "refused the login" in capsys.readouterr().err


# -- Virtualmin --------------------------------------------------------------------------
@pytest.fixture
def vm():
    with VirtualminSimulator(password=PANEL_PASSWORD, plans=("basic", "pro")) as simulator:
        for user, domain, plan, extra in (("shop", "shop.example.com", "basic", ["--email", "o@shop.example.com"]),
                                          ("quiet", "quiet.example.org", "pro", ["--dir", "--unix", "--web"]),
                                          ("late", "late.example.net", "basic", ["--mail", "--unix", "--dir"])):
            features = [] if "--dir" in extra else ["--features-from-plan"]
            simulator.run_create_domain(["--domain", domain, "--user", user, "--pass", f"{user}-Pw-9x!",
                                         "--plan", plan, *extra, *features])
        simulator.accounts["late"].suspended, simulator.accounts["late"].why = True, "unpaid"
        simulator.add_sub_server("shop.example.com", "blog.shop.example.com")
        yield simulator


def test_virtualmin_lists_top_level_servers_without_keeping_passwords(database, settings, registry, vault,
                                                                      vm, runs):
    server = add_server(registry, vault, "virtualmin", vm)
    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert answer == {"accounts": [
        {"username": "late", "domain": "late.example.net", "package": "basic", "suspended": True,
         "email": "late@late.example.net"},    # no address given, mail on: user@domain
        {"username": "quiet", "domain": "quiet.example.org", "package": "pro", "suspended": False,
         "email": f"quiet@{vm.hostname}"},      # neither: user@hostname (compute_emailto)
        {"username": "shop", "domain": "shop.example.com", "package": "basic", "suspended": False,
         "email": "o@shop.example.com"},
    ]}  # the sub-server blog.shop.example.com is not an account
    printed = everything_printed(runs)
    for secret in (PANEL_PASSWORD, "shop-Pw-9x!", "quiet-Pw-9x!", "late-Pw-9x!"):
        assert secret not in printed


def test_virtualmin_list_accounts_through_the_cli(database, settings, registry, vault, vm, capsys):
    add_server(registry, vault, "virtualmin", vm)
    assert run_cli(settings, "server", "action", "s1", "list_accounts", "--json") == 0
    out = capsys.readouterr().out
    assert [a["username"] for a in json.loads(out)["accounts"]] == ["late", "quiet", "shop"]
    assert "-Pw-9x!" not in out
