"""The WHM simulator's uapi_cpanel and AutoSSL calls (provisiond/sandbox/cpanel_uapi.py), spoken to
over HTTP, and panel_call reading their two-level answer (WHM's metadata, UAPI's data.uapi)."""

from __future__ import annotations

import importlib.util

import pytest
import requests

from provisiond.config import bundled_dir
from provisiond.sandbox.cpanel import WhmSimulator

TOKEN = "whm-uapi-token"
AUTH = {"Authorization": f"whm root:{TOKEN}"}
USER = "exampleuser12345x"  # 17 characters: the database prefix keeps 16
PREFIX = "exampleuser12345_"

_spec = importlib.util.spec_from_file_location(
    "panel_call_plugin", bundled_dir("roles") / "panel_call" / "action_plugins" / "panel_call.py")
pc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pc)
UAPI_FAILURE = [{"path": "metadata.result", "in": [0], "message": "metadata.reason"},
                {"path": "data.uapi.status", "not_in": [1], "message": "data.uapi.errors"}]


@pytest.fixture(scope="module")
def sim():
    with WhmSimulator(token=TOKEN) as simulator:
        simulator.op_createacct({"username": USER[:16], "domain": "example.com", "plan": "basic",
                                 "password": "Yy2!long-enough-pw"})
        yield simulator


def uapi(sim, module, function, as_user=USER[:16], **args):
    params = {"api.version": 1, "cpanel.user": as_user, "cpanel.module": module, "cpanel.function": function}
    answer = requests.post(f"{sim.url}/json-api/uapi_cpanel", params=params, data=args, headers=AUTH, timeout=5)
    assert answer.status_code == 200
    return answer.json()


def refused(body) -> str:
    assert body["metadata"]["result"] == 1 and body["data"]["uapi"]["status"] == 0, body
    return body["data"]["uapi"]["errors"][0]


def test_an_unknown_cpanel_user_is_refused_by_whm_itself(sim):
    body = uapi(sim, "Email", "list_pops", as_user="nobodyhere")
    assert body["metadata"]["result"] == 0 and "data" not in body
    assert body["metadata"]["reason"] == "The user “nobodyhere” does not exist."


def test_a_mailbox_is_made_once_and_listed(sim):
    made = uapi(sim, "Email", "add_pop", email="Sales", password="Str0ng!pass", quota="250")
    assert made["data"]["uapi"] == {"status": 1, "errors": None, "messages": None, "warnings": None,
                                    "data": "sales+example.com", "metadata": {}}
    assert sim.services[USER[:16]].mailboxes["sales@example.com"]["quota"] == 250
    assert refused(uapi(sim, "Email", "add_pop", email="sales", password="x")) == \
        "The account “sales@example.com” already exists."
    listed = uapi(sim, "Email", "list_pops")["data"]["uapi"]["data"]
    assert [p["email"] for p in listed] == ["sales@example.com", USER[:16]]
    assert listed[-1]["login"] == "Main Account"


@pytest.mark.parametrize("args, error", [
    ({"email": "cpanel", "password": "Str0ng!pass"}, "The email address “cpanel@example.com” is not valid."),
    ({"email": "a b", "password": "Str0ng!pass"}, "The email address “a b@example.com” is not valid."),
    ({"email": "info", "password": ""}, "You must specify a password."),
    ({"email": "info", "password": "Str0ng!pass", "domain": "other.example"},
     f"The account “{USER[:16]}” does not own the domain “other.example”."),
])
def test_add_pop_refusals(sim, args, error):
    assert refused(uapi(sim, "Email", "add_pop", **args)) == error


def test_databases_need_the_accounts_prefix(sim):
    restrictions = uapi(sim, "Mysql", "get_restrictions")["data"]["uapi"]["data"]
    assert restrictions["prefix"] == PREFIX
    assert refused(uapi(sim, "Mysql", "create_database", name="shop")) == \
        f"The name “shop” does not begin with the required prefix “{PREFIX}”."
    assert refused(uapi(sim, "Mysql", "create_database", name=PREFIX)) == \
        f"The name “{PREFIX}” does not begin with the required prefix “{PREFIX}”."
    assert refused(uapi(sim, "Mysql", "create_database", name=PREFIX + "a/b")).endswith(
        "prohibits the slash (/) character in database names.")
    assert uapi(sim, "Mysql", "create_database", name=PREFIX + "shop")["data"]["uapi"]["status"] == 1
    assert refused(uapi(sim, "Mysql", "create_database", name=PREFIX + "shop")) == \
        f"The database “{PREFIX}shop” already exists."
    assert refused(uapi(sim, "Mysql", "create_user", name=PREFIX + "shop", password="short")).startswith(
        "The password you selected cannot be used because it is too weak")
    assert uapi(sim, "Mysql", "create_user", name=PREFIX + "shop", password="Str0ng!pass")["data"]["uapi"]["status"] == 1
    assert refused(uapi(sim, "Mysql", "create_user", name=PREFIX + "shop", password="Str0ng!pass")) == \
        f"The user “{PREFIX}shop” cannot be created because it already exists."
    assert refused(uapi(sim, "Mysql", "set_privileges_on_database", user=PREFIX + "ghost",
                        database=PREFIX + "shop", privileges="ALL PRIVILEGES")).endswith(
        f"does not control a MySQL user named “{PREFIX}ghost”.")
    uapi(sim, "Mysql", "set_privileges_on_database", user=PREFIX + "shop", database=PREFIX + "shop",
         privileges="select,INSERT")
    assert uapi(sim, "Mysql", "get_privileges_on_database", user=PREFIX + "shop",
                database=PREFIX + "shop")["data"]["uapi"]["data"] == ["INSERT", "SELECT"]
    listed = uapi(sim, "Mysql", "list_users")["data"]["uapi"]["data"]
    assert listed == [{"user": PREFIX + "shop", "shortuser": "shop", "databases": [PREFIX + "shop"]}]


def test_autossl_checks_are_refused_unless_the_server_and_the_user_have_autossl(sim):
    def start(user):
        return requests.post(f"{sim.url}/json-api/start_autossl_check_for_one_user",
                             data={"api.version": 1, "username": user}, headers=AUTH, timeout=5).json()["metadata"]
    assert start("ghost")["reason"] == "The user “ghost” does not exist."
    sim.autossl_provider = None
    try:
        assert start(USER[:16])["reason"] == "This system has AutoSSL disabled."
    finally:
        del sim.autossl_provider
    sim.services[USER[:16]].autossl_feature = False
    try:
        assert start(USER[:16])["reason"] == f"The user “{USER[:16]}” does not have the AutoSSL feature enabled."
    finally:
        sim.services[USER[:16]].autossl_feature = True
    sim.services[USER[:16]].autossl_pending = True
    try:
        assert start(USER[:16])["result"] == 1 and sim.services[USER[:16]].autossl_running
        assert start(USER[:16])["reason"].startswith("The command already has an active PIDFile at")
        assert "is running with the process ID" in start(USER[:16])["reason"]
    finally:
        sim.services[USER[:16]].autossl_pending = sim.services[USER[:16]].autossl_running = False
    assert start(USER[:16])["result"] == 1
    hosts = uapi(sim, "SSL", "installed_hosts")["data"]["uapi"]["data"]
    assert hosts[0]["servername"] == "example.com" and hosts[0]["certificate"]["is_self_signed"] == 0


@pytest.mark.parametrize("user, function, message", [
    ("nobodyhere", "list_pops", "The user “nobodyhere” does not exist."),
    (USER[:16], "add_pop", "You must specify an email account name."),
])
def test_panel_call_fails_with_the_level_that_refused(sim, user, function, message):
    module = pc.ActionModule.__new__(pc.ActionModule)  # _call needs no Ansible task
    result = module._call({"url": f"{sim.url}/json-api/uapi_cpanel", "headers": AUTH, "fail_when": UAPI_FAILURE,
                           "params": {"api.version": 1, "cpanel.user": user, "cpanel.module": "Email",
                                      "cpanel.function": function}})
    assert (result["failed"], result["transient"], result["msg"]) == (True, False, message)
