"""The provisiond command, run in-process as a user would type it."""

from __future__ import annotations

import json

import pytest

from provisiond import cli
from provisiond.models import Job, Product, Server, Service
from tests.conftest import WHM_TOKEN


@pytest.fixture
def run(settings, capsys):
    """run(*argv) → (exit code, stdout, stderr), against the test's home and database."""
    def invoke(*argv):
        code = cli.main(["--home", str(settings.home), "--database-url", settings.database_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err
    return invoke


@pytest.fixture
def ready(run, whm):
    assert run("init")[0] == 0
    assert run("group", "add", "web")[0] == 0
    code, out, err = run("server", "add", "whm1", "--panel", "cpanel", "--host", "127.0.0.1",
                         "--port", str(whm.port), "--group", "web", "--credential", f"api_token={WHM_TOKEN}",
                         "--credential", "scheme=http")
    assert code == 0, err
    assert run("product", "add", "starter", "--panel", "cpanel", "--group", "web", "--package", "basic")[0] == 0
    return run


def test_init_is_safe_to_run_twice(run, settings):
    first = run("--json", "init")
    second = run("init", "--json")
    assert first[0] == second[0] == 0
    assert json.loads(first[1])["migrations"] and json.loads(second[1])["migrations"] == []
    assert (settings.home / "provisiond.yaml").exists()
    assert oct(settings.secret_key_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("argv, field", [
    (["service", "order", "--product", "nope", "--domain", "a.example.com", "--email", "a@b.co"], "product"),
    (["service", "order", "--product", "starter", "--domain", "bad domain.com", "--email", "a@b.co"], "domain"),
    (["service", "order", "--product", "starter", "--domain", "{{ lookup('pipe','id') }}.com", "--email", "a@b.co"], "domain"),
    (["service", "order", "--product", "starter", "--domain", "ok.example.com", "--email", "nope"], "email"),
    (["service", "order", "--product", "starter", "--domain", "ok.example.com", "--email", "a@b.co",
      "--username", "root"], "username"),
    (["server", "add", "whm2", "--panel", "cpanel", "--host", "h.example.net", "--group", "web"], "credential.api_token"),
    (["server", "add", "whm2", "--panel", "nopanel", "--host", "h.example.net", "--group", "web"], "panel"),
    (["product", "add", "p2", "--panel", "cpanel", "--group", "web", "--package", "basic", "--config", "quota=lots"], "config.quota"),
    (["product", "add", "p2", "--panel", "cpanel", "--group", "nogroup", "--package", "basic"], "group"),
])
def test_bad_input_names_the_field_exits_2_and_writes_nothing(ready, argv, field, database):
    before = [m.select().count() for m in (Server, Product, Service, Job)]
    code, out, err = ready(*argv)
    assert code == 2
    assert err.startswith(f"provisiond: error: {field}:") and len(err.strip().splitlines()) == 1
    assert [m.select().count() for m in (Server, Product, Service, Job)] == before


def test_order_run_once_show_and_log(ready, whm):
    code, out, _ = ready("--json", "service", "order", "--product", "starter", "--domain",
                         "cli.example.com", "--email", "me@cli.example.com", "--ref", "INV-9")
    order = json.loads(out)
    assert code == 0 and order["status"] == "pending" and order["job"]
    assert ready("run", "--once")[0] == 0
    service = json.loads(ready("service", "show", "INV-9", "--json")[1])
    assert service["status"] == "active" and service["jobs"][0]["status"] == "succeeded"
    assert "cli" in whm.accounts
    code, out, _ = ready("log", "show", str(order["job"]))
    assert code == 0 and "attempt 1: succeeded (create on cpanel" in out
    jobs = json.loads(ready("job", "list", "--json")[1])
    assert [j["action"] for j in jobs] == ["create"]
    assert ready("service", "suspend", "INV-9", "--reason", "abuse")[0] == 0
    ready("run", "--once")
    assert json.loads(ready("service", "show", "INV-9", "--json")[1])["status_reason"] == "abuse"
    assert whm.accounts["cli"].suspended


def test_failed_job_shows_task_and_panel_answer_then_retry(ready, whm):
    whm.op_createacct({"username": "zzz", "domain": "dup.example.com", "plan": "basic",
                       "password": "Aa1!long-enough", "contactemail": "z@dup.example.com"})
    order = json.loads(ready("--json", "service", "order", "--product", "starter", "--domain",
                             "dup.example.com", "--email", "me@dup.example.com")[1])
    ready("run", "--once")
    code, out, _ = ready("log", "show", str(order["job"]))
    assert "attempt 1: failed" in out
    assert "failed task:  Create the account (createacct)" in out
    assert "already configured" in out and WHM_TOKEN not in out
    failed = json.loads(ready("job", "list", "--status", "failed", "--json")[1])
    assert [j["id"] for j in failed] == [order["job"]]
    del whm.accounts["zzz"]
    assert ready("job", "retry", str(order["job"]))[0] == 0
    ready("run", "--once")
    assert json.loads(ready("job", "show", str(order["job"]), "--json")[1])["status"] == "succeeded"
    assert json.loads(ready("service", "show", order["ref"], "--json")[1])["status"] == "active"


def test_cancel_a_queued_job_and_unknown_ids(ready):
    order = json.loads(ready("--json", "service", "order", "--product", "starter", "--domain",
                             "cancel.example.com", "--email", "me@cancel.example.com")[1])
    code, out, _ = ready("job", "cancel", str(order["job"]))
    assert code == 0 and "cancelled" in out
    ready("run", "--once")
    assert json.loads(ready("job", "show", str(order["job"]), "--json")[1])["status"] == "cancelled"
    assert ready("job", "show", "9999")[0] == 2
    assert ready("service", "show", "NOPE")[0] == 2


def test_server_test_and_listings_mask_secrets(ready, whm):
    code, out, _ = ready("server", "test", "whm1")
    assert code == 0 and "ok" in out
    listing = ready("server", "list", "--json")[1]
    assert WHM_TOKEN not in listing and "********" in listing
    assert json.loads(listing)[0]["health"] == "ok"
    panels = json.loads(ready("panels", "list", "--json")[1])
    assert "cpanel" in {p["id"] for p in panels}
    whm.token = "rotated-on-the-panel"
    code, out, _ = ready("server", "test", "whm1")
    assert code == 1 and "Access denied" in out


def test_admin_and_client_actions_declared_by_the_panel(ready, whm):
    order = json.loads(ready("--json", "service", "order", "--product", "starter", "--domain",
                             "act.example.com", "--email", "me@act.example.com", "--ref", "ACT-1")[1])
    code, _, err = ready("service", "action", "ACT-1", "login_link")
    assert code == 2 and "is pending; login_link needs it active" in err  # not active yet
    ready("run", "--once")
    code, out, _ = ready("--json", "service", "action", "ACT-1", "login_link", "--as", "client")
    link = json.loads(out)
    assert code == 0 and "/cpsess" in link["url"] and "session=act:" in link["url"]
    code, _, err = ready("server", "action", "whm1", "list_packages", "--param", "x=1")
    assert code == 2 and "params.x" in err
    code, out, _ = ready("--json", "server", "action", "whm1", "list_packages")
    assert json.loads(out)["packages"] == ["basic", "business", "pro"]
    code, _, err = ready("service", "action", "ACT-1", "no_such_action")
    assert code == 2 and "action" in err
    assert order["job"]


def test_status_shows_daemons_queue_depth_oldest_queued_job_and_last_sweep(ready):
    import datetime
    from provisiond import health, sweep
    from provisiond.models import utcnow
    assert ready("service", "order", "--product", "starter", "--domain", "st.example.com",
                 "--email", "me@st.example.com", "--ref", "ST-1")[0] == 0

    code, out, _ = ready("status")
    assert code == 1  # nobody works the queue: a monitoring script sees it
    assert out.startswith("UNHEALTHY: no daemon has ticked yet")

    health.register("host-a:4242:abc", utcnow())
    health.beat("host-a:4242:abc", utcnow())
    sweep.claim_day(datetime.date(2026, 11, 27))
    code, out, _ = ready("status")
    assert code == 0, out
    assert out.startswith("healthy")
    assert "host-a:4242:abc  running" in out
    assert "queued 1, running 0, succeeded 0" in out
    assert "oldest queued job: " in out and "s old" in out
    assert "last sweep: 2026-11-27" in out

    code, out, _ = ready("status", "--json")
    report = json.loads(out)
    assert report["healthy"] is True and report["queue"]["queued"] == 1
    assert [d["owner"] for d in report["daemons"]] == ["host-a:4242:abc"]
    assert report["daemons"][0]["state"] == "running" and report["daemons"][0]["pid"] > 0
    assert report["oldest_queued_age_seconds"] >= 0 and report["last_sweep"] == "2026-11-27"


def test_status_says_when_the_database_cannot_be_reached(tmp_path, capsys):
    from tests.integration.test_api import _free_port
    url = f"postgresql://nobody@127.0.0.1:{_free_port()}/gone"
    code = cli.main(["--home", str(tmp_path / "home"), "--database-url", url, "status"])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    assert out.startswith("UNHEALTHY: the database cannot be reached (connection to server at")
