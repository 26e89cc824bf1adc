"""The ``provisiond`` command. Thin: parse, call the module that does the work, print.

Every listing and show takes ``--json``. Errors print one line naming the cause; bad input
(a field, an unknown id, a state that forbids the action) exits 2, other failures exit 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
from typing import Any, Callable

from provisiond import audit, catalog, config, crypto, db, lifecycle, logs, outcomes, panels, queue, ssh
from provisiond.errors import NotFound, PanelError, ProvisiondError, StateError, ValidationError
from provisiond.models import Job, JobStatus, ProvisioningLog, Server, Service, ServiceStatus

COMMANDS: dict[str, Callable] = {}


def command(name: str):
    def register(func):
        COMMANDS[name] = func
        return func
    return register


# -- runtime ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Runtime:
    settings: config.Settings
    json: bool

    _vault: crypto.Vault | None = None

    @property
    def vault(self) -> crypto.Vault:
        if self._vault is None:
            self._vault = crypto.Vault.from_settings(self.settings)
        return self._vault

    @property
    def policy(self):
        from provisiond.worker import retry_policy
        return retry_policy(self.settings)

    def registry(self) -> panels.Registry:
        return panels.discover(self.settings.panel_dirs())

    def open_db(self) -> None:
        database = db.connect(self.settings.database_url)
        db.require_current(database)

    def out(self, data: Any, text: Callable[[Any], str] | str | None = None) -> None:
        if self.json:
            print(json.dumps(data, indent=2, default=str))
        elif callable(text):
            print(text(data))
        else:
            print(text if text is not None else data)


def _kv(pairs: list[str] | None, field: str) -> dict[str, str]:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(field, f"{pair!r} must look like KEY=VALUE")
        result[key] = value
    return result


def _text(value: Any) -> str:
    """A value as a person reads it: no Python reprs, times to the second, lists by commas."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def _credentials(pairs: list[str] | None) -> dict[str, str]:
    """``--credential`` values: ``K=VALUE``, ``K=@FILE`` (the file's text) or ``K=-`` (stdin),
    so a token or a PEM key need not sit in ``ps`` or the shell's history."""
    values = _kv(pairs, "credential")
    if list(values.values()).count("-") > 1:
        raise ValidationError("credential", "only one credential can be read from stdin (K=-)")
    for key, value in values.items():
        if value == "-":
            values[key] = sys.stdin.read().rstrip("\r\n")
        elif value.startswith("@"):
            try:
                with open(value[1:], encoding="utf-8") as handle:
                    values[key] = handle.read().rstrip("\r\n")
            except (OSError, UnicodeError) as exc:
                raise ValidationError(f"credential.{key}", f"cannot read {value[1:]!r}: "
                                      f"{getattr(exc, 'strerror', None) or exc}") from None
    return values


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_text(r.get(c)).replace("\n", " ") for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _fields(data: dict) -> str:
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {_text(v)}" for k, v in data.items())


# -- views -----------------------------------------------------------------------------------

def service_view(service: Service) -> dict:
    return {"id": service.id, "ref": service.ref, "product": service.product.name,
            "server": service.server.name if service.server_id else None, "domain": service.domain,
            "email": service.email, "name": service.name, "username": service.username,
            "remote_id": service.remote_id,
            "package": service.package, "status": service.status,
            "status_reason": service.status_reason, "pending_reason": service.pending_reason,
            "last_error": service.last_error, "paid_until": service.paid_until,
            "created_at": service.created_at, "updated_at": service.updated_at}


def job_view(job: Job) -> dict:
    return {"id": job.id, "action": job.action, "status": job.status,
            "service": job.service.ref if job.service_id else None,
            "server": job.server.name if job.server_id else None, "params": job.params,
            "attempts": job.attempts, "max_attempts": job.max_attempts, "run_after": job.run_after,
            "last_error": job.last_error, "created_at": job.created_at, "finished_at": job.finished_at}


def server_view(server: Server) -> dict:
    return {"id": server.id, "name": server.name, "panel": server.panel, "host": server.host,
            "port": server.port, "group": server.group.name, "max_accounts": server.max_accounts,
            "enabled": server.enabled, "health": server.health, "health_message": server.health_message,
            "host_key": ssh.fingerprint(server.host_key) if server.host_key else None,
            "credentials": catalog.masked_credentials(server.credentials)}


def log_view(row: ProvisioningLog) -> dict:
    return {"attempt": row.attempt, "status": row.status, "action": row.action, "panel": row.panel,
            "rc": row.rc, "started_at": row.started_at, "duration": row.duration,
            "failed_task": row.failed_task, "message": row.message, "panel_answer": row.panel_answer,
            "stdout_excerpt": row.stdout_excerpt, "artifacts": row.artifacts_path,
            "playbook_folder": row.playbook_folder}


# -- commands --------------------------------------------------------------------------------

@command("init")
def cmd_init(rt: Runtime, args) -> int:
    from provisiond import home
    made_key = home.init(rt.settings)
    database = db.connect(rt.settings.database_url)
    applied = db.upgrade(database)
    rt.out({"home": str(rt.settings.home), "database": home.masked_url(rt.settings.database_url),
            "key_created": made_key, "migrations": applied},
           lambda d: f"provisiond home {d['home']}\ndatabase {d['database']}\n"
                     f"{'created a secret key' if made_key else 'secret key kept'}; "
                     f"migrations applied: {', '.join(applied) or 'none (current)'}")
    return 0


@command("db upgrade")
def cmd_db_upgrade(rt: Runtime, args) -> int:
    applied = db.upgrade(db.connect(rt.settings.database_url))
    rt.out({"applied": applied}, f"applied: {', '.join(applied) or 'none (current)'}")
    return 0


@command("run")
def cmd_run(rt: Runtime, args) -> int:
    from provisiond.daemon import Daemon, run_once
    rt.open_db()
    if args.once:
        done = run_once(rt.settings, rt.vault)
        rt.out(done, f"one tick: {done['runs']} run(s); {done['notifications']} notification(s) sent; "
                     f"{done['pruned']} old run folder(s) removed")
        return 0
    daemon = Daemon(rt.settings, rt.vault, reload_settings=lambda: config.load(_overrides(args)))
    if not args.api:
        daemon.serve_forever()
        return 0
    from provisiond import api
    server = api.build_server(rt.settings, vault=rt.vault)
    daemon.on_reload.append(server.config.app.state.panels.use)  # orders see a new playbooks_path
    daemon.start()
    try:
        api.serve(rt.settings, server=server)  # returns on SIGINT/SIGTERM
    finally:
        daemon.stop()
    return 0


@command("status")
def cmd_status(rt: Runtime, args) -> int:
    import peewee as pw
    from provisiond import health
    try:
        rt.open_db()
    except pw.PeeweeException as exc:  # what status is asked for when things go wrong
        rt.out({"healthy": False, "reason": "the database cannot be reached", "error": db.first_line(exc)},
               lambda r: f"UNHEALTHY: {r['reason']} ({r['error']})")
        return 1
    report = health.status(rt.settings)
    rt.out(report, _status_text)
    return 0 if report["healthy"] else 1


def _status_text(report: dict) -> str:
    rows = [{"owner": d["owner"], "state": d["state"], "host": d["host"], "pid": d["pid"],
             "version": d["version"], "last tick": _when(d["last_tick_at"])} for d in report["daemons"]]
    age = report["oldest_queued_age_seconds"]
    lines = ["healthy" if report["healthy"] else f"UNHEALTHY: {report['reason']}", "",
             _table(rows, ["owner", "state", "host", "pid", "version", "last tick"]),
             "", "queue: " + ", ".join(f"{status} {n}" for status, n in report["queue"].items()),
             "oldest queued job: " + (f"{age:.0f} s old" if age is not None else "none queued"),
             "last sweep: " + (report["last_sweep"] or "never")]
    return "\n".join(lines)


def _when(moment: datetime.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "never"


@command("api")
def cmd_api(rt: Runtime, args) -> int:
    from provisiond import api
    rt.open_db()
    api.serve(rt.settings, args.host, args.port, vault=rt.vault)
    return 0


@command("token create")
def cmd_token_create(rt: Runtime, args) -> int:
    from provisiond import tokens
    rt.open_db()
    token = tokens.create(args.name)
    rt.out({"name": args.name, "token": token},
           f"{token}\n(shown once; send it as 'Authorization: Bearer <token>')")
    return 0


@command("token revoke")
def cmd_token_revoke(rt: Runtime, args) -> int:
    from provisiond import tokens
    rt.open_db()
    tokens.revoke(args.name)
    rt.out({"name": args.name, "revoked": True}, f"token {args.name} revoked")
    return 0


@command("service paid")
def cmd_service_paid(rt: Runtime, args) -> int:
    rt.open_db()
    from provisiond import audit
    job = lifecycle.record_payment(args.service, args.until, datetime.date.today(), registry=rt.registry(),
                                   vault=rt.vault, policy=rt.policy, correct=args.correct,
                                   actor=audit.cli_actor())
    service = lifecycle.get_service(args.service)
    rt.out(service_view(service) | {"unsuspend_job": job.id if job else None},
           lambda v: f"service {v['ref']} paid until {v['paid_until']}"
           + (f"; unsuspend job {v['unsuspend_job']} queued" if v["unsuspend_job"] else ""))
    return 0


@command("demo")
def cmd_demo(rt: Runtime, args) -> int:
    from provisiond.demo import run_demo
    return run_demo(print_json=rt.json)


@command("panels list")
def cmd_panels_list(rt: Runtime, args) -> int:
    registry = rt.registry()
    rows = [{"id": p.id, "name": p.name, "connection": p.connection, "actions": ",".join(p.actions),
             "path": str(p.path)} for p in registry.panels.values()]
    rows += [{"id": pid, "name": "BROKEN", "connection": "", "actions": "", "path": problem}
             for pid, problem in registry.problems.items()]
    rt.out(rows, lambda r: _table(r, ["id", "name", "connection", "actions", "path"]))
    return 0


@command("panels check")
def cmd_panels_check(rt: Runtime, args) -> int:
    from provisiond import panelcheck
    reports = panelcheck.check(rt.registry(), args.panel)
    if args.panel and not reports:
        raise ValidationError("panel", f"unknown panel {args.panel!r}")
    rt.out([dataclasses.asdict(r) for r in reports], lambda rows: "\n".join(
        f"{r['panel']}: ok" if r["ok"] else f"{r['panel']}: BROKEN\n  " + "\n  ".join(r["problems"])
        for r in rows))
    return 0 if all(r.ok for r in reports) else 1


@command("panels try")
def cmd_panels_try(rt: Runtime, args) -> int:
    from provisiond import tryout
    if not args.sandbox:
        raise ValidationError("sandbox", "panels try runs against the bundled simulator only; give --sandbox")
    result = tryout.run_try(rt.settings, args.panel, args.action, _kv(args.param, "params"))
    rt.out(result, tryout.text)
    return 0 if result["ok"] else 1


@command("panels verify")
def cmd_panels_verify(rt: Runtime, args) -> int:
    from provisiond import tryout, verify
    rt.open_db()
    shown = (lambda step: None) if rt.json else (lambda step: print("\n".join(tryout.step_lines(step)), flush=True))
    result = verify.run_verify(rt.settings, rt.vault, args.panel, server=args.server, domain=args.domain,
                               package=args.package, other_package=args.other_package, keep=args.keep,
                               i_know=args.i_know, on_step=shown, actor=audit.cli_actor())
    rt.out(result, verify.text)
    return 0 if result["ok"] else 1


@command("sweep")
def cmd_sweep(rt: Runtime, args) -> int:
    from provisiond.daemon import run_sweep
    rt.open_db()
    today = args.now or datetime.date.today()
    result = run_sweep(rt.settings, today, dry_run=args.dry_run)
    rows = [{"service": d.service_id, "ref": Service.get_by_id(d.service_id).ref, "action": d.action,
             "reason": d.reason} for d in result.decisions]
    rt.out({"day": today, "dry_run": args.dry_run, "enqueued": result.enqueued, "decisions": rows,
            "failed_products": result.failed},
           lambda v: _table(rows, ["service", "ref", "action", "reason"])
           + f"\n{len(rows)} decision(s); " + ("dry run, nothing enqueued" if args.dry_run
                                               else f"{v['enqueued']} job(s) enqueued")
           + "".join(f"\nproduct {name} NOT swept: {why}" for name, why in result.failed.items()))
    return 1 if result.failed else 0


@command("group add")
def cmd_group_add(rt: Runtime, args) -> int:
    rt.open_db()
    group = catalog.add_group(args.name, args.strategy)
    rt.out({"id": group.id, "name": group.name, "strategy": group.strategy},
           f"group {group.name} added ({group.strategy})")
    return 0


@command("server add")
def cmd_server_add(rt: Runtime, args) -> int:
    rt.open_db()
    server = catalog.add_server(rt.registry(), rt.vault, name=args.name, panel=args.panel, host=args.host,
                                port=args.port, group_name=args.group, max_accounts=args.max_accounts,
                                credentials=_credentials(args.credential))
    rt.out(server_view(server), f"server {server.name} added ({server.panel} at {server.host})")
    return 0


@command("server list")
def cmd_server_list(rt: Runtime, args) -> int:
    rt.open_db()
    rows = [server_view(s) for s in Server.select().order_by(Server.name)]
    rt.out(rows, lambda r: _table(r, ["id", "name", "panel", "host", "port", "group", "max_accounts", "health"]))
    return 0


@command("server test")
def cmd_server_test(rt: Runtime, args) -> int:
    from provisiond.worker import test_server
    rt.open_db()
    server = catalog.server(args.name)
    outcome = test_server(rt.settings, rt.vault, rt.registry(), server)
    rt.out(outcome, lambda o: f"server {server.name}: {o['health']}"
           + (f" ({o['message']})" if o.get("message") else ""))
    return 0 if outcome["health"] == "ok" else 1


@command("product add")
def cmd_product_add(rt: Runtime, args) -> int:
    rt.open_db()
    product = catalog.add_product(rt.registry(), name=args.name, panel=args.panel, group_name=args.group,
                                  package=args.package, config=_kv(args.config, "config"),
                                  suspend_after_days=args.suspend_after_days,
                                  terminate_after_days=args.terminate_after_days, steps=args.step or (),
                                  role_dirs=rt.settings.role_dirs(), welcome_password=args.welcome_password,
                                  backup_before_terminate=args.backup_before_terminate)
    warning = catalog.panel_gap(product)
    if warning:
        print(f"provisiond: warning: {warning}", file=sys.stderr)
    rt.out({"id": product.id, "name": product.name, "panel": product.panel, "package": product.package,
            "config": product.config, "steps": product.extra_roles, "warnings": [warning] if warning else []},
           f"product {product.name} added ({product.panel}, {product.package})")
    return 0


@command("service order")
def cmd_service_order(rt: Runtime, args) -> int:
    rt.open_db()
    ordered = lifecycle.place_order(rt.registry(), rt.vault, product=args.product, domain=args.domain,
                                    email=args.email, username=args.username, ref=args.ref, name=args.name,
                                    paid_until=args.paid_until, password=_password_file(args.password_file),
                                    policy=rt.policy, settings=rt.settings)
    service, job = ordered.service, ordered.job
    view = service_view(service) | {"job": job.id if job else None, "created": ordered.created}
    rt.out(view, lambda v: f"service {v['ref']} ({v['domain']}) "
           + ("ordered: " if v["created"] else "was ordered already: ")
           + (f"create job {v['job']} queued on {v['server']} as {v['username']}" if v["job"]
              else f"waiting: {v['pending_reason']}"))
    return 0


@command("service show")
def cmd_service_show(rt: Runtime, args) -> int:
    rt.open_db()
    service = lifecycle.get_service(args.service)
    jobs = [job_view(j) for j in service.jobs.order_by(Job.id)]
    rt.out(service_view(service) | {"jobs": jobs},
           lambda v: _fields({k: val for k, val in v.items() if k != "jobs"}) + "\n\n"
           + _table(jobs, ["id", "action", "status", "attempts", "last_error"]))
    return 0


@command("service close")
def cmd_service_close(rt: Runtime, args) -> int:
    rt.open_db()
    service, may_exist = lifecycle.close(args.service, actor=audit.cli_actor(), settings=rt.settings)
    rt.out(service_view(service) | {"account_may_exist": may_exist},
           lambda v: f"service {v['ref']} closed" + (
               f"; its create's last attempt had no known outcome: check {v['server']} for "
               f"{v['username']} (an admin alert was queued)" if may_exist else ""))
    return 0


@command("service list")
def cmd_service_list(rt: Runtime, args) -> int:
    rt.open_db()
    query = Service.select().order_by(Service.id)
    if args.status:
        query = query.where(Service.status == args.status)
    rows = [service_view(s) for s in query]
    rt.out(rows, lambda r: _table(r, ["id", "ref", "domain", "username", "server", "status", "status_reason"]))
    return 0


def _request(rt: Runtime, args, action: str, **kwargs) -> int:
    rt.open_db()
    job = lifecycle.request(rt.registry(), rt.vault, args.service, action, policy=rt.policy, **kwargs)
    rt.out(job_view(job), lambda v: f"{action} job {v['id']} {v['status']} for service {v['service']}")
    return 0


@command("service suspend")
def cmd_service_suspend(rt, args):
    return _request(rt, args, "suspend", reason=args.reason)


@command("service unsuspend")
def cmd_service_unsuspend(rt, args):
    return _request(rt, args, "unsuspend")


@command("service terminate")
def cmd_service_terminate(rt, args):
    return _request(rt, args, "terminate")


@command("service change-package")
def cmd_service_change_package(rt, args):
    return _request(rt, args, "change_package", package=args.package)


@command("service change-password")
def cmd_service_change_password(rt, args):
    return _request(rt, args, "change_password", password=_password_file(args.password_file))


def _password_file(path: str | None) -> str | None:
    """The password in FILE (``-``: standard input), without its line end; never echoed."""
    if path is None:
        return None
    try:
        if path == "-":
            text = sys.stdin.read(PASSWORD_FILE_LIMIT)
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(PASSWORD_FILE_LIMIT)  # bounded: /dev/zero is a file too
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("password_file", f"cannot be read ({type(exc).__name__})") from None
    return text.removesuffix("\n").removesuffix("\r")


@command("service credentials")
def cmd_service_credentials(rt: Runtime, args) -> int:
    from provisiond import audit, credentials
    rt.open_db()
    service = lifecycle.get_service(args.service)
    if not args.reveal:
        rt.out(credentials.describe(service), _fields)
        return 0
    rt.out(credentials.reveal(service, rt.vault, audit.cli_actor()), _fields)
    return 0


@command("service action")
def cmd_service_action(rt: Runtime, args) -> int:
    from provisiond import actions
    rt.open_db()
    answer = actions.run(rt.settings, rt.vault, rt.registry(), action=args.action, audience=args.audience,
                         service=lifecycle.get_service(args.service), params=_kv(args.param, "params"))
    rt.out(answer, _fields if answer else "done")
    return 0


@command("server action")
def cmd_server_action(rt: Runtime, args) -> int:
    from provisiond import actions
    rt.open_db()
    answer = actions.run(rt.settings, rt.vault, rt.registry(), action=args.action,
                         server=catalog.server(args.name), params=_kv(args.param, "params"))
    rt.out(answer, _fields if answer else "done")
    return 0


@command("keys rotate")
def cmd_keys_rotate(rt: Runtime, args) -> int:
    from provisiond import keys
    rt.open_db()
    counts = keys.rotate_all(rt.settings)
    rt.out(counts, lambda c: "new key first; re-encrypted: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    return 0


@command("job list")
def cmd_job_list(rt: Runtime, args) -> int:
    rt.open_db()
    query = Job.select().order_by(Job.id.desc()).limit(args.limit)
    if args.status:
        query = query.where(Job.status == args.status)
    rows = [job_view(j) for j in query]
    rt.out(rows, lambda r: _table(r, ["id", "action", "status", "service", "server", "attempts", "last_error"]))
    return 0


@command("job show")
def cmd_job_show(rt: Runtime, args) -> int:
    rt.open_db()
    job = queue.get(args.job)
    rt.out(job_view(job), _fields)
    return 0


@command("job retry")
def cmd_job_retry(rt: Runtime, args) -> int:
    rt.open_db()
    job = lifecycle.retry_job(args.job, rt.settings.retry_max_attempts)
    rt.out(job_view(job), lambda v: f"job {v['id']} queued again")
    return 0


@command("job cancel")
def cmd_job_cancel(rt: Runtime, args) -> int:
    rt.open_db()
    job = outcomes.cancel(args.job, rt.settings)
    rt.out(job_view(job), lambda v: f"job {v['id']} " + (
        "cancelled" if v["status"] == "cancelled" else "asked to stop (it is running)"))
    return 0


@command("job resolve")
def cmd_job_resolve(rt: Runtime, args) -> int:
    rt.open_db()
    job = outcomes.resolve(args.job, args.succeeded, actor=audit.cli_actor(), note=args.note,
                           settings=rt.settings, vault=rt.vault)
    rt.out(job_view(job), lambda v: f"job {v['id']} resolved as {v['status']}")
    return 0


@command("log show")
def cmd_log_show(rt: Runtime, args) -> int:
    rt.open_db()
    job = queue.get(args.job)
    rows = [log_view(r) for r in job.logs.order_by(ProvisioningLog.attempt, ProvisioningLog.id)]

    def text(rows):
        if not rows:
            return f"job {job.id} has no attempts yet ({job.status})"
        parts = []
        for r in rows:
            head = (f"attempt {r['attempt']}: {r['status']} ({r['action']} on {r['panel']}, rc {r['rc']}, "
                    f"{r['duration']}s, {r['started_at']:%Y-%m-%d %H:%M:%S} UTC)")
            body = [f"  failed task:  {r['failed_task']}" if r["failed_task"] else None,
                    f"  playbooks:    {r['playbook_folder']}" if r["playbook_folder"] else None,
                    f"  message:      {r['message']}" if r["message"] else None,
                    f"  panel answer: {r['panel_answer']}" if r["panel_answer"] and r["status"] != "succeeded" else None,
                    f"  artifacts:    {r['artifacts']}" if r["artifacts"] else None]
            if r["stdout_excerpt"] and r["status"] != "succeeded":
                body.append("  stdout:\n" + "\n".join("    " + line for line in r["stdout_excerpt"].splitlines()[-25:]))
            parts.append("\n".join([head, *[b for b in body if b]]))
        return "\n\n".join(parts)
    rt.out(rows, text)
    return 0


@command("sandbox")
def cmd_sandbox(rt: Runtime, args) -> int:
    from provisiond.sandbox import serve
    fields = [f.name for f in rt.registry().get(args.panel).credentials]
    return serve(args.panel, args.host, args.port, fields)


# -- parser ----------------------------------------------------------------------------------

def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return number


PASSWORD_FILE_LIMIT = 1024  # characters; the panel's rules refuse a longer password anyway
PASSWORD_FILE_HELP = ("read the account password the billing system chose from FILE (- for standard "
                      "input; one trailing newline is dropped); checked against the panel's rules")
SERVICE_KEY_HELP = ("the service's billing reference, or its id written id:7 (a bare number that is "
                    "the ref of one service and the id of another is refused)")


def build_parser() -> argparse.ArgumentParser:
    # --json is accepted before or after the command; SUPPRESS keeps a subcommand's unset
    # flag from overriding the one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON instead of text")
    parser = argparse.ArgumentParser(prog="provisiond", parents=[common],
                                     description="Ansible-backed provisioning for hosting control panels.")
    parser.add_argument("--home", help="data directory (default: $PROVISIOND_HOME or ~/.local/share/provisiond)")
    parser.add_argument("--database-url", help="database URL (sqlite:///path or postgresql://...)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def sub(parent, name, help_text, **kwargs):
        return parent.add_parser(name, help=help_text, parents=[common], **kwargs)

    def group(name, help_text):
        return sub(top, name, help_text).add_subparsers(dest="sub", required=True, metavar="ACTION")

    sub(top, "init", "create the home directory, secret key, config file and database schema")
    dbg = group("db", "database schema")
    sub(dbg, "upgrade", "apply pending schema migrations")
    run = sub(top, "run", "run the daemon")
    run.add_argument("--once", action="store_true",
                     help="for cron: one tick (waiting for its runs), send due notifications, "
                          "remove old run folders, exit")
    run.add_argument("--api", action="store_true", help="serve the HTTP API in the same process")
    sub(top, "status", "daemons, queue depth by status, oldest queued job, last sweep (exit 1 when unhealthy)")
    p = sub(top, "api", "serve the HTTP API for billing systems (loopback by default)")
    p.add_argument("--host", metavar="ADDRESS", help="address to listen on (default: api_host, 127.0.0.1)")
    p.add_argument("--port", type=_positive, help="port to listen on (default: api_port, 8740)")
    kg = group("keys", "encryption keys of stored secrets")
    sub(kg, "rotate", "put a new key first and re-encrypt every stored secret")
    tg = group("token", "API bearer tokens")
    sub(tg, "create", "create a token (printed once)").add_argument(
        "name", help="what the token is for, e.g. whmcs (unique)")
    sub(tg, "revoke", "revoke a token").add_argument("name", help="the token's name")
    sub(top, "demo", "provision, suspend, unsuspend, change and terminate an account on a sandbox WHM")

    pg = group("panels", "panels found in playbooks/")
    sub(pg, "list", "list panels and where they were found")
    p = sub(pg, "check", "validate manifests, render and syntax-check every action's playbook")
    p.add_argument("panel", nargs="?", help="one panel id (default: every panel)")
    p = sub(pg, "try", "run one action's playbook against the panel's simulator with a throwaway account")
    p.add_argument("panel", help="panel id with a bundled simulator (cpanel, directadmin, hestia, plesk, ...)")
    p.add_argument("action", help="create, suspend, ..., test_connection or an admin action")
    p.add_argument("--sandbox", action="store_true", help="against the bundled simulator, in a throwaway home")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a parameter of an admin action (e.g. user_ip=IP for plesk login_link); repeat")
    p = sub(pg, "verify", "run the whole lifecycle with a throwaway account on a registered (staging) server")
    p.add_argument("panel", help="the server's panel id")
    p.add_argument("--server", required=True, help="a server added with `server add`")
    p.add_argument("--domain", required=True, help="the throwaway account's domain (no service may use it)")
    p.add_argument("--package", help="package to create with (default: the server's first, from list_packages)")
    p.add_argument("--other-package", help="package for change_package (default: another from list_packages)")
    p.add_argument("--keep", action="store_true", help="leave the account on the panel (no terminate steps)")
    p.add_argument("--i-know", action="store_true", help="run even though the server has services")

    p = sub(top, "sweep", "run one overdue sweep and print its decisions")
    p.add_argument("--now", type=_date, help="the day to sweep as (YYYY-MM-DD; default today)")
    p.add_argument("--dry-run", action="store_true", help="decide only; enqueue nothing")

    gg = group("group", "server groups")
    p = sub(gg, "add", "add a server group")
    p.add_argument("name", help="the group's name, e.g. web")
    p.add_argument("--strategy", default="least-loaded",
                   choices=["least-loaded", "fill-until-full", "round-robin"],
                   help="how orders are placed on the group's servers (default least-loaded)")

    sg = group("server", "servers")
    p = sub(sg, "add", "add a server")
    p.add_argument("name", help="the server's name in provisiond, e.g. whm1")
    p.add_argument("--panel", required=True, help="panel id, a folder of playbooks/ (see `panels list`)")
    p.add_argument("--host", required=True, metavar="HOSTNAME|IP", help="the panel's hostname or IP address")
    p.add_argument("--port", type=_positive, help="the panel's port (default: the panel's own)")
    p.add_argument("--group", required=True, help="the server group it joins")
    p.add_argument("--max-accounts", type=int, default=500,
                   help="accounts placed on it at most (default 500)")
    p.add_argument("--credential", action="append", metavar="KEY=VALUE",
                   help="a credential field, repeated for each; KEY=@FILE reads the value from a file, "
                        "KEY=- from stdin (keeps tokens and keys out of ps and shell history)")
    sub(sg, "list", "list servers")
    p = sub(sg, "test", "check that provisiond can talk to a server")
    p.add_argument("name", help="the server's name")

    p = sub(sg, "action", "run an action the server's panel declares (e.g. list_packages)")
    p.add_argument("name", help="the server's name")
    p.add_argument("action", help="an action of the panel's admin_actions")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter of the action; repeat")

    prg = group("product", "products")
    p = sub(prg, "add", "add a product")
    p.add_argument("name", help="the product's name, as orders name it")
    p.add_argument("--panel", required=True, help="panel id; the product is placed only on its servers")
    p.add_argument("--group", required=True, help="the server group its services are placed in")
    p.add_argument("--package", required=True, help="the panel's package or plan name")
    p.add_argument("--config", action="append", metavar="KEY=VALUE",
                   help="a package setting the panel declares (e.g. quota=2048); repeat")
    p.add_argument("--suspend-after-days", type=int, metavar="DAYS",
                   help="days overdue before suspension, 0-3650 (default: suspend_after_days)")
    p.add_argument("--terminate-after-days", type=int, metavar="DAYS",
                   help="days overdue before termination, 0-3650 (default: terminate_after_days)")
    p.add_argument("--step", action="append", metavar="ROLE",
                   help="an extra step run after create (a role; repeat, in order)")
    p.add_argument("--welcome-password", action="store_true", help="put the password in the welcome mail")
    p.add_argument("--backup-before-terminate", action="store_true",
                   help="take a final backup before the account is removed")

    svg = group("service", "hosting services")
    p = sub(svg, "order", "a paid order: create the service and its account")
    p.add_argument("--product", required=True, help="the product's name")
    p.add_argument("--domain", required=True, help="the account's main domain, e.g. shop.example.com")
    p.add_argument("--email", required=True, help="the client's email address")
    p.add_argument("--name", help='the client\'s name, e.g. "Jane Doe" (panels that keep one use it)')
    p.add_argument("--username", help="the account's username (default: made from the domain)")
    p.add_argument("--ref", metavar="REF", help="the billing system's reference (unique; an order replayed "
                   "with it gives the same service)")
    p.add_argument("--paid-until", type=_date, metavar="YYYY-MM-DD",
                   help="the day the order is paid until (the overdue sweep counts from it)")
    p.add_argument("--password-file", metavar="FILE", help=PASSWORD_FILE_HELP)
    for name, help_text in (("show", "show a service and its jobs"), ("unsuspend", "unsuspend"),
                            ("terminate", "terminate (remove the account)")):
        sub(svg, name, help_text).add_argument("service", help=SERVICE_KEY_HELP)
    p = sub(svg, "change-password", "set a new password: the one in --password-file, else a generated one")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("--password-file", metavar="FILE", help=PASSWORD_FILE_HELP)
    p = sub(svg, "credentials", "the account's username and password state; --reveal shows a "
                                "generated password once per change (audited)")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("--reveal", action="store_true",
                   help="show the generated password (once per change; recorded in the audit trail)")
    p = sub(svg, "suspend", "suspend")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("--reason", default="admin", help="overdue, admin, abuse, ... (default admin)")
    p = sub(svg, "action", "run an action the panel declares for active services (e.g. login_link)")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("action", help="an action of the panel's admin_actions, e.g. login_link")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter of the action; repeat")
    p.add_argument("--as", dest="audience", default="admin", choices=["admin", "client"],
                   help="who asks: client areas only get the actions offered to clients")
    p = sub(svg, "paid", "record a payment (unsuspends a service suspended for being overdue)")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("--until", type=_date, required=True, help="paid until (YYYY-MM-DD)")
    p.add_argument("--correct", action="store_true",
                   help="allow a date earlier than the current one (a correction; audited)")
    p = sub(svg, "change-package", "move to another package")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("package", help="the panel's package or plan name")
    p = sub(svg, "close", "end a pending or failed service that holds no account (its create "
                          "was cancelled or failed, or it waits for a server)")
    p.add_argument("service", help="id or billing reference")
    p = sub(svg, "list", "list services")
    p.add_argument("--status", choices=[s.value for s in ServiceStatus], help="only services in this state")

    jg = group("job", "jobs")
    p = sub(jg, "list", "list jobs, newest first")
    p.add_argument("--status", choices=[s.value for s in JobStatus], help="only jobs in this state")
    p.add_argument("--limit", type=_positive, default=50, help="jobs shown at most (default 50)")
    for name, help_text in (("show", "show a job"), ("retry", "queue a failed job again"),
                            ("cancel", "cancel a queued job or stop a running one")):
        sub(jg, name, help_text).add_argument("job", type=int, help="the job's id")
    p = sub(jg, "resolve", "end a needs_attention job as you found it on the panel; the service "
                           "moves on as that outcome would")
    p.add_argument("job", type=int, help="the job's id")
    outcome = p.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--succeeded", action="store_true", help="the panel shows the action done")
    outcome.add_argument("--failed", dest="succeeded", action="store_false",
                         help="the panel shows the action not done")
    p.add_argument("--note", metavar="TEXT", help="what you found (kept in the audit trail)")

    lg = group("log", "provisioning log")
    p = sub(lg, "show", "attempt history of a job")
    p.add_argument("job", type=int, help="the job's id")

    p = sub(top, "sandbox", "run a panel simulator for playbook authors")
    p.add_argument("panel", choices=["cpanel", "directadmin", "hestia", "plesk", "virtualmin", "opterius"],
                   help="the panel to simulate")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    return parser


def _overrides(args) -> dict:
    """The settings given as flags; a reload (SIGHUP) applies them again over the file."""
    return {"home": args.home, "database_url": args.database_url}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    name = args.command + (f" {args.sub}" if getattr(args, "sub", None) else "")
    try:
        settings = config.load(_overrides(args))
        logs.setup("DEBUG" if args.verbose else settings.log_level, settings.log_format)
        code = COMMANDS[name](Runtime(settings, args.json), args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # `provisiond ... --json | head`: the reader left; end quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValidationError, NotFound, StateError, PanelError) as exc:
        print(f"provisiond: error: {exc}", file=sys.stderr)
        return 2
    except ProvisiondError as exc:
        print(f"provisiond: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
