"""PleskSimulator against the vendor's documentation (see its docstring), spoken to with `requests`."""

import re

import pytest
import requests

from provisiond import accounts, panels
from provisiond.config import bundled_dir
from provisiond.sandbox.plesk import SYSUSER_PATTERN, PleskSimulator

KEY = "plesk-test-key"
STRONG = "Str0ng!Passw0rd"


@pytest.fixture
def sim():
    with PleskSimulator(api_key=KEY, plans=("basic", "pro"), ip_addresses=("10.0.0.5",)) as sim:
        yield sim


def call(sim, method, path, json=None, key=KEY, **kwargs):
    headers = {"Accept": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    return requests.request(method, f"{sim.url}/api/v2{path}", json=json, headers=headers,
                            timeout=5, **kwargs)


def create_customer(sim, login="john", **extra):
    body = {"name": "John Doe", "login": login, "password": STRONG, "email": f"{login}@example.com",
            "type": "customer", **extra}
    return call(sim, "POST", "/clients", body)


def create_subscription(sim, name="example.com", owner="john", plan="basic", ftp_login="johnftp"):
    body = {"name": name, "hosting_type": "virtual",
            "hosting_settings": {"ftp_login": ftp_login, "ftp_password": STRONG},
            "owner_client": {"login": owner}, "ip_addresses": ["10.0.0.5"], "plan": {"name": plan}}
    return call(sim, "POST", "/domains", body)


def xml(sim, inner, headers=None):
    """POST one XML API packet; the XML API answers HTTP 200 whatever happens."""
    answer = requests.post(f"{sim.url}/enterprise/control/agent.php",
                           data=f'<?xml version="1.0" encoding="UTF-8"?><packet>{inner}</packet>',
                           headers={"Content-Type": "text/xml", **({"KEY": KEY} if headers is None else headers)},
                           timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/xml"
    return answer.text


def plan_guids(sim, name):
    text = xml(sim, f"<webspace><get><filter><name>{name}</name></filter>"
                    "<dataset><subscriptions/></dataset></get></webspace>")
    return re.findall(r"<plan-guid>(.*?)</plan-guid>", text)


def add_site(sim, name, **ref):
    return call(sim, "POST", "/domains", {"name": name, "hosting_type": "virtual", **ref})


def cli(sim, command, *params):
    answer = call(sim, "POST", f"/cli/{command}/call", {"params": list(params)})
    assert answer.status_code == 200
    return answer.json()


# -- auth and transport ----------------------------------------------------------------------
@pytest.mark.parametrize("key", [None, "wrong-key", ""])
def test_bad_or_missing_api_key_is_401_with_code_and_message(sim, key):
    answer = call(sim, "GET", "/server", key=key)
    assert answer.status_code == 401
    assert set(answer.json()) == {"code", "message"}


def test_basic_auth_as_admin_only_when_configured():
    with PleskSimulator(api_key=KEY, admin_password="adminpw") as sim:
        url = f"{sim.url}/api/v2/server"
        assert requests.get(url, auth=("admin", "adminpw"), timeout=5).status_code == 200
        assert requests.get(url, auth=("admin", "nope"), timeout=5).status_code == 401
    with PleskSimulator(api_key=KEY) as sim:
        assert requests.get(f"{sim.url}/api/v2/server", auth=("admin", ""), timeout=5).status_code == 401


def test_server_answers_version(sim):
    answer = call(sim, "GET", "/server")
    assert answer.status_code == 200
    assert answer.json()["platform"] == "Unix" and answer.json()["panel_version"].startswith("18.0")


def test_unknown_route_and_method(sim):
    assert call(sim, "GET", "/nothing").status_code == 404
    assert call(sim, "PATCH", "/clients").status_code == 405


# -- customers -------------------------------------------------------------------------------
def test_create_customer_then_read_it(sim):
    answer = create_customer(sim, external_id="svc-7")
    assert answer.status_code == 201
    created = answer.json()
    assert set(created) == {"id", "guid"}
    info = call(sim, "GET", f"/clients/{created['id']}").json()
    assert info["login"] == "john" and info["status"] == 0 and info["external_id"] == "svc-7"
    assert "password" not in info
    listed = call(sim, "GET", "/clients").json()
    assert [c["login"] for c in listed] == ["john"]
    assert sim.accounts["john"].email == "john@example.com"
    assert sim.accounts["john"].password == STRONG


def test_duplicate_login_is_400(sim):
    create_customer(sim)
    answer = create_customer(sim)
    assert answer.status_code == 400
    assert "already exists" in answer.json()["message"]
    assert answer.json()["code"] == 400


@pytest.mark.parametrize("field", ["name", "login", "password", "email", "type"])
def test_missing_required_customer_field_is_400(sim, field):
    body = {"name": "J", "login": "john", "password": STRONG, "email": "j@example.com", "type": "customer"}
    del body[field]
    assert call(sim, "POST", "/clients", body).status_code == 400
    assert sim.accounts == {}


@pytest.mark.parametrize("password", ["short1!", "alllowercaseletters", "john-Passw0rd!"])
def test_weak_password_is_400(sim, password):
    body = {"name": "J", "login": "john", "password": password, "email": "j@example.com", "type": "customer"}
    assert call(sim, "POST", "/clients", body).status_code == 400


def test_bad_customer_values_are_400(sim):
    assert create_customer(sim, login="John Doe").status_code == 400
    assert create_customer(sim, type="admin").status_code == 400
    assert create_customer(sim, unknown_field=1).status_code == 400
    bad_json = requests.post(f"{sim.url}/api/v2/clients", data=b"{not json",
                             headers={"X-API-Key": KEY, "Content-Type": "application/json"}, timeout=5)
    assert bad_json.status_code == 400


def test_unknown_client_id_is_404(sim):
    for method, path in [("GET", "/clients/999"), ("DELETE", "/clients/999"),
                         ("PUT", "/clients/999/suspend"), ("PUT", "/clients/999/activate")]:
        answer = call(sim, method, path)
        assert answer.status_code == 404, path
        assert answer.json()["message"] == "Client is not found"
    assert call(sim, "PUT", "/clients/999", {"password": STRONG}).status_code == 404


def test_suspend_and_activate_customer(sim):
    client_id = create_customer(sim).json()["id"]
    answer = call(sim, "PUT", f"/clients/{client_id}/suspend")
    assert answer.status_code == 200 and answer.json() == {"status": "success"}
    assert call(sim, "GET", f"/clients/{client_id}").json()["status"] == 16
    assert sim.accounts["john"].suspended
    assert call(sim, "PUT", f"/clients/{client_id}/activate").json() == {"status": "success"}
    assert call(sim, "GET", f"/clients/{client_id}").json()["status"] == 0
    assert not sim.accounts["john"].suspended


def test_change_password(sim):
    created = create_customer(sim).json()
    answer = call(sim, "PUT", f"/clients/{created['id']}", {"password": "N3w&Better-pass"})
    assert answer.status_code == 200 and answer.json() == created
    assert sim.accounts["john"].password == "N3w&Better-pass"
    assert call(sim, "PUT", f"/clients/{created['id']}", {"password": "weak"}).status_code == 400
    assert sim.accounts["john"].password == "N3w&Better-pass"


def test_terminate_removes_customer_and_subscriptions(sim):
    created = create_customer(sim).json()
    domain_id = create_subscription(sim).json()["id"]
    answer = call(sim, "DELETE", f"/clients/{created['id']}")
    assert answer.status_code == 200 and answer.json() == created
    assert sim.accounts == {} and sim.subscriptions == {}
    assert call(sim, "GET", f"/domains/{domain_id}").status_code == 404
    assert call(sim, "GET", "/domains", params={"name": "example.com"}).json() == []


# -- subscriptions ---------------------------------------------------------------------------
def test_create_subscription_and_look_it_up(sim):
    client_id = create_customer(sim).json()["id"]
    answer = create_subscription(sim)
    assert answer.status_code == 201 and set(answer.json()) == {"id", "guid"}
    domain_id = answer.json()["id"]
    found = call(sim, "GET", "/domains", params={"name": "example.com"}).json()
    assert [d["id"] for d in found] == [domain_id]
    assert found[0]["hosting_type"] == "virtual"
    assert call(sim, "GET", f"/domains/{domain_id}/client").json()["id"] == client_id
    assert [d["name"] for d in call(sim, "GET", f"/clients/{client_id}/domains").json()] == ["example.com"]
    assert call(sim, "GET", f"/domains/{domain_id}/status").json() == {"status": "active"}
    account = sim.accounts["john"]
    assert (account.domain, account.plan) == ("example.com", "basic")
    assert sim.subscriptions["example.com"].ftp_login == "johnftp"


def test_subscription_refusals(sim):
    create_customer(sim)
    assert create_subscription(sim, plan="Unlimited").status_code == 400  # unknown plan
    assert create_subscription(sim, owner="nobody").status_code == 400
    assert create_subscription(sim, name="not a domain").status_code == 400
    assert create_subscription(sim).status_code == 201
    assert create_subscription(sim).status_code == 400  # duplicate domain
    assert create_subscription(sim, name="other.com").status_code == 400  # duplicate ftp login
    body = {"name": "third.com", "hosting_type": "virtual", "owner_client": {"login": "john"},
            "hosting_settings": {"ftp_login": "third", "ftp_password": STRONG},
            "ip_addresses": ["192.0.2.1"]}
    assert call(sim, "POST", "/domains", body).status_code == 400  # IP not on the server
    del body["hosting_settings"]
    body["ip_addresses"] = ["10.0.0.5"]
    assert call(sim, "POST", "/domains", body).status_code == 400  # no ftp credentials
    assert list(sim.subscriptions) == ["example.com"]


def test_domain_status_put(sim):
    create_customer(sim)
    domain_id = create_subscription(sim).json()["id"]
    answer = call(sim, "PUT", f"/domains/{domain_id}/status", {"status": "suspended"})
    assert answer.status_code == 200 and answer.json() == {"status": "suspended"}
    assert sim.subscriptions["example.com"].suspended
    assert call(sim, "PUT", f"/domains/{domain_id}/status", {"status": "paused"}).status_code == 400
    assert call(sim, "PUT", f"/domains/{domain_id}/status", {"status": "active"}).status_code == 200
    assert call(sim, "GET", f"/domains/{domain_id}/status").json() == {"status": "active"}
    assert call(sim, "PUT", "/domains/999/status", {"status": "active"}).status_code == 404


# -- the CLI gate ----------------------------------------------------------------------------
def test_cli_webspace_off_and_on(sim):
    create_customer(sim)
    domain_id = create_subscription(sim).json()["id"]
    answer = cli(sim, "subscription", "--webspace-off", "example.com")
    assert answer["code"] == 0 and set(answer) == {"code", "stdout", "stderr"}
    assert call(sim, "GET", f"/domains/{domain_id}/status").json() == {"status": "suspended"}
    assert cli(sim, "subscription", "--webspace-on", "example.com")["code"] == 0
    assert not sim.subscriptions["example.com"].suspended


def test_cli_switch_subscription(sim):
    create_customer(sim)
    create_subscription(sim)
    answer = cli(sim, "subscription", "--switch-subscription", "example.com", "-service-plan", "pro")
    assert answer["code"] == 0
    assert sim.accounts["john"].plan == "pro"
    assert plan_guids(sim, "example.com") == [sim.plan_guids["pro"]]


def test_cli_failures_are_http_200_with_nonzero_code(sim):
    create_customer(sim)
    create_subscription(sim)
    failures = [
        ("--webspace-off", "missing.com"),
        ("--switch-subscription", "example.com", "-service-plan", "Unlimited"),
        ("--switch-subscription", "example.com"),
        ("--switch-subscription", "example.com", "--service-plan", "pro"),
        ("--frobnicate", "example.com"),
        (),
    ]
    for params in failures:
        answer = cli(sim, "subscription", *params)
        assert answer["code"] != 0 and answer["stderr"], params
    assert sim.accounts["john"].plan == "basic"


def test_cli_unknown_command_and_bad_params(sim):
    assert call(sim, "POST", "/cli/nosuchtool/call", {"params": []}).status_code == 404
    assert call(sim, "POST", "/cli/subscription/call", {"params": "--webspace-off x"}).status_code == 400
    assert cli(sim, "service_plan", "--list")["stdout"].split() == ["basic", "pro"]


# -- domain lists: subscriptions, additional domains and subdomains ---------------------------
def test_a_customers_domain_list_holds_its_additional_domains_and_subdomains(sim):
    client_id = create_customer(sim).json()["id"]
    main_id = create_subscription(sim).json()["id"]
    assert add_site(sim, "shop.example.com", parent_domain={"name": "example.com"}).status_code == 201
    assert add_site(sim, "example.org", base_domain={"name": "example.com"}).status_code == 201
    listed = call(sim, "GET", f"/clients/{client_id}/domains").json()
    assert [(d["name"], d["base_domain_id"]) for d in listed] == [
        ("example.com", 0), ("shop.example.com", main_id), ("example.org", main_id)]
    assert set(listed[0]) == {"id", "name", "ascii_name", "hosting_type", "base_domain_id",
                              "www_root", "guid", "created"}
    found = call(sim, "GET", "/domains", params={"name": "shop.example.com"}).json()
    assert found[0]["base_domain_id"] == main_id
    assert call(sim, "GET", f"/domains/{found[0]['id']}/client").json()["id"] == client_id
    assert add_site(sim, "other.net", parent_domain={"name": "example.com"}).status_code == 400
    assert add_site(sim, "x.nowhere.com", parent_domain={"name": "nowhere.com"}).status_code == 400


def test_deleting_a_subscription_takes_its_domains_and_keeps_the_customer(sim):
    client_id = create_customer(sim).json()["id"]
    main_id = create_subscription(sim).json()["id"]
    create_subscription(sim, name="second.com", ftp_login="second")
    site_id = add_site(sim, "blog.example.com", parent_domain={"name": "example.com"}).json()["id"]
    assert call(sim, "DELETE", f"/domains/{main_id}").json()["id"] == main_id
    assert [d["name"] for d in call(sim, "GET", f"/clients/{client_id}/domains").json()] == ["second.com"]
    assert call(sim, "GET", f"/domains/{site_id}").status_code == 404
    assert list(sim.accounts) == ["john"] and sim.sites == {}


def test_deleting_a_customer_takes_all_its_domains(sim):
    client_id = create_customer(sim).json()["id"]
    create_subscription(sim)
    add_site(sim, "example.org", base_domain={"name": "example.com"})
    assert call(sim, "DELETE", f"/clients/{client_id}").status_code == 200
    assert sim.subscriptions == {} and sim.sites == {}
    assert call(sim, "GET", "/domains").json() == []


# -- the subscription's system user ----------------------------------------------------------
@pytest.mark.parametrize("login", ["john_doe", "John", "1john", "j" * 33])
def test_system_user_refuses_underscores_capitals_and_a_leading_digit(sim, login):
    create_customer(sim)
    assert create_subscription(sim, name="fine.com", ftp_login="john.doe-2").status_code == 201
    answer = create_subscription(sim, ftp_login=login)
    assert answer.status_code == 400
    assert answer.json() == {"code": 400, "message": "hosting_settings.ftp_login: This value is not "
                                                      "a valid system user name."}
    assert list(sim.subscriptions) == ["fine.com"]


@pytest.mark.parametrize("username", ["john_doe", "john.doe", "john-doe", "shop2", "a1b2c3"])
def test_the_plesk_manifest_accepts_only_what_plesk_takes_for_a_system_user(username):
    """Letters and digits only: a subset of Plesk's system-user rule (no `_`), and what the
    login of the customer accepts too."""
    rules = panels.discover([bundled_dir("playbooks")]).get("plesk").username
    accepted = accounts.username_problem(username, rules) is None
    assert accepted == username.isalnum()
    if accepted:
        assert SYSUSER_PATTERN.match(username)


def test_put_domain_changes_the_system_users_password(sim):
    create_customer(sim)
    created = create_subscription(sim).json()
    settings = {"ftp_login": "johnftp", "ftp_password": "N3w&Better-pass"}
    answer = call(sim, "PUT", f"/domains/{created['id']}", {"hosting_settings": settings})
    assert answer.status_code == 200 and answer.json() == created
    assert sim.subscriptions["example.com"].ftp_password == "N3w&Better-pass"
    weak = {"ftp_login": "johnftp", "ftp_password": "weak"}
    assert call(sim, "PUT", f"/domains/{created['id']}", {"hosting_settings": weak}).status_code == 400
    assert call(sim, "PUT", f"/domains/{created['id']}", {"plan": {"name": "pro"}}).status_code == 400
    assert call(sim, "PUT", "/domains/999", {"hosting_settings": settings}).status_code == 404
    assert sim.subscriptions["example.com"].ftp_password == "N3w&Better-pass"


# -- the XML API: a subscription's plan ------------------------------------------------------
def test_xml_api_tells_a_subscriptions_plan_by_guid(sim):
    create_customer(sim)
    create_subscription(sim, plan="basic")
    assert plan_guids(sim, "example.com") == [sim.plan_guids["basic"]]
    text = xml(sim, "<service-plan><get><filter><name>pro</name></filter></get></service-plan>")
    assert f"<guid>{sim.plan_guids['pro']}</guid>" in text and "<status>ok</status>" in text
    missing = xml(sim, "<webspace><get><filter><name>none.com</name></filter>"
                       "<dataset><subscriptions/></dataset></get></webspace>")
    assert "<status>error</status><errcode>1013</errcode>" in missing
    no_plan = xml(sim, "<service-plan><get><filter><name>Unlimited</name></filter></get></service-plan>")
    assert "<errcode>1013</errcode>" in no_plan


def test_xml_api_blank_filters_answer_every_subscription_and_plan_in_one_packet(sim):
    """webspace get with <filter/> and gen_info: every subscription with its owner and status;
    service-plan get with <filter/>: every plan's guid and name (issue 11, list_accounts)."""
    create_customer(sim)
    create_subscription(sim, plan="basic")
    create_subscription(sim, name="second.example.com", plan="pro", ftp_login="johnftp2")
    add_site(sim, "extra.example.com", base_domain={"name": "example.com"})  # not a subscription
    second = sim.subscriptions["second.example.com"]
    assert call(sim, "PUT", f"/domains/{second.id}/status", {"status": "suspended"}).status_code == 200
    text = xml(sim, "<webspace><get><filter/><dataset><gen_info/><subscriptions/></dataset></get></webspace>"
                    "<service-plan><get><filter/></get></service-plan>")
    webspace, plans = text.split("<service-plan>")
    results = re.findall(r"<result>(.*?)</result>", webspace)
    assert [re.search(r"<name>(.*?)</name>", r).group(1) for r in results] == ["example.com", "second.example.com"]
    assert [re.search(r"<gen_info>.*<status>(\d+)</status>", r).group(1) for r in results] == ["0", "16"]
    assert all("<owner-login>john</owner-login>" in r and "<filter-id>" not in r for r in results)
    assert f"<plan-guid>{sim.plan_guids['pro']}</plan-guid>" in results[1]
    listed = {name: guid for guid, name in re.findall(r"<guid>(.*?)</guid><name>(.*?)</name>", plans)}
    assert listed == sim.plan_guids


@pytest.mark.parametrize("headers", [{}, {"KEY": "wrong"}, {"HTTP_AUTH_LOGIN": "admin", "HTTP_AUTH_PASSWD": ""}])
def test_xml_api_refused_login_is_http_200_with_a_system_error(sim, headers):
    text = xml(sim, "<service-plan><get><filter><name>pro</name></filter></get></service-plan>", headers)
    assert "<system><status>error</status><errcode>1001</errcode>" in text
    assert "<guid>" not in text


def test_xml_api_create_session_answers_a_token_for_the_user_and_ip_as_documented(sim):
    assert create_customer(sim).status_code == 201
    request = ("<server><create_session><login>{login}</login><data><user_ip>{ip}</user_ip>"
               "<source_server></source_server></data></create_session></server>")
    for ip in ("198.51.100.7", "MTk4LjUxLjEwMC43"):  # plain text or base64, both documented
        text = xml(sim, request.format(login="john", ip=ip))
        token = re.fullmatch(r'<\?xml version="1.0" encoding="UTF-8"\?>\n<packet version="[\d.]+">'
                             r"<server><create_session><result><status>ok</status><id>([0-9a-f]{32})</id>"
                             r"</result></create_session></server></packet>", text)[1]
        assert sim.sessions[token] == ("john", "198.51.100.7")
    missing = xml(sim, request.format(login="ghost", ip="198.51.100.7"))
    assert "<status>error</status><errcode>1013</errcode>" in missing
    bad_ip = xml(sim, request.format(login="john", ip="not-an-ip"))
    assert "<status>error</status><errcode>1014</errcode>" in bad_ip
    no_ip = xml(sim, "<server><create_session><login>john</login></create_session></server>")
    assert "<system><status>error</status><errcode>1014</errcode>" in no_ip
    assert len(sim.sessions) == 2
