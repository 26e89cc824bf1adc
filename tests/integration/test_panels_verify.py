"""``provisiond panels verify``: the lifecycle on a registered server, a bundled simulator here.

The verify's own rows live in a throwaway SQLite home whatever the real database is, so the two
full lifecycles use the SQLite parameter only (each step is a real ansible run); the refusals and
the failing verify (short, audited in the real database) run on both.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil

import pytest

from provisiond import audit, lifecycle, sandbox, tryout
from provisiond.config import bundled_dir
from provisiond.models import Job, Service
from tests.conftest import WHM_TOKEN
from tests.integration.test_cli import ready  # noqa: F401  (a fixture)

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
STEP_LINE = re.compile(r"^([a-z_]+(?: again)?): (succeeded|failed|skipped)", re.M)
CPANEL_STEPS = ["test_connection", "list_packages", "create", "create again", "suspend", "suspend again",
                "unsuspend", "unsuspend again", "change_package", "change_password", "terminate",
                "terminate again"]


@SQLITE_ONLY
def test_verify_passes_every_lifecycle_step_on_a_registered_cpanel_server_and_leaves_nothing(ready, whm,
                                                                                             monkeypatch):
    homes = []
    monkeypatch.setattr(tryout, "throwaway_home", _scanned(tryout.throwaway_home, homes))
    code, out, err = ready("--json", "panels", "verify", "cpanel", "--server", "whm1",
                           "--domain", "verify.example.com")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and [s["action"] for s in result["steps"]] == CPANEL_STEPS
    assert {s["status"] for s in result["steps"]} == {"succeeded"}
    create = result["steps"][2]
    assert any("Account Creation Ok" in a["answer"] for a in create["answers"])
    assert result["steps"][8]["service"] == "active" and result["steps"][-1]["service"] == "terminated"
    suspends = [r for r in whm.requests if r.path == "/json-api/suspendacct"]
    assert len(suspends) == 1  # the second suspend found the account suspended already
    assert whm.accounts == {}  # the throwaway account is gone from the panel
    assert Service.select().count() == 0 and Job.select().count() == 0  # and never was in provisiond's lists
    assert WHM_TOKEN not in out
    assert len(homes) == 1 and homes[0]["files"] > 3 and homes[0]["with_token"] == []  # sealed, never in clear


def _scanned(throwaway_home, homes: list):
    """throwaway_home that, before the home is removed, lists its files holding the WHM token."""
    @contextlib.contextmanager
    def scanning(*args, **kwargs):
        with throwaway_home(*args, **kwargs) as (settings, vault):
            yield settings, vault
            files = [f for f in settings.home.rglob("*") if f.is_file()]
            holding = [f for f in files if WHM_TOKEN.encode() in f.read_bytes()]
            homes.append({"files": len(files), "with_token": holding})
    return scanning


@SQLITE_ONLY
def test_verify_keep_leaves_the_account_on_a_second_panel_and_shows_steps_as_text(run, registry):
    with sandbox.simulator("hestia") as hestia:
        assert run("init")[0] == 0
        fields = [f.name for f in registry.get("hestia").credentials]
        for line in sandbox.server_add_lines("hestia", hestia, fields).splitlines():
            code, _, err = run(*shlex.split(line)[1:])
            assert code == 0, err
        code, out, err = run("panels", "verify", "hestia", "--server", "sandbox-hestia", "--domain",
                             "keep.example.com", "--package", "basic", "--other-package", "pro", "--keep")
        assert code == 0, err + out
        accounts = dict(hestia.accounts)
    assert [(a.package, a.suspended) for a in accounts.values()] == [("pro", False)]
    assert [name[0] for name in accounts] == ["v"]  # a random name, not "keep": no panel account is adopted
    heads = [found[1] for found in STEP_LINE.finditer(out)]
    assert heads == CPANEL_STEPS[:1] + CPANEL_STEPS[2:10]  # no list_packages, no terminate
    assert "unsuspend again: succeeded, service active" in out
    assert out.rstrip().splitlines()[-1].startswith("outcome: every step passed on sandbox-hestia")


def test_verify_names_the_failing_step_and_the_panel_answer_and_cleans_up(ready, whm, registry, vault,
                                                                          tmp_path, monkeypatch):
    folder = tmp_path / "playbooks" / "cpanel"
    shutil.copytree(bundled_dir("playbooks") / "cpanel", folder)
    broken = folder / "suspend.yml"
    broken.write_text(broken.read_text().replace('form: {api.version: 1, user: "{{ account.username }}"',
                                                 'form: {api.version: 1, user: "x{{ account.username }}"'))
    monkeypatch.setenv("PROVISIOND_PLAYBOOKS_PATH", str(folder.parent))
    customer, _ = lifecycle.order(registry, vault, product="starter", domain="customer.example.com",
                                  email="c@customer.example.com", ref="INV-1")
    argv = ["panels", "verify", "cpanel", "--server", "whm1", "--domain", "broken.example.com"]
    code, _, err = ready(*argv)
    assert code == 2 and err.startswith("provisiond: error: server:") and "--i-know" in err
    code, out, err = ready(*argv, "--i-know")
    assert code == 1, err
    assert "suspend: failed" in out and f"playbooks from {folder}" in out
    username = out.split("“x")[1].split("”")[0]
    assert "panel answer: Suspend the account (suspendacct): " in out
    assert f"The user “x{username}” does not exist." in out
    assert "suspend again" not in out and "terminate (cleanup): succeeded" in out
    assert out.rstrip().splitlines()[-1].startswith("outcome: verify FAILED at suspend on whm1")
    assert whm.accounts == {}  # the cleanup terminated the throwaway account
    assert [(s.ref, s.status) for s in Service.select()] == [("INV-1", "pending")]  # the customer untouched
    assert Service.get_by_id(customer.id).jobs.count() == 1
    [entry] = audit.entries("server:whm1")  # the refused attempt wrote nothing; the run is on record
    assert (entry.action, entry.detail["ok"], entry.detail["i_know"]) == ("panels.verify", False, True)


def test_verify_refuses_what_could_touch_a_customer_naming_the_field(ready, whm, registry, vault):
    lifecycle.order(registry, vault, product="starter", domain="taken.example.com", email="c@taken.example.com",
                    ref="INV-2")
    code, _, err = ready("server", "add", "hcp1", "--panel", "hestia", "--host", "127.0.0.1", "--group", "web",
                         "--credential", "access_key=" + "A" * 20, "--credential", "secret_key=" + "s" * 40)
    assert code == 0, err
    cases = [(["cpanel", "--server", "nope", "--domain", "v.example.com"], "server"),
             (["hestia", "--server", "whm1", "--domain", "v.example.com"], "panel"),
             (["cpanel", "--server", "whm1", "--domain", "taken.example.com", "--i-know"], "domain"),
             (["cpanel", "--server", "whm1", "--domain", "v.example.com"], "server"),
             (["cpanel", "--server", "whm1", "--domain", "v.example.com", "--package", "b/a/d", "--i-know"],
              "package"),
             (["hestia", "--server", "hcp1", "--domain", "v.example.com", "--other-package", "pro"], "package"),
             (["hestia", "--server", "hcp1", "--domain", "v.example.com", "--package", "basic"], "other_package")]
    setup = len(whm.requests)  # `product add` in `ready` asked the panel for its packages
    for argv, field in cases:
        code, out, err = ready("panels", "verify", *argv)
        assert code == 2 and err.startswith(f"provisiond: error: {field}:"), (argv, err)
    assert whm.requests[setup:] == []  # nothing reached the panel
    assert (Service.select().count(), Job.select().count()) == (1, 1)  # nothing was written
