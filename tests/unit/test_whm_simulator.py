"""WhmSimulator against shared/panels/cpanel.md, spoken to with `requests` as the contract says."""

from __future__ import annotations

import pytest
import requests

from provisiond.sandbox.cpanel import WhmSimulator

TOKEN = "whm-test-token"
AUTH = f"whm root:{TOKEN}"
DENIED = {"cpanelresult": {"apiversion": "2", "error": "Access denied",
                           "data": {"reason": "Access denied", "result": "0"}, "type": "text"}}


@pytest.fixture
def sim():
    with WhmSimulator(token=TOKEN, plans=("basic", "pro")) as simulator:
        yield simulator


def call(sim, function, auth=AUTH, method="GET", api_version="1", **params):
    headers = {} if auth is None else {"Authorization": auth}
    if api_version is not None:
        params["api.version"] = api_version
    url = f"{sim.url}/json-api/{function}"
    if method == "POST":
        return requests.post(url, data=params, headers=headers, timeout=5)
    return requests.get(url, params=params, headers=headers, timeout=5)


def ok(answer, command):
    assert answer.status_code == 200
    body = answer.json()
    assert body["metadata"]["command"] == command and body["metadata"]["version"] == 1
    return body


def create(sim, username="bob", domain="bob.example.com", plan="basic", **extra):
    return call(sim, "createacct", username=username, domain=domain, plan=plan,
                password="S3cret!pass", contactemail=f"{username}@example.com", **extra)


# -- auth and envelope -----------------------------------------------------------------------
@pytest.mark.parametrize("auth", [None, "", "whm root:wrong", "whm admin:" + TOKEN,
                                  f"Bearer {TOKEN}", f"Basic root:{TOKEN}", f"whm root:{TOKEN}x",
                                  TOKEN])
def test_bad_or_missing_token_is_403_access_denied(sim, auth):
    answer = call(sim, "version", auth=auth)
    assert answer.status_code == 403
    assert answer.json() == DENIED
    denied = call(sim, "createacct", auth=auth, username="bob", domain="bob.example.com",
                  plan="basic", password="S3cret!pass")
    assert denied.status_code == 403 and sim.accounts == {}


@pytest.mark.parametrize("scheme", ["whm", "WHM", "Whm"])
def test_scheme_word_is_case_insensitive(sim, scheme):
    body = ok(call(sim, "version", auth=f"{scheme} root:{TOKEN}"), "version")
    assert body["metadata"]["result"] == 1 and body["data"]["version"]


def test_without_api_version_1_the_call_fails_in_the_envelope(sim):
    body = ok(call(sim, "version", api_version=None), "version")
    assert body["metadata"]["result"] == 0


def test_unknown_function_fails_with_http_200(sim):
    body = ok(call(sim, "frobnicate"), "frobnicate")
    assert body["metadata"]["result"] == 0 and "frobnicate" in body["metadata"]["reason"]


# -- createacct ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_createacct_success_and_state(sim, method):
    answer = call(sim, "createacct", method=method, username="bob", domain="Bob.Example.com",
                  plan="pro", password="S3cret!pass", contactemail="bob@example.com")
    body = ok(answer, "createacct")
    assert body["metadata"]["result"] == 1 and body["metadata"]["reason"] == "Account Creation Ok"
    assert body["data"]["package"] == "pro" and body["data"]["nameserver"]
    account = sim.accounts["bob"]
    assert (account.domain, account.plan, account.email, account.password, account.suspended) == (
        "bob.example.com", "pro", "bob@example.com", "S3cret!pass", False)


@pytest.mark.parametrize("change, says", [
    ({"username": "bob"}, "a group for that username already exists"),
    ({"username": "bob2", "domain": "bob.example.com"}, "bob.example.com"),
    ({"username": "bob2", "domain": "BOB.example.com"}, "bob.example.com"),
    ({"username": "amy", "domain": "amy.example.com", "plan": "gold"}, "gold"),
    ({"username": "1amy"}, "begin with a number"),
    ({"username": "testamy"}, "test"),
    ({"username": "mypassword"}, "assword"),
    ({"username": "root"}, "reserved"),
    ({"username": "cpanel"}, "reserved"),
    ({"username": "amy_x"}, "lowercase letters and digits"),
    ({"username": "amy\n"}, "lowercase letters and digits"),
    ({"username": "a" * 17}, "16 characters"),
    ({"username": ""}, "No username"),
    ({"username": "amy", "domain": ""}, "No domain"),
    ({"username": "amy", "domain": "amy.example.com", "password": ""}, "No password"),
])
def test_createacct_failures_are_result_0_with_http_200(sim, change, says):
    ok(create(sim), "createacct")
    params = {"username": "amy", "domain": "amy.example.com", "plan": "basic",
              "password": "S3cret!pass", **change}
    body = ok(call(sim, "createacct", **params), "createacct")
    assert body["metadata"]["result"] == 0
    assert says in body["metadata"]["reason"]
    assert set(sim.accounts) == {"bob"}


def test_sixteen_character_username_is_accepted(sim):
    assert ok(create(sim, username="a" * 16), "createacct")["metadata"]["result"] == 1


# -- accountsummary and state changes --------------------------------------------------------
def summary(sim, **by):
    body = ok(call(sim, "accountsummary", **by), "accountsummary")
    return body["metadata"]["result"], (body.get("data") or {}).get("acct", [None])[0]


def test_accountsummary_by_user_and_by_domain(sim):
    create(sim)
    for by in ({"user": "bob"}, {"domain": "bob.example.com"}, {"domain": "BOB.example.com"}):
        result, acct = summary(sim, **by)
        assert result == 1
        assert (acct["user"], acct["domain"], acct["plan"], acct["suspended"],
                acct["suspendreason"]) == ("bob", "bob.example.com", "basic", 0, "not suspended")
        assert acct["email"] == "bob@example.com" and acct["unix_startdate"] > 0


def test_suspend_unsuspend_changepackage_passwd_removeacct_change_state(sim):
    create(sim)
    assert ok(call(sim, "suspendacct", user="bob", reason="overdue"), "suspendacct")["metadata"]["result"] == 1
    assert summary(sim, user="bob")[1]["suspended"] == 1
    assert summary(sim, user="bob")[1]["suspendreason"] == "overdue"
    assert ok(call(sim, "unsuspendacct", user="bob"), "unsuspendacct")["metadata"]["result"] == 1
    assert summary(sim, user="bob")[1]["suspended"] == 0
    assert summary(sim, user="bob")[1]["suspendreason"] == "not suspended"

    body = ok(call(sim, "changepackage", user="bob", pkg="pro"), "changepackage")
    assert body["metadata"]["result"] == 1 and "from basic to pro" in body["metadata"]["output"]["raw"]
    assert summary(sim, user="bob")[1]["plan"] == "pro"
    body = ok(call(sim, "changepackage", user="bob", pkg="gold"), "changepackage")
    assert body["metadata"]["result"] == 0 and summary(sim, user="bob")[1]["plan"] == "pro"

    body = ok(call(sim, "passwd", user="bob", password="N3w!pass"), "passwd")
    assert body["metadata"]["result"] == 1 and body["data"] == {"app": ["ftp"]}
    assert sim.accounts["bob"].password == "N3w!pass"

    body = ok(call(sim, "removeacct", username="bob"), "removeacct")
    assert body["metadata"]["result"] == 1 and "bob" in body["metadata"]["reason"]
    assert sim.accounts == {} and summary(sim, user="bob")[0] == 0


def test_removeacct_takes_the_deprecated_user_alias(sim):
    create(sim)
    assert ok(call(sim, "removeacct", user="bob"), "removeacct")["metadata"]["result"] == 1
    assert "bob" not in sim.accounts


@pytest.mark.parametrize("function, params", [
    ("accountsummary", {"user": "ghost"}),
    ("accountsummary", {"domain": "ghost.example.com"}),
    ("suspendacct", {"user": "ghost", "reason": "x"}),
    ("unsuspendacct", {"user": "ghost"}),
    ("removeacct", {"username": "ghost"}),
    ("changepackage", {"user": "ghost", "pkg": "basic"}),
    ("passwd", {"user": "ghost", "password": "N3w!pass"}),
    ("editquota", {"user": "ghost", "quota": "100"}),
    ("limitbw", {"user": "ghost", "bwlimit": "100"}),
])
def test_unknown_user_is_result_0_saying_it_does_not_exist(sim, function, params):
    create(sim)
    body = ok(call(sim, function, **params), function)
    assert body["metadata"]["result"] == 0 and "does not exist" in body["metadata"]["reason"]
    assert sim.accounts["bob"].suspended is False and sim.accounts["bob"].plan == "basic"


def test_listaccts_and_listpkgs(sim):
    create(sim)
    create(sim, username="amy", domain="amy.example.com", plan="pro")
    accts = ok(call(sim, "listaccts"), "listaccts")["data"]["acct"]
    assert sorted(a["user"] for a in accts) == ["amy", "bob"]
    only = ok(call(sim, "listaccts", search="amy.example.com", searchtype="domain",
                   searchmethod="exact"), "listaccts")["data"]["acct"]
    assert [a["user"] for a in only] == ["amy"]
    pkgs = ok(call(sim, "listpkgs"), "listpkgs")["data"]["pkg"]
    assert [p["name"] for p in pkgs] == ["basic", "pro"]


def test_listaccts_want_keeps_only_the_returns_asked_for(sim):
    create(sim)
    sim.accounts["bob"].email = ""  # an account made without a contact address
    accts = ok(call(sim, "listaccts", want="user,domain,plan,suspended,email"), "listaccts")["data"]["acct"]
    assert accts == [{"user": "bob", "domain": "bob.example.com", "plan": "basic", "suspended": 0,
                      "email": "*unknown*"}]
    by_plan = ok(call(sim, "listaccts", search="^pro$", searchtype="package"), "listaccts")["data"]["acct"]
    assert by_plan == []


def disklimit(sim, user):
    return ok(call(sim, "accountsummary", user=user), "accountsummary")["data"]["acct"][0]["disklimit"]


@pytest.mark.parametrize("extra, expected", [
    ({"quota": "0"}, "unlimited"), ({"quota": "unlimited"}, "unlimited"),
    ({"quota": "2048"}, "2048M"), ({}, "unlimited")])
def test_createacct_quota_zero_is_unlimited_as_whm_documents(sim, extra, expected):
    ok(create(sim, **extra), "createacct")
    assert disklimit(sim, "bob") == expected
    assert sim.accounts["bob"].quota == (2048 if expected == "2048M" else 0)


def test_createacct_limits_default_to_the_plans_and_zero_bwlimit_is_unlimited():
    with WhmSimulator(token=TOKEN, plans={"small": {"QUOTA": 500, "BWLIMIT": 1000}}) as sim:
        ok(create(sim, plan="small"), "createacct")
        ok(create(sim, username="amy", domain="amy.example.com", plan="small", quota=0, bwlimit=0),
           "createacct")
        assert (sim.accounts["bob"].quota, sim.accounts["bob"].bwlimit) == (500, 1000)
        assert (sim.accounts["amy"].quota, sim.accounts["amy"].bwlimit) == (0, 0)
        pkg = ok(call(sim, "listpkgs"), "listpkgs")["data"]["pkg"][0]
        assert (pkg["name"], pkg["QUOTA"], pkg["BWLIMIT"]) == ("small", "500", "1000")


@pytest.mark.parametrize("extra", [{"quota": "-1"}, {"quota": "1000000"}, {"bwlimit": "lots"}])
def test_createacct_refuses_a_limit_outside_the_documented_range(sim, extra):
    body = ok(create(sim, **extra), "createacct")
    assert body["metadata"]["result"] == 0 and next(iter(extra)) in body["metadata"]["reason"]
    assert sim.accounts == {}


def test_fail_next_answers_503_once_then_normally(sim):
    sim.fail_next(1)
    first = call(sim, "version")
    assert first.status_code == 503
    assert ok(call(sim, "version"), "version")["metadata"]["result"] == 1
    sim.fail_next(1)
    assert create(sim).status_code == 503 and sim.accounts == {}
    assert ok(create(sim), "createacct")["metadata"]["result"] == 1


def test_create_user_session_answers_a_single_use_cpanel_url_as_whm_documents(sim):
    create(sim)
    body = ok(call(sim, "create_user_session", user="bob", service="cpaneld"), "create_user_session")
    data = body["data"]
    assert body["metadata"]["result"] == 1
    assert data["cp_security_token"].startswith("/cpsess") and len(data["cp_security_token"]) == 17
    assert data["session"].startswith("bob:") and sim.sessions[data["session"]] == "bob"
    assert data["url"] == f"https://127.0.0.1:2083{data['cp_security_token']}/login/?session={data['session']}"
    refused = ok(call(sim, "create_user_session", user="bob", service="ftp"), "create_user_session")
    assert refused["metadata"]["result"] == 0 and refused["metadata"]["reason"] == "Invalid service."
    missing = ok(call(sim, "create_user_session", user="nobody1", service="cpaneld"), "create_user_session")
    assert missing["metadata"]["result"] == 0


# -- points where the simulator used to differ from the vendor's pages (issue 10 item 7) --------
def test_createacct_lowercases_the_username_as_whm_documents(sim):
    """createacct: "The system will automatically convert this value to all lowercase letters"."""
    body = ok(create(sim, username="Carol", domain="carol.example.com"), "createacct")
    assert body["metadata"]["result"] == 1, body
    assert list(sim.accounts) == ["carol"] and summary(sim, user="carol")[0] == 1


def test_suspendacct_without_a_reason_records_the_documented_default_unknown(sim):
    create(sim)
    assert ok(call(sim, "suspendacct", user="bob"), "suspendacct")["metadata"]["result"] == 1
    acct = summary(sim, user="bob")[1]
    assert (acct["suspended"], acct["suspendreason"], acct["is_locked"]) == (1, "Unknown", 0)
    assert acct["suspendtime"] > 0


def test_suspendacct_disallowun_locks_the_suspension_until_unsuspended(sim):
    create(sim)
    call(sim, "suspendacct", user="bob", reason="abuse", disallowun=1)
    assert summary(sim, user="bob")[1]["is_locked"] == 1
    call(sim, "unsuspendacct", user="bob")
    acct = summary(sim, user="bob")[1]
    assert (acct["suspended"], acct["is_locked"], acct["suspendtime"]) == (0, 0, 0)


def test_listaccts_without_search_answers_every_account_with_the_documented_fields(sim):
    create(sim)
    create(sim, username="amy", domain="amy.example.com", plan="pro")
    call(sim, "suspendacct", user="amy", reason="overdue")
    accts = {a["user"]: a for a in ok(call(sim, "listaccts"), "listaccts")["data"]["acct"]}
    assert {k: accts["amy"][k] for k in ("domain", "plan", "suspended", "email")} == \
        {"domain": "amy.example.com", "plan": "pro", "suspended": 1, "email": "amy@example.com"}
    assert accts["bob"]["suspended"] == 0
    by_owner = ok(call(sim, "listaccts", search="root", searchtype="owner", searchmethod="exact"),
                  "listaccts")["data"]["acct"]
    assert sorted(a["user"] for a in by_owner) == ["amy", "bob"]


# -- scale: changepackage gives the plan's limits, editquota and limitbw the account's own ------
def test_changepackage_sets_the_plans_limits_and_editquota_limitbw_set_the_accounts(sim):
    sim.plans["pro"] = {"QUOTA": 10000, "BWLIMIT": 50000}
    create(sim, quota="2048", bwlimit="4096")
    ok(call(sim, "changepackage", user="bob", pkg="pro"), "changepackage")
    assert (sim.accounts["bob"].quota, sim.accounts["bob"].bwlimit) == (10000, 50000)  # the custom ones gone

    body = ok(call(sim, "editquota", method="POST", user="bob", quota="512"), "editquota")
    assert (body["metadata"]["result"], body["metadata"]["reason"]) == (1, "Set quota for bob.")
    assert summary(sim, user="bob")[1]["disklimit"] == "512M"
    body = ok(call(sim, "limitbw", method="POST", user="bob", bwlimit="5"), "limitbw")
    assert body["metadata"]["result"] == 1
    assert body["data"]["bwlimits"][0]["bwlimit"] == 5242880 and body["data"]["bwlimits"][0]["unlimited"] == 0
    body = ok(call(sim, "limitbw", user="bob"), "limitbw")  # bwlimit defaults to unlimited
    assert body["data"]["bwlimits"][0]["unlimited"] == 1 and sim.accounts["bob"].bwlimit == 0
    ok(call(sim, "editquota", user="bob", quota="unlimited"), "editquota")
    assert summary(sim, user="bob")[1]["disklimit"] == "unlimited"


@pytest.mark.parametrize("function, params", [("editquota", {"user": "bob"}),
                                              ("editquota", {"user": "bob", "quota": "-1"}),
                                              ("editquota", {"user": "bob", "quota": "lots"}),
                                              ("limitbw", {"user": "bob", "bwlimit": "-5"})])
def test_bad_limits_are_result_0_and_change_nothing(sim, function, params):
    create(sim, quota="2048", bwlimit="4096")
    body = ok(call(sim, function, **params), function)
    assert body["metadata"]["result"] == 0 and body["metadata"]["reason"]
    assert (sim.accounts["bob"].quota, sim.accounts["bob"].bwlimit) == (2048, 4096)
