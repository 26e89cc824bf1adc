"""The provisiond command, run in-process as a user would type it."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path

import pytest

from provisiond import audit, cli
from provisiond.config import bundled_dir
from provisiond.models import Job, Product, Server, Service
from tests.conftest import WHM_TOKEN


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


def test_init_leaves_home_database_and_config_private_and_masks_the_password(settings, capsys):
    url = settings.database_url.replace("postgres@", "postgres:canary-db-password@")  # trust auth
    settings.home.chmod(0o755)  # made by the fixture (the key file)
    (settings.home / "provisiond.yaml").write_text("{}\n")
    (settings.home / "provisiond.yaml").chmod(0o644)  # an older init left it readable: tightened
    for argv in (["init"], ["--json", "init"]):
        assert cli.main(["--home", str(settings.home), "--database-url", url, *argv]) == 0
        out = capsys.readouterr().out
        assert "canary-db-password" not in out and ("********" in out) == (url != settings.database_url)
    mode = lambda path: oct(path.stat().st_mode & 0o777)  # noqa: E731
    assert mode(settings.home) == "0o700"
    assert mode(settings.home / "provisiond.yaml") == mode(settings.secret_key_file) == "0o600"
    if url.startswith("sqlite:///"):
        assert mode(Path(url[len("sqlite:///"):])) == "0o600"


def test_credentials_are_read_from_a_file_or_stdin(ready, tmp_path, monkeypatch, vault):
    from provisiond import catalog
    token_file = tmp_path / "whm2.token"
    token_file.write_text("token-from-a-file\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("token-from-stdin\n"))
    for name, source in (("whm2", f"@{token_file}"), ("whm3", "-")):
        code, _, err = ready("server", "add", name, "--panel", "cpanel", "--host", "h.example.net", "--group",
                             "web", "--credential", f"api_token={source}", "--credential", "scheme=http")
        assert code == 0, err
    stored = {s.name: catalog.open_credentials(s.credentials, vault, s.name)["api_token"]
              for s in Server.select().where(Server.name != "whm1")}
    assert stored == {"whm2": "token-from-a-file", "whm3": "token-from-stdin"}
    code, _, err = ready("server", "add", "whm4", "--panel", "cpanel", "--host", "h.example.net", "--group",
                         "web", "--credential", "api_token=-", "--credential", "username=-")
    assert code == 2 and err.startswith("provisiond: error: credential:")


@pytest.mark.parametrize("argv, field", [
    (["service", "order", "--product", "nope", "--domain", "a.example.com", "--email", "a@b.co"], "product"),
    (["service", "order", "--product", "starter", "--domain", "bad domain.com", "--email", "a@b.co"], "domain"),
    (["service", "order", "--product", "starter", "--domain", "{{ lookup('pipe','id') }}.com", "--email", "a@b.co"], "domain"),
    (["service", "order", "--product", "starter", "--domain", "ok.example.com", "--email", "nope"], "email"),
    (["service", "order", "--product", "starter", "--domain", "ok.example.com", "--email", "a@b.co",
      "--username", "root"], "username"),
    (["server", "add", "whm2", "--panel", "cpanel", "--host", "h.example.net", "--group", "web"], "credential.api_token"),
    (["server", "add", "whm2", "--panel", "cpanel", "--host", "h.example.net", "--group", "web",
      "--credential", "api_token=@/nonexistent/whm2.token"], "credential.api_token"),
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
    assert f"playbooks:    {bundled_dir('playbooks') / 'cpanel'}\n" in out  # the folder it ran from
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
    [attempt] = json.loads(ready("log", "show", str(order["job"]), "--json")[1])
    assert attempt["panel_answer"]["metadata"]["result"] == 0  # JSON, not a string holding JSON
    assert datetime.datetime.fromisoformat(attempt["started_at"]).utcoffset() == datetime.timedelta(0)
    failed = json.loads(ready("job", "list", "--status", "failed", "--json")[1])
    assert [j["id"] for j in failed] == [order["job"]]
    del whm.accounts["zzz"]
    assert ready("job", "retry", str(order["job"]))[0] == 0
    [retry] = audit.entries(f"job:{order['job']}")  # who retried, and the service failed -> pending
    assert retry.actor == audit.cli_actor() and retry.action == "job.retry"
    assert (retry.detail["service_from"], retry.detail["service_to"]) == ("failed", "pending")
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


def test_sandbox_prints_server_add_lines_that_work_when_pasted(run, whm, registry):
    import shlex

    from provisiond.sandbox import server_add_lines
    lines = server_add_lines("cpanel", whm, [f.name for f in registry.get("cpanel").credentials])
    assert run("init")[0] == 0
    for line in lines.splitlines():
        argv = shlex.split(line)
        assert argv[0] == "provisiond"
        code, _, err = run(*argv[1:])
        assert code == 0, err
    code, out, err = run("server", "test", "sandbox-cpanel")
    assert code == 0, err
    assert "ok" in out


def test_panels_try_create_runs_the_playbook_on_the_simulator_in_a_throwaway_home(run):
    assert run("init")[0] == 0
    code, out, err = run("panels", "try", "cpanel", "create", "--sandbox")
    assert code == 0, err
    assert f"playbooks from {bundled_dir('playbooks') / 'cpanel'}" in out
    assert "create: succeeded, service active" in out and "call:         POST /json-api/createacct" in out
    assert "panel answer: Create the account (createacct): " in out and "Account Creation Ok" in out
    assert out.rstrip().endswith("outcome: create succeeded")
    assert Service.select().count() == 0 and Server.select().count() == 0  # the real database is untouched


def test_panels_try_suspend_creates_the_throwaway_account_first(run):
    code, out, err = run("--json", "panels", "try", "cpanel", "suspend", "--sandbox")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["check_mode"] is False
    assert [(s["action"], s["status"], s["service"]) for s in result["steps"]] == [
        ("create", "succeeded", "active"), ("suspend", "succeeded", "suspended")]
    assert result["steps"][1]["calls"][-1] == "POST /json-api/suspendacct"


@pytest.mark.parametrize("argv, field", [
    (["panels", "try", "linux", "create", "--sandbox"], "panel"),       # no bundled simulator
    (["panels", "try", "cpanel", "create"], "sandbox"),                 # a real server is panels verify's
    (["panels", "try", "cpanel", "fly", "--sandbox"], "action"),
])
def test_panels_try_refuses_what_it_cannot_try_naming_the_field(run, argv, field):
    code, out, err = run(*argv)
    assert code == 2 and err.startswith(f"provisiond: error: {field}:")


def test_service_list_refuses_an_unknown_status_like_job_list(ready, capsys):
    with pytest.raises(SystemExit) as exit_:
        ready("service", "list", "--status", "bogus")
    assert exit_.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_text_output_has_no_python_reprs(ready):
    ready("service", "order", "--product", "starter", "--domain", "repr.example.com",
          "--email", "a@repr.example.com", "--ref", "INV-R1")
    job = Job.get()
    Job.update(params={"package": "pro", "extra": ["a", "b"]}).where(Job.id == job.id).execute()
    texts = [ready("service", "show", "INV-R1")[1], ready("job", "show", str(job.id))[1],
             ready("job", "list")[1], ready("server", "list")[1]]
    for text in texts:
        assert not any(mark in text for mark in ("{'", "['", "datetime.", "None")), text
        assert "extra=a, b, package=pro" in texts[1]


def test_json_piped_into_a_reader_that_leaves_ends_quietly(ready, settings):
    import subprocess
    import sys
    from provisiond import queue
    server = Server.get()
    for n in range(300):  # more than a pipe holds, so the write meets the closed pipe
        queue.enqueue("test_connection", server=server, params={"n": n})
    script = (f"{sys.executable} -m provisiond.cli --home {settings.home} "
              f"--database-url '{settings.database_url}' job list --limit 500 --json | head -n 1")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "["
    assert done.stderr == ""


def test_order_takes_paid_until_as_the_api_does(ready):
    code, out, err = ready("--json", "service", "order", "--product", "starter", "--domain", "paid.example.com",
                           "--email", "a@paid.example.com", "--ref", "INV-PU", "--paid-until", "2027-03-31")
    assert code == 0, err
    assert json.loads(out)["paid_until"] == "2027-03-31"
    assert str(Service.get(Service.ref == "INV-PU").paid_until) == "2027-03-31"


def test_a_key_that_is_one_services_ref_and_anothers_id_is_refused_naming_both(ready, database):
    for ref in ("2", "1", "ABC"):  # ids 1, 2, 3
        assert ready("service", "order", "--product", "starter", "--domain", f"n{ref.lower()}.example.com",
                     "--email", "me@example.com", "--ref", ref)[0] == 0
    for argv in (["service", "show", "1"], ["service", "paid", "2", "--until", "2031-01-31"],
                 ["service", "suspend", "1"]):
        code, _, err = ready(*argv)
        assert code == 2 and err.startswith("provisiond: error: service:"), err
        assert "id:1" in err and "id:2" in err and len(err.strip().splitlines()) == 1
    assert [s.paid_until for s in Service.select()] == [None] * 3  # nothing written
    assert json.loads(ready("service", "show", "id:2", "--json")[1])["ref"] == "1"
    assert ready("service", "paid", "id:1", "--until", "2031-01-31")[0] == 0
    assert Service.get(Service.ref == "2").paid_until.isoformat() == "2031-01-31"
    assert json.loads(ready("service", "show", "3", "--json")[1])["ref"] == "ABC"  # no ref 3: an id
    assert json.loads(ready("service", "show", "ABC", "--json")[1])["id"] == 3
    assert ready("service", "show", "id:9")[0] == 2


def test_service_help_says_how_to_write_an_id(ready, capsys):
    with pytest.raises(SystemExit):
        cli.main(["service", "suspend", "--help"])
    assert "id:7" in " ".join(capsys.readouterr().out.split())


def test_a_plesk_product_in_a_cpanel_group_warns_and_its_order_waits_for_a_plesk_server(ready, whm):
    code, _, err = ready("product", "add", "pleskweb", "--panel", "plesk", "--group", "web", "--package", "basic")
    assert code == 0 and err.strip() == ("provisiond: warning: group web has no plesk server yet; "
                                         "orders of product pleskweb wait until one is added")
    order = ["service", "order", "--product", "pleskweb", "--domain", "plesk.example.com",
             "--email", "me@plesk.example.com", "--ref", "P-1", "--username", "owner1"]
    code, out, _ = ready("--json", *order)
    held = json.loads(out)
    assert code == 0 and held["job"] is None and held["server"] is None
    assert held["pending_reason"] == "no plesk server in group web"
    code, out, _ = ready(*order)  # replayed while waiting: no username yet, no conflict
    assert code == 0 and "was ordered already: waiting: no plesk server in group web" in out
    assert ready("run", "--once")[0] == 0
    assert whm.accounts == {} and Job.select().count() == 0  # never "created" by the cPanel playbook
    code, _, err = ready("product", "add", "second", "--panel", "cpanel", "--group", "web", "--package", "basic")
    assert code == 0 and "warning" not in err


def test_an_order_replayed_with_another_domain_exits_2_and_the_same_replay_gives_the_service(ready, database):
    argv = ["service", "order", "--product", "starter", "--email", "me@shop.example.com", "--ref", "INV-1002"]
    assert ready(*argv, "--domain", "shop.example.com")[0] == 0
    code, _, err = ready(*argv, "--domain", "other.example.com")
    assert code == 2 and err.strip() == ("provisiond: error: order INV-1002 is known with another domain; "
                                         "replay it unchanged or use a new ref")
    code, out, _ = ready(*argv, "--domain", "shop.example.com")
    assert code == 0 and out.startswith("service INV-1002 (shop.example.com) was ordered already: create job")
    assert Service.select().count() == Job.select().count() == 1


def test_a_password_from_a_file_or_stdin_and_a_generated_one_revealed_once(ready, tmp_path, monkeypatch, vault):
    chosen = tmp_path / "password"
    chosen.write_text("Shop2026-spring\n")
    order = ["service", "order", "--product", "starter", "--email", "me@example.com"]
    code, out, _ = ready(*order, "--domain", "given.example.com", "--ref", "G-1", "--password-file", str(chosen))
    assert code == 0 and "Shop2026" not in out
    assert vault.decrypt(Service.get(Service.ref == "G-1").password) == "Shop2026-spring"
    code, _, err = ready("service", "credentials", "G-1", "--reveal")
    assert code == 2 and "chosen by the billing system" in err and "Shop2026" not in err
    monkeypatch.setattr("sys.stdin", io.StringIO("bad"))
    code, _, err = ready(*order, "--domain", "bad.example.com", "--password-file", "-")
    assert code == 2 and err.startswith("provisiond: error: password:") and "bad" not in err.split(":", 2)[2]
    code, _, err = ready(*order, "--domain", "zero.example.com", "--password-file", "/dev/zero")
    assert code == 2 and err.startswith("provisiond: error: password: must be 10 to 128")  # read bounded
    monkeypatch.setattr("sys.stdin", io.StringIO("From-stdin-2026\r\n"))
    assert ready(*order, "--domain", "stdin.example.com", "--ref", "S-1", "--password-file", "-")[0] == 0
    assert vault.decrypt(Service.get(Service.ref == "S-1").password) == "From-stdin-2026"

    assert ready(*order, "--domain", "made.example.com", "--ref", "M-1")[0] == 0
    code, out, _ = ready("service", "credentials", "M-1")
    generated = vault.decrypt(Service.get(Service.ref == "M-1").password)
    assert code == 0 and "revealable" in out and generated not in out
    code, out, _ = ready("--json", "service", "credentials", "M-1", "--reveal")
    assert code == 0 and json.loads(out)["password"] == generated
    code, _, err = ready("service", "credentials", "M-1", "--reveal")
    assert code == 2 and "revealed already" in err and generated not in err
    entries = audit.entries("service:M-1")
    assert [e.action for e in entries] == ["service.reveal_password"] and entries[0].actor.startswith("cli:")


# -- job resolve, service close ------------------------------------------------------------------

def test_job_resolve_and_service_close_are_audited_and_refuse_the_wrong_state(ready, database):
    from provisiond import audit
    from tests.helpers import hold
    run = ready
    code, out, err = run("service", "order", "--product", "starter", "--domain", "held.example.com",
                         "--email", "me@held.example.com", "--ref", "INV-9", "--json")
    assert code == 0, err
    job = Job.get_by_id(json.loads(out)["job"])
    code, _, err = run("job", "resolve", str(job.id), "--succeeded")
    assert code == 2 and "only needs_attention jobs can be resolved" in err
    hold(job)
    code, out, err = run("job", "resolve", str(job.id), "--failed", "--note", "checked WHM: no account")
    assert (code, out.strip()) == (0, f"job {job.id} resolved as failed"), err
    assert Service.get(Service.ref == "INV-9").status == "failed"
    [entry] = audit.entries(f"job:{job.id}")
    assert entry.actor.startswith("cli:") and entry.detail["note"] == "checked WHM: no account"
    code, out, err = run("service", "close", "INV-9")
    assert (code, out.strip()) == (0, "service INV-9 closed"), err
    assert [e.action for e in audit.entries("service:INV-9")] == ["service.close"]
    code, _, err = run("service", "close", "INV-9")
    assert code == 2 and "INV-9 is closed" in err


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
    from tests.helpers import free_port
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/gone"
    code = cli.main(["--home", str(tmp_path / "home"), "--database-url", url, "status"])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    assert out.startswith("UNHEALTHY: the database cannot be reached (connection to server at")
