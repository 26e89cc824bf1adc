"""``provisiond demo``: the whole life of one account on a sandbox WHM, in a throwaway home.

Starts the WHM simulator on a free loopback port, sets up a group, server and product in a
temporary SQLite database, orders a service and runs the worker until the create lands, then
suspends, unsuspends, changes the package and terminates it, printing each job and what the
simulator says about the account. Nothing outside the temporary directory is touched.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from pathlib import Path

from provisiond import catalog, config, crypto, db, lifecycle, panels
from provisiond.models import Job, ProvisioningLog, Service
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.worker import Worker


def _panel_view(sim: WhmSimulator, username: str) -> str:
    account = sim.accounts.get(username)
    if account is None:
        return "no such account on the panel"
    state = "suspended" if account.suspended else "active"
    return f"{account.user} {account.domain} plan={account.plan} {state}"


def drive(worker: Worker, job: Job, timeout: float = 120) -> Job:
    """Tick until the job has settled (success, failure or a hold)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.tick(wait=True)
        job = Job.get_by_id(job.id)
        if job.status not in ("queued", "running"):
            return job
        time.sleep(0.2)
    return job


def run_demo(print_json: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="provisiond-demo-") as home:
        settings = config.load({"home": home, "database_url": f"sqlite:///{Path(home) / 'demo.db'}"},
                               environ={})
        crypto.create_key_file(settings.secret_key_file)
        vault = crypto.Vault.from_settings(settings)
        database = db.connect(settings.database_url)
        db.upgrade(database)
        registry = panels.discover(settings.panel_dirs())
        token = secrets.token_urlsafe(24)
        steps = []
        with WhmSimulator(token=token) as sim:
            say = (lambda *a: None) if print_json else print
            say(f"WHM simulator on {sim.url}; home {home}")
            catalog.add_group("web")
            catalog.add_server(registry, vault, name="whm1", panel="cpanel", host=sim.host, port=sim.port,
                               group_name="web", max_accounts=100,
                               credentials={"api_token": token, "scheme": "http"})
            catalog.add_product(registry, name="starter", panel="cpanel", group_name="web", package="basic")
            worker = Worker(settings, vault, owner="demo")
            service, job = lifecycle.order(registry, vault, product="starter", domain="demo-shop.example",
                                           email="owner@demo-shop.example", ref="DEMO-1")
            plan = [("create", job), ("suspend", None), ("unsuspend", None),
                    ("change_package", None), ("terminate", None)]
            for action, job in plan:
                if job is None:
                    job = lifecycle.request(registry, vault, "DEMO-1", action,
                                            reason="overdue" if action == "suspend" else None,
                                            package="pro" if action == "change_package" else None)
                job = drive(worker, job)
                service = Service.get_by_id(service.id)
                attempt = job.logs.order_by(ProvisioningLog.id.desc()).first()
                step = {"job": job.id, "action": action, "status": job.status,
                        "seconds": attempt.duration if attempt else None, "service": service.status,
                        "panel": _panel_view(sim, service.username), "error": job.last_error}
                steps.append(step)
                say(f"job {job.id:>2} {action:<15} {job.status:<10} {step['seconds']:>5}s  "
                    f"service {service.status:<10} panel: {step['panel']}")
                if job.status != "succeeded":
                    say(f"   error: {job.last_error}")
                    break
            worker.shutdown()
        database.close()
    ok = all(s["status"] == "succeeded" for s in steps) and len(steps) == len(plan)
    if print_json:
        print(json.dumps({"ok": ok, "steps": steps}, indent=2))
    else:
        print("demo finished: every step succeeded" if ok else "demo stopped at a failed step")
    return 0 if ok else 1
