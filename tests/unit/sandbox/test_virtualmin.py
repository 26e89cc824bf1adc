"""VirtualminSimulator follows virtualmin-gpl: remote.cgi, its JSON envelope and the programs' words."""

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
    assert response.headers["Content-Type"] == "application/json"  # remote.cgi l.82
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
    server.sub_servers.clear()
    yield server
    server.accounts.clear()
    server.sub_servers.clear()


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
    # A list- command: under json its output is parsed as a multiline listing, never "output".
    body = ok(call(sim, "list-commands", method="GET"))
    assert "output" not in body and body["data"]
    assert "create-domain" in call(sim, "list-commands", as_json=False).text


@pytest.mark.parametrize("auth", [("root", "wrong"), ("admin", "sandbox-pass"), None])
def test_bad_login_is_401(sim, auth):
    response = call(sim, "list-commands", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_program_and_missing_program(sim):
    # api_error: text/plain even with json, and status "error", not "failure" (remote.cgi l.118)
    for program, words in (("no-such-program", "Remote program no-such-program does not exist"),
                           ("bad/name", "Invalid remote program name")):
        response = call(sim, program)
        assert response.headers["Content-Type"] == "text/plain"
        assert json.loads(response.text) == {"status": "error", "error": words}
        assert call(sim, program, as_json=False).text == f"ERROR: {words}\n"
    assert "program" in call(sim, "").text
    assert requests.get(f"{sim.url}/remote.cgi", auth=AUTH, timeout=5).status_code == 404


def test_without_json_the_raw_output_ends_with_the_wait_status(sim, example):
    # remote.cgi prints Perl's $? after waitpid: exit(1) is 256.
    assert call(sim, "list-domains", as_json=False, method="GET").text.endswith("Exit status: 0\n")
    text = call(sim, "delete-domain", as_json=False, domain="nowhere.com").text
    assert text.startswith("Virtual server nowhere.com does not exist\n\n")
    assert text.endswith("Exit status: 256\n")


def test_json_is_pretty_unless_minified(sim):
    assert call(sim, "list-commands").text.startswith('{\n   "')
    minified = call(sim, "list-commands", as_json=False, json="minified").text
    assert minified.startswith('{"command":"list-commands"')


def test_arguments_keep_the_order_sent_and_multi_line_values_split(sim):
    # dns=1 becomes "--dns 1": the program stops at the stray value.
    assert failure(call(sim, "create-domain", **{**CREATE, "dns": "1"})) == "Unknown parameter 1"
    assert failure(call(sim, "disable-domain", domain="example.com\n--bogus")) == \
        "Unknown parameter --bogus"


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
    ({"plan": "gold"}, "Unknown plan name"),
    ({"colour": "blue"}, "Unknown parameter --colour"),
    ({"dns": None, "web": None, "unix": None, "dir": None, "webmin": None},
     "No virtual server features enabled"),
    ({"domain": "bad domain.com"},
     "Domain names cannot include anything other than letters, numbers, dots, and dashes"),
    ({"domain": "www.example.com"}, "The domain name does not need to have www at the start"),
    ({"domain": "a..example.com"}, "Domain names cannot contain consecutive dots"),
    ({"email": "nobody"}, "--email must be followed by a valid email address"),
    ({"user": "root"}, "The specified administration user already exists"),
    ({"user": "mysql"}, "The specified administration user already exists"),
    ({"user": "bad user"}, "Missing or invalid administrator username"),
])
def test_create_rejects(sim, changes, message):
    params = {k: v for k, v in {**CREATE, **changes}.items() if v is not None}
    assert failure(call(sim, "create-domain", **params)) == message
    assert sim.accounts == {}


def test_an_empty_value_becomes_a_bare_flag(sim):
    # domain= turns into a bare --domain, which swallows the next option (--pass) as its value;
    # the password itself is then an unknown parameter, named in the error.
    assert failure(call(sim, "create-domain", **{**CREATE, "domain": ""})) == \
        f"Unknown parameter {CREATE['pass']}"
    assert sim.accounts == {}


def test_an_underscore_domain_is_valid_as_virtualmin_says(sim):
    ok(call(sim, "create-domain", **{**CREATE, "domain": "not_a_domain"}))
    assert sim.accounts["not_a_domain"].domain == "not_a_domain"


def test_create_refuses_duplicates(sim, example):
    assert failure(call(sim, "create-domain", **CREATE)) == "You are already hosting this domain"
    assert failure(call(sim, "create-domain", **{**CREATE, "domain": "new.com", "user": "example"})) \
        == "The specified administration user already exists"
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


@pytest.mark.parametrize("program, extra, stop", [
    ("disable-domain", {}, ""), ("enable-domain", {}, ""), ("delete-domain", {}, ""),
    ("list-domains", {}, ""), ("modify-domain", {"pass": "x"}, ".")])  # modify-domain.pl l.439
def test_unknown_domain(sim, program, extra, stop):
    assert failure(call(sim, program, domain="nowhere.com", **extra)) == \
        f"Virtual server nowhere.com does not exist{stop}"


def test_unknown_user(sim):
    assert failure(call(sim, "delete-domain", user="ghost")) == "No top-level domain owned by ghost exists"
    assert failure(call(sim, "list-domains", user="ghost")) == "No top-level domain owned by ghost exists"


def test_missing_domain(sim, example):
    assert failure(call(sim, "disable-domain")) == "No domain specified"
    assert failure(call(sim, "delete-domain")) == "No users or domains specified"
    assert failure(call(sim, "enable-domain", domain="example.com", why="x")) == \
        "Unknown parameter --why"


def test_delete(sim, example):
    sim.add_sub_server("example.com", "shop.example.com")
    output = ok(call(sim, "delete-domain", domain="example.com"))["output"]
    assert output == "Deleting virtual server example.com ..\n.. deleted\n\n"
    assert sim.accounts == {} and sim.sub_servers == {}  # its sub-servers went with it


# -- password, plan ----------------------------------------------------------------------
def test_modify_password_and_plan(sim, example):
    ok(call(sim, "modify-domain", domain="example.com", **{"pass": "N3w!pass"}))
    assert example.password == "N3w!pass"
    ok(call(sim, "modify-domain", domain="example.com", **{"apply-plan": "business"}))
    assert example.plan == "business" and info(sim)["plan"] == ["business"]


def test_modify_with_an_unknown_plan_succeeds_and_changes_nothing(sim, example):
    # modify-domain.pl l.310-323: a plan that matches no name or ID is silently ignored.
    body = ok(call(sim, "modify-domain", domain="example.com", **{"apply-plan": "gold"}))
    assert body["output"].endswith("All done\n")
    assert example.plan == "basic"
    ok(call(sim, "modify-domain", domain="example.com"))  # nothing asked: still "All done"
    assert failure(call(sim, "modify-domain", domain="example.com", email="nobody")) == \
        "Invalid email address nobody"


# -- reads -------------------------------------------------------------------------------
def test_list_domains(sim, example):
    values = info(sim)
    assert values["username"] == ["example"] and values["plan"] == ["basic"]
    assert values["contact_email"] == ["owner@example.com"]
    assert failure(call(sim, "list-domains", multiline="", domain="nowhere.com")) == \
        "Virtual server nowhere.com does not exist"
    assert failure(call(sim, "list-domains", multiline="1")) == "Unknown parameter 1"
    # json forces multiline into the conversion: a name-only listing comes back as data.
    assert ok(call(sim, "list-domains", **{"name-only": ""}))["data"] == \
        [{"name": "example.com", "values": {}}]
    text = call(sim, "list-domains", as_json=False, **{"name-only": ""}).text
    assert text == "example.com\n\nExit status: 0\n"


def test_list_domains_toplevel_and_contact_email(sim, example):
    sim.add_sub_server("example.com", "shop.example.com")
    ok(call(sim, "create-domain", **{**CREATE, "domain": "quiet.org", "email": None}))
    data = ok(call(sim, "list-domains", multiline=""))["data"]
    assert [item["name"] for item in data] == ["example.com", "shop.example.com", "quiet.org"]
    assert data[1]["values"]["type"] == ["Sub-server"]
    assert data[1]["values"]["parent_domain"] == ["example.com"]
    tops = ok(call(sim, "list-domains", multiline="", toplevel=""))["data"]
    assert [item["name"] for item in tops] == ["example.com", "quiet.org"]
    # compute_emailto: without an address and without mail, the owner at the host name
    assert tops[1]["values"]["contact_email"] == [f"quiet@{sim.hostname}"]
    assert tops[0]["values"]["password"] == ["S3cret!pw"]  # the master admin sees it
    ok(call(sim, "modify-domain", domain="quiet.org", **{"apply-plan": "pro"}))
    on_pro = ok(call(sim, "list-domains", plan="pro", **{"name-only": ""}))["data"]
    assert [item["name"] for item in on_pro] == ["quiet.org"]
    assert failure(call(sim, "list-domains", plan="gold")) == "No plan with name or ID gold found"


def test_list_plans(sim):
    assert "basic" in call(sim, "list-plans", method="GET", as_json=False).text
    assert ok(call(sim, "list-plans", name="pro", multiline=""))["data"][0]["values"]["name"] == ["pro"]
    # json alone does not make the program print its multiline form: the table is parsed.
    assert ok(call(sim, "list-plans", name="pro"))["data"][0]["name"].startswith("ID    ")
    assert failure(call(sim, "list-plans", name="gold")) == "No plan with name gold was found"
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
