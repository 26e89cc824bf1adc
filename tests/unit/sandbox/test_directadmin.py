"""DirectAdminSimulator follows DirectAdmin's Legacy API docs: CMD_API_* over Basic auth."""

import html
import urllib.parse

import pytest
import requests

from provisiond.sandbox.directadmin import NO_AUTHORITY, DirectAdminSimulator

AUTH = ("admin", "sandbox-pass")
CREATE = {"action": "create", "add": "Submit", "username": "alice1", "email": "a@example.com",
          "passwd": "S3cret!pw", "passwd2": "S3cret!pw", "domain": "example.com",
          "package": "basic", "ip": "shared", "notify": "no"}


def call(sim, name, auth=AUTH, method="POST", **params):
    if method == "GET":
        return requests.get(f"{sim.url}/CMD_API_{name}", params=params, auth=auth, timeout=5)
    return requests.post(f"{sim.url}/CMD_API_{name}", data=params, auth=auth, timeout=5)


def answer(response) -> dict:
    """The client side of the contract: HTML-unescape, then parse as a query string."""
    assert response.status_code == 200
    assert "text/html" not in response.headers["Content-Type"]
    return urllib.parse.parse_qs(html.unescape(response.text), keep_blank_values=True)


def ok(response) -> dict:
    parsed = answer(response)
    assert parsed["error"] == ["0"], parsed
    return parsed


def error(response) -> str:
    parsed = answer(response)
    assert parsed["error"] == ["1"], parsed
    return parsed["text"][0] + " / " + parsed["details"][0]


@pytest.fixture(scope="module")
def server():
    with DirectAdminSimulator() as simulator:
        yield simulator


@pytest.fixture
def sim(server):
    """One server per module (stopping one takes half a second); fresh state per test.

    Tests change per-server knobs with monkeypatch, which puts them back afterwards."""
    server.accounts.clear()
    yield server
    server.accounts.clear()


@pytest.fixture
def alice(sim):
    ok(call(sim, "ACCOUNT_USER", **CREATE))
    return sim.accounts["alice1"]


# -- transport and auth ------------------------------------------------------------------
def test_login_test(sim):
    assert ok(call(sim, "LOGIN_TEST", method="GET"))["text"] == ["Login OK"]


@pytest.mark.parametrize("auth", [("admin", "wrong"), ("root", "sandbox-pass"), None])
def test_bad_login_answers_the_html_login_page(sim, auth):
    response = call(sim, "LOGIN_TEST", auth=auth, method="GET")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "DirectAdmin Login" in response.text


def test_login_key_is_accepted_as_the_password(sim, monkeypatch):
    monkeypatch.setattr(sim, "login_key", "key123")
    ok(call(sim, "LOGIN_TEST", auth=("admin", "key123")))
    ok(call(sim, "LOGIN_TEST", auth=AUTH))


def test_unknown_command_is_outside_the_authority_level(sim):
    assert error(call(sim, "NO_SUCH_THING")).startswith(NO_AUTHORITY)


def test_fail_next_gives_one_503(sim):
    sim.fail_next(1)
    assert call(sim, "LOGIN_TEST").status_code == 503
    ok(call(sim, "LOGIN_TEST"))


# -- create ------------------------------------------------------------------------------
def test_create(sim, alice):
    assert (alice.user, alice.domain, alice.package, alice.email, alice.password, alice.ip,
            alice.suspended) == ("alice1", "example.com", "basic", "a@example.com", "S3cret!pw",
                                 "127.0.0.1", False)


def test_create_json_answer(sim):
    response = call(sim, "ACCOUNT_USER", json="yes", **CREATE)
    assert response.status_code == 200
    assert response.json()["success"] == "User alice1 created"


def test_create_json_failure_is_non_2xx(sim, alice):
    response = call(sim, "ACCOUNT_USER", json="yes", **CREATE)
    assert response.status_code == 400
    assert response.json()["error"] and "already exists" in response.json()["result"]


@pytest.mark.parametrize("changes, fragment", [
    ({"username": "Alice1"}, "lowercase"),
    ({"username": "1alice"}, "starting with a letter"),
    ({"username": "al-ice"}, "lowercase"),
    ({"username": "abc"}, "4 to 8"),
    ({"username": "abcdefghi"}, "4 to 8"),
    ({"passwd2": "other"}, "Passwords do not match"),
    ({"package": "gold"}, "package gold does not exist"),
    ({"email": "not-an-email"}, "Invalid email"),
    ({"domain": "no_domain"}, "Invalid domain"),
    ({"ip": "10.9.9.9"}, "not in your list of IPs"),
    ({"action": "modify"}, "action=create"),
    ({"add": ""}, "add=Submit"),
    ({"username": "admin"}, "already exists"),
    ({"notify": "maybe"}, "notify"),
])
def test_create_rejects(sim, changes, fragment):
    assert fragment in error(call(sim, "ACCOUNT_USER", **{**CREATE, **changes}))
    assert sim.accounts == {}


@pytest.mark.parametrize("field", ["username", "email", "passwd", "passwd2", "domain", "package", "ip"])
def test_create_requires_every_field(sim, field):
    params = {k: v for k, v in CREATE.items() if k != field}
    assert field in error(call(sim, "ACCOUNT_USER", **params))


def test_create_refuses_duplicate_user_and_domain(sim, alice):
    assert "already exists" in error(call(sim, "ACCOUNT_USER", **{**CREATE, "domain": "other.com"}))
    assert "already exists" in error(call(sim, "ACCOUNT_USER", **{**CREATE, "username": "bob2"}))
    assert list(sim.accounts) == ["alice1"]


def test_max_username_length_is_a_server_setting(sim, monkeypatch):
    monkeypatch.setattr(sim, "max_username_length", 10)
    ok(call(sim, "ACCOUNT_USER", **{**CREATE, "username": "abcdefghij"}))
    assert "4 to 10" in error(call(sim, "ACCOUNT_USER", **{**CREATE, "username": "abcdefghijk"}))


def test_max_username_length_is_a_constructor_option():
    with DirectAdminSimulator(max_username_length=12) as other:
        ok(call(other, "ACCOUNT_USER", **{**CREATE, "username": "abcdefghijkl"}))
        assert other.accounts["abcdefghijkl"].domain == "example.com"


def test_create_with_an_assigned_ip(sim, monkeypatch):
    monkeypatch.setattr(sim, "free_ips", ["10.0.0.5"])
    ok(call(sim, "ACCOUNT_USER", **{**CREATE, "ip": "assign"}))
    assert sim.accounts["alice1"].ip == "10.0.0.5" and sim.free_ips == []


@pytest.mark.parametrize("shared, wanted, expected", [
    ([], "assign", "127.0.0.1"), (["10.0.0.9"], "assign", "10.0.0.9"),
    (["10.0.0.9"], "shared", "10.0.0.9"), ([], "shared", "127.0.0.1"), (["10.0.0.9"], "server", "127.0.0.1")])
def test_ip_by_status_falls_back_as_feature_1500_says(sim, monkeypatch, shared, wanted, expected):
    # "If an IP of the desired type does not exist, DA will fallback to a shared IP ... If not,
    # it will fallback to the server IP": ip=assign without a free IP is no error.
    monkeypatch.setattr(sim, "free_ips", [])
    monkeypatch.setattr(sim, "shared_ips", shared)
    ok(call(sim, "ACCOUNT_USER", **{**CREATE, "ip": wanted}))
    assert sim.accounts["alice1"].ip == expected


def test_an_empty_ip_list_is_a_creation_error(sim, monkeypatch):
    monkeypatch.setattr(sim, "ips", [])
    assert "ip.list" in error(call(sim, "ACCOUNT_USER", **CREATE))


# -- suspend, unsuspend, delete ----------------------------------------------------------
def suspend(sim, user, action="Suspend", **extra):
    return call(sim, "SELECT_USERS", location="CMD_SELECT_USERS", suspend=action, select0=user,
                **extra)


def test_suspend_and_unsuspend(sim, alice):
    ok(suspend(sim, "alice1", reason="billing"))
    assert alice.suspended and alice.suspend_reason == "billing"
    ok(suspend(sim, "alice1", "Unsuspend"))
    assert not alice.suspended


def test_repeated_suspend_is_an_error_by_default(sim, alice):
    ok(suspend(sim, "alice1"))
    assert "already suspended" in error(suspend(sim, "alice1"))
    ok(suspend(sim, "alice1", "Unsuspend"))
    assert "already active" in error(suspend(sim, "alice1", "Unsuspend"))


def test_repeated_suspend_can_be_allowed(sim, alice, monkeypatch):
    monkeypatch.setattr(sim, "repeat_suspend_is_error", False)
    ok(suspend(sim, "alice1"))
    ok(suspend(sim, "alice1"))
    assert alice.suspended


@pytest.mark.parametrize("params, fragment", [
    ({"suspend": "Suspend", "select0": "alice1"}, "location=CMD_SELECT_USERS"),
    ({"location": "CMD_SELECT_USERS", "suspend": "Freeze", "select0": "alice1"}, "Suspend|Unsuspend"),
    ({"location": "CMD_SELECT_USERS", "suspend": "Suspend", "select0": "alice1", "reason": "spite"},
     "Invalid suspension reason"),
    ({"location": "CMD_SELECT_USERS", "suspend": "Suspend"}, "No users selected"),
    ({"location": "CMD_SELECT_USERS", "suspend": "Suspend", "select0": "ghost1"},
     "ghost1 does not exist"),
])
def test_suspend_rejects(sim, alice, params, fragment):
    assert fragment in error(call(sim, "SELECT_USERS", **params))
    assert not alice.suspended


def test_delete(sim, alice):
    ok(call(sim, "SELECT_USERS", confirmed="Confirm", delete="yes", select0="alice1"))
    assert sim.accounts == {}
    assert "does not exist" in error(call(sim, "SELECT_USERS", confirmed="Confirm", delete="yes",
                                          select0="alice1"))


def test_delete_needs_confirmation(sim, alice):
    assert "confirmed=Confirm" in error(call(sim, "SELECT_USERS", delete="yes", select0="alice1"))
    assert "alice1" in sim.accounts


# -- package, password -------------------------------------------------------------------
def test_change_package(sim, alice):
    ok(call(sim, "MODIFY_USER", action="package", user="alice1", package="pro"))
    assert alice.package == "pro"


@pytest.mark.parametrize("params, fragment", [
    ({"action": "package", "user": "alice1", "package": "gold"}, "gold does not exist"),
    ({"action": "package", "user": "ghost1", "package": "pro"}, "ghost1 does not exist"),
    ({"action": "rename", "user": "alice1", "package": "pro"}, "action=package and action=customize"),
    # customize is the "Modify User Settings" form: bandwidth (or ubandwidth=ON) and quota (or uquota=ON).
    ({"action": "customize", "user": "alice1", "package": "pro"}, "bandwidth must be a number of megabytes"),
    ({"action": "customize", "user": "alice1", "bandwidth": "100", "quota": "lots"}, "quota must be a number"),
])
def test_change_package_rejects(sim, alice, params, fragment):
    assert fragment in error(call(sim, "MODIFY_USER", **params))
    assert (alice.package, alice.disk_limit_mb, alice.bandwidth_limit_mb) == ("basic", None, None)


def test_customize_sets_the_users_limits_and_a_package_gives_back_its_own(sim, alice, monkeypatch):
    monkeypatch.setattr(sim, "package_limits", {"pro": {"quota": 10000, "bandwidth": 50000}})
    ok(call(sim, "MODIFY_USER", action="customize", user="alice1", quota="2048", ubandwidth="ON"))
    # (answer()'s lenient html.unescape would read "&quota=" as '"a='; panel_call decodes whole
    # entities only, as PHP does, so the limits are read from the simulator's state here.)
    assert (alice.disk_limit_mb, alice.bandwidth_limit_mb) == (2048, None)
    assert (alice.limits()["quota"], alice.limits()["bandwidth"]) == ("2048", "unlimited")
    ok(call(sim, "MODIFY_USER", action="package", user="alice1", package="pro"))
    assert (alice.package, alice.disk_limit_mb, alice.bandwidth_limit_mb) == ("pro", 10000, 50000)


def test_change_password(sim, alice):
    ok(call(sim, "USER_PASSWD", username="alice1", passwd="N3w!pass", passwd2="N3w!pass"))
    assert alice.password == "N3w!pass"


@pytest.mark.parametrize("params, fragment", [
    ({"username": "alice1", "passwd": "a", "passwd2": "b"}, "do not match"),
    ({"username": "alice1", "passwd": "", "passwd2": ""}, "No password"),
    ({"username": "ghost1", "passwd": "a", "passwd2": "a"}, "ghost1 does not exist"),
])
def test_change_password_rejects(sim, alice, params, fragment):
    assert fragment in error(call(sim, "USER_PASSWD", **params))
    assert alice.password == "S3cret!pw"


# -- reads -------------------------------------------------------------------------------
def test_show_user_config(sim, alice):
    ok(suspend(sim, "alice1"))
    config = answer(call(sim, "SHOW_USER_CONFIG", method="GET", user="alice1"))
    assert config["suspended"] == ["yes"] and config["package"] == ["basic"]
    assert config["domain"] == ["example.com"] and config["email"] == ["a@example.com"]
    assert config["usertype"] == ["user"] and config["account"] == ["ON"]
    assert config["suspended_reason"] == ["other"]
    as_json = call(sim, "SHOW_USER_CONFIG", method="GET", user="alice1", json="yes").json()
    assert as_json["suspended"] == "yes" and as_json["username"] == "alice1"


def test_show_user_config_of_unknown_user(sim):
    assert "ghost1 does not exist" in error(call(sim, "SHOW_USER_CONFIG", method="GET", user="ghost1"))


def test_list_users_and_packages(sim, alice):
    ok(call(sim, "ACCOUNT_USER", **{**CREATE, "username": "bob2", "domain": "bob.com"}))
    assert answer(call(sim, "SHOW_ALL_USERS", method="GET"))["list[]"] == ["alice1", "bob2"]
    assert answer(call(sim, "SHOW_USERS", method="GET"))["list[]"] == ["alice1", "bob2"]
    assert call(sim, "SHOW_ALL_USERS", method="GET", json="yes").json() == ["alice1", "bob2"]
    assert answer(call(sim, "PACKAGES_USER", method="GET"))["list[]"] == ["basic", "business", "pro"]


def test_empty_user_list(sim):
    assert call(sim, "SHOW_ALL_USERS", method="GET").text == ""
    assert call(sim, "SHOW_ALL_USERS", method="GET", json="yes").json() == []


def test_reseller_may_not_list_all_users(sim, monkeypatch):
    monkeypatch.setattr(sim, "level", "reseller")
    assert error(call(sim, "SHOW_ALL_USERS", method="GET")).startswith(NO_AUTHORITY)
    assert call(sim, "SHOW_USERS", method="GET").status_code == 200


# -- users of other resellers ------------------------------------------------------------
def test_show_users_lists_only_the_callers_own_users(sim, alice):
    sim.add_foreign_user("carol3", "carol.example.com")
    assert answer(call(sim, "SHOW_USERS", method="GET"))["list[]"] == ["alice1"]
    assert answer(call(sim, "SHOW_ALL_USERS", method="GET"))["list[]"] == ["alice1", "carol3"]


def test_an_admin_reads_and_removes_another_resellers_user(sim):
    sim.add_foreign_user("carol3", "carol.example.com")
    config = answer(call(sim, "SHOW_USER_CONFIG", method="GET", user="carol3"))
    assert config["creator"] == ["reseller2"] and config["domain"] == ["carol.example.com"]
    ok(call(sim, "SELECT_USERS", confirmed="Confirm", delete="yes", select0="carol3"))
    assert "carol3" not in sim.accounts


def test_a_reseller_is_refused_another_resellers_user_in_other_words_than_absent(sim, monkeypatch):
    monkeypatch.setattr(sim, "level", "reseller")
    sim.add_foreign_user("carol3", "carol.example.com")
    assert error(call(sim, "SHOW_USER_CONFIG", method="GET", user="carol3")) == (
        "Unable to show user / You do not own that user")
    assert error(call(sim, "SHOW_USER_CONFIG", method="GET", user="ghost1")) == (
        "Unable to show user / User ghost1 does not exist")
    assert error(call(sim, "SELECT_USERS", confirmed="Confirm", delete="yes", select0="carol3")) == (
        "Error while deleting users / You do not own that user")
    assert error(call(sim, "MODIFY_USER", action="package", user="carol3", package="pro")).endswith(
        "You do not own that user")
    assert "carol3" in sim.accounts and sim.accounts["carol3"].package == "basic"


# -- user-level calls as the account (login-as), issue 14's step roles -------------------------
AS_ALICE = ("admin|alice1", "sandbox-pass")
POP = {"action": "create", "domain": "example.com", "user": "info", "passwd": "Box!pw123", "passwd2": "Box!pw123",
       "quota": "0"}


def test_user_level_calls_need_login_as_and_the_users_own_domain(sim, alice):
    assert error(call(sim, "POP", **POP)) == "Unable to create email account / You do not own that domain"
    assert error(call(sim, "POP", auth=AS_ALICE, **dict(POP, domain="other.example.com"))).endswith(
        "You do not own that domain")
    assert error(call(sim, "SHOW_ALL_USERS", auth=AS_ALICE, method="GET")) == NO_AUTHORITY + " / "
    page = call(sim, "POP", auth=("admin|nosuch", "sandbox-pass"), method="GET", action="list", domain="example.com")
    assert "DirectAdmin Login" in page.text and "text/html" in page.headers["Content-Type"]
    assert alice.pops == {}


def test_mailbox_database_and_certificate_as_the_account(sim, alice):
    assert answer(call(sim, "POP", auth=AS_ALICE, method="GET", action="list", domain="example.com")) == {}
    ok(call(sim, "POP", auth=AS_ALICE, **POP))
    assert error(call(sim, "POP", auth=AS_ALICE, **POP)) == ("Unable to create email account / "
                                                            "That user already exists<br>\n")
    assert answer(call(sim, "POP", auth=AS_ALICE, method="GET", action="list", domain="example.com")) == {
        "list[]": ["info"]}
    database = {"action": "create", "name": "db", "user": "db", "passwd": "Db!pw1234", "passwd2": "Db!pw1234"}
    ok(requests.post(f"{sim.url}/CMD_API_DATABASES", data=database, auth=AS_ALICE, timeout=5))
    again = requests.post(f"{sim.url}/CMD_API_DATABASES", data=database, auth=AS_ALICE, timeout=5)
    assert error(again).endswith("Database alice1_db already exists")
    assert answer(call(sim, "DATABASES", auth=AS_ALICE, method="GET")) == {"list[]": ["alice1_db"]}
    assert alice.dbs == {"alice1_db": {"user": "alice1_db", "password": "Db!pw1234"}}
    assert answer(call(sim, "SSL", auth=AS_ALICE, method="GET", domain="example.com"))["ssl_on"] == ["no"]
    ok(call(sim, "SSL", auth=AS_ALICE, action="save", domain="example.com", type="create", request="letsencrypt",
            le_select0="example.com", le_select1="www.example.com"))
    read = answer(call(sim, "SSL", auth=AS_ALICE, method="GET", domain="example.com"))
    assert (read["ssl_on"], read["issuer_simple"]) == (["yes"], ["letsencrypt"])


def test_a_refused_lets_encrypt_request_and_a_login_key_without_the_command(sim, alice, monkeypatch):
    monkeypatch.setattr(sim, "letsencrypt_refusals", {"www.example.com": "www.example.com does not resolve here"})
    refused = call(sim, "SSL", auth=AS_ALICE, action="save", domain="example.com", type="create",
                   request="letsencrypt", le_select0="example.com", le_select1="www.example.com")
    assert error(refused) == ("Error getting the certificate from Let's Encrypt / "
                              "www.example.com does not resolve here")
    assert alice.certificate is None
    monkeypatch.setattr(sim, "login_key", "LoginKey-0123456789")
    monkeypatch.setattr(sim, "login_key_commands", {"CMD_API_POP"})
    with_key = ("admin|alice1", "LoginKey-0123456789")
    assert error(call(sim, "DATABASES", auth=with_key, method="GET")) == NO_AUTHORITY + " / "
    assert answer(call(sim, "POP", auth=with_key, method="GET", action="list", domain="example.com")) == {}
    assert answer(call(sim, "DATABASES", auth=AS_ALICE, method="GET")) == {}   # the password is not limited
