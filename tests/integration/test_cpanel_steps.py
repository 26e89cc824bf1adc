"""The shipped cPanel step roles (roles/cpanel_mailbox, cpanel_database, cpanel_autossl) on the
WHM simulator: one order of "starter + mailbox + database + autossl" provisions all three, a
second create of the same service changes nothing, and the steps' secrets stay out of every log,
artifact and answer. Two real ansible runs per database, shared by every test of the module."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from provisiond import api, catalog, cli, config, crypto, db, lifecycle, notify, panels, queue, step_secrets, tokens
from provisiond.execute import STEPS_PLAY_NAME
from provisiond.models import Job, Product, ProvisioningLog, RunEvent, Service
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN

STEPS = ["cpanel_mailbox", "cpanel_database", "cpanel_autossl"]
# A team's step that shows its secret in its output, as a panel echoing a password back would:
# the run's redaction must mask it everywhere (the canary below could not fail without it).
ECHO_ROLE = """---
- name: Show what the panel answered
  ansible.builtin.debug:
    msg: "the panel echoed {{ account_secrets[inventory_hostname].steps.secret_echo.token }}"
"""
WRITES = {"add_pop", "create_database", "create_user", "set_privileges_on_database", "start_autossl_check_for_one_user"}


@dataclasses.dataclass
class Provisioned:
    settings: config.Settings
    vault: crypto.Vault
    registry: panels.Registry
    whm: WhmSimulator
    service: Service
    echoing: Service
    slow_dns: Service
    slow_second: Job
    first: Job
    second: Job
    after_first: dict
    writes_in_second: list[str]
    log_lines: list[str]


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record) + json.dumps(getattr(record, "__dict__", {}), default=str))


def _writes(whm: WhmSimulator, since: int, user: str) -> list[str]:
    """The state-changing WHM/UAPI functions asked for ``user`` from request ``since`` on."""
    names = []
    for request in whm.requests[since:]:
        form = request.form()
        name = form.get("cpanel.function") or request.path.rsplit("/", 1)[-1]
        if name in WRITES and user in (form.get("cpanel.user"), form.get("username")):
            names.append(name)
    return names


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def provisioned(request, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"cpanel-steps-{request.param}")
    url = f"sqlite:///{home / 'provisiond.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        fresh = db.connect(url)
        fresh.execute_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        fresh.close()
    roles = home / "team-roles"
    (roles / "secret_echo" / "tasks").mkdir(parents=True)
    (roles / "secret_echo" / "tasks" / "main.yml").write_text(ECHO_ROLE)
    (roles / "secret_echo" / "meta").mkdir()
    (roles / "secret_echo" / "meta" / "provisiond.yml").write_text("secrets:\n  token: {length: 24}\n")
    settings = config.load({"home": home / "home", "database_url": url, "roles_path": [str(roles)]}, environ={})
    crypto.create_key_file(settings.secret_key_file)
    conn = db.connect(url)
    db.upgrade(conn)
    vault, registry = crypto.Vault.from_settings(settings), panels.discover(settings.panel_dirs())
    lines, logger = _Lines(), logging.getLogger("provisiond")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    with WhmSimulator(token=WHM_TOKEN) as whm:
        catalog.add_group("web")
        catalog.add_server(registry, vault, name="whm1", panel="cpanel", host=whm.host, port=whm.port,
                           group_name="web", max_accounts=50,
                           credentials={"api_token": WHM_TOKEN, "scheme": "http"})
        catalog.add_product(registry, name="starter-plus", panel="cpanel", group_name="web", package="basic",
                            steps=STEPS, role_dirs=settings.role_dirs())
        catalog.add_product(registry, name="echoing", panel="cpanel", group_name="web", package="basic",
                            steps=["cpanel_mailbox", "secret_echo"], role_dirs=settings.role_dirs())
        # Ordered together: both creates share the first run (one ansible run, two hosts).
        echoing, _ = lifecycle.order(registry, vault, product="echoing", domain="echo.example.com",
                                     email="owner@echo.example.com", ref="INV-ECHO")
        catalog.add_product(registry, name="ssl-only", panel="cpanel", group_name="web", package="basic",
                            steps=["cpanel_autossl"], role_dirs=settings.role_dirs())
        slow_dns, _ = lifecycle.order(registry, vault, product="ssl-only", domain="slow-dns.example.com",
                                      email="owner@slow-dns.example.com", ref="INV-SLOW")
        whm.services_of(slow_dns.username).autossl_pending = True  # its AutoSSL check will not finish
        service, first = lifecycle.order(registry, vault, product="starter-plus", domain="Steps.Example.com",
                                         email="owner@steps.example.com", ref="INV-STEPS")
        worker = Worker(settings, vault)
        try:
            worker.tick(wait=True)
            after_first = copy.deepcopy(whm.services)
            # A second create of the same service, as a retry of a create makes: the account is
            # found, and every step runs again.
            seen = len(whm.requests)
            second, _ = queue.enqueue("create", service=Service.get_by_id(service.id), server=service.server)
            slow_second, _ = queue.enqueue("create", service=Service.get_by_id(slow_dns.id), server=slow_dns.server)
            worker.tick(wait=True)
        finally:
            worker.shutdown()
            logger.removeHandler(lines)
            logger.setLevel(level)
        yield Provisioned(settings, vault, registry, whm, Service.get_by_id(service.id), Service.get_by_id(echoing.id),
                          Service.get_by_id(slow_dns.id), Job.get_by_id(slow_second.id),
                          Job.get_by_id(first.id),
                          Job.get_by_id(second.id), after_first, _writes(whm, seen, service.username), lines.lines)
    conn.close()


def _steps(job: Job) -> dict[str, ProvisioningLog]:
    return {row.action: row for row in ProvisioningLog.select().where(ProvisioningLog.job == job.id)}


def test_one_order_makes_the_account_its_mailbox_database_and_certificate(provisioned):
    p = provisioned
    assert p.first.status == "succeeded", p.first.last_error
    rows = _steps(p.first)
    assert {f"create:{step}" for step in STEPS} <= set(rows)
    assert all(rows[f"create:{step}"].status == "succeeded" for step in STEPS), \
        {a: (r.status, r.message) for a, r in rows.items()}
    user = p.service.username
    made = step_secrets.stored(p.service.id, p.vault)
    on_panel = p.whm.services[user]
    assert on_panel.mailboxes["info@steps.example.com"]["password"] == made["cpanel_mailbox"]["password"]
    assert on_panel.mailboxes["info@steps.example.com"]["quota"] == 1024
    prefix = user[:16] + "_"
    assert on_panel.databases == {prefix + "db"}
    assert on_panel.db_users == {prefix + "db": made["cpanel_database"]["password"]}
    assert on_panel.grants == {(prefix + "db", prefix + "db"): ["ALL PRIVILEGES"]}
    assert len(on_panel.autossl_checks) == 1
    assert on_panel.certificates["steps.example.com"]["is_self_signed"] == 0


def test_a_second_create_of_the_service_changes_nothing(provisioned):
    p = provisioned
    assert p.second.status == "succeeded", p.second.last_error
    rows = _steps(p.second)
    assert all(rows[f"create:{step}"].status == "succeeded" for step in STEPS)
    assert p.writes_in_second == []
    assert p.whm.services == p.after_first
    attempts = [r.id for r in rows.values()]
    statuses = [e.status for e in RunEvent.select().where(RunEvent.attempt.in_(attempts)
                                                          & (RunEvent.play == STEPS_PLAY_NAME)) if e.status]
    assert "changed" not in statuses and statuses.count("skipped") >= 5, statuses


def test_a_second_run_while_the_autossl_check_still_runs_starts_no_other(provisioned):
    p = provisioned
    on_panel = p.whm.services[p.slow_dns.username]
    assert p.slow_dns.status == "active" and p.slow_second.status == "succeeded", p.slow_second.last_error
    assert _steps(p.slow_second)["create:cpanel_autossl"].status == "succeeded"
    assert len(on_panel.autossl_checks) == 1 and on_panel.autossl_running and not on_panel.certificates
    attempts = [r.id for r in _steps(p.slow_second).values()]
    statuses = {e.task: e.status for e in RunEvent.select().where(RunEvent.attempt.in_(attempts)
                                                                  & (RunEvent.play == STEPS_PLAY_NAME)) if e.status}
    assert statuses["Start an AutoSSL check for the account (start_autossl_check_for_one_user)"] == "ok", statuses


def test_the_steps_secrets_are_in_no_log_artifact_or_answer(provisioned):
    p = provisioned
    made = step_secrets.stored(p.service.id, p.vault)
    echoed = step_secrets.stored(p.echoing.id, p.vault)
    secrets = [made["cpanel_mailbox"]["password"], made["cpanel_database"]["password"],
               echoed["cpanel_mailbox"]["password"], echoed["secret_echo"]["token"]]
    # They did travel: the panel holds them, and one was printed by its step.
    assert p.whm.services[p.service.username].mailboxes["info@steps.example.com"]["password"] == secrets[0]
    assert p.echoing.status == "active"
    assert any("the panel echoed ********" in path.read_text() for path in
               Path(p.settings.artifacts_dir).rglob("stdout*"))
    places = {"log lines": "\n".join(p.log_lines)}
    for path in Path(p.settings.artifacts_dir).rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert len(places) > 3  # the artifacts were kept
    places["provisioning log"] = json.dumps(list(ProvisioningLog.select().dicts()), default=str)
    places["run events"] = json.dumps(list(RunEvent.select().dicts()), default=str)
    token = tokens.create("billing-canary", scope="admin")
    with TestClient(api.create_app(p.settings, p.vault)) as client:
        for path in (f"/v1/services/{p.service.ref}", f"/v1/services/{p.echoing.ref}", f"/v1/jobs/{p.first.id}", f"/v1/jobs/{p.first.id}/attempts",
                     f"/v1/jobs/{p.second.id}/attempts"):
            answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            places[path] = answer.text
    shown = _cli(p, "service", "show", p.service.ref, "--json")
    assert json.loads(shown)["status"] == "active"
    places["service show"] = shown
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a step secret in {where}"


def test_the_welcome_mail_lists_them_only_when_the_product_sends_passwords(provisioned):
    p = provisioned
    made = step_secrets.stored(p.service.id, p.vault)
    _, body = notify.welcome_text(p.settings, p.vault, p.service)
    assert made["cpanel_mailbox"]["password"] not in body and made["cpanel_database"]["password"] not in body
    Product.update(welcome_password=True).where(Product.name == "starter-plus").execute()
    try:
        _, body = notify.welcome_text(p.settings, p.vault, Service.get_by_id(p.service.id))
    finally:
        Product.update(welcome_password=False).where(Product.name == "starter-plus").execute()
    assert f"cpanel_mailbox password: {made['cpanel_mailbox']['password']}" in body
    assert f"cpanel_database password: {made['cpanel_database']['password']}" in body


def test_product_add_refuses_a_step_no_role_folder_has(provisioned, capsys):
    """The shipped roles were taken by catalog.add_product above, from the same role folders the
    CLI uses (settings.role_dirs(): roles_path, then the bundled roles/); a typo is refused
    before the panel is asked anything."""
    p = provisioned
    code = cli.main(["--home", str(p.settings.home), "--database-url", p.settings.database_url, "product", "add",
                     "typo", "--panel", "cpanel", "--group", "web", "--package", "basic", "--step", "cpanel_mailboxes"])
    assert code == 2 and "step: no role named 'cpanel_mailboxes'" in capsys.readouterr().err
    assert not Product.select().where(Product.name == "typo").exists()


def _cli(p: Provisioned, *argv) -> str:
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--home", str(p.settings.home), "--database-url", p.settings.database_url, *argv])
    assert code == 0, out.getvalue()
    return out.getvalue()
