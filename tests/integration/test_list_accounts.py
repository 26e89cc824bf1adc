"""The server action ``list_accounts`` (issue 11): every account on a server, normalised, in one
run, for each panel that declares it, against the panel's simulator (or a real sshd).

Each case has accounts made by provisiond, one suspended, and one made outside provisiond, and
asserts the exact list: ``{username, domain, package, suspended, email}`` per account.
"""

from __future__ import annotations

import json

from provisiond import actions, cli, lifecycle
from tests.conftest import WHM_TOKEN
from tests.helpers import settle


def by_user(accounts: list[dict]) -> list[dict]:
    return sorted(accounts, key=lambda a: (a["username"], a["domain"] or ""))


# -- cPanel: WHM listaccts --------------------------------------------------------------------
def test_cpanel_lists_every_whm_account_in_one_listaccts_call(cpanel_setup, registry, vault, whm, worker,
                                                              settings, capsys):
    for domain, ref in (("shop.example.com", "INV-1"), ("late.example.com", "INV-2")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain,
                                 email=f"owner@{domain}", ref=ref)
        assert settle(worker, job).status == "succeeded"
    assert settle(worker, lifecycle.request(registry, vault, "INV-2", "suspend", reason="overdue")).status == "succeeded"
    # Made in WHM by hand: another plan, no contact address.
    whm.op_createacct({"username": "handmade", "domain": "hand.example.net", "plan": "pro",
                       "password": "Hh1!handmade-long"})
    whm.requests.clear()

    code = cli.main(["--home", str(settings.home), "--database-url", settings.database_url,
                     "--json", "server", "action", "whm1", "list_accounts"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert by_user(json.loads(out)["accounts"]) == [
        {"username": "handmade", "domain": "hand.example.net", "package": "pro", "suspended": False, "email": None},
        {"username": "late", "domain": "late.example.com", "package": "basic", "suspended": True,
         "email": "owner@late.example.com"},
        {"username": "shop", "domain": "shop.example.com", "package": "basic", "suspended": False,
         "email": "owner@shop.example.com"},
    ]
    assert [r.path for r in whm.requests] == ["/json-api/listaccts"]  # one call for the whole server
    assert WHM_TOKEN not in out + err
    passwords = [a.password for a in whm.accounts.values()]
    assert not any(p in out + err for p in passwords)


def test_cpanel_list_accounts_of_an_empty_server_is_an_empty_list(cpanel_setup, registry, vault, settings):
    server, _ = cpanel_setup
    assert actions.run(settings, vault, registry, action="list_accounts", server=server) == {"accounts": []}
