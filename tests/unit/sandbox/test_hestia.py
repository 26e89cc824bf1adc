"""HestiaSimulator answers as hestiacp's web/api/index.php and bin/v-* scripts do."""

import pytest
import requests

from provisiond.sandbox.hestia import HestiaSimulator

PACKAGES = {"basic": {"WEB_DOMAINS": 1, "DISK_QUOTA": 100}, "pro": {}, "business": {},
            "webonly": {"DNS_DOMAINS": 0, "MAIL_DOMAINS": 0}}
BILLING = ["v-add-user", "v-delete-user", "v-suspend-user", "v-unsuspend-user",
           "v-change-user-shell", "v-list-user", "v-list-users", "v-make-tmp-file", "v-add-domain",
           "v-change-user-package", "v-change-user-password"]  # install/common/api/billing


def api(sim, cmd, *args, returncode="yes", auth=None, **extra):
    data = dict(auth if auth is not None else {"access_key": sim.access_key,
                                                 "secret_key": sim.secret_key})
    data.update(cmd=cmd, returncode=returncode, **extra)
    data.update({f"arg{i}": value for i, value in enumerate(args, 1)})
    return requests.post(f"{sim.url}/api/", data=data, timeout=5)


def code(response) -> int:
    """returncode=yes: HTTP 200 for command results, the exit code in body and header."""
    assert response.headers["Hestia-Exit-Code"] == response.text
    return int(response.text)


@pytest.fixture(scope="module")
def server():
    # An admin key without a permission list may run every command (check_access_key_cmd).
    with HestiaSimulator(packages=PACKAGES, permissions="") as simulator:
        yield simulator


@pytest.fixture
def sim(server):
    """One server per module; fresh state per test; knobs changed with monkeypatch."""
    server.accounts.clear()
    yield server
    server.accounts.clear()


@pytest.fixture
def bob(sim):
    assert code(api(sim, "v-add-user", "bob", "S3cret!pw", "bob@example.com", "basic")) == 0
    return sim.accounts["bob"]


# -- transport and auth ------------------------------------------------------------------
def test_connection_test(sim):
    response = api(sim, "v-list-sys-info", "json", returncode="no")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["sysinfo"]["HESTIA"] == "1.9.4"


@pytest.mark.parametrize("auth, expected", [
    ({"access_key": "WRONGACCESSKEY000001", "secret_key": "x" * 40}, 9),
    ({"access_key": "SANDBOXACCESSKEY0001", "secret_key": "wrong"}, 9),
    ({"access_key": "SANDBOXACCESSKEY0001", "secret_key": "w" * 40}, 9),
    ({"access_key": "short", "secret_key": "w" * 40}, 9),
    ({"access_key": "", "secret_key": ""}, 9),
    ({"hash": "SANDBOXACCESSKEY0001:" + "y" * 40}, 9),
    ({"hash": "some-legacy-key"}, 9),
    ({"user": "admin", "password": "guess"}, 9),
    ({"user": "bob", "password": "guess"}, 10),
])
def test_bad_credentials(sim, auth, expected):
    response = api(sim, "v-list-users", auth=auth)
    assert response.status_code == 401 and code(response) == expected
    response = api(sim, "v-list-users", auth=auth, returncode="no")
    assert response.status_code == 401 and response.text.startswith("Error:")


def test_hash_access_secret_form_is_accepted(sim):
    response = api(sim, "v-list-users", "json", returncode="no",
                   auth={"hash": f"{sim.access_key}:{sim.secret_key}"})
    assert response.status_code == 200 and "admin" in response.json()


def test_legacy_auth_when_configured(sim, monkeypatch):
    monkeypatch.setattr(sim, "admin_password", "adminpw")
    monkeypatch.setattr(sim, "legacy_key", "legacykey")
    assert api(sim, "v-add-user", "leg1", "pw123456", "l@example.com", returncode="no",
               auth={"user": "admin", "password": "adminpw"}).text == "OK"
    response = api(sim, "v-add-user", "leg1", "pw123456", "l@example.com",
                   auth={"hash": "legacykey"})
    assert (response.status_code, response.text) == (200, "4")  # legacy: no status mapping
    assert "Hestia-Exit-Code" not in response.headers


@pytest.mark.parametrize("knob, value, expected, status", [
    ("api_system", 0, 11, 400),
    ("allowed_ips", "192.0.2.1", 10, 401),
])
def test_early_failures(sim, monkeypatch, knob, value, expected, status):
    monkeypatch.setattr(sim, knob, value)
    response = api(sim, "v-add-user", "bob", "S3cret!pw", "bob@example.com")
    assert response.status_code == status and code(response) == expected
    assert sim.accounts == {}


def test_missing_or_invalid_command(sim):
    assert (api(sim, "").status_code, code(api(sim, ""))) == (422, 2)
    assert code(api(sim, "v-add-user;reboot")) == 2


def test_request_without_credentials_is_405(sim):
    response = requests.get(f"{sim.url}/api/", timeout=5)
    assert response.status_code == 405 and response.text.startswith("Error: data received")


def test_bad_key_answers_name_the_fault_as_v_check_access_key_does(sim):
    answers = [api(sim, "v-list-users", returncode="no", auth=auth).text for auth in (
        {"access_key": "WRONGACCESSKEY000001", "secret_key": "x" * 40},
        {"access_key": sim.access_key, "secret_key": "w" * 40},
        {"access_key": "short", "secret_key": "w" * 40})]
    assert answers == ["Error: key WRONGACCESSKEY000001 doesn't exist",
                       f"Error: Invalid secret key for key {sim.access_key}",
                       "Error: invalid access_key_id format :: short"]


def test_unknown_command_is_refused_by_the_key_check(sim):
    response = api(sim, "v-no-such-command")
    assert (response.status_code, code(response)) == (401, 10)
    response = api(sim, "v-no-such-command", returncode="no")
    assert response.text == "Error: Command v-no-such-command not found"


@pytest.mark.parametrize("command", ["v-list-sys-info", "v-list-web-domains", "v-add-web-domain",
                                     "v-list-user-packages"])
def test_billing_key_is_refused_commands_outside_the_preset(sim, monkeypatch, command):
    monkeypatch.setattr(sim, "permissions", "billing")
    response = api(sim, command, "admin", "json", returncode="no")
    assert (response.status_code, response.headers["Hestia-Exit-Code"]) == (401, "10")
    assert response.text == (f"Error: Key {sim.access_key} don't have permission to run the "
                             f"command {command}")
    response = api(sim, command, "admin", "json")
    assert (response.status_code, code(response)) == (401, 10)


def test_billing_key_runs_every_command_of_the_preset(sim, monkeypatch):
    monkeypatch.setattr(sim, "permissions", "billing")
    assert sorted(sim.allowed_commands()) == sorted(set(BILLING))
    assert code(api(sim, "v-add-user", "bob", "S3cret!pw", "bob@example.com", "pro")) == 0
    assert code(api(sim, "v-add-domain", "bob", "bob.example.com")) == 0
    for command, args in [("v-list-user", ["bob", "json"]), ("v-list-users", ["json"]),
                          ("v-suspend-user", ["bob"]), ("v-unsuspend-user", ["bob"]),
                          ("v-change-user-package", ["bob", "business"]),
                          ("v-change-user-password", ["bob", "N3w!pass"]),
                          ("v-delete-user", ["bob"])]:
        assert code(api(sim, command, *args)) == 0, command
    assert sim.accounts == {}


def test_fail_next_gives_one_503(sim):
    sim.fail_next(1)
    assert api(sim, "v-list-users", "json").status_code == 503
    assert code(api(sim, "v-list-users", "json")) == 0


# -- v-add-user --------------------------------------------------------------------------
def test_add_user(sim, bob):
    assert (bob.user, bob.password, bob.email, bob.package, bob.suspended, bob.domain) == (
        "bob", "S3cret!pw", "bob@example.com", "basic", False, "")


def test_add_user_returncode_no_answers_204(sim):
    response = api(sim, "v-add-user", "carol", "S3cret!pw", "c@example.com", returncode="no")
    assert (response.status_code, response.text) == (204, "")
    assert response.headers["Hestia-Exit-Code"] == "0"
    assert sim.accounts["carol"].package == "default"


@pytest.mark.parametrize("args, expected", [
    (("1bob", "pw", "b@example.com"), 2),
    (("b", "pw", "b@example.com"), 2),
    (("bob-", "pw", "b@example.com"), 2),
    (("x" * 31, "pw", "b@example.com"), 2),
    (("MySQL", "pw", "b@example.com"), 2),
    (("sudo", "pw", "b@example.com"), 2),
    (("bob", "pw", "not-an-email"), 2),
    (("root", "pw", "b@example.com"), 4),
    (("www-data", "pw", "b@example.com"), 4),
    (("bob", "pw", "b@example.com", "gold"), 3),
    (("bob", "pw", "b@example.com", ""), 3),
    (("bob", "pw"), 1),
    (("bob", "", "b@example.com"), 1),
])
def test_add_user_rejects(sim, args, expected):
    assert code(api(sim, "v-add-user", *args)) == expected
    assert sim.accounts == {}


def test_add_user_refuses_duplicates(sim, bob):
    response = api(sim, "v-add-user", "bob", "pw", "b@example.com", returncode="no")
    assert (response.status_code, response.text) == (400, "Error: user bob exists")


def test_status_mapping_with_returncode_no(sim):
    response = api(sim, "v-add-user", "1bob", "pw", "b@example.com", returncode="no")
    assert response.status_code == 422 and response.headers["Hestia-Exit-Code"] == "2"
    response = api(sim, "v-add-user", "bob", returncode="no")
    assert response.status_code == 400 and response.text.startswith("Usage: v-add-user")


# -- web domains -------------------------------------------------------------------------
def test_add_web_domain(sim, bob):
    assert code(api(sim, "v-add-web-domain", "bob", "Example.COM")) == 0
    assert bob.domain == "example.com"
    assert code(api(sim, "v-add-web-domain", "bob", "example.com")) == 4
    assert code(api(sim, "v-add-web-domain", "bob", "second.com")) == 8  # basic: 1 web domain
    assert code(api(sim, "v-add-web-domain", "ghost", "ghost.com")) == 3
    assert code(api(sim, "v-add-web-domain", "bob", "bad_domain.com")) == 2


def test_add_web_domain_to_suspended_user(sim, bob):
    bob.suspended = True
    assert code(api(sim, "v-add-web-domain", "bob", "example.com")) == 5


def test_add_domain_makes_the_web_dns_and_mail_domain(sim, bob):
    response = api(sim, "v-add-domain", "bob", "Example.COM", returncode="no")
    assert response.status_code == 204
    assert (bob.domains, bob.dns_domains, bob.mail_domains) == (
        ["example.com"], ["example.com"], ["example.com"])
    record = api(sim, "v-list-user", "bob", "json", returncode="no").json()["bob"]
    assert (record["U_WEB_DOMAINS"], record["U_DNS_DOMAINS"], record["U_MAIL_DOMAINS"]) == (
        "1", "1", "1")


def test_add_domain_refusals_carry_both_error_lines(sim, bob):
    assert code(api(sim, "v-add-domain", "bob", "example.com")) == 0
    assert code(api(sim, "v-add-user", "eve", "S3cret!pw", "eve@example.com", "pro")) == 0
    response = api(sim, "v-add-domain", "eve", "example.com", returncode="no")
    assert (response.status_code, response.headers["Hestia-Exit-Code"]) == (400, "4")
    assert response.text == "Error: Web domain example.com exists\nError: can't add web domain"
    assert code(api(sim, "v-add-domain", "bob", "example.com")) == 4  # its own too
    assert code(api(sim, "v-add-domain", "ghost", "ghost.com")) == 3
    assert code(api(sim, "v-add-domain", "bob", "bad_domain.com")) == 2
    sim.accounts["eve"].suspended = True
    assert code(api(sim, "v-add-domain", "eve", "eve.example.com")) == 5


def test_add_domain_skips_full_parts_and_fails_only_when_all_are_full(sim, bob):
    assert code(api(sim, "v-add-user", "wes", "S3cret!pw", "w@example.com", "webonly")) == 0
    wes = sim.accounts["wes"]
    assert code(api(sim, "v-add-domain", "wes", "wes.example.com")) == 0
    assert (wes.domains, wes.dns_domains, wes.mail_domains) == (["wes.example.com"], [], [])
    assert code(api(sim, "v-add-domain", "bob", "one.example.com")) == 0
    assert code(api(sim, "v-add-domain", "bob", "two.example.com")) == 0  # DNS and mail
    assert bob.domains == ["one.example.com"] and "two.example.com" in bob.dns_domains
    sim.packages["webonly"]["WEB_DOMAINS"] = 1
    response = api(sim, "v-add-domain", "wes", "more.example.com", returncode="no")
    assert (response.status_code, response.text) == (400, "Error: Package limit reached")
    del sim.packages["webonly"]["WEB_DOMAINS"]


# -- suspend, unsuspend, delete ----------------------------------------------------------
def test_suspend_and_unsuspend(sim, bob):
    assert code(api(sim, "v-suspend-user", "bob")) == 0
    assert bob.suspended
    assert code(api(sim, "v-suspend-user", "bob")) == 5  # already suspended
    response = api(sim, "v-suspend-user", "bob", returncode="no")
    assert (response.status_code, response.text) == (401, "Error: user bob is suspended")
    assert code(api(sim, "v-unsuspend-user", "bob", "no")) == 0
    assert not bob.suspended
    assert code(api(sim, "v-unsuspend-user", "bob")) == 0  # 0 even if already active


def test_suspend_rejects(sim, bob):
    assert code(api(sim, "v-suspend-user", "ghost")) == 3
    assert code(api(sim, "v-unsuspend-user", "ghost")) == 3
    assert code(api(sim, "v-suspend-user", "bob", "maybe")) == 2
    assert code(api(sim, "v-suspend-user", "admin")) == 10
    assert not bob.suspended


def test_delete_user(sim, bob):
    assert code(api(sim, "v-delete-user", "bob")) == 0
    assert sim.accounts == {}
    assert code(api(sim, "v-delete-user", "bob")) == 3
    assert code(api(sim, "v-delete-user", "admin")) == 10


# -- package, password -------------------------------------------------------------------
def test_change_package(sim, bob):
    assert code(api(sim, "v-change-user-package", "bob", "pro")) == 0
    assert bob.package == "pro"
    assert code(api(sim, "v-change-user-package", "bob", "gold")) == 3
    assert code(api(sim, "v-change-user-package", "ghost", "pro")) == 3
    assert bob.package == "pro"


def test_change_package_checks_usage_unless_forced(sim, bob):
    bob.package, bob.domains, bob.disk_used = "pro", ["a.com", "b.com"], 50
    response = api(sim, "v-change-user-package", "bob", "basic", returncode="no")
    assert response.status_code == 400 and "WEB_DOMAIN usage" in response.text
    assert code(api(sim, "v-change-user-package", "bob", "basic")) == 8
    bob.domains, bob.disk_used = ["a.com"], 500
    assert code(api(sim, "v-change-user-package", "bob", "basic")) == 8  # DISK usage
    assert bob.package == "pro"
    assert code(api(sim, "v-change-user-package", "bob", "basic", "yes")) == 0
    assert bob.package == "basic"


def test_change_password(sim, bob):
    assert code(api(sim, "v-change-user-password", "bob", "N3w!pass")) == 0
    assert bob.password == "N3w!pass"
    assert code(api(sim, "v-change-user-password", "ghost", "N3w!pass")) == 3
    bob.suspended = True
    assert code(api(sim, "v-change-user-password", "bob", "Other!pw")) == 5
    assert bob.password == "N3w!pass"


# -- reads -------------------------------------------------------------------------------
def test_list_user(sim, bob):
    api(sim, "v-suspend-user", "bob")
    record = api(sim, "v-list-user", "bob", "json", returncode="no").json()["bob"]
    assert (record["PACKAGE"], record["SUSPENDED"], record["CONTACT"]) == (
        "basic", "yes", "bob@example.com")
    response = api(sim, "v-list-user", "ghost", "json", returncode="no")
    assert response.status_code == 400 and response.headers["Hestia-Exit-Code"] == "3"


def test_list_web_domains(sim, bob):
    assert api(sim, "v-list-web-domains", "bob", "json", returncode="no").json() == {}
    assert code(api(sim, "v-add-web-domain", "bob", "Bob.example.com")) == 0
    domains = api(sim, "v-list-web-domains", "bob", "json", returncode="no").json()
    assert list(domains) == ["bob.example.com"] and domains["bob.example.com"]["SUSPENDED"] == "no"
    response = api(sim, "v-list-web-domains", "ghost", "json", returncode="no")
    assert response.status_code == 400 and response.text == "Error: user ghost doesn't exist"
    assert code(api(sim, "v-list-web-domains")) == 1


def test_list_users_and_packages(sim, bob):
    users = api(sim, "v-list-users", "json", returncode="no").json()
    assert sorted(users) == ["admin", "bob"]
    packages = api(sim, "v-list-user-packages", "json", returncode="no").json()
    assert sorted(packages) == ["basic", "business", "default", "pro", "webonly"]
    assert packages["basic"]["WEB_DOMAINS"] == "1"


# -- the step roles' commands (issue 14) ------------------------------------------------------
def test_mail_account_database_and_letsencrypt(sim, bob, monkeypatch):
    assert code(api(sim, "v-add-mail-account", "bob", "example.com", "info", "Box!pw123")) == 3  # no mail domain
    assert code(api(sim, "v-add-domain", "bob", "example.com")) == 0
    assert code(api(sim, "v-add-mail-account", "bob", "example.com", "Info", "Box!pw123")) == 0
    again = api(sim, "v-add-mail-account", "bob", "example.com", "info", "Box!pw123", returncode="no")
    assert (again.status_code, again.text) == (400, "Error: mail account info already exists")
    listed = api(sim, "v-list-mail-accounts", "bob", "example.com", "json", returncode="no").json()
    assert list(listed) == ["info"] and listed["info"]["QUOTA"] == "unlimited"
    assert code(api(sim, "v-add-database", "bob", "db", "db", "Db!pw1234")) == 0
    again = api(sim, "v-add-database", "bob", "db", "other", "Db!pw1234", returncode="no")
    assert (again.status_code, again.text) == (400, "Error: DB=bob_db already exists")
    too_long = api(sim, "v-add-database", "bob", "x", "u" * 29, "Db!pw1234", returncode="no")
    assert too_long.text == "Error: mysql username can be up to 32 characters long"
    assert list(api(sim, "v-list-databases", "bob", "json", returncode="no").json()) == ["bob_db"]
    assert code(api(sim, "v-add-letsencrypt-domain", "bob", "example.com", "shop.example.com")) == 3  # no alias
    monkeypatch.setattr(sim, "letsencrypt_refusals", {"example.com": "urn:ietf:params:acme:error:dns"})
    failed = api(sim, "v-add-letsencrypt-domain", "bob", "example.com", returncode="no")
    assert (failed.status_code, failed.headers["Hestia-Exit-Code"]) == (400, "15")
    assert "Let's Encrypt validation status 400 (example.com)" in failed.text
    monkeypatch.setattr(sim, "letsencrypt_refusals", {})
    done = api(sim, "v-add-letsencrypt-domain", "bob", "example.com", "www.example.com", returncode="no")
    assert (done.status_code, done.text) == (204, "")
    web = api(sim, "v-list-web-domain", "bob", "example.com", "json", returncode="no").json()["example.com"]
    assert (web["SSL"], web["LETSENCRYPT"]) == ("yes", "yes")
    assert bob.mailboxes == {"example.com": {"info": {"password": "Box!pw123", "quota": "unlimited"}}}


@pytest.mark.parametrize("permissions, command, allowed", [
    ("billing", "v-add-mail-account", False), ("billing,mail-accounts", "v-add-mail-account", True),
    ("billing,mail-accounts", "v-add-database", False), ("billing", "v-add-letsencrypt-domain", False),
    ("purge-nginx-cache", "v-list-web-domain", True),
])
def test_the_step_commands_need_a_key_that_has_them(sim, bob, monkeypatch, permissions, command, allowed):
    monkeypatch.setattr(sim, "permissions", permissions)
    answer = api(sim, command, "bob", "example.com", "info", "Box!pw123", returncode="no")
    refusal = f"Error: Key {sim.access_key} don't have permission to run the command {command}"
    assert (answer.status_code == 401 and answer.text == refusal) is not allowed
