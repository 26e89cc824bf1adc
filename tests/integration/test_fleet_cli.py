"""Changing and retiring servers, groups and products from the command line, as a user types it,
against the WHM simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess

import pytest

from provisiond import audit, catalog
from provisiond.models import AuditEntry, Job, Product, ProvisioningLog, Server, ServerGroup, Service
from tests.conftest import WHM_TOKEN


@pytest.fixture
def ready(run, whm):
    assert run("init")[0] == 0
    assert run("group", "add", "web")[0] == 0
    code, _, err = run("server", "add", "whm1", "--panel", "cpanel", "--host", "127.0.0.1", "--port",
                       str(whm.port), "--group", "web", "--credential", f"api_token={WHM_TOKEN}",
                       "--credential", "scheme=http")
    assert code == 0, err
    code, _, err = run("product", "add", "starter", "--panel", "cpanel", "--group", "web", "--package", "basic")
    assert code == 0, err
    return run


def rows() -> list:
    """Everything the commands could write, to show that a refusal wrote nothing."""
    return [[m.select().count() for m in (Server, ServerGroup, Product, Service, Job, AuditEntry)],
            [(s.name, s.host, s.port, s.group_id, s.max_accounts, s.enabled, s.credentials, s.host_key)
             for s in Server.select().order_by(Server.id)],
            [(p.name, p.package, p.config, p.suspend_after_days, p.extra_roles, p.welcome_password)
             for p in Product.select().order_by(Product.id)],
            [(g.name, g.strategy) for g in ServerGroup.select().order_by(ServerGroup.id)]]


def order(run, ref: str) -> dict:
    code, out, err = run("--json", "service", "order", "--product", "starter", "--domain",
                         f"{ref.lower()}.example.com", "--email", f"me@{ref.lower()}.example.com", "--ref", ref)
    assert code == 0, err
    return json.loads(out)


def token_of(name: str, vault) -> str:
    server = Server.get(Server.name == name)
    return catalog.open_credentials(server.credentials, vault, name)["api_token"]


# -- server edit -----------------------------------------------------------------------------

def test_server_edit_changes_what_is_given_and_keeps_the_rest(ready, vault, whm):
    code, out, err = ready("--json", "server", "edit", "whm1", "--max-accounts", "7", "--credential", "api_token=")
    edited = json.loads(out)
    assert code == 0, err
    assert edited["changed"] == ["max_accounts"] and edited["max_accounts"] == 7
    assert (edited["host"], edited["port"], edited["group"]) == ("127.0.0.1", whm.port, "web")
    assert edited["credentials"] == {"api_token": "********", "scheme": "http", "username": "root",
                                     "verify_tls": True}
    assert token_of("whm1", vault) == WHM_TOKEN  # the blank secret was kept, not cleared
    code, out, _ = ready("server", "edit", "whm1", "--credential", "api_token=********")
    assert code == 0 and out.strip() == "server whm1: nothing changed"  # a listing echoed back
    assert token_of("whm1", vault) == WHM_TOKEN
    assert ready("server", "test", "whm1")[0] == 0

    whm.token = "rotated-token-4Fq8"
    code, out, err = ready("server", "edit", "whm1", "--credential", "api_token=rotated-token-4Fq8")
    assert code == 0 and out.strip() == "server whm1: changed credentials.api_token"
    assert token_of("whm1", vault) == "rotated-token-4Fq8"
    assert ready("server", "test", "whm1")[0] == 0
    trail = [(e.action, e.detail) for e in audit.entries("server:whm1")]
    assert trail == [("server.edit", {"fields": ["max_accounts"], "max_accounts": [500, 7]}),
                     ("server.edit", {"fields": ["credentials.api_token"]})]
    assert "rotated-token" not in json.dumps([e.detail for e in AuditEntry.select()])
    code, out, _ = ready("server", "edit", "whm1", "--host", "127.0.0.1")
    assert code == 0 and out.strip() == "server whm1: nothing changed"


def test_server_edit_moves_a_server_to_another_group_and_says_its_accounts_stay(ready):
    order(ready, "MOVE-1")
    assert ready("group", "add", "mail")[0] == 0
    code, out, err = ready("server", "edit", "whm1", "--group", "mail")
    assert code == 0 and "changed group" in out
    assert "the 1 accounts on whm1 stay on it" in err
    assert Server.get(Server.name == "whm1").group.name == "mail"
    assert Service.get(Service.ref == "MOVE-1").server.name == "whm1"


@pytest.mark.parametrize("argv, field", [
    (["--port", "70000"], "port"),
    (["--host", "bad host"], "host"),
    (["--host=-oProxyCommand=x"], "host"),
    (["--group", "nogroup"], "group"),
    (["--max-accounts", "-1"], "max_accounts"),
    (["--credential", "nosuch=1"], "credential.nosuch"),
    (["--credential", "scheme=gopher"], "credential.scheme"),
    (["--credential", "username=Root!"], "credential.username"),
    (["--max-accounts", "9", "--credential", "verify_tls=perhaps"], "credential.verify_tls"),
])
def test_server_edit_bad_input_names_the_field_and_writes_nothing(ready, argv, field):
    before = rows()
    code, _, err = ready("server", "edit", "whm1", *argv)
    assert code == 2
    assert err.startswith(f"provisiond: error: {field}:") and len(err.strip().splitlines()) == 1
    assert rows() == before


def test_server_edit_unknown_server_exits_2(ready):
    code, _, err = ready("server", "edit", "nope", "--max-accounts", "3")
    assert code == 2 and "server nope does not exist" in err


def test_max_accounts_below_the_accounts_placed_is_allowed_with_a_warning(ready):
    order(ready, "FULL-1")
    order(ready, "FULL-2")
    code, out, err = ready("--json", "server", "edit", "whm1", "--max-accounts", "1")
    answer = json.loads(out)
    assert code == 0 and answer["max_accounts"] == 1 and answer["placed"] == 2
    assert "holds 2 accounts, more than the new max_accounts 1" in err
    assert answer["warnings"] == [err.strip().removeprefix("provisiond: warning: ")]
    third = order(ready, "FULL-3")
    assert third["job"] is None and Service.get(Service.ref == "FULL-3").server is None


def test_a_changed_host_of_an_ssh_server_drops_its_host_key_until_server_test(ready, tmp_path):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    code, _, err = ready("server", "add", "box1", "--panel", "linux", "--host", "127.0.0.1", "--port", "1",
                         "--group", "web", "--credential", f"private_key=@{key}")
    assert code == 0, err
    pinned = (tmp_path / "id.pub").read_text().split()[:2]  # any well-formed key stands for the host's
    Server.update(host_key=" ".join(pinned)).where(Server.name == "box1").execute()
    code, out, err = ready("server", "edit", "box1", "--credential", "private_key=")
    assert code == 0 and out.strip() == "server box1: nothing changed"
    assert Server.get(Server.name == "box1").host_key == " ".join(pinned)
    code, out, err = ready("--json", "server", "edit", "box1", "--port", "2")
    answer = json.loads(out)
    assert code == 0 and answer["host_key"] is None and answer["health"] == "unknown"
    assert "host key of box1 was dropped" in err and "provisiond server test box1" in err
    assert Server.get(Server.name == "box1").host_key is None
    code, _, err = ready("server", "edit", "box1", "--credential", "private_key=not a key")
    assert code == 2 and "private_key" in err


# -- server disable / enable / remove --------------------------------------------------------

def test_a_disabled_server_takes_no_new_order_and_its_queued_jobs_still_run(ready, whm):
    first = order(ready, "DIS-1")
    code, out, _ = ready("server", "disable", "whm1")
    assert code == 0 and "takes no new order" in out
    second = order(ready, "DIS-2")
    assert first["job"] and second["job"] is None
    assert ready("run", "--once")[0] == 0
    assert Service.get(Service.ref == "DIS-1").status == "active"
    assert [a.domain for a in whm.accounts.values()] == ["dis-1.example.com"]
    waiting = Service.get(Service.ref == "DIS-2")
    assert waiting.status == "pending" and waiting.server is None
    listed = json.loads(ready("--json", "server", "list")[1])
    assert [s["enabled"] for s in listed] == [False]
    assert ready("server", "enable", "whm1")[0] == 0
    ready("run", "--once")
    ready("run", "--once")
    assert Service.get(Service.ref == "DIS-2").status == "active"
    assert [e.action for e in audit.entries("server:whm1")] == ["server.disable", "server.enable"]


def test_server_remove_is_refused_while_it_holds_services_and_keeps_their_history(ready, whm):
    order(ready, "REM-1")
    order(ready, "REM-2")
    ready("run", "--once")
    before = rows()
    code, _, err = ready("server", "remove", "whm1")
    assert code == 2 and "whm1 holds 2 services that are not terminated or closed" in err
    assert rows() == before
    for ref in ("REM-1", "REM-2"):
        assert ready("service", "terminate", ref)[0] == 0
    ready("run", "--once")
    assert {s.status for s in Service.select()} == {"terminated"}
    jobs = {j.id for j in Job.select()}
    logs = ProvisioningLog.select().count()
    code, out, err = ready("--json", "server", "remove", "whm1")
    assert code == 0, err
    assert json.loads(out) == {"name": "whm1", "removed": True, "services_detached": 2, "jobs_detached": 4}
    assert Server.select().count() == 0
    kept = json.loads(ready("--json", "service", "show", "REM-1")[1])
    assert kept["status"] == "terminated" and kept["server"] is None
    assert {j.id for j in Job.select()} == jobs and ProvisioningLog.select().count() == logs == 4
    assert ready("log", "show", str(kept["jobs"][0]["id"]))[0] == 0
    removal = audit.entries("server:whm1")[-1]
    assert removal.action == "server.remove" and removal.detail["host"] == "127.0.0.1"
    assert ready("server", "remove", "whm1")[0] == 2


# -- groups ----------------------------------------------------------------------------------

def test_group_list_edit_and_remove(ready):
    assert ready("group", "add", "empty", "--strategy", "round-robin")[0] == 0
    groups = json.loads(ready("--json", "group", "list")[1])
    assert [(g["name"], g["strategy"], g["servers"], g["products"]) for g in groups] == [
        ("empty", "round-robin", [], []), ("web", "least-loaded", ["whm1"], ["starter"])]
    code, out, _ = ready("group", "edit", "web", "--strategy", "fill-until-full")
    assert code == 0 and out.strip() == "group web: changed strategy"
    assert ServerGroup.get(ServerGroup.name == "web").strategy == "fill-until-full"
    with pytest.raises(SystemExit) as exited:
        ready("group", "edit", "web", "--strategy", "random")
    assert exited.value.code == 2
    before = rows()
    code, _, err = ready("group", "remove", "web")
    assert code == 2 and "group web is used by servers whm1 and products starter" in err
    assert rows() == before
    assert ready("group", "remove", "empty")[0] == 0
    assert [g.name for g in ServerGroup.select()] == ["web"]
    assert ready("group", "remove", "empty")[0] == 2
    assert [e.action for e in audit.entries("group:web")] == ["group.edit"]


# -- products --------------------------------------------------------------------------------

def test_product_list_show_and_edit_changes_new_orders_only(ready):
    order(ready, "OLD-1")
    listed = json.loads(ready("--json", "product", "list")[1])
    assert [(p["name"], p["package"], p["services"]) for p in listed] == [("starter", "basic", {"pending": 1})]
    code, out, err = ready("product", "edit", "starter", "--package", "pro", "--config", "quota=2048",
                           "--suspend-after-days", "5", "--welcome-password")
    assert code == 0, err
    assert "changed package, config, suspend_after_days, welcome_password" in out
    assert "existing services keep their package unless a change-package is queued" in out
    assert "1 existing services of starter keep their package" in err
    shown = json.loads(ready("--json", "product", "show", "starter")[1])
    assert (shown["package"], shown["config"], shown["suspend_after_days"], shown["welcome_password"]) == \
        ("pro", {"quota": 2048}, 5, True)
    assert shown["terminate_after_days"] is None and shown["steps"] == []
    assert Service.get(Service.ref == "OLD-1").package == "basic"
    order(ready, "NEW-1")
    assert Service.get(Service.ref == "NEW-1").package == "pro"
    code, out, _ = ready("product", "edit", "starter", "--config", "quota=", "--suspend-after-days", "default",
                         "--no-welcome-password")
    assert code == 0 and "changed config, suspend_after_days, welcome_password" in out
    again = Product.get(Product.name == "starter")
    assert (again.config, again.suspend_after_days, again.welcome_password) == ({}, None, False)
    detail = audit.entries("product:starter")[0].detail
    assert detail["fields"] == ["package", "config", "suspend_after_days", "welcome_password"]
    assert detail["package"] == ["basic", "pro"]


def test_product_edit_adding_steps_warns_as_product_add_does(ready, registry, vault):
    """A step of another panel, and a server whose stated key cannot run a step, are warned
    about when an edit adds the step (the edit is made: the panel's refusal is the final word);
    a step the product had already is not warned about again."""
    code, out, err = ready("product", "edit", "starter", "--step", "hestia_mailbox")
    assert code == 0 and "changed steps" in out
    assert "step hestia_mailbox is a role for hestia, not cpanel" in err
    catalog.add_server(registry, vault, name="hst1", panel="hestia", host="127.0.0.1", port=9, group_name="web",
                       max_accounts=10, credentials={"access_key": "A" * 20, "secret_key": "s" * 40,
                                                     "key_presets": "billing"})
    catalog.add_product(registry, name="mail", panel="hestia", group_name="web", package="basic")
    code, out, err = ready("--json", "product", "edit", "mail", "--step", "hestia_mailbox")
    assert code == 0, err
    [warning] = json.loads(out)["warnings"]
    assert warning.startswith("server hst1's key (key_presets=billing) may not run v-list-mail-accounts, "
                              "v-add-mail-account of step hestia_mailbox: it needs ")
    assert warning in err
    code, out, err = ready("--json", "product", "edit", "mail", "--step", "hestia_mailbox", "--step", "hestia_database")
    assert code == 0, err
    assert [w.split(": it needs")[0] for w in json.loads(out)["warnings"]] == [
        "server hst1's key (key_presets=billing) may not run v-list-databases, v-add-database of step hestia_database"]
    assert Product.get(Product.name == "mail").extra_roles == ["hestia_mailbox", "hestia_database"]


@pytest.mark.parametrize("argv, field", [
    (["--config", "quota=lots"], "config.quota"),
    (["--config", "nosuch=1"], "config.nosuch"),
    (["--suspend-after-days", "9999"], "suspend_after_days"),
    (["--suspend-after-days", "10", "--terminate-after-days", "5"], "terminate_after_days"),
    (["--step", "no_such_role"], "step"),
    (["--backup-before-terminate"], "backup_before_terminate"),
    (["--package", "bad/package"], "package"),
])
def test_product_edit_bad_input_names_the_field_and_writes_nothing(ready, argv, field):
    before = rows()
    code, _, err = ready("product", "edit", "starter", *argv)
    assert code == 2
    assert err.startswith(f"provisiond: error: {field}:") and len(err.strip().splitlines()) == 1
    assert rows() == before


def test_a_package_the_panel_does_not_offer_is_refused_naming_those_it_does(ready):
    before = rows()
    for argv in (["product", "edit", "starter", "--package", "gold"],
                 ["product", "add", "premium", "--panel", "cpanel", "--group", "web", "--package", "gold"]):
        code, _, err = ready(*argv)
        assert code == 2
        assert err.strip() == ("provisiond: error: package: 'gold' is not a package of server whm1 "
                               "(it offers: basic, business, pro)")
    assert rows() == before
    code, out, err = ready("--json", "product", "add", "premium", "--panel", "cpanel", "--group", "web",
                           "--package", "business")
    assert code == 0 and json.loads(out)["warnings"] == [] and err == ""


def test_a_package_is_added_with_a_warning_when_no_server_can_say(ready, whm):
    assert ready("group", "add", "bare")[0] == 0
    code, out, err = ready("--json", "product", "add", "lone", "--panel", "cpanel", "--group", "bare",
                           "--package", "gold")
    assert code == 0
    assert "package 'gold' is not checked: group bare has no cpanel server to ask" in err
    assert len(json.loads(out)["warnings"]) == 2  # and its orders wait for a server
    whm.stop()  # the panel is down: the package may well exist, so it is a warning
    code, out, err = ready("--json", "product", "edit", "starter", "--package", "gold")
    assert code == 0
    warnings = json.loads(out)["warnings"]
    assert warnings[0].startswith("package 'gold' is not checked: no server answered list_packages (whm1: ")
    assert f"provisiond: warning: {warnings[0]}" in err
    assert Product.get(Product.name == "starter").package == "gold"


def test_product_remove_is_refused_while_services_use_it(ready):
    order(ready, "USE-1")
    assert ready("job", "cancel", str(Job.get().id))[0] == 0
    assert ready("service", "close", "USE-1")[0] == 0  # a closed service is still its product's
    assert ready("product", "add", "spare", "--panel", "cpanel", "--group", "web", "--package", "pro")[0] == 0
    before = rows()
    code, _, err = ready("product", "remove", "starter")
    assert code == 2 and "product starter is used by 1 services (1 closed)" in err
    assert rows() == before
    code, out, _ = ready("product", "remove", "spare")
    assert code == 0 and out.strip() == "product spare removed"
    assert [p.name for p in Product.select()] == ["starter"]
    assert ready("product", "show", "spare")[0] == 2
