"""``provisiond panels try PANEL ACTION --sandbox``: one playbook, one command, nothing kept.

Starts the panel's bundled simulator on a free loopback port and a throwaway home and SQLite
database (the caller's ``playbooks_path`` and ``roles_path`` are kept, so the folder being
edited is the one tried), registers the simulator as a server, orders a throwaway account and
runs the action through the real worker. An action other than create first creates the account
(and unsuspend first suspends it), so it has something to act on. Each step reports the job's
outcome, the service's status, the calls the simulator received and every panel answer the
playbook saw (from the kept run).

Check mode is not used: the throwaway account lives and dies with the simulator, and a
check-mode run would skip the panel calls the author wants to see.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
from pathlib import Path
from typing import Any, Iterator

from provisiond import actions, catalog, checkout, config, crypto, db, lifecycle, panels, sandbox, worker
from provisiond.demo import drive
from provisiond.errors import PanelError, ValidationError
from provisiond.models import ProvisioningLog, Server, Service, database

ANSWER_CHARS = 2000
# What an action needs done after the create before it has something to act on.
BEFORE = {"unsuspend": ("suspend",)}


def run_try(base: config.Settings, panel_id: str, action: str, params: dict | None = None) -> dict:
    """Try ``action`` of ``panel_id`` against its simulator; returns the steps and ``ok``.
    ``params`` go to an admin action (e.g. plesk's login_link needs ``user_ip``)."""
    registry = panels.discover(base.panel_dirs())
    panel = registry.get(panel_id)
    if not panel.supports(action) and not panel.declares(action):
        raise ValidationError("action", f"{panel_id} has no action {action!r} "
                              f"(it has: {', '.join([*panel.actions, *(a.name for a in panel.admin_actions)])})")
    if not panel.supports(action):
        panel.admin_action(action).check_params(params or {})  # before anything runs
    with sandbox.simulator(panel_id) as sim, throwaway_home(base, "try") as (settings, vault):
        steps = _steps(settings, vault, registry, panel, action, sim, params or {})
    ok = bool(steps) and steps[-1]["action"] == action and steps[-1]["status"] == "succeeded"
    return {"panel": panel_id, "action": action, "folder": str(panel.path), "check_mode": False,
            "ok": ok, "steps": steps}


@contextlib.contextmanager
def throwaway_home(base: config.Settings, name: str, **overrides) -> Iterator[tuple[config.Settings, crypto.Vault]]:
    """A temporary home with its own vault key and SQLite database, bound while inside.

    The caller's ``playbooks_path`` and ``roles_path`` are kept (the folder being edited is the
    one run); nothing else is, so no billing webhook or mail leaves for a throwaway service.
    The database the models were bound to before is bound again on leaving."""
    previous = database.obj
    with tempfile.TemporaryDirectory(prefix=f"provisiond-{name}-") as home:
        settings = config.load({"home": home, "database_url": f"sqlite:///{Path(home) / (name + '.db')}",
                                "playbooks_path": base.playbooks_path, "roles_path": base.roles_path,
                                **overrides}, environ={})
        crypto.create_key_file(settings.secret_key_file)
        throwaway = db.connect(settings.database_url)
        try:
            db.upgrade(throwaway)
            yield settings, crypto.Vault.from_settings(settings)
        finally:
            throwaway.close()
            if previous is not None:
                database.initialize(previous)


def _steps(settings, vault, registry, panel, action: str, sim, params: dict) -> list[dict]:
    catalog.add_group("sandbox")
    logins = sandbox.credentials(panel.id, sim, [f.name for f in panel.credentials])
    server = catalog.add_server(registry, vault, name=f"sandbox-{panel.id}", panel=panel.id, host=sim.host,
                                port=sim.port, group_name="sandbox", max_accounts=100, credentials=logins)
    if action == "test_connection":
        return [server_step(settings, vault, registry, server, sim)]
    catalog.add_product(registry, name="try", panel=panel.id, group_name="sandbox", package="basic")
    runner = worker.Worker(settings, vault, owner="panels-try")
    try:
        service, job = lifecycle.order(registry, vault, product="try", email="author@try.example",
                                       domain=f"try-{secrets.token_hex(3)}.example", ref="TRY-1",
                                       fields=checkout.sample(panel))
        steps = [lifecycle_step(runner, job, sim)]
        if action == "create" or steps[-1]["status"] != "succeeded":
            return steps
        if panel.supports(action):
            for step in (*BEFORE.get(action, ()), action):
                job = lifecycle.request(registry, vault, service.ref, step,
                                        reason="try" if step == "suspend" else None,
                                        package="pro" if step == "change_package" else None)
                steps.append(lifecycle_step(runner, job, sim))
                if steps[-1]["status"] != "succeeded":
                    break
        else:
            steps.append(_admin_step(settings, vault, registry, action, Service.get_by_id(service.id), sim,
                                     params))
        return steps
    finally:
        runner.shutdown()


def mark(sim) -> int:
    """Where a simulator's request list stands now (0 for a real server)."""
    return len(sim.requests) if sim is not None else 0


def calls(sim, since: int) -> list[str]:
    """The requests a simulator received since the ``since``-th (none from a real server)."""
    if sim is None:
        return []
    return [f"{r.method} {r.path}" for r in sim.requests[since:]]


def lifecycle_step(runner, job, sim=None) -> dict:
    """Run ``job`` through the real worker; its outcome, calls and the panel's answers."""
    since = mark(sim)
    job = drive(runner, job)
    service = Service.get_by_id(job.service_id)
    attempt = job.logs.order_by(ProvisioningLog.id.desc()).first()
    return {"action": job.action, "job": job.id, "status": job.status, "service": service.status,
            "message": job.last_error, "failed_task": attempt.failed_task if attempt else None,
            "seconds": attempt.duration if attempt else None, "calls": calls(sim, since),
            **_kept(attempt)}


def _kept(attempt) -> dict:
    """What the playbook reported and each panel answer it saw, from the run's kept artifacts."""
    if attempt is None or not attempt.artifacts_path:
        return {"reported": {}, "answers": []}
    kept = Path(attempt.artifacts_path) / f"job_{attempt.job_id}.json"
    if not kept.is_file():
        return {"reported": {}, "answers": []}
    payload = json.loads(kept.read_text(encoding="utf-8"))
    answers = []
    for event in payload.get("events", []):
        data = event.get("event_data") or {}
        res = data.get("res") or {}
        if "answer" in res and event.get("event") in ("runner_on_ok", "runner_on_failed"):
            answers.append({"task": data.get("task"), "answer": _short(res["answer"])})
    return {"reported": payload.get("outcome", {}).get("stats", {}), "answers": answers}


def _short(answer: Any) -> str:
    text = answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS] + "..."


def server_step(settings, vault, registry, server: Server, sim=None) -> dict:
    """Test the server's connection as ``server test`` does, as a step."""
    since = mark(sim)
    tested = worker.test_server(settings, vault, registry, server)
    return {"action": "test_connection", "status": "succeeded" if tested["health"] == "ok" else "failed",
            "message": tested["message"], "failed_task": tested["failed_task"], "seconds": tested["duration"],
            "calls": calls(sim, since), "reported": tested["reported"], "answers": []}


def _admin_step(settings, vault, registry, action: str, service: Service, sim, params: dict) -> dict:
    since = mark(sim)
    declared = registry.get(service.server.panel).admin_action(action)
    target = {"service": service} if declared.scope == "service" else {"server": service.server}
    try:
        reported = actions.run(settings, vault, registry, action=action, params=params, **target)
        status, message = "succeeded", None
    except PanelError as exc:
        reported, status, message = {}, "failed", str(exc)
    return {"action": action, "status": status, "message": message, "failed_task": None, "seconds": None,
            "calls": calls(sim, since), "reported": reported, "answers": []}


def text(result: dict) -> str:
    """The try as an author reads it: each step, its calls, the panel's answers, the outcome."""
    lines = [f"{result['panel']} {result['action']} against the {result['panel']} simulator "
             f"(playbooks from {result['folder']}; check mode: not used)"]
    for step in result["steps"]:
        lines += step_lines(step)
    lines.append(f"outcome: {result['action']} " + ("succeeded" if result["ok"] else "did NOT succeed"))
    return "\n".join(lines)


def step_lines(step: dict) -> list[str]:
    """One step as text: its outcome, the calls, the panel's answers, what failed."""
    head = f"{step['action']}: {step['status']}"
    if step.get("service"):
        head += f", service {step['service']}"
    if step.get("seconds") is not None:
        head += f" ({step['seconds']}s)"
    lines = [head]
    lines += [f"  call:         {call}" for call in step["calls"]]
    lines += [f"  panel answer: {a['task']}: {a['answer']}" for a in step["answers"]]
    if step["reported"]:
        lines.append(f"  reported:     {json.dumps(step['reported'], sort_keys=True)}")
    if step.get("failed_task"):
        lines.append(f"  failed task:  {step['failed_task']}")
    if step.get("message"):
        lines.append(f"  message:      {step['message']}")
    return lines
