"""Renew: a service's new paid-until, and the panel's ``renew.yml`` when its folder has one.

A renewal is a payment for a new period, recorded the way a payment is (``Service.paid_until``,
an audit entry ``renew`` with the previous date and the jobs it queued), and, when the panel
declares the optional ``renew`` action (``actions: [..., renew]`` and ``renew.yml``, e.g. to lift
a panel-side expiry), a ``renew`` job that runs it with ``account.params.until``. A panel without
one gets no run and no job. Decisions:

- ``until`` is an ISO date (YYYY-MM-DD) and nothing else; ``01/02/2027`` is refused naming both
  readings, ``20270201`` and week dates are refused too (every key names exactly one thing).
- ``until`` in the past, or before the current ``paid_until``, is refused naming ``until``: a
  renewal extends; moving the date back is ``service paid --correct`` (audited as a correction).
  The same date again is a replay: accepted, and an identical open renew job is given back.
- Only an active or suspended service is renewed; any other state is refused naming it.
- A service suspended for being overdue is unsuspended, as a payment unsuspends it
  (``policies.on_payment``); one suspended by an admin or for abuse stays suspended. The renew
  job is queued first, so a panel-side expiry is lifted before the unsuspend runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import re

from provisiond import audit, db as dbmod, lifecycle, queue
from provisiond.crypto import Vault
from provisiond.errors import StateError, ValidationError
from provisiond.models import OPEN_JOB_STATUSES, Job, Service, ServiceStatus, database, utcnow
from provisiond.panels import Registry
from provisiond.policies import RetryPolicy, on_payment

RENEWABLE = (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SLASHED = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})")


def parse_until(value: str) -> datetime.date:
    """``value`` as a date when it is written YYYY-MM-DD; else a ValidationError naming ``until``
    (a day-month/month-day date whose two readings differ names both)."""
    text = str(value).strip()
    if ISO_DATE.fullmatch(text):
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            raise ValidationError("until", f"{text!r} is not a date (YYYY-MM-DD)") from None
    slashed = SLASHED.fullmatch(text)
    if slashed:
        first, second, year = (int(part) for part in slashed.groups())
        readings = {name: _date(year, month, day) for name, (day, month)
                    in (("day first", (first, second)), ("month first", (second, first)))}
        found = {name: d for name, d in readings.items() if d is not None}
        if len(set(found.values())) > 1:
            raise ValidationError("until", f"{text!r} is ambiguous: {found['day first']} (day first) or "
                                           f"{found['month first']} (month first); write it YYYY-MM-DD")
        if found:
            only = next(iter(found.values()))
            raise ValidationError("until", f"{text!r} is not written YYYY-MM-DD; write {only}")
    raise ValidationError("until", f"{text!r} is not a date written YYYY-MM-DD")


def _date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Renewed:
    """What a renewal did: the service as it is now, its renew job (None when the panel has no
    renew.yml) and the unsuspend job (when it was suspended for being overdue)."""
    service: Service
    job: Job | None
    unsuspend_job: Job | None

    def view(self) -> dict:
        return {"ref": self.service.ref, "paid_until": self.service.paid_until.isoformat(),
                "status": self.service.status, "renew_job": self.job.id if self.job else None,
                "unsuspend_job": self.unsuspend_job.id if self.unsuspend_job else None}


def renew(ref_or_id: str | int, until: datetime.date, today: datetime.date, *, registry: Registry,
          vault: Vault, actor: str, policy: RetryPolicy = RetryPolicy()) -> Renewed:
    """Record that the service is paid until ``until`` and queue what the renewal needs on the
    panel (see the module's docstring for what is refused); one transaction, audited."""
    service_id = lifecycle.get_service(ref_or_id).id
    with database.atomic():
        if dbmod.is_postgres():  # two renewals of one service are decided one after the other
            Service.select(Service.id).where(Service.id == service_id).for_update().execute()
        service = Service.get_by_id(service_id)
        _check(service, until, today)
        params = {"until": until.isoformat()}
        job = None
        if service.server_id is not None and registry.get(service.server.panel).supports("renew"):
            job = _open_job(service, "renew", params) or queue.enqueue(
                "renew", service=service, server=service.server, params=params,
                max_attempts=policy.attempts_for("renew"))[0]
        Service.update(paid_until=until, updated_at=utcnow()).where(Service.id == service_id).execute()
        unsuspend = None
        if on_payment(service.status, service.status_reason, until, today) is not None:
            unsuspend = _open_job(service, "unsuspend", {}) or lifecycle.request(
                registry, vault, service_id, "unsuspend", policy=policy)
        audit.record(actor, "renew", f"service:{service.ref}",
                     previous=service.paid_until.isoformat() if service.paid_until else None,
                     paid_until=until.isoformat(), **({"job": job.id} if job else {}),
                     **({"unsuspend_job": unsuspend.id} if unsuspend else {}))
    return Renewed(Service.get_by_id(service_id), job, unsuspend)


def _open_job(service: Service, action: str, params: dict) -> Job | None:
    """The service's open job of ``action`` with ``params``: a replayed renewal gets it back."""
    for job in (Job.select().where((Job.service == service) & (Job.action == action)
                                   & Job.status.in_(OPEN_JOB_STATUSES)).order_by(Job.id)):
        if job.params == params:
            return job
    return None


def _check(service: Service, until: datetime.date, today: datetime.date) -> None:
    if service.status not in RENEWABLE:
        raise StateError(f"service {service.ref} is {service.status}; renew needs it "
                         f"{' or '.join(RENEWABLE)}")
    if until < today:
        raise ValidationError("until", f"{until} is in the past (today is {today})")
    if service.paid_until is not None and until < service.paid_until:
        raise ValidationError("until", f"{until} is before the current paid_until {service.paid_until} of "
                                       f"service {service.ref}; a renewal extends it (a correction is "
                                       f"`service paid --correct`)")
