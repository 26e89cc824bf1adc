"""Usage collection against the WHM simulator (real ansible-runner runs), its alerts, the
least-disk placement, and the CLI and API faces."""

from __future__ import annotations

import datetime
import json
import subprocess

import pytest

from provisiond import actions, catalog, cli, lifecycle, usage
from provisiond.errors import NotFound
from provisiond.models import Notification, Service, ServerGroup, Usage
from tests.conftest import WHM_TOKEN
from tests.integration.panels.adapters import PLESK_IP, PLESK_KEY, STRONG, all_adapters
from tests.integration.panels.adapters import hestia_commands as commands

MIB = 1024 * 1024
T0 = datetime.datetime(2026, 11, 1, 4, 0)


def active_service(ref: str, username: str, server, product, domain: str | None = None) -> Service:
    """A service provisiond holds as active on ``server`` (its account is made on the panel apart)."""
    return Service.create(ref=ref, product=product, server=server, domain=domain or f"{username}.example.com",
                          email=f"o@{username}.example.com", username=username, package="basic",
                          status="active")


def panel_account(whm, username: str, **usage_figures):
    whm.op_createacct({"username": username, "domain": f"{username}.example.com", "plan": "basic",
                       "password": "Xx1!whatever-long", "contactemail": f"o@{username}.example.com",
                       **{k: v for k, v in usage_figures.items() if k in ("quota", "bwlimit")}})
    account = whm.accounts[username]
    for name, value in usage_figures.items():
        if name not in ("quota", "bwlimit"):
            setattr(account, name, value)
    return account


def test_collect_stores_what_whm_reports_and_ignores_unknown_accounts(cpanel_setup, settings, vault, registry,
                                                                      whm):
    server, product = cpanel_setup
    shop = active_service("INV-1", "shop", server, product)
    blog = active_service("INV-2", "blog", server, product)
    panel_account(whm, "shop", quota=1000, bwlimit=2048, disk_used_mb=420, inodes_used=3150, inodes_limit=50000,
                  bandwidth_bytes=300 * MIB)
    panel_account(whm, "blog", disk_used_mb=12, inodes_used=77, bandwidth_bytes=MIB // 2)  # unlimited
    panel_account(whm, "stray", disk_used_mb=999)   # made by someone else: not a service
    panel_account(whm, "ended", disk_used_mb=5)     # a terminated service's username
    Service.create(ref="INV-3", product=product, server=server, domain="ended.example.com",
                   email="o@ended.example.com", username="ended", package="basic", status="terminated")

    result = usage.collect(settings, vault, registry, server, now=T0)

    assert (result.stored, result.unknown, result.alerts) == (2, 2, 0)
    rows = {row.service_id: row for row in Usage.select()}
    assert set(rows) == {shop.id, blog.id}
    got = {name: getattr(rows[shop.id], name) for name in usage.FIGURES}
    assert got == {"disk_used_mb": 420, "disk_limit_mb": 1000, "bandwidth_used_mb": 300, "bandwidth_limit_mb": 2048,
                   "inodes_used": 3150, "inodes_limit": 50000, "mailboxes": None, "databases": None}
    got = {name: getattr(rows[blog.id], name) for name in usage.FIGURES}
    assert got == {"disk_used_mb": 12, "disk_limit_mb": None, "bandwidth_used_mb": 0.5, "bandwidth_limit_mb": None,
                   "inodes_used": 77, "inodes_limit": None, "mailboxes": None, "databases": None}
    assert rows[shop.id].collected_at == T0
    # one run: one listaccts and one showbw, whatever the number of accounts
    calls = [r.path.rsplit("/", 1)[1] for r in whm.requests]
    assert calls.count("listaccts") == 1 and calls.count("showbw") == 1


def test_alerts_once_per_crossing_and_again_after_falling_back(cpanel_setup, settings, vault, registry, whm):
    server, product = cpanel_setup
    settings = _with_alerts(settings)
    active_service("INV-1", "shop", server, product)
    account = panel_account(whm, "shop", quota=1000, disk_used_mb=500)

    def collect(day: int, disk: int) -> int:
        account.disk_used_mb = disk
        return usage.collect(settings, vault, registry, server, now=T0 + datetime.timedelta(days=day)).alerts

    def disk_alerts() -> list[str]:
        return [n.payload["subject"] for n in Notification.select().where(Notification.kind == "alert_webhook")
                .order_by(Notification.id)]

    assert collect(0, 500) == 0
    assert collect(1, 910) == 1                       # crosses 90 %
    assert collect(2, 950) == 0                       # still over 90 %: no second alert
    assert collect(3, 1000) == 1                      # crosses 100 %
    assert collect(4, 1200) == 0
    assert collect(5, 400) == 0                       # back below: re-armed
    assert collect(6, 1001) == 1                      # straight past both: one alert, of 100 %
    assert disk_alerts() == ["INV-1: disk at 90 % of its limit", "INV-1: disk at 100 % of its limit",
                             "INV-1: disk at 100 % of its limit"]


def _with_alerts(settings):
    import dataclasses
    return dataclasses.replace(settings, alert_webhook_url="http://127.0.0.1:9/alerts")


def test_least_disk_places_on_the_server_whose_accounts_use_least(cpanel_setup, settings, vault, registry, whm):
    from provisiond.sandbox.cpanel import WhmSimulator
    server, product = cpanel_setup
    ServerGroup.update(strategy="least-disk").execute()
    with WhmSimulator(token=WHM_TOKEN) as other:
        second = catalog.add_server(registry, vault, name="whm2", panel="cpanel", host=other.host, port=other.port,
                                    group_name="web", max_accounts=50,
                                    credentials={"api_token": WHM_TOKEN, "scheme": "http"})
        # whm1 holds one big account; whm2 holds three small ones
        active_service("INV-1", "big", server, product)
        panel_account(whm, "big", disk_used_mb=9000)
        for i in range(3):
            active_service(f"INV-1{i}", f"small{i}", second, product)
            panel_account(other, f"small{i}", disk_used_mb=100)
        assert {r.server: r.stored for r in usage.collect_all(settings, vault, registry, now=T0)} == {
            "whm1": 1, "whm2": 3}
        ordered, _ = lifecycle.order(registry, vault, product="starter", domain="new.example.com",
                                     email="o@new.example.com", ref="INV-NEW")
        assert ordered.server_id == second.id  # least-loaded would have chosen whm1

        # whm2 grows: the next order goes to whm1
        other.accounts["small0"].disk_used_mb = 20000
        usage.collect_all(settings, vault, registry, now=T0 + datetime.timedelta(days=1))
        ordered, _ = lifecycle.order(registry, vault, product="starter", domain="next.example.com",
                                     email="o@next.example.com", ref="INV-NEXT")
        assert ordered.server_id == server.id


def test_collect_of_an_unknown_server_is_refused(cpanel_setup, settings, vault, registry):
    with pytest.raises(NotFound, match="nosuch"):
        usage.collect_all(settings, vault, registry, server_name="nosuch")


def test_a_failing_server_is_reported_and_stores_nothing(cpanel_setup, settings, vault, registry, whm):
    server, product = cpanel_setup
    active_service("INV-1", "shop", server, product)
    panel_account(whm, "shop", disk_used_mb=1)
    whm.fail_next(5, status=403, body=b"Access denied")
    [result] = usage.collect_all(settings, vault, registry, now=T0)
    assert not result.ok and result.stored == 0 and WHM_TOKEN not in result.error
    assert Usage.select().count() == 0


# -- faces -----------------------------------------------------------------------------------

def run_cli(settings, capsys, *argv):
    code = cli.main(["--home", str(settings.home), "--database-url", settings.database_url, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_collect_and_service_usage(cpanel_setup, settings, whm, capsys):
    server, product = cpanel_setup
    active_service("INV-1", "shop", server, product)
    account = panel_account(whm, "shop", quota=1000, disk_used_mb=420, bandwidth_bytes=3 * MIB)
    panel_account(whm, "stray", disk_used_mb=1)

    code, out, err = run_cli(settings, capsys, "usage", "collect", "--json")
    assert code == 0, err
    assert json.loads(out) == [{"server": "whm1", "stored": 1, "unknown": 1, "alerts": 0, "error": None}]
    account.disk_used_mb = 430
    code, out, _ = run_cli(settings, capsys, "usage", "collect", "--server", "whm1")
    assert code == 0 and "whm1: 1 services" in out and "1 accounts not known" in out

    code, out, _ = run_cli(settings, capsys, "service", "usage", "INV-1", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["latest"]["disk_used_mb"] == 430 and shown["latest"]["bandwidth_used_mb"] == 3
    assert [h["disk_used_mb"] for h in shown["history"]] == [430, 420]
    code, out, _ = run_cli(settings, capsys, "service", "usage", "INV-1")
    assert code == 0 and "430" in out and "1000" in out

    code, _, err = run_cli(settings, capsys, "usage", "collect", "--server", "nosuch")
    assert code == 2 and "nosuch" in err
    code, _, err = run_cli(settings, capsys, "service", "usage", "NOPE")
    assert code == 2
    for text in (out, err):
        assert WHM_TOKEN not in text


@pytest.fixture
def api_client(cpanel_setup, settings, vault):
    from fastapi.testclient import TestClient

    from provisiond import api, tokens
    token = tokens.create("ops", scope="admin")   # the usage routes are admin routes (api/base.py)
    with TestClient(api.create_app(settings, vault)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _seed(server, product, services: int, days: int) -> None:
    for i in range(services):
        service = active_service(f"INV-{i}", f"acct{i}", server, product)
        for day in range(days):
            Usage.create(service=service, collected_at=T0 + datetime.timedelta(days=day),
                         disk_used_mb=float(i * 100 + day))


def test_api_usage_pages_since_a_time_without_gaps_or_repeats(cpanel_setup, api_client):
    server, product = cpanel_setup
    _seed(server, product, services=7, days=4)
    since = (T0 + datetime.timedelta(days=1)).isoformat() + "Z"
    seen, cursor, pages = [], None, 0
    while True:
        params = {"since": since, "limit": 5} | ({"cursor": cursor} if cursor else {})
        answer = api_client.get("/v1/usage", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [(row["service"], row["collected_at"], row["disk_used_mb"]) for row in body["usage"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = sorted((f"INV-{i}", (T0 + datetime.timedelta(days=d)).isoformat(), float(i * 100 + d))
                      for i in range(7) for d in range(1, 4))
    assert len(seen) == 21 and pages == 5
    assert sorted(seen) == expected and len(set(seen)) == len(seen)
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)  # oldest first


def test_api_service_usage_and_bad_input(cpanel_setup, api_client):
    server, product = cpanel_setup
    _seed(server, product, services=1, days=3)
    body = api_client.get("/v1/services/INV-0/usage").json()
    assert body["service"] == "INV-0" and body["latest"]["disk_used_mb"] == 2.0
    assert [h["disk_used_mb"] for h in body["history"]] == [2.0, 1.0, 0.0]
    assert api_client.get("/v1/services/NOPE/usage").status_code == 404
    for params, field in (({"since": "yesterday"}, "since"), ({"since": "2026-11-01T00:00:00Z", "cursor": "!!"},
                                                               "cursor"),
                          ({"since": "2026-11-01T00:00:00Z", "limit": 0}, "limit")):
        answer = api_client.get("/v1/usage", params=params)
        assert answer.status_code == 422, params
        assert field in json.dumps(answer.json()["detail"])
    assert api_client.get("/v1/usage", params={"since": "2026-11-01T00:00:00Z"},
                          headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_daemons_collect_once_a_day(cpanel_setup, settings, vault, whm):
    from provisiond.daemon import Daemon
    server, product = cpanel_setup
    active_service("INV-1", "shop", server, product)
    panel_account(whm, "shop", disk_used_mb=3)
    daemons = [Daemon(settings, vault, owner=f"node{i}") for i in range(3)]
    try:
        for daemon in daemons:
            daemon.collect_usage()
    finally:
        for daemon in daemons:
            daemon.worker.shutdown()
    assert Usage.select().count() == 1
    assert [r.path.rsplit("/", 1)[1] for r in whm.requests].count("listaccts") == 1


def test_only_one_caller_claims_a_day_of_collection(database):
    import threading
    day = datetime.date(2026, 11, 2)
    winners = []

    def contend():
        try:
            winners.append(usage.claim_day(day))
        finally:
            database.close()

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners.count(True) == 1
    assert usage.claim_day(day + datetime.timedelta(days=1))


def test_a_bad_usage_cron_is_refused_naming_the_setting(tmp_path):
    from provisiond import config
    from provisiond.errors import ConfigError
    with pytest.raises(ConfigError, match="usage_cron"):
        config.load({"home": tmp_path, "usage_cron": "every day"}, environ={})


# -- other panels ----------------------------------------------------------------------------

@pytest.fixture
def panel(request, tmp_path, database, registry, vault):
    """The conformance suite's adapter of panel ``request.param`` (tests/integration/panels), started
    and registered: (adapter, (server, product))."""
    made = all_adapters()[request.param](tmp_path)
    with made.start():
        yield made, made.register(registry, vault)


@pytest.mark.parametrize("panel", ["hestia"], indirect=True)
def test_hestia_usage_comes_from_v_list_users_with_the_billing_key(panel, settings, vault, registry):
    adapter, (server, product) = panel
    hestia = adapter.sim
    hestia.packages["metered"] = {"DISK_QUOTA": 2000, "BANDWIDTH": 10000}
    shop = active_service("INV-1", "shopuser", server, product)
    hestia.cmd_add_user("shopuser", "Xx1!whatever-long", "o@shop.example.com", "metered")
    account = hestia.accounts["shopuser"]
    account.disk_used, account.bandwidth_used, account.mail_accounts, account.databases = 1850, 120, 4, 2
    hestia.cmd_add_user("stranger", "Xx1!whatever-long", "s@example.com", "basic")

    result = usage.collect(settings, vault, registry, server, now=T0)

    assert (result.stored, result.unknown) == (1, 2)  # the stranger and the admin are not services
    assert result.alerts == 1  # 1850 of 2000 MB is past 90 %
    row = Usage.get(Usage.service == shop)
    assert {name: getattr(row, name) for name in usage.FIGURES} == {
        "disk_used_mb": 1850, "disk_limit_mb": 2000, "bandwidth_used_mb": 120, "bandwidth_limit_mb": 10000,
        "inodes_used": None, "inodes_limit": None, "mailboxes": 4, "databases": 2}
    assert commands(hestia) == ["v-list-users"]


@pytest.mark.parametrize("panel", ["directadmin"], indirect=True)
def test_directadmin_usage_reads_each_account_of_the_login(panel, settings, vault, registry):
    adapter, (server, product) = panel
    da = adapter.sim
    shop = active_service("INV-1", "shopper", server, product)
    da.op_account_user({"action": "create", "add": "Submit", "username": "shopper", "email": "o@shop.example.com",
                        "passwd": "Xx1!whatever-long", "passwd2": "Xx1!whatever-long",
                        "domain": "shop.example.com", "package": "basic", "ip": "127.0.0.1", "notify": "no"})
    account = da.accounts["shopper"]
    account.disk_used_mb, account.bandwidth_used_mb, account.inodes_used = 512.5, 2048.25, 4100
    account.mailboxes, account.databases = 3, 1
    account.disk_limit_mb, account.inodes_limit = 1024, 100000
    da.add_foreign_user("other", "other.example.com")  # another reseller's: not listed to this login

    result = usage.collect(settings, vault, registry, server, now=T0)

    assert (result.stored, result.unknown, result.alerts) == (1, 0, 0)
    row = Usage.get(Usage.service == shop)
    assert {name: getattr(row, name) for name in usage.FIGURES} == {
        "disk_used_mb": 512.5, "disk_limit_mb": 1024, "bandwidth_used_mb": 2048.25, "bandwidth_limit_mb": None,
        "inodes_used": 4100, "inodes_limit": 100000, "mailboxes": 3, "databases": 1}
    assert [r.path for r in da.requests] == ["/CMD_API_SHOW_USERS", "/CMD_API_SHOW_USER_USAGE",
                                             "/CMD_API_SHOW_USER_CONFIG"]


@pytest.mark.parametrize("panel", ["linux"], indirect=True)
def test_linux_usage_is_du_of_each_account_provisiond_made(panel, settings, vault, registry):
    host, (server, product) = panel
    shop = active_service("INV-1", "shop", server, product)
    active_service("INV-2", "site", server, product)
    for name, web_root in (("shop", "/home/shop/public_html"), ("site", "/srv/www/site")):
        host.record_path(name).parent.mkdir(parents=True, exist_ok=True)
        host.record_path(name).write_text(json.dumps({"username": name, "domain": f"{name}.example.com",
                                                      "home": f"/home/{name}", "web_root": web_root,
                                                      "quota_mb": 4 if name == "shop" else 0}))
        (host.root / web_root.lstrip("/")).mkdir(parents=True)
    (host.root / "home/shop/public_html/big.bin").write_bytes(b"x" * (3 * MIB))   # 3 of 4 MB: 75 %
    (host.root / "srv/www/site/a.html").write_bytes(b"y" * (2 * MIB))            # outside the home
    (host.root / "home/site").mkdir()
    (host.root / "home/stray").mkdir()  # a home without provisiond's record is not an account

    result = usage.collect(settings, vault, registry, server, now=T0)

    assert (result.stored, result.unknown, result.alerts) == (2, 0, 0)
    rows = {row.service.username: row for row in Usage.select()}
    assert 3.0 <= rows["shop"].disk_used_mb < 3.1 and rows["shop"].disk_limit_mb == 4
    assert rows["shop"].inodes_used == 3  # the home, public_html, big.bin
    assert 2.0 <= rows["site"].disk_used_mb < 2.1 and rows["site"].disk_limit_mb is None
    assert rows["site"].inodes_used == 3  # the home, the web root outside it, a.html
    assert rows["shop"].bandwidth_used_mb is None and rows["shop"].mailboxes is None
    assert Usage.get(Usage.service == shop).collected_at == T0


def test_api_usage_refuses_a_since_out_of_range_and_a_forged_cursor(cpanel_setup, api_client):
    import base64
    forged = base64.urlsafe_b64encode(b"2026-11-01T00:00:00+02:00|7").decode()
    for params, field in (({"since": "0001-01-01T00:00:00+01:00"}, "since"),
                          ({"since": "2026-11-01T00:00:00", "cursor": forged}, "cursor")):
        answer = api_client.get("/v1/usage", params=params)
        assert answer.status_code == 422 and field in answer.text, params


@pytest.mark.parametrize("panel", ["virtualmin"], indirect=True)
def test_virtualmin_usage_comes_from_one_multiline_listing(panel, settings, vault, registry):
    adapter, (server, product) = panel
    virtualmin = adapter.sim
    shop = active_service("INV-1", "shop", server, product)
    adapter.squat("shop", "shop.example.com")
    adapter.squat("other", "other.example.com")
    account = virtualmin.accounts["shop"]
    account.quota_blocks, account.used_bytes = 1024 * 1024, 700 * MIB               # 1 GiB quota
    account.bw_limit_bytes, account.bw_usage_bytes, account.databases = 10240 * MIB, 2560 * MIB, 2

    result = usage.collect(settings, vault, registry, server, now=T0)

    assert (result.stored, result.unknown, result.alerts) == (1, 1, 0)
    row = Usage.get(Usage.service == shop)
    assert {name: getattr(row, name) for name in usage.FIGURES} == {
        "disk_used_mb": 700, "disk_limit_mb": 1024, "bandwidth_used_mb": 2560, "bandwidth_limit_mb": 10240,
        "inodes_used": None, "inodes_limit": None, "mailboxes": None, "databases": 2}
    assert len(virtualmin.requests) == 1
    # the listing carries every account's password; what the action hands back does not
    from provisiond import actions
    answer = actions.run(settings, vault, registry, action="usage", server=server)
    assert STRONG not in json.dumps(answer) and len(answer["usage"]) == 2


@pytest.mark.parametrize("panel", ["plesk"], indirect=True)
def test_plesk_usage_is_one_xml_packet_summed_per_owner(panel, settings, vault, registry):
    adapter, (server, product) = panel
    plesk = adapter.sim
    shop = active_service("INV-1", "shop", server, product, "shop.example.com")
    multi = active_service("INV-2", "multi", server, product, "multi.example.com")
    adapter.squat("shop", "shop.example.com")
    adapter.squat("multi", "multi.example.com")
    status, _ = plesk.op_create_domain(None, {   # a second subscription of the same customer
        "name": "multi.example.net", "hosting_type": "virtual", "owner_client": {"login": "multi"},
        "hosting_settings": {"ftp_login": "multi2", "ftp_password": STRONG}, "ip_addresses": [PLESK_IP],
        "plan": {"name": "basic"}})
    assert status == 201
    adapter.squat("handmade", "hand.example.net")  # made in Plesk by hand: not a service
    figures = {"shop.example.com": dict(real_size=700 * MIB, disk_space=1024 * MIB, traffic=2560 * MIB,
                                        max_traffic=10240 * MIB, mailboxes=4, databases=2),
               "multi.example.com": dict(real_size=100 * MIB, disk_space=512 * MIB, traffic=MIB,
                                         max_traffic=1024 * MIB, mailboxes=1),
               "multi.example.net": dict(real_size=50 * MIB + MIB // 2, traffic=MIB // 2,  # disk unlimited
                                         max_traffic=1024 * MIB, mailboxes=2, databases=1),
               "hand.example.net": dict(real_size=9 * MIB)}
    for name, values in figures.items():
        for field, value in values.items():
            setattr(plesk.subscriptions[name], field, value)
    plesk.requests.clear()

    result = usage.collect(settings, vault, registry, server, now=T0)

    assert (result.stored, result.unknown, result.alerts) == (2, 1, 0)
    rows = {row.service_id: {name: getattr(row, name) for name in usage.FIGURES} for row in Usage.select()}
    assert rows == {
        shop.id: {"disk_used_mb": 700, "disk_limit_mb": 1024, "bandwidth_used_mb": 2560, "bandwidth_limit_mb": 10240,
                  "inodes_used": None, "inodes_limit": None, "mailboxes": 4, "databases": 2},
        multi.id: {"disk_used_mb": 150.5, "disk_limit_mb": None, "bandwidth_used_mb": 1.5,
                   "bandwidth_limit_mb": 2048, "inodes_used": None, "inodes_limit": None, "mailboxes": 3,
                   "databases": 1}}
    assert [(r.method, r.path) for r in plesk.requests] == [("POST", "/enterprise/control/agent.php")]
    answer = actions.run(settings, vault, registry, action="usage", server=server)
    assert PLESK_KEY not in json.dumps(answer) and STRONG not in json.dumps(answer)
    assert sorted(a["username"] for a in answer["usage"]) == ["handmade", "multi", "shop"]


@pytest.mark.parametrize("panel", ["plesk"], indirect=True)
def test_plesk_usage_reports_a_refused_key_without_it(panel, settings, vault, registry):
    adapter, (server, product) = panel
    plesk = adapter.sim
    active_service("INV-1", "shop", server, product, "shop.example.com")
    plesk.api_key = "another-key"
    [result] = usage.collect_all(settings, vault, registry, now=T0)
    assert not result.ok and "Authentication failed" in result.error and PLESK_KEY not in result.error
    assert Usage.select().count() == 0


@pytest.mark.parametrize("panel", ["cloudpanel"], indirect=True)
def test_cloudpanel_usage_is_du_of_each_site_users_home(panel, settings, vault, registry):
    cloudpanel, (server, product) = panel
    shop = active_service("INV-1", "shop", server, product, "shop.example.com")
    blog = active_service("INV-2", "blog", server, product, "blog.example.com")
    cloudpanel.add_php_site("shop.example.com", "shop")
    cloudpanel.add_php_site("blog.example.com", "blog")
    cloudpanel.add_php_site("hand.example.net", "handmade")  # made in CloudPanel by hand: not a service
    for user, files in (("shop", {"htdocs/shop.example.com/big.bin": 3 * MIB, "logs/access.log": MIB}),
                        ("blog", {"htdocs/blog.example.com/a.html": 2 * MIB})):
        for path, size in files.items():
            target = cloudpanel.home / user / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x" * size)
    (cloudpanel.home / "stray" / "htdocs" / "gone.example.com").mkdir(parents=True)  # no vhost: no site

    def du(user: str, *how: str) -> float:
        out = subprocess.run(["du", "-s", "-x", *how, str(cloudpanel.home / user)], capture_output=True, text=True,
                             check=True)
        return int(out.stdout.split()[0])

    result = usage.collect(settings, vault, registry, server, now=T0)

    assert (result.stored, result.unknown, result.alerts) == (2, 1, 0)
    rows = {row.service_id: {name: getattr(row, name) for name in usage.FIGURES} for row in Usage.select()}
    assert rows == {
        service.id: {"disk_used_mb": round(du(user, "-k") / 1024, 2), "disk_limit_mb": None,
                     "bandwidth_used_mb": None, "bandwidth_limit_mb": None, "inodes_used": du(user, "--inodes"),
                     "inodes_limit": None, "mailboxes": None, "databases": None}
        for service, user in ((shop, "shop"), (blog, "blog"))}
    assert 4.0 <= rows[shop.id]["disk_used_mb"] < 4.2 and 2.0 <= rows[blog.id]["disk_used_mb"] < 2.2
    answer = actions.run(settings, vault, registry, action="usage", server=server)
    assert "Other-password-123" not in json.dumps(answer)
    assert cloudpanel.sshd.client_key not in json.dumps(answer)
