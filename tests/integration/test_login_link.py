"""login_link (issue 10 item 11): a one-time login link for every panel whose vendor documents
one, through a real ansible-runner run against the panel's simulator. The link is handed back and
kept nowhere; a client of a suspended service is refused, an admin is not (proven once, on cPanel:
the rule lives in provisiond.actions, not in the playbooks).

Panels without a documented one-time login offer no login_link: Hestia, Opterius (the panel's
provisioning API, routes/api.php in opterius/panel, has no such route), CloudPanel and linux.
"""

from __future__ import annotations

import logging
import re

import pytest

from provisiond import actions, catalog, lifecycle
from provisiond.errors import StateError
from provisiond.models import Service
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.sandbox.plesk import PleskSimulator
from provisiond.sandbox.virtualmin import VirtualminSimulator
from tests.helpers import assert_kept_nowhere, settle

SECRET = "canary-sso-secret-5Rw2Qd"


def _whm():
    return WhmSimulator(token=SECRET), {"api_token": SECRET}


def _virtualmin():
    return VirtualminSimulator(password=SECRET), {"password": SECRET}


def _plesk():
    return PleskSimulator(api_key=SECRET, plans=("basic",)), {"api_key": SECRET}


# panel -> (simulator and server credentials, the documented URL shape (group 1 is the session),
# the action's params)
PANELS = {
    "cpanel": (_whm, r"https://[^/]+:2083/cpsess\d{{10}}/login/\?session=({user}:[A-Za-z0-9]{{64}})", {}),
    "virtualmin": (_virtualmin, r"https://[^/]+:\d+/session_login\.cgi\?session=([0-9a-f]{{32}})", {}),
    "plesk": (_plesk, r"http://[^/]+:\d+/enterprise/rsession_init\.php\?PLESKSESSID=([0-9a-f]{{32}})",
              {"user_ip": "198.51.100.7"}),
}


@pytest.fixture
def panel_service(request, database, registry, vault, worker):
    """An active service on the named panel's simulator: (simulator, service)."""
    make = PANELS[request.param][0]
    simulator, credentials = make()
    with simulator:
        catalog.add_group("web")
        catalog.add_server(registry, vault, name="p1", panel=request.param, host=simulator.host,
                           port=simulator.port, group_name="web", max_accounts=5,
                           credentials={**credentials, "scheme": "http"})
        catalog.add_product(registry, name="starter", panel=request.param, group_name="web", package="basic")
        service, job = lifecycle.order(registry, vault, product="starter", domain="sso.example.com",
                                       email="me@sso.example.com", ref="SSO-1")
        assert settle(worker, job).status == "succeeded", job.last_error
        yield simulator, Service.get_by_id(service.id)


@pytest.mark.parametrize("panel_service", sorted(PANELS), indirect=True)
def test_login_link_follows_the_vendor_url_and_is_kept_nowhere(panel_service, request, settings, vault,
                                                               registry, caplog):
    simulator, service = panel_service
    caplog.set_level(logging.DEBUG)
    panel = request.node.callspec.params["panel_service"]
    _, shape, params = PANELS[panel]
    link = actions.run(settings, vault, registry, action="login_link", audience="client", service=service,
                       params=params)
    shape = shape.format(user=re.escape(service.username))
    match = re.fullmatch(shape, link["url"])
    assert match, link["url"]
    session = match[1]
    made_for = simulator.sessions[session]  # the panel made it, for this account (and browser)
    assert made_for == (service.username, params["user_ip"]) if params else made_for == service.username
    assert_kept_nowhere(session, settings, caplog.text)


@pytest.mark.parametrize("panel_service", ["cpanel"], indirect=True)
def test_a_suspended_service_gets_a_login_link_for_an_admin_never_for_a_client(panel_service, settings, vault,
                                                                               registry, worker):
    simulator, service = panel_service
    suspend = lifecycle.request(registry, vault, service.ref, "suspend", reason="overdue")
    assert settle(worker, suspend).status == "succeeded"
    service = Service.get_by_id(service.id)
    with pytest.raises(StateError, match="SSO-1 is suspended; login_link is refused to clients"):
        actions.run(settings, vault, registry, action="login_link", audience="client", service=service)
    assert simulator.sessions == {}
    link = actions.run(settings, vault, registry, action="login_link", audience="admin", service=service)
    assert link["url"].split("session=", 1)[1] in simulator.sessions


@pytest.mark.parametrize("panel_service", ["plesk"], indirect=True)
def test_plesk_login_link_needs_the_browser_ip_and_quotes_the_panel_refusal(panel_service, settings, vault,
                                                                           registry):
    from provisiond.errors import PanelError, ValidationError
    simulator, service = panel_service
    with pytest.raises(ValidationError, match="params.user_ip"):
        actions.run(settings, vault, registry, action="login_link", service=service)
    del simulator.accounts[service.username]  # removed behind provisiond's back
    with pytest.raises(PanelError, match="User does not exist"):
        actions.run(settings, vault, registry, action="login_link", service=service,
                    params={"user_ip": "198.51.100.7"})
    assert simulator.sessions == {}


def test_panels_try_hands_an_admin_action_its_params(settings, capsys):
    """`panels try plesk login_link --sandbox --param user_ip=IP`; without the param it is refused
    before anything runs, naming the field."""
    import json

    from provisiond import cli
    base = ["--home", str(settings.home), "--database-url", settings.database_url]
    assert cli.main([*base, "panels", "try", "plesk", "login_link", "--sandbox"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("provisiond: error: params.user_ip:") and "create" not in out
    assert cli.main([*base, "--json", "panels", "try", "plesk", "login_link", "--sandbox",
                     "--param", "user_ip=198.51.100.7"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(s["action"], s["status"]) for s in result["steps"]] == [("create", "succeeded"),
                                                                      ("login_link", "succeeded")]
    assert "/enterprise/rsession_init.php?PLESKSESSID=" in result["steps"][-1]["reported"]["url"]
