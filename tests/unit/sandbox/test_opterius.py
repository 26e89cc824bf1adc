"""OpteriusSimulator against the panel's own code (github.com/opterius/panel, see the module's
docstring for file and line): Bearer keys, Laravel validation, routes, answers and status codes."""

import pytest
import requests

from provisiond.sandbox.opterius import OpteriusSimulator

KEY = "opt_" + "unitTestKey0" * 4
ACCOUNT = {"domain": "alice.example.com", "username": "alice", "password": "s3cur3p@ss",
           "package": "basic", "client_email": "alice@example.com", "client_name": "Alice"}


@pytest.fixture
def sim():
    with OpteriusSimulator(api_key=KEY, packages=("basic", "pro")) as simulator:
        yield simulator


def send(sim, path, body=None, method="POST", key=KEY, accept="application/json", **headers):
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if accept:
        headers["Accept"] = accept
    return requests.request(method, sim.url + path, json=body, headers=headers, timeout=5,
                            allow_redirects=False)


def create(sim, **changes):
    return send(sim, "/api/v1/accounts/create", dict(ACCOUNT, **changes))


# -- ApiKeyAuth and routing ------------------------------------------------------------------
def test_connection_test_answers_the_panel_and_version(sim):
    answer = send(sim, "/api/v1/test")
    assert answer.status_code == 200
    assert answer.json() == {"result": "success", "message": "Connection successful.",
                             "data": {"panel": "Opterius Panel", "version": "2.8.14"}}


@pytest.mark.parametrize("key, status, message", [
    (None, 401, "API key required. Use Authorization: Bearer <key>"),
    ("opt_not-the-key", 401, "Invalid API key."),
])
def test_keys_are_bearer_only(sim, key, status, message):
    answer = send(sim, "/api/v1/test", key=key)
    assert (answer.status_code, answer.json()) == (status, {"result": "error", "message": message})


def test_an_hmac_signed_request_is_not_authenticated(sim):
    """What Opterius Commerce sends (X-Timestamp, X-Signature) the panel does not check."""
    answer = send(sim, "/api/v1/test", key=None, **{"X-Timestamp": "1700000000", "X-Signature": "ab" * 32})
    assert answer.status_code == 401 and answer.json()["message"].startswith("API key required")


def test_expired_keys_ip_lists_and_permissions(sim):
    sim.add_key("opt_expired", expired=True)
    sim.add_key("opt_elsewhere", allowed_ips=("203.0.113.9",))
    sim.add_key("opt_suspend_only", permissions=("account.suspend",))
    assert send(sim, "/api/v1/test", key="opt_expired").json()["message"] == "API key has expired."
    assert send(sim, "/api/v1/test", key="opt_elsewhere").status_code == 403
    refused = send(sim, "/api/v1/accounts/create", ACCOUNT, key="opt_suspend_only")
    assert (refused.status_code, refused.json()["message"]) == (403, "Insufficient permissions.")
    assert sim.accounts == {}
    # The package list and usage check no permission (WhmcsApiController:261, 276).
    assert send(sim, "/api/v1/packages", method="GET", key="opt_suspend_only").status_code == 200


@pytest.mark.parametrize("path", ["/api/accounts", "/api/accounts/1", "/api/server/stats"])
def test_the_contracts_old_routes_do_not_exist(sim, path):
    answer = send(sim, path, method="GET")
    assert answer.status_code == 404
    assert answer.json() == {"message": f"The route {path.lstrip('/')} could not be found."}
    assert "<html>" in send(sim, path, method="GET", accept=None).text  # HTML without Accept: json


def test_a_route_with_another_method_is_405(sim):
    answer = send(sim, "/api/v1/accounts/create", method="GET")
    assert answer.status_code == 405
    assert answer.json()["message"] == ("The GET method is not supported for route api/v1/accounts/create. "
                                        "Supported methods: POST.")


# -- Laravel validation ----------------------------------------------------------------------
def test_validation_errors_are_laravels_422(sim):
    answer = create(sim, username="al ice", password="short", client_email="not-an-email",
                    client_name="   ", package=None)
    assert answer.status_code == 422
    assert answer.json() == {
        "message": "The username field must only contain letters, numbers, dashes, and underscores. "
                   "(and 4 more errors)",
        "errors": {
            "username": ["The username field must only contain letters, numbers, dashes, and underscores."],
            "password": ["The password field must be at least 8 characters."],
            "package": ["The package field is required."],
            "client_email": ["The client email field must be a valid email address."],
            "client_name": ["The client name field is required."],  # trimmed to "", then null
        }}
    assert sim.accounts == {} and sim.users == {}


def test_one_field_can_fail_several_rules_and_types_are_checked(sim):
    answer = create(sim, username="x" * 33 + "!", domain=12345)
    errors = answer.json()["errors"]
    assert errors["username"] == ["The username field must not be greater than 32 characters.",
                                  "The username field must only contain letters, numbers, dashes, and underscores."]
    assert errors["domain"] == ["The domain field must be a string."]
    assert answer.json()["message"].endswith("(and 2 more errors)")


def test_without_accept_json_a_validation_error_is_a_302_redirect(sim):
    answer = send(sim, "/api/v1/accounts/create", {"username": "alice"}, accept=None)
    assert answer.status_code == 302
    assert answer.headers["Location"] == sim.url
    assert "Redirecting to" in answer.text and sim.accounts == {}
    back = send(sim, "/api/v1/accounts/create", {}, accept="text/html", Referer="https://billing.example/x")
    assert (back.status_code, back.headers["Location"]) == (302, "https://billing.example/x")
    # Errors the controller answers itself are JSON whatever the Accept header says.
    assert send(sim, "/api/v1/accounts/suspend", {"username": "nobody"}, accept=None).status_code == 404


# -- accounts ---------------------------------------------------------------------------------
def test_create_answers_the_account_id_and_makes_the_panel_user(sim):
    answer = create(sim)
    assert answer.status_code == 200
    assert answer.json() == {"result": "success", "message": "Account alice created with domain alice.example.com.",
                             "data": {"account_id": 1, "username": "alice", "domain": "alice.example.com",
                                      "server_ip": "127.0.0.1"}}
    account = sim.accounts["alice"]
    assert (account.domain, account.package, account.owner_email) == ("alice.example.com", "basic", "alice@example.com")
    # The password becomes the panel login of a new user; the account gets no system password.
    assert sim.users["alice@example.com"].password == ACCOUNT["password"] and account.system_password is None
    second = create(sim, username="alice2", domain="two.example.com", password="another-password")
    assert second.json()["data"]["account_id"] == 2
    assert sim.users["alice@example.com"].password == ACCOUNT["password"]  # an existing user keeps it


@pytest.mark.parametrize("changes, message", [
    ({"domain": "other.example.com"}, "Username 'alice' already exists."),
    ({"username": "ALICE", "domain": "other.example.com"}, "Username 'ALICE' already exists."),
    ({"username": "bob"}, "Domain 'alice.example.com' already exists."),
    ({"username": "bob", "domain": "blog.alice.example.com"}, "Domain 'blog.alice.example.com' already exists."),
])
def test_taken_names_are_409_and_nothing_changes(sim, changes, message):
    assert create(sim).status_code == 200
    sim.accounts["alice"].extra_domains.append("blog.alice.example.com")
    answer = create(sim, **changes)
    assert (answer.status_code, answer.json()) == (409, {"result": "error", "message": message})
    assert list(sim.accounts) == ["alice"]


def test_unknown_package_lists_the_available_ones(sim):
    answer = create(sim, package="gold")
    assert (answer.status_code, answer.json()["message"]) == (404, "Package 'gold' not found. Available: basic, pro")


def test_account_limit_is_422(sim):
    sim.account_limit = 0
    answer = create(sim)
    assert (answer.status_code, answer.json()["message"]) == (422, "Account limit reached (0/0).")


def test_a_failed_server_setup_is_a_warning_and_the_account_row_stays(sim):
    sim.agent_error = "Could not connect to server agent"
    answer = create(sim)
    assert answer.status_code == 200
    assert answer.json() == {"result": "warning",
                             "message": "Account saved but server setup failed: Could not connect to server agent",
                             "data": {"account_id": 1}}
    assert sim.accounts["alice"].domain_status == "pending"
    assert create(sim).status_code == 409  # a repeat finds the row


def test_suspend_and_unsuspend_repeat_as_already(sim):
    create(sim)
    said = [send(sim, f"/api/v1/accounts/{verb}", {"username": "alice"}).json()["message"]
            for verb in ("suspend", "suspend", "unsuspend", "unsuspend")]
    assert said == ["Account alice suspended.", "Account is already suspended.",
                    "Account alice unsuspended.", "Account is already active."]
    send(sim, "/api/v1/accounts/suspend", {"username": "alice", "reason": "overdue"})
    assert sim.accounts["alice"].suspend_reason == "overdue"


def test_suspend_failures(sim):
    missing = send(sim, "/api/v1/accounts/suspend", {"username": "nobody"})
    assert (missing.status_code, missing.json()) == (404, {"result": "error", "message": "Account not found."})
    create(sim)
    blank_reason = send(sim, "/api/v1/accounts/suspend", {"username": "alice", "reason": ""})
    assert (blank_reason.status_code, blank_reason.json()) == (500, {"message": "Server Error"})
    sim.agent_error = "agent busy"
    failed = send(sim, "/api/v1/accounts/suspend", {"username": "alice"})
    assert (failed.status_code, failed.json()["message"]) == (500, "Failed to suspend: agent busy")
    assert not sim.accounts["alice"].suspended


def test_accounts_are_found_by_username_else_by_main_domain(sim):
    create(sim)
    sim.accounts["alice"].extra_domains.append("addon.example.com")
    by_domain = send(sim, "/api/v1/accounts/usage", {"domain": "alice.example.com"})
    assert by_domain.json()["data"] == {"username": "alice", "domain": "alice.example.com", "suspended": False,
                                        "disk_used_mb": 0, "disk_limit": 1024, "bw_used_mb": 0}
    assert send(sim, "/api/v1/accounts/usage", {"domain": "addon.example.com"}).status_code == 404
    # A filled username wins, even when a domain is given too.
    assert send(sim, "/api/v1/accounts/usage", {"username": "bob", "domain": "alice.example.com"}).status_code == 404
    assert send(sim, "/api/v1/accounts/usage", {}).status_code == 404


def test_terminate_removes_then_answers_404(sim):
    create(sim)
    sim.agent_error = "ignored"  # the panel does not check the agent's answer on delete
    first = send(sim, "/api/v1/accounts/terminate", {"username": "alice"})
    assert (first.status_code, first.json()["message"]) == (200, "Account alice terminated.")
    again = send(sim, "/api/v1/accounts/terminate", {"username": "alice"})
    assert (again.status_code, again.json()["message"]) == (404, "Account not found.")
    assert sim.accounts == {}


def test_change_password_validates_before_it_looks_the_account_up(sim):
    short = send(sim, "/api/v1/accounts/password", {"username": "nobody", "password": "short"})
    assert short.status_code == 422
    assert short.json()["errors"] == {"password": ["The password field must be at least 8 characters."]}
    create(sim)
    done = send(sim, "/api/v1/accounts/password", {"username": "alice", "password": "n3w-long-pass"})
    assert done.json()["message"] == "Password changed for alice."
    assert sim.accounts["alice"].system_password == "n3w-long-pass"


def test_change_package_and_list_packages(sim):
    create(sim)
    moved = send(sim, "/api/v1/accounts/package", {"username": "alice", "package": "pro"})
    assert moved.json()["message"] == "Package changed to pro for alice."
    assert sim.accounts["alice"].package == "pro"
    unknown = send(sim, "/api/v1/accounts/package", {"username": "alice", "package": "gold"})
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Package 'gold' not found.")
    listed = send(sim, "/api/v1/packages", method="GET").json()
    assert listed == {"result": "success", "data": [
        {"name": "basic", "disk_quota": "1 GB", "bandwidth": "10 GB/mo", "php_default": "8.4"},
        {"name": "pro", "disk_quota": "2 GB", "bandwidth": "20 GB/mo", "php_default": "8.4"}]}


def test_sandbox_server_add_line_carries_the_manifests_api_key(sim):
    """`provisiond sandbox opterius` prints a `server add` line from the manifest's credential names."""
    from provisiond import panels
    from provisiond.config import bundled_dir
    from provisiond.sandbox import server_add_lines
    fields = [f.name for f in panels.discover([bundled_dir("playbooks")]).get("opterius").credentials]
    line = server_add_lines("opterius", sim, fields).splitlines()[-1]
    assert f"--credential api_key={KEY}" in line and "--credential scheme=http" in line
    assert f"--port {sim.port}" in line
