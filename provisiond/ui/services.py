"""``/ui/services/{ref}``: one service, its timeline (``timeline``), the panel's state of its
account from its server's last sync, and what an admin does to it: suspend, unsuspend,
terminate (after typing its domain) and, where the panel has one, a one-time login link.

The forms call what the API's routes call (``lifecycle.request``, ``actions.run``); each is
recorded in the audit trail under the signed-in token (``ui:NAME``), because the console acts
by hand. A login link is shown once, on the page answering the form: it is kept nowhere
(neither in the audit trail nor in a log) and the page is not cached.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Form, Request

from provisiond import actions, audit, lifecycle, usage
from provisiond.errors import NotFound, ProvisiondError
from provisiond.models import Service, ServerSync
from provisiond.ui import session, timeline
from provisiond.ui.render import page, redirect

router = APIRouter()
LOGIN_LINK = "login_link"
FILLED = ("user_ip",)  # parameters of a login link the console fills in (the admin's address)


def known(route):
    """Answer a route about a service that does not exist with the console's 404 page."""
    @functools.wraps(route)
    def wrapper(*args, **kwargs):
        try:
            return route(*args, **kwargs)
        except NotFound as exc:
            return page(kwargs["request"], "error.html", status_code=404, title="No such service",
                        admin=kwargs["admin"], message=str(exc)[:200])
    return wrapper


@router.get("/services/{ref}")
@session.with_admin
@known
def show(request: Request, ref: str, admin: session.AdminDep):
    service = _service(ref)
    return page(request, "service.html", title=f"Service {service.ref}", admin=admin, service=service,
                timeline=timeline.build(service), usage=next(iter(usage.history(service, 1)), None),
                panel=panel_state(service), login_link=_login_link_label(request, service))


@router.post("/services/{ref}/suspend")
@session.with_admin
@known
def suspend(request: Request, ref: str, admin: session.CheckedDep):
    return _lifecycle(request, ref, admin, "suspend", reason="admin")


@router.post("/services/{ref}/unsuspend")
@session.with_admin
@known
def unsuspend(request: Request, ref: str, admin: session.CheckedDep):
    return _lifecycle(request, ref, admin, "unsuspend")


@router.get("/services/{ref}/terminate")
@session.with_admin
@known
def confirm_terminate(request: Request, ref: str, admin: session.AdminDep):
    return _terminate_page(request, admin, _service(ref), typed="", problem="")


@router.post("/services/{ref}/terminate")
@session.with_admin
@known
def terminate(request: Request, ref: str, admin: session.CheckedDep,
              domain: Annotated[str, Form(max_length=300)] = ""):
    """Queue the terminate only when the admin typed the service's domain exactly."""
    service = _service(ref)
    if domain != service.domain:
        problem = ("Type the service's domain to terminate it." if not domain else
                   f"{domain!r} is not this service's domain; nothing was done.")
        return _terminate_page(request, admin, service, typed=domain, problem=problem, status_code=422)
    return _lifecycle(request, ref, admin, "terminate")


@router.post("/services/{ref}/login-link")
@session.with_admin
@known
def login_link(request: Request, ref: str, admin: session.CheckedDep):
    """Ask the panel for a one-time login link and show it once; the link is kept nowhere."""
    service = _service(ref)
    ctx = request.app.state.context
    if _login_link_label(request, service) is None:
        return redirect(_url(service), flash=f"Service {service.ref}: its panel offers no login link now.")
    try:
        answer = actions.run(ctx.settings, ctx.vault, ctx.panels(), action=LOGIN_LINK, audience="admin",
                             service=service, params=_login_params(request, service))
    except ProvisiondError as exc:
        return redirect(_url(service), flash=f"No login link for {service.ref}: {exc}")
    link = answer.get("url")
    if not isinstance(link, str) or not link.startswith(("https://", "http://")):
        return redirect(_url(service), flash=f"No login link for {service.ref}: the panel gave no URL.")
    audit.record(admin.actor, "service.login_link", f"service:{service.ref}")
    return page(request, "login_link.html", title=f"Login link for {service.ref}", admin=admin,
                service=service, link=link)


# -- the panel's state from the last sync --------------------------------------------------

DRIFT_TEXT = {
    "missing": "The panel had no account {username}; provisiond has it {status}.",
    "state_drift": "State: the panel had it {panel}, provisiond {provisiond}.",
    "package_drift": "Package: the panel had {panel}, provisiond {provisiond}.",
    "identity_drift": "Domain: the panel had {panel}, provisiond {provisiond}.",
}


def panel_state(service: Service) -> dict | None:
    """What the last sync of the service's server found about its account: ``checked_at``,
    ``lines`` (sentences) and ``agrees``; None when the server was never synced."""
    if service.server_id is None:
        return None
    row = ServerSync.get_or_none(ServerSync.server == service.server_id)
    if row is None:
        return None
    report = row.report or {}
    lines = [DRIFT_TEXT[kind].format(**{"username": "", "status": "", **item})
             for kind in DRIFT_TEXT for item in report.get(kind, []) if item.get("ref") == service.ref]
    orphan = next((o for o in report.get("orphans", []) if service.username and o.get("username") == service.username),
                  None)
    if orphan is not None:
        lines.append(f"The panel had account {orphan['username']} ({orphan.get('domain')}, package "
                     f"{orphan.get('package')}, {'suspended' if orphan.get('suspended') else 'active'}), "
                     f"which provisiond no longer holds: this service is {service.status}.")
    if lines:
        return {"checked_at": row.checked_at, "lines": lines, "agrees": False}
    if service.created_at > row.checked_at:
        text = "This service was ordered after the last sync."
    elif service.status in ("active", "suspended"):
        text = (f"The panel's account {service.username} agreed with provisiond: no drift in state, "
                "package or domain.")
    elif service.status in ("terminated", "closed"):
        text = f"The panel had no account {service.username or ''} left for it."
    else:
        text = f"A {service.status} service's account is not compared by the sync."
    return {"checked_at": row.checked_at, "lines": [text], "agrees": True}


# -- helpers -------------------------------------------------------------------------------

def _service(ref: str) -> Service:
    """The service of billing reference ``ref`` (never one with that id); NotFound otherwise."""
    if len(ref) > 100:  # longer than any reference
        raise NotFound(f"service {ref[:40]}… does not exist")
    return lifecycle.get_service_by_ref(ref)


def _url(service: Service) -> str:
    return f"/ui/services/{service.ref}"


def _lifecycle(request: Request, ref: str, admin: session.Admin, action: str, **kwargs):
    """Queue ``action`` as the API's route does, audit it, and go back to the service."""
    service = _service(ref)
    ctx = request.app.state.context
    try:
        job = lifecycle.request(ctx.panels(), ctx.vault, service.id, action, policy=ctx.policy, **kwargs)
    except ProvisiondError as exc:
        return redirect(_url(service), flash=f"{action.capitalize()} not queued: {exc}")
    audit.record(admin.actor, f"service.{action}", f"service:{service.ref}", job=job.id)
    return redirect(_url(service), flash=f"{action.capitalize()} of {service.ref} queued as job {job.id}.")


def _terminate_page(request: Request, admin: session.Admin, service: Service, *, typed: str, problem: str,
                    status_code: int = 200):
    return page(request, "terminate.html", status_code=status_code, title=f"Terminate {service.ref}",
                admin=admin, service=service, typed=typed, problem=problem)


def _login_link_label(request: Request, service: Service) -> str | None:
    """The panel's label of its login link, when it declares one for admins that the console can
    ask for this service now (placed, active or suspended); else None."""
    if service.server_id is None or service.status not in ("active", "suspended"):
        return None
    try:
        declared = request.app.state.context.panels().get(service.server.panel).admin_action(LOGIN_LINK)
    except ProvisiondError:
        return None
    if "admin" not in declared.audience or any(f.required and f.name not in FILLED for f in declared.params):
        return None
    return declared.label or "Login link"


def _login_params(request: Request, service: Service) -> dict:
    declared = request.app.state.context.panels().get(service.server.panel).admin_action(LOGIN_LINK)
    names = {f.name for f in declared.params}
    return {"user_ip": request.client.host} if "user_ip" in names and request.client else {}
