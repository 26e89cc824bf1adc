"""`provisiond service`: orders, payments and the lifecycle of one hosting service."""

from __future__ import annotations

import datetime

from provisiond import audit, lifecycle
from provisiond.cli import sync, usage
from provisiond.cli.base import (PASSWORD_FILE_HELP, SERVICE_KEY_HELP, Runtime, command, fields, job_view, kv,
                                 parse_date, read_password_file, table)
from provisiond.errors import ValidationError
from provisiond.models import Job, Service, ServiceStatus
from provisiond.views import service_view


@command("service order")
def cmd_service_order(rt: Runtime, args) -> int:
    rt.open_db()
    ordered = lifecycle.place_order(rt.registry(), rt.vault, product=args.product, domain=args.domain,
                                    email=args.email, username=args.username, ref=args.ref, name=args.name,
                                    paid_until=args.paid_until, password=read_password_file(args.password_file),
                                    fields=checkout_values(args.field), policy=rt.policy, settings=rt.settings,
                                    variant=args.variant)
    service, job = ordered.service, ordered.job
    view = service_view(service) | {"job": job.id if job else None, "created": ordered.created}
    rt.out(view, lambda v: f"service {v['ref']} ({v['domain']}) "
           + ("ordered: " if v["created"] else "was ordered already: ")
           + (f"create job {v['job']} queued on {v['server']} as {v['username']}" if v["job"]
              else f"waiting: {v['pending_reason']}"))
    return 0


def checkout_values(pairs: list[str] | None) -> dict[str, str] | None:
    """``--field K=V`` values (None when none was given); a field given twice is refused."""
    if not pairs:
        return None
    keys = [pair.partition("=")[0] for pair in pairs]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice:
        raise ValidationError(f"fields.{twice}", "is given twice")
    return kv(pairs, "fields")


@command("service show")
def cmd_service_show(rt: Runtime, args) -> int:
    rt.open_db()
    service = lifecycle.get_service(args.service)
    jobs = [job_view(j) for j in service.jobs.order_by(Job.id)]
    rt.out(service_view(service) | {"jobs": jobs},
           lambda v: fields({k: val for k, val in v.items() if k != "jobs"}) + "\n\n"
           + table(jobs, ["id", "action", "status", "attempts", "last_error"]))
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
    rt.out(rows, lambda r: table(r, ["id", "ref", "domain", "username", "server", "status", "status_reason"]))
    return 0


@command("service paid")
def cmd_service_paid(rt: Runtime, args) -> int:
    rt.open_db()
    job = lifecycle.record_payment(args.service, args.until, datetime.date.today(), registry=rt.registry(),
                                   vault=rt.vault, policy=rt.policy, correct=args.correct,
                                   actor=audit.cli_actor())
    service = lifecycle.get_service(args.service)
    rt.out(service_view(service) | {"unsuspend_job": job.id if job else None},
           lambda v: f"service {v['ref']} paid until {v['paid_until']}"
           + (f"; unsuspend job {v['unsuspend_job']} queued" if v["unsuspend_job"] else ""))
    return 0


@command("service renew")
def cmd_service_renew(rt: Runtime, args) -> int:
    from provisiond import renew
    until = renew.parse_until(args.until)
    rt.open_db()
    renewed = renew.renew(args.service, until, datetime.date.today(), registry=rt.registry(), vault=rt.vault,
                          actor=audit.cli_actor(), policy=rt.policy)
    rt.out(renewed.view(), lambda v: f"service {v['ref']} renewed until {v['paid_until']}; "
           + (f"renew job {v['renew_job']} queued" if v["renew_job"] else "its panel has no renew.yml: no job")
           + (f"; unsuspend job {v['unsuspend_job']} queued" if v["unsuspend_job"] else ""))
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
    return _request(rt, args, "change_package", package=args.package, variant=args.variant)


@command("service change-password")
def cmd_service_change_password(rt, args):
    return _request(rt, args, "change_password", password=read_password_file(args.password_file))


@command("service credentials")
def cmd_service_credentials(rt: Runtime, args) -> int:
    from provisiond import audit, credentials
    rt.open_db()
    service = lifecycle.get_service(args.service)
    if not args.reveal:
        rt.out(credentials.describe(service), fields)
        return 0
    rt.out(credentials.reveal(service, rt.vault, audit.cli_actor()), fields)
    return 0


@command("service action")
def cmd_service_action(rt: Runtime, args) -> int:
    from provisiond import actions
    rt.open_db()
    answer = actions.run(rt.settings, rt.vault, rt.registry(), action=args.action, audience=args.audience,
                         service=lifecycle.get_service(args.service), params=kv(args.param, "params"))
    rt.out(answer, fields if answer else "done")
    return 0


@command("service import")
def cmd_service_import(rt: Runtime, args) -> int:
    import json
    import os
    import sys

    from provisiond import imports
    from provisiond.errors import ValidationError
    try:
        with open(args.file, "rb") as handle:
            text = imports.decode(handle.read())
    except OSError as exc:
        raise ValidationError("file", f"cannot read {args.file!r}: {exc.strerror}") from None
    rt.open_db()
    if sys.stderr.isatty() and not rt.json:  # a step line on a terminal only; the result follows
        print(f"{args.file}: checking every row" + ("" if args.dry_run else " and importing"),
              file=sys.stderr, flush=True)
    try:
        result = imports.import_services(text, rt.registry(), actor=audit.cli_actor(),
                                         source=os.path.basename(args.file), dry_run=args.dry_run)
    except imports.ImportRefused as refused:
        if rt.json:
            print(json.dumps({"imported": 0, "errors": [e.view() for e in refused.errors]}, indent=2))
        else:
            print("\n".join(str(e) for e in refused.errors), file=sys.stderr)
        print(f"provisiond: error: {refused}", file=sys.stderr)
        return 2
    rt.out(result.view(), _import_text)
    return 0


def _import_text(view: dict) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(view["by_status"].items()))
    servers = ", ".join(f"{name} ({n})" for name, n in sorted(view["by_server"].items()))
    lines = []
    plural = "" if view["services"] == 1 else "s"
    if view["dry_run"]:
        lines += [table(view["rows"], ["row", "ref", "product", "server", "username", "domain", "status",
                                       "paid_until"]), "",
                  f"dry run: {view['services']} service{plural} would be imported ({counts}) on {servers}; "
                  "nothing was written"]
    else:
        lines.append(f"imported {view['imported']} service{plural} ({counts}) on {servers}")
    lines += [f"warning: server {o['server']} holds {o['services']} services, more than its max_accounts "
              f"{o['max_accounts']}: it takes no new orders" for o in view["over_capacity"]]
    return "\n".join(lines)


def add_parsers(sub, group, top) -> None:
    svg = group("service", "hosting services")
    p = sub(svg, "order", "a paid order: create the service and its account")
    p.add_argument("--product", required=True, help="the product's name")
    p.add_argument("--domain", required=True, help="the account's main domain, e.g. shop.example.com")
    p.add_argument("--email", required=True, help="the client's email address")
    p.add_argument("--name", help='the client\'s name, e.g. "Jane Doe" (panels that keep one use it)')
    p.add_argument("--username", help="the account's username (default: made from the domain)")
    p.add_argument("--ref", metavar="REF", help="the billing system's reference (unique; an order replayed "
                   "with it gives the same service)")
    p.add_argument("--paid-until", type=parse_date, metavar="YYYY-MM-DD",
                   help="the day the order is paid until (the overdue sweep counts from it)")
    p.add_argument("--password-file", metavar="FILE", help=PASSWORD_FILE_HELP)
    p.add_argument("--variant", help="a variant of the product (`product variant list PRODUCT`)")
    p.add_argument("--field", action="append", metavar="NAME=VALUE",
                   help="a checkout field of the product (`product show` lists them); repeat")
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
    p.add_argument("--until", type=parse_date, required=True, help="paid until (YYYY-MM-DD)")
    p.add_argument("--correct", action="store_true",
                   help="allow a date earlier than the current one (a correction; audited)")
    p = sub(svg, "renew", "record a new paid-until and run the panel's renew.yml where it has one "
                          "(unsuspends a service suspended for being overdue, as a payment does)")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("--until", required=True, metavar="YYYY-MM-DD",
                   help="paid until; today or later, not before the current paid-until")
    p = sub(svg, "change-package", "move to another package")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("package", nargs="?", help="the panel's package or plan name (default: the variant's)")
    p.add_argument("--variant", help="a variant of the service's product: its package and settings, "
                   "re-applied on the panel")
    p = sub(svg, "close", "end a pending or failed service that holds no account (its create "
                          "was cancelled or failed, or it waits for a server)")
    p.add_argument("service", help="id or billing reference")
    p = sub(svg, "import", "record services a billing system already has, from a CSV file (no panel "
                           "is called: the accounts exist); every row is checked, nothing is written "
                           "on any problem")
    p.add_argument("file", metavar="FILE.csv", help="CSV with a header row: ref, product, server, username, "
                   "domain, email (required), paid_until (YYYY-MM-DD), status (active or suspended)")
    p.add_argument("--dry-run", action="store_true", help="check every row and show what would be "
                   "imported; write nothing")
    sync.add_service_recreate(sub, svg)
    usage.add_service_parser(sub, svg)
    p = sub(svg, "list", "list services")
    p.add_argument("--status", choices=[s.value for s in ServiceStatus], help="only services in this state")
