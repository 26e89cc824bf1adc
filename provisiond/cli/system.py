"""Commands that set up and run provisiond: init, db, run, status, api, keys, sweep, demo, sandbox."""

from __future__ import annotations

import argparse
import datetime

from provisiond import config, db
from provisiond.cli.base import Runtime, command, parse_date, positive, table
from provisiond.models import Service


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
    rt.open_db(pool=bool(args.api))
    if args.once:
        done = run_once(rt.settings, rt.vault)
        rt.out(done, f"one tick: {done['runs']} run(s); {done['notifications']} notification(s) sent; "
                     f"{done['pruned']} old run folder(s) removed")
        return 0
    daemon = Daemon(rt.settings, rt.vault, reload_settings=lambda: config.load(overrides(args)))
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


def overrides(args) -> dict:
    """The settings given as flags; a reload (SIGHUP) applies them again over the file."""
    return {"home": args.home, "database_url": args.database_url}


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
             table(rows, ["owner", "state", "host", "pid", "version", "last tick"]),
             "", "queue: " + ", ".join(f"{status} {n}" for status, n in report["queue"].items()),
             "oldest queued job: " + (f"{age:.0f} s old" if age is not None else "none queued"),
             "last sweep: " + (report["last_sweep"] or "never")]
    return "\n".join(lines)


def _when(moment: datetime.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "never"


@command("api")
def cmd_api(rt: Runtime, args) -> int:
    from provisiond import api
    rt.open_db(pool=True)
    if args.workers > 1:
        from provisiond.api import workers
        workers.serve(rt.settings, args.host, args.port, args.workers)
        return 0
    api.serve(rt.settings, args.host, args.port, vault=rt.vault)
    return 0


def worker_count(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_WORKERS}")
    return number


MAX_WORKERS = 32


@command("keys rotate")
def cmd_keys_rotate(rt: Runtime, args) -> int:
    from provisiond import keys
    rt.open_db()
    counts = keys.rotate_all(rt.settings)
    rt.out(counts, lambda c: "new key first; re-encrypted: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    return 0


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
           lambda v: table(rows, ["service", "ref", "action", "reason"])
           + f"\n{len(rows)} decision(s); " + ("dry run, nothing enqueued" if args.dry_run
                                               else f"{v['enqueued']} job(s) enqueued")
           + "".join(f"\nproduct {name} NOT swept: {why}" for name, why in result.failed.items()))
    return 1 if result.failed else 0


@command("demo")
def cmd_demo(rt: Runtime, args) -> int:
    from provisiond.demo import run_demo
    return run_demo(print_json=rt.json)


@command("sandbox")
def cmd_sandbox(rt: Runtime, args) -> int:
    from provisiond.sandbox import serve
    fields = [f.name for f in rt.registry().get(args.panel).credentials]
    return serve(args.panel, args.host, args.port, fields)


def add_parsers(sub, group, top) -> None:
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
    p.add_argument("--port", type=positive, help="port to listen on (default: api_port, 8740)")
    p.add_argument("--workers", type=worker_count, default=1, metavar="N",
                   help="processes serving the API (default 1); each keeps its own api_db_pool connections")
    kg = group("keys", "encryption keys of stored secrets")
    sub(kg, "rotate", "put a new key first and re-encrypt every stored secret")
    sub(top, "demo", "provision, suspend, unsuspend, change and terminate an account on a sandbox WHM")
    p = sub(top, "sweep", "run one overdue sweep and print its decisions")
    p.add_argument("--now", type=parse_date, help="the day to sweep as (YYYY-MM-DD; default today)")
    p.add_argument("--dry-run", action="store_true", help="decide only; enqueue nothing")
    p = sub(top, "sandbox", "run a panel simulator for playbook authors")
    p.add_argument("panel", choices=["cpanel", "directadmin", "hestia", "plesk", "virtualmin", "opterius"],
                   help="the panel to simulate")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="default: a free port")
