"""Routes of orders and services: what a billing system calls (a billing token), and the two
an admin decides by hand (reveal a password, close a service: an admin token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import JSONResponse

from provisiond import actions, credentials, lifecycle, listing
from provisiond.api.base import (CONFLICT, FORBIDDEN, INVALID, MAX_ID, NOT_FOUND, Context, ServiceKey, authenticate,
                                 context, job_view, query_errors, require_admin, service_id, with_db)
from provisiond.api.schemas import (ActionIn, ChangePackageIn, ChangePasswordIn, ClosedService, CredentialsOut,
                                    JobOut, OrderIn, PaymentIn, Problem, RenewedOut, RenewIn, ServiceAndJob,
                                    ServiceDetail, ServicePage, SuspendIn)
from provisiond.models import ApiToken, Service, ServiceStatus, utcnow
from provisiond.views import service_view

router = APIRouter(tags=["services"])
Ctx = Annotated[Context, Depends(context)]
ACTION_RESPONSES = {**NOT_FOUND, **CONFLICT, **INVALID}


@router.post("/orders", status_code=201, response_model=ServiceAndJob,
             responses={200: {"model": ServiceAndJob, "description": "known ref: that service"},
                        409: {"model": Problem, "description": "known ref with other data; "
                                                               "names the fields that differ"},
                        **INVALID})
@with_db
def create_order(order: OrderIn, ctx: Ctx):
    """A paid order: the service and its create job (no job while no server has room)."""
    ordered = lifecycle.place_order(
        ctx.panels(), ctx.vault, product=order.product, domain=order.domain, email=order.email,
        username=order.username, ref=order.ref, name=order.name, paid_until=order.paid_until,
        password=order.password, fields=order.fields, policy=ctx.policy, settings=ctx.settings,
        variant=order.variant)
    answer = {"service": service_view(ordered.service),
              "job": job_view(ordered.job) if ordered.job else None}
    return JSONResponse(ServiceAndJob.model_validate(answer).model_dump(mode="json"),
                        status_code=201 if ordered.created else 200)


@router.get("/services", response_model=ServicePage, responses=INVALID)
@with_db
def list_services(status: Annotated[ServiceStatus | None, Query()] = None,
                  server: Annotated[str | None, Query(min_length=1, max_length=100,
                                                      description="a server's name")] = None,
                  q: Annotated[str | None, Query(max_length=listing.MAX_TEXT, description=(
                      "part of the billing ref, domain, username or email, any case"))] = None,
                  limit: Annotated[int, Query(ge=1, le=listing.MAX_LIMIT)] = 50,
                  offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0):
    """Services, newest first, with how many match in all (``total``; null past 1,000 matches
    of a one- or two-character ``q``, which are not all counted: ``more`` says whether the next
    page has any). ``?q=`` finds a service by part of its ref, domain, username or email; ``?server=`` that no server has is a 422 naming
    ``server`` (never an empty page that would look like an empty server)."""
    with query_errors():
        rows, total = listing.services(status=status and status.value, server=server, q=q,
                                       limit=limit, offset=offset)
    return {"services": [service_view(s) for s in rows], "total": total,
            "more": listing.more_after(total, offset, len(rows)), "limit": limit, "offset": offset}


@router.get("/services/{service}", response_model=ServiceDetail, responses={**NOT_FOUND, **INVALID})
@with_db
def show_service(service: ServiceKey):
    """A service and its jobs, oldest first."""
    return listing.service_detail(service)


@router.post("/services/{service}/payments", response_model=ServiceAndJob, responses=ACTION_RESPONSES)
@with_db
def record_payment(service: ServiceKey, payment: PaymentIn, ctx: Ctx,
                   token: Annotated[ApiToken, Depends(authenticate)]):
    """Record ``paid_until``; a service suspended for being overdue is unsuspended at once
    (never one suspended by an admin or for abuse). An earlier date than the current one is
    a 409 unless ``correct`` is true."""
    found = service_id(service)
    job = lifecycle.record_payment(found, payment.paid_until, utcnow().date(),
                                   registry=ctx.panels(), vault=ctx.vault, policy=ctx.policy,
                                   correct=payment.correct, actor=f"api:{token.name}")
    return {"service": service_view(Service.get_by_id(found)), "job": job_view(job) if job else None}


@router.post("/services/{service}/renew", response_model=RenewedOut, responses=ACTION_RESPONSES)
@with_db
def renew_service(service: ServiceKey, body: RenewIn, ctx: Ctx, token: Annotated[ApiToken, Depends(authenticate)]):
    """Record the new paid-until (``until``, YYYY-MM-DD; 422 naming ``until`` when it is not
    such a date, in the past or before the current paid_until) and queue the panel's renew.yml
    where it has one (``renew_job``, else null). A service suspended for being overdue is
    unsuspended, as a payment does; a terminated or closed one is a 409. Audited."""
    from provisiond import renew
    until = renew.parse_until(body.until)
    return renew.renew(service_id(service), until, utcnow().date(), registry=ctx.panels(), vault=ctx.vault,
                       actor=f"api:{token.name}", policy=ctx.policy).view()


def _request(ctx: Context, service: str, action: str, **kwargs) -> dict:
    return job_view(lifecycle.request(ctx.panels(), ctx.vault, service_id(service), action,
                                      policy=ctx.policy, **kwargs))


@router.post("/services/{service}/suspend", status_code=202, response_model=JobOut,
             responses=ACTION_RESPONSES)
@with_db
def suspend(service: ServiceKey, ctx: Ctx, body: Annotated[SuspendIn | None, Body()] = None):
    return _request(ctx, service, "suspend", reason=(body or SuspendIn()).reason)


@router.post("/services/{service}/unsuspend", status_code=202, response_model=JobOut,
             responses=ACTION_RESPONSES)
@with_db
def unsuspend(service: ServiceKey, ctx: Ctx):
    return _request(ctx, service, "unsuspend")


@router.post("/services/{service}/terminate", status_code=202, response_model=JobOut,
             responses=ACTION_RESPONSES)
@with_db
def terminate(service: ServiceKey, ctx: Ctx):
    return _request(ctx, service, "terminate")


@router.post("/services/{service}/change-package", status_code=202, response_model=JobOut,
             responses=ACTION_RESPONSES)
@with_db
def change_package(service: ServiceKey, body: ChangePackageIn, ctx: Ctx):
    return _request(ctx, service, "change_package", package=body.package, variant=body.variant)


@router.post("/services/{service}/change-password", status_code=202, response_model=JobOut,
             responses=ACTION_RESPONSES)
@with_db
def change_password(service: ServiceKey, ctx: Ctx, body: Annotated[ChangePasswordIn | None, Body()] = None):
    """Set the password the billing system chose, or a new generated one; it is never part
    of an answer."""
    return _request(ctx, service, "change_password", password=(body or ChangePasswordIn()).password)


@router.get("/services/{service}/credentials", response_model=CredentialsOut,
            responses={**NOT_FOUND, 409: {"model": Problem, "description": (
                "revealed already since the last change, or chosen by the billing system")},
                **FORBIDDEN, **INVALID})
@with_db
def reveal_credentials(service: ServiceKey, ctx: Ctx, token: Annotated[ApiToken, Depends(require_admin)]):
    """The generated password, once per change, for an admin token; audited. A second call is
    refused with 409 saying why."""
    found = lifecycle.get_service_by_ref(service)
    return credentials.reveal(found, ctx.vault, f"api:{token.name}")


@router.post("/services/{service}/close", response_model=ClosedService,
             responses={**ACTION_RESPONSES, **FORBIDDEN})
@with_db
def close(service: ServiceKey, ctx: Ctx, token: Annotated[ApiToken, Depends(require_admin)]):
    """End a pending or failed service that holds no account (its create was cancelled or
    failed, or it waits for a server); 409 while one of its jobs is open or held. Audited.
    Needs an admin token."""
    closed, may_exist = lifecycle.close(service_id(service), actor=f"api:{token.name}",
                                        settings=ctx.settings)
    return service_view(closed) | {"account_may_exist": may_exist}


@router.post("/services/{service}/actions/{action}", response_model=dict[str, Any], responses=ACTION_RESPONSES)
@with_db
def service_action(service: ServiceKey, action: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
                   ctx: Ctx, body: Annotated[ActionIn | None, Body()] = None):
    """Run an action the service's panel declares (e.g. ``login_link``) for an active
    service (an admin also for a suspended one; 409 otherwise), at once; its answer is what
    the panel reported. ``audience: client`` gets only the actions the panel offers to
    client areas."""
    body = body or ActionIn()
    return actions.run(ctx.settings, ctx.vault, ctx.panels(), action=action, audience=body.audience,
                       service=lifecycle.get_service_by_ref(service), params=body.params)
