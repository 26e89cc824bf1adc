"""VirtualminSimulator speaks shared/panels/virtualmin.md: remote.cgi with JSON answers."""

import json

import pytest
import requests

from provisiond.sandbox.virtualmin import VirtualminSimulator

AUTH = ("root", "sandbox-pass")
CREATE = {"domain": "example.com", "pass": "S3cret!pw", "email": "owner@example.com",
          "plan": "basic", "dns": "", "web": "", "unix": "", "dir": "", "webmin": ""}


def call(sim, program, auth=AUTH, method="POST", as_json=True, **params):
    query = {"program": program, **({"json": "1"} if as_json else {})}
    if method == "GET":
        return requests.get(f"{sim.url}/virtual-server/remote.cgi", params={**query, **params},
                            auth=auth, timeout=5)
    return requests.post(f"{sim.url}/virtual-server/remote.cgi", params=query, data=params,
                         auth=auth, timeout=5)


def answer(response) -> dict:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"  # as remote.cgi prints it
    return json.loads(response.text)


def ok(response) -> dict:
    body = answer(response)
    assert body["status"] == "success", body
    return body


def failure(response) -> str:
    body = answer(response)
    assert body["status"] == "failure" and body["full_error"].startswith(body["error"])
    return body["error"]


@pytest.fixture(scope="module")
def server():
    with VirtualminSimulator() as simulator:
        yield simulator


@pytest.fixture
def sim(server):
    """One server per module; fresh state per test."""
    server.accounts.clear()
    yield server
    server.accounts.clear()


@pytest.fixture
def example(sim):
    ok(call(sim, "create-domain", **CREATE))
    return sim.accounts["example"]


def info(sim, domain="example.com") -> dict:
    body = ok(call(sim, "list-domains", method="GET", multiline="", domain=domain))
    [item] = body["data"]
    assert item["name"] == domain
    return item["values"]


# -- transport and auth ------------------------------------------------------------------
def test_connection_test(sim):
    assert "create-domain" in ok(call(sim, "list-commands", method="GET"))["output"]


@pytest.mark.parametrize("auth", [("root", "wrong"), ("admin", "sandbox-pass"), None])
def test_bad_login_is_401(sim, auth):
    response = call(sim, "list-commands", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_program_and_missing_program(sim):
    assert call(sim, "no-such-program").text.startswith("ERROR: ")
    assert "program" in call(sim, "").text
    assert requests.get(f"{sim.url}/remote.cgi", auth=AUTH, timeout=5).status_code == 404


def test_without_json_the_raw_output_ends_with_the_exit_status(sim, example):
    assert call(sim, "list-domains", as_json=False, method="GET").text.endswith("Exit status: 0\n")
    text = call(sim, "delete-domain", as_json=False, domain="nowhere.com").text
    assert "does not exist" in text and text.endswith("Exit status: 1\n")


def test_fail_next_gives_one_503(sim):
    sim.fail_next(1)
    assert call(sim, "list-commands").status_code == 503
    ok(call(sim, "list-commands"))


# -- create ------------------------------------------------------------------------------
def test_create(sim, example):
    assert (example.user, example.domain, example.plan, example.email, example.password,
            example.suspended) == ("example", "example.com", "basic", "owner@example.com",
                                   "S3cret!pw", False)
    assert set(example.features) == {"dns", "web", "unix", "dir", "webmin"}


def test_create_with_user_plan_id_and_default_plan(sim):
    ok(call(sim, "create-domain", **{**CREATE, "user": "Alice", "plan": "1002"}))
    assert sim.accounts["alice"].plan == "pro"
    params = {k: v for k, v in CREATE.items() if k != "plan"}
    ok(call(sim, "create-domain", **{**params, "domain": "other.org"}))
    assert sim.accounts["other"].plan == "Default Plan"


def test_derived_username_falls_back_to_the_domain(sim, example):
    ok(call(sim, "create-domain", **{**CREATE, "domain": "example.org"}))
    assert sim.accounts["example.org"].domain == "example.org"


@pytest.mark.parametrize("changes, message", [
    ({"domain": None}, "Missing domain name"),
    ({"pass": None}, "Missing password"),
    ({"plan": "gold"}, "Plan gold does not exist"),
    ({"dns": "1"}, "Unknown option 1"),
    ({"colour": "blue"}, "Unknown option --colour"),
    ({"dns": None, "web": None, "unix": None, "dir": None, "webmin": None},
     "No virtual server features enabled"),
    ({"domain": "not_a_domain"}, "'not_a_domain' is not a valid domain name"),
    ({"email": "nobody"}, "Invalid email address"),
    ({"user": "root"}, "The username root cannot be used"),
    ({"user": "mysql"}, "A Unix user named mysql already exists"),
    ({"user": "bad user"}, "'bad user' is not a valid Unix username"),
])
def test_create_rejects(sim, changes, message):
    params = {k: v for k, v in {**CREATE, **changes}.items() if v is not None}
    assert failure(call(sim, "create-domain", **params)) == message
    assert sim.accounts == {}


def test_an_empty_value_becomes_a_bare_flag(sim):
    # domain= turns into a bare --domain, which swallows the next option as its value.
    assert failure(call(sim, "create-domain", **{**CREATE, "domain": ""})).startswith("Unknown option")
    assert sim.accounts == {}


def test_create_refuses_duplicates(sim, example):
    assert failure(call(sim, "create-domain", **CREATE)) == "You are already hosting this domain"
    assert failure(call(sim, "create-domain", **{**CREATE, "domain": "new.com", "user": "example"})) \
        == "A Unix user named example already exists"
    assert list(sim.accounts) == ["example"]


# -- suspend, unsuspend, delete ----------------------------------------------------------
def test_disable_and_enable(sim, example):
    ok(call(sim, "disable-domain", domain="example.com", why="Unpaid invoice"))
    assert example.suspended and example.why == "Unpaid invoice"
    assert info(sim)["disabled"] == ["Manually (Unpaid invoice)"]
    assert failure(call(sim, "disable-domain", domain="example.com")) == \
        "Virtual server example.com is already disabled"
    ok(call(sim, "enable-domain", domain="example.com"))
    assert not example.suspended and "disabled" not in info(sim)
    assert failure(call(sim, "enable-domain", domain="example.com")) == \
        "Virtual server example.com is not disabled"


@pytest.mark.parametrize("program, extra", [("disable-domain", {}), ("enable-domain", {}),
                                            ("delete-domain", {}), ("modify-domain", {"pass": "x"})])
def test_unknown_domain(sim, program, extra):
    assert failure(call(sim, program, domain="nowhere.com", **extra)) == \
        "Virtual server nowhere.com does not exist"


def test_missing_domain(sim, example):
    assert failure(call(sim, "disable-domain")) == "No domain specified"
    assert failure(call(sim, "delete-domain")) == "No users or domains specified"
    assert failure(call(sim, "enable-domain", domain="example.com", why="x")) == \
        "Unknown parameter --why"


def test_delete(sim, example):
    ok(call(sim, "delete-domain", domain="example.com"))
    assert sim.accounts == {}


# -- password, plan ----------------------------------------------------------------------
def test_modify_password_and_plan(sim, example):
    ok(call(sim, "modify-domain", domain="example.com", **{"pass": "N3w!pass"}))
    assert example.password == "N3w!pass"
    ok(call(sim, "modify-domain", domain="example.com", **{"apply-plan": "business"}))
    assert example.plan == "business" and info(sim)["plan"] == ["business"]


def test_modify_rejects(sim, example):
    assert failure(call(sim, "modify-domain", domain="example.com", **{"apply-plan": "gold"})) == \
        "Plan gold does not exist"
    assert failure(call(sim, "modify-domain", domain="example.com")) == "Nothing to do"
    assert example.plan == "basic"


# -- reads -------------------------------------------------------------------------------
def test_list_domains(sim, example):
    values = info(sim)
    assert values["username"] == ["example"] and values["plan"] == ["basic"]
    assert values["contact_email"] == ["owner@example.com"]
    assert failure(call(sim, "list-domains", multiline="", domain="nowhere.com")) == \
        "Virtual server nowhere.com does not exist"
    assert failure(call(sim, "list-domains", multiline="1")) == "Unknown parameter 1"
    assert ok(call(sim, "list-domains", **{"name-only": ""}))["output"] == "example.com\n"


def test_list_plans(sim):
    assert "basic" in ok(call(sim, "list-plans", method="GET"))["output"]
    data = ok(call(sim, "list-plans", multiline=""))["data"]
    assert {item["values"]["name"][0] for item in data} == {"Default Plan", "basic", "pro", "business"}


def test_create_login_link_prints_one_session_url_for_the_owner_as_the_program_does(sim):
    ok(call(sim, "create-domain", **CREATE))
    user = next(iter(sim.accounts))
    by_user = ok(call(sim, "create-login-link", user=user))["output"]
    by_domain = ok(call(sim, "create-login-link", domain="example.com"))["output"]
    for output in (by_user, by_domain):
        url, session = output.rstrip("\n").split("/session_login.cgi?session=")
        assert url == f"https://{sim.host}:{sim.port}" and sim.sessions[session] == user
    assert by_user != by_domain  # a new session each time
    assert failure(call(sim, "create-login-link", user="ghost")) == "No virtual server owned by ghost found"
    assert failure(call(sim, "create-login-link", domain="nope.com")) == "No virtual server named nope.com found"
    assert failure(call(sim, "create-login-link")) == "One of --domain or --user must be provided"
    sim.accounts[user].features = ("unix", "dir", "web")
    assert failure(call(sim, "create-login-link", user=user)) == "Virtual server example.com has no Webmin login"
