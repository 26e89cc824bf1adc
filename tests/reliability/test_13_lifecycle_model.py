"""Guarantee 13: the lifecycle keeps its promises under any sequence of requests.

A hypothesis state machine sends provisiond random sequences of what billing systems, admins and
failures do: orders (numeric and text refs, identical replays, replays with other data, the same
order three times at once), payments (forward, backward, corrections), suspends with reasons,
unsuspends, package and password changes, terminates, job cancels, workers that die holding a
claim and the reaper that notices, worker ticks (real ansible-runner runs of the cPanel playbooks
against the WHM simulator) and overdue sweeps on dates that jump ahead. Beside it runs a plain
Python model of what should be true: which service each ref names, its status, paid-until date
and account, which jobs were asked for and which were cancelled.

After every step:
- every panel-side change is to the account of the service the request named (and every job in
  the queue is one the model asked for, or one the sweep was entitled to);
- no account is removed unless an admin asked for its termination or the service was suspended
  for non-payment for its product's days;
- no job runs after its cancel;
- one order ref gives at most one service and one panel account, with the ordered domain;
- every service is in a steady state (active, suspended, terminated, or pending because an admin
  cancelled its create), has a job in flight, or has an admin alert queued;
- the service rows and the panel's accounts agree with the model.

Cost: real runs happen only in ``tick``, at most ``MAX_TICKS`` per example; every due job of the
example shares one run per action. Examples are derandomized, so CI runs the same ones every time.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import re
import threading

import pytest
from hypothesis import HealthCheck, settings as hypothesis_settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from provisiond import catalog, db as dbmod, errors, lifecycle, queue
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.daemon import Daemon, run_sweep
from provisiond.models import (MODELS, OPEN_JOB_STATUSES, ApiToken, Job, Notification, Product,
                               ProvisioningLog, Server, ServerGroup, Service, Setting, database, utcnow)
from provisiond.panels import Registry
from provisiond.policies import RetryPolicy
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.sweep import LAST_SWEEP
from provisiond.worker import retry_policy

# Numeric refs collide with service ids (WHMCS service ids are numbers); text refs do not.
REFS = ("1", "2", "3", "INV-1", "INV-2")
DOMAINS = ("alpha.example.com", "bravo.example.com", "charlie.example.com")
PRODUCTS = {"starter": (10, 45), "short": (2, 5)}  # name → (suspend, terminate) days overdue
REASONS = ("admin", "abuse", "overdue")
PACKAGES = ("basic", "pro")
START = datetime.date(2027, 1, 4)
MAX_TICKS = 3   # besides the first, which creates the opening orders
MAX_DEATHS = 3
MAX_CANCELS = 2
MODEL_SETTINGS = hypothesis_settings(
    max_examples=6, stateful_step_count=30, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck), print_blob=False)

# The model's own copy of the state machine (lifecycle's docstring), not lifecycle's table.
ALLOWED_FROM = {"suspend": {"active"}, "unsuspend": {"suspended"},
                "terminate": {"active", "suspended", "failed"},
                "change_package": {"active", "suspended"}, "change_password": {"active", "suspended"}}
RESULT = {"create": "active", "suspend": "suspended", "unsuspend": "active", "terminate": "terminated"}
PANEL_CHANGES = {"createacct": "create", "suspendacct": "suspend", "unsuspendacct": "unsuspend",
                 "removeacct": "terminate", "changepackage": "change_package", "passwd": "change_password"}
ENDED = ("succeeded", "failed", "cancelled", "needs_attention")
# A refused replay or a refused backward payment: which of these the fix raises is its choice.
REFUSED = (errors.ValidationError, errors.StateError, getattr(errors, "ConflictError", errors.StateError))


@dataclasses.dataclass
class World:
    """What the machine works on; built once per test (per database)."""

    settings: Settings
    registry: Registry
    vault: Vault
    whm: WhmSimulator
    daemon: Daemon
    policy: RetryPolicy


@dataclasses.dataclass
class Ordered:
    """What the model knows of one order ref."""

    ref: str
    service_id: int
    product: str
    domain: str
    ordered_paid_until: datetime.date | None
    username: str
    paid_until: datetime.date | None = None
    status: str = "pending"
    reason: str | None = None
    package: str = "basic"
    create_cancelled: bool = False


@dataclasses.dataclass
class Asked:
    """A job the model asked for (or the sweep was entitled to), and what became of it."""

    job_id: int
    ref: str
    action: str
    params: dict
    by: str                         # order, admin, payment, sweep
    logs_at_cancel: int | None = None
    ended: str | None = None


def reset(whm: WhmSimulator) -> None:
    """An empty lifecycle for the next example: no services, jobs, outbox or panel accounts; ids
    start at 1 again, so numeric refs meet service ids."""
    catalog_tables = (Setting, ServerGroup, Server, Product, ApiToken)
    tables = [model for model in reversed(MODELS) if model not in catalog_tables]
    if dbmod.is_postgres():
        names = ", ".join(f'"{model._meta.table_name}"' for model in tables)
        database.obj.execute_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    else:
        for model in tables:  # INTEGER PRIMARY KEY: an empty table numbers from 1 again
            model.delete().execute()
    Setting.delete().where(Setting.key == LAST_SWEEP).execute()
    with whm.lock:
        whm.accounts.clear()
        whm.requests.clear()


def cancel_job(job_id: int, settings: Settings) -> Job:
    """The faces' job cancel: ``outcomes.cancel`` once the one outcome path exists (issue 9, A.6),
    which also moves the service; before it, ``queue.cancel``."""
    if importlib.util.find_spec("provisiond.outcomes") is not None:
        from provisiond import outcomes
        return outcomes.cancel(job_id, settings)
    return queue.cancel(job_id, utcnow())


def alert_texts() -> list[str]:
    return [f"{row.payload.get('subject', '')}\n{row.payload.get('body', '')}"
            for row in Notification.select().where(Notification.kind.startswith("alert"))]


def mentions_service(text: str, ref: str) -> bool:
    return re.search(rf"service {re.escape(ref)}(?![\w.:-])", text, re.IGNORECASE) is not None


class LifecycleModel(RuleBasedStateMachine):
    world: World  # set by the test

    def __init__(self):
        super().__init__()
        reset(self.world.whm)
        self.today = START
        self.refs: dict[str, Ordered] = {}
        self.jobs: dict[int, Asked] = {}
        self.ticks = 0
        self.deaths = 0
        self.cancels = 0

    # -- helpers ---------------------------------------------------------------------------
    def _ambiguous(self, ref: str) -> bool:
        """A numeric ref that is also another service's id: refusing it is allowed."""
        other = [o for o in self.refs.values() if ref.isdigit() and o.service_id == int(ref)]
        return bool(other) and other[0].ref != ref

    def _open_job_ids(self) -> list[int]:
        return [job_id for (job_id,) in Job.select(Job.id).where(Job.status.in_(OPEN_JOB_STATUSES))
                .order_by(Job.id).tuples()]

    def _oldest_open(self, ref: str) -> Asked | None:
        service_id = self.refs[ref].service_id
        row = (Job.select(Job.id).where((Job.service == service_id) & Job.status.in_(OPEN_JOB_STATUSES))
               .order_by(Job.id).first())
        return self.jobs.get(row.id) if row else None

    def _call_order(self, ref: str, product: str, domain: str, paid_until):
        world = self.world
        return lifecycle.order(world.registry, world.vault, product=product, domain=domain,
                               email=f"owner@{domain}", ref=ref, paid_until=paid_until,
                               policy=world.policy, settings=world.settings)

    def _remember_order(self, ref, product, domain, paid_until, service, job) -> None:
        assert service.ref == ref, f"ordering {ref} gave service {service.ref}"
        assert job is not None and job.action == "create" and job.service_id == service.id
        self.refs[ref] = Ordered(ref, service.id, product, domain, paid_until, service.username,
                                 paid_until=paid_until)
        self.jobs[job.id] = Asked(job.id, ref, "create", {}, "order")

    def _ask(self, job: Job, ref: str, by: str) -> None:
        ordered = self.refs[ref]
        assert job.service_id == ordered.service_id, (
            f"a request naming {ref} (service {ordered.service_id}) made job {job.id} for service "
            f"{Service.get_by_id(job.service_id).ref} (id {job.service_id})")
        self.jobs.setdefault(job.id, Asked(job.id, ref, job.action, dict(job.params), by))

    def _learn_outcomes(self) -> None:
        """Move the model by the jobs that ended: the panel decides success, the model the rest."""
        for asked in self.jobs.values():
            if asked.ended:
                continue
            status = Job.get_by_id(asked.job_id).status
            if status not in ENDED:
                continue
            asked.ended = status
            ordered = self.refs[asked.ref]
            if status == "cancelled":
                assert asked.logs_at_cancel is not None, f"job {asked.job_id} was cancelled by nobody"
                ordered.create_cancelled |= asked.action == "create"
            elif status == "failed" and asked.action == "create":
                ordered.status = "failed"
            elif status == "succeeded":
                ordered.status = RESULT.get(asked.action, ordered.status)
                if asked.action in ("create", "unsuspend"):
                    ordered.reason = None
                elif asked.action == "suspend":
                    ordered.reason = asked.params.get("reason", "admin")
                elif asked.action == "change_package":
                    ordered.package = asked.params["package"]

    # -- orders ----------------------------------------------------------------------------
    @initialize(orders=st.lists(
        st.tuples(st.sampled_from(REFS), st.sampled_from(sorted(PRODUCTS)), st.sampled_from(DOMAINS),
                  st.none() | st.integers(0, 30)),
        min_size=1, max_size=3, unique_by=(lambda o: o[0], lambda o: o[2])))
    def open_shop(self, orders):
        """A few orders, created by one tick, so that most steps meet live accounts."""
        for ref, product, domain, paid_days in orders:
            self.order(ref, product, domain, paid_days, None)
        self._tick()

    @rule(ref=st.sampled_from(REFS), product=st.sampled_from(sorted(PRODUCTS)),
          domain=st.sampled_from(DOMAINS), paid_days=st.none() | st.integers(0, 30),
          change=st.sampled_from([None, "domain", "product"]))
    def order(self, ref, product, domain, paid_days, change):
        """A new ref is ordered; a known one is replayed, identically (change None) or not."""
        known = self.refs.get(ref)
        if known is None:
            paid = None if paid_days is None else self.today + datetime.timedelta(days=paid_days)
            self._remember_order(ref, product, domain, paid, *self._call_order(ref, product, domain, paid))
            return
        product, domain = known.product, known.domain
        if change == "domain":
            domain = next(d for d in DOMAINS if d != known.domain)
        elif change == "product":
            product = next(p for p in PRODUCTS if p != known.product)
        try:
            service, job = self._call_order(ref, product, domain, known.ordered_paid_until)
        except REFUSED as exc:
            assert change is not None, f"an identical replay of order {ref} was refused: {exc}"
            assert change in str(exc), f"the refusal of a replay of {ref} does not name {change}: {exc}"
            return
        assert change is None, (f"replaying order {ref} with another {change} ({domain}, {product}) "
                                f"was answered with service {service.ref} as if it were the same order")
        assert service.id == known.service_id
        if job is not None:
            self._ask(job, ref, "order")

    @rule(ref=st.sampled_from(REFS), product=st.sampled_from(sorted(PRODUCTS)),
          domain=st.sampled_from(DOMAINS))
    def order_three_times_at_once(self, ref, product, domain):
        """Three identical orders in parallel (a billing system retrying): one service, no error."""
        known = self.refs.get(ref)
        if known is not None:
            product, domain = known.product, known.domain
        paid = known.ordered_paid_until if known else None
        results, failures, start = [], [], threading.Barrier(3)

        def place_order():
            try:
                start.wait()
                results.append(self._call_order(ref, product, domain, paid))
            except Exception as exc:  # noqa: BLE001 - every failure is what the test reports
                failures.append(exc)
            finally:
                database.obj.close()  # this thread's connection

        threads = [threading.Thread(target=place_order) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, f"parallel identical orders of {ref} failed: {failures!r}"
        assert len({service.id for service, _ in results}) == 1, "parallel orders made several services"
        service, job = next(((s, j) for s, j in results if j is not None), results[0])
        if known is None:
            self._remember_order(ref, product, domain, paid, service, job)
        elif job is not None:
            self._ask(job, ref, "order")

    # -- requests and payments -------------------------------------------------------------
    @precondition(lambda self: self.refs)
    @rule(data=st.data(), action=st.sampled_from(sorted(ALLOWED_FROM)), reason=st.sampled_from(REASONS),
          package=st.sampled_from(PACKAGES))
    def request(self, data, action, reason, package):
        ref = data.draw(st.sampled_from(sorted(self.refs)), label="ref")
        ordered = self.refs[ref]
        params = {"reason": reason} if action == "suspend" else (
            {"package": package} if action == "change_package" else {})
        oldest = self._oldest_open(ref)
        merged = oldest is not None and oldest.action == action and oldest.params == params
        allowed = merged or ordered.status in ALLOWED_FROM[action]
        world = self.world
        try:
            job = lifecycle.request(world.registry, world.vault, ref, action, reason=params.get("reason"),
                                    package=params.get("package"), policy=world.policy)
        except errors.ValidationError as exc:
            assert self._ambiguous(ref), f"{action} of {ref} was refused: {exc}"
            return
        except errors.StateError as exc:
            assert not allowed, f"{action} of {ref} ({ordered.status}) was refused: {exc}"
            return
        self._ask(job, ref, "admin")
        assert allowed, f"{action} of {ref} was accepted while it is {ordered.status}"
        if merged:
            assert job.id == oldest.job_id, f"an identical open {action} of {ref} was not merged"

    @precondition(lambda self: self.refs)
    @rule(data=st.data(), days=st.integers(-60, 400), correct=st.booleans())
    def pay(self, data, days, correct):
        """A payment until today + days; earlier than the current date only as a correction."""
        ref = data.draw(st.sampled_from(sorted(self.refs)), label="ref")
        ordered = self.refs[ref]
        until = self.today + datetime.timedelta(days=days)
        backwards = ordered.paid_until is not None and until < ordered.paid_until
        # ASSUMES the fix's keyword: record_payment(..., correct=True) for an audited correction.
        extra = {"correct": True} if backwards and correct else {}
        world = self.world
        try:
            job = lifecycle.record_payment(ref, until, self.today, registry=world.registry,
                                           vault=world.vault, policy=world.policy, **extra)
        except REFUSED as exc:
            assert self._ambiguous(ref) or (backwards and not extra), f"payment of {ref} refused: {exc}"
            return
        assert not (backwards and not extra), (
            f"a payment moved {ref}'s paid_until back from {ordered.paid_until} to {until} "
            "without being a correction")
        ordered.paid_until = until
        clears = ordered.status == "suspended" and ordered.reason == "overdue" and until >= self.today
        assert (job is not None) == clears, (
            f"payment of {ref} ({ordered.status}, {ordered.reason}) until {until} on {self.today} "
            f"gave {job and job.action}")
        if job is not None:
            assert job.action == "unsuspend"
            self._ask(job, ref, "payment")

    # -- jobs, workers, time ---------------------------------------------------------------
    def _cancellable(self) -> list[int]:
        if self.cancels >= MAX_CANCELS:
            return []
        return [j for j in self._open_job_ids() if j in self.jobs and self.jobs[j].logs_at_cancel is None]

    @precondition(lambda self: self._cancellable())
    @rule(data=st.data())
    def cancel(self, data):
        choices = self._cancellable()
        job_id = data.draw(st.sampled_from(choices), label="job")
        logs = ProvisioningLog.select().where(ProvisioningLog.job == job_id).count()
        self.cancels += 1
        job = cancel_job(job_id, self.world.settings)
        assert job.status == "cancelled" or job.cancel_requested
        self.jobs[job_id].logs_at_cancel = logs
        self._learn_outcomes()

    @precondition(lambda self: self.deaths < MAX_DEATHS and Job.select().where(Job.status == "queued").exists())
    @rule(limit=st.integers(1, 3))
    def worker_dies(self, limit):
        """A worker claims due jobs and dies at once: its lease ran out a minute ago."""
        self.deaths += 1
        queue.claim(f"dead-worker-{self.deaths}", utcnow(), limit, lease_seconds=-60)

    @precondition(lambda self: Job.select().where(Job.status == "running").exists())
    @rule()
    def reap(self):
        """The daemon's reaper, as it runs every few seconds."""
        self.world.daemon.reap()
        self._learn_outcomes()

    @precondition(lambda self: self.ticks < MAX_TICKS and self._open_job_ids())
    @rule()
    def tick(self):
        self.ticks += 1
        self._tick()

    def _tick(self) -> None:
        """One worker tick that waits for its runs (real playbooks against the simulator)."""
        whm = self.world.whm
        seen = len(whm.requests)
        last_log = ProvisioningLog.select(ProvisioningLog.id).order_by(ProvisioningLog.id.desc()).scalar() or 0
        self.world.daemon.worker.tick(wait=True)
        ran = {job_id for (job_id,) in ProvisioningLog.select(ProvisioningLog.job)
               .where(ProvisioningLog.id > last_log).tuples()}
        strangers = ran - set(self.jobs)
        assert not strangers, f"jobs nobody asked for ran: {sorted(strangers)}"
        with whm.lock:
            calls = whm.requests[seen:]
        for call in calls:
            self._check_panel_change(call, ran)
        self._learn_outcomes()

    def _check_panel_change(self, call, ran: set[int]) -> None:
        action = PANEL_CHANGES.get(call.path.rsplit("/", 1)[-1])
        if action is None:
            return
        form = call.form()
        user = form.get("username") or form.get("user")
        named = [self.jobs[j] for j in ran if self.jobs[j].action == action
                 and self.refs[self.jobs[j].ref].username == user]
        ran_jobs = [(self.jobs[j].ref, self.jobs[j].action, self.jobs[j].by) for j in sorted(ran)]
        assert named, (f"the panel was asked to {action} account {user!r}, but no job of this tick "
                       f"named its service for that (jobs that ran: {ran_jobs})")
        for asked in named:
            assert asked.logs_at_cancel is None, (
                f"job {asked.job_id} ({action} of {asked.ref}) changed the panel after its cancel")

    @rule(days=st.integers(0, 400))
    def sweep(self, days):
        """The overdue sweep of a day ``days`` after the previous step's."""
        self.today += datetime.timedelta(days=days)
        expected = self._sweep_should()
        before = {job_id for (job_id,) in Job.select(Job.id).tuples()}
        existing = {key for (key,) in Job.select(Job.idempotency_key).where(
            Job.idempotency_key.is_null(False)).tuples()}
        run_sweep(self.world.settings, self.today)
        by_id = {o.service_id: o for o in self.refs.values()}
        added = set()
        for job in Job.select().where(Job.id.not_in(list(before) or [0])):
            ordered = by_id[job.service_id]
            assert job.idempotency_key in expected, (
                f"the sweep of {self.today} asked to {job.action} {ordered.ref}, which is {ordered.status}"
                f" (reason {ordered.reason}), paid until {ordered.paid_until}, product {ordered.product}")
            added.add(job.idempotency_key)
            self._ask(job, ordered.ref, "sweep")
        missing = set(expected) - existing - added
        assert not missing, f"the sweep of {self.today} left out {sorted(missing)}"

    def _sweep_should(self) -> dict[str, str]:
        """Idempotency key → ref of what the sweep must decide today: suspend an active service
        overdue by its suspend days, terminate one suspended for non-payment for its terminate days."""
        busy = {service_id for (service_id,) in Job.select(Job.service).where(
            Job.status.in_(OPEN_JOB_STATUSES)).tuples()}
        should = {}
        for ordered in self.refs.values():
            if ordered.paid_until is None or ordered.service_id in busy:
                continue
            overdue = (self.today - ordered.paid_until).days
            suspend_days, terminate_days = PRODUCTS[ordered.product]
            if ordered.status == "active" and overdue >= suspend_days:
                action = "suspend"
            elif ordered.status == "suspended" and ordered.reason == "overdue" and overdue >= terminate_days:
                action = "terminate"
            else:
                continue
            should[f"sweep:{self.today.isoformat()}:{action}:{ordered.service_id}"] = ordered.ref
        return should

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def one_service_per_ref(self):
        rows = {ref: service_id for service_id, ref in Service.select(Service.id, Service.ref).tuples()}
        assert rows == {ref: o.service_id for ref, o in self.refs.items()}, "services and orders differ"

    @invariant()
    def services_agree_with_the_model(self):
        products = dict(Product.select(Product.id, Product.name).tuples())
        for ordered in self.refs.values():
            service = Service.get_by_id(ordered.service_id)
            fields = [("domain", service.domain, ordered.domain),
                      ("product", products[service.product_id], ordered.product),
                      ("paid_until", service.paid_until, ordered.paid_until),
                      ("status", service.status, ordered.status), ("package", service.package, ordered.package)]
            if ordered.status == "suspended":
                fields.append(("status_reason", service.status_reason, ordered.reason))
            for field, seen, wanted in fields:
                assert seen == wanted, f"service {ordered.ref}'s {field} is {seen}; the model says {wanted}"

    @invariant()
    def panel_accounts_are_the_services(self):
        """One account per ref, with its domain; it exists exactly while the service is active or
        suspended (so an account is gone only after a terminate the model allowed)."""
        with self.world.whm.lock:
            accounts = dict(self.world.whm.accounts)
        owners = {o.username: o for o in self.refs.values()}
        for user, account in accounts.items():
            assert user in owners, f"panel account {user} is no ordered service's"
            assert account.domain == owners[user].domain, (user, account.domain, owners[user].ref)
        for ordered in self.refs.values():
            account = accounts.get(ordered.username)
            if ordered.status not in ("active", "suspended"):
                assert account is None, f"{ordered.ref} is {ordered.status} but has account {ordered.username}"
                continue
            assert account is not None, f"the account of {ordered.ref} ({ordered.status}) is gone from the panel"
            assert account.suspended == (ordered.status == "suspended"), (ordered.ref, account.suspended)
            assert account.plan == ordered.package, (ordered.ref, account.plan)
            password = Service.get_by_id(ordered.service_id).password
            assert account.password == self.world.vault.decrypt(password), f"{ordered.ref}: password differs"

    @invariant()
    def no_job_runs_after_its_cancel(self):
        for asked in self.jobs.values():
            if asked.logs_at_cancel is None:
                continue
            job = Job.get_by_id(asked.job_id)
            runs = ProvisioningLog.select().where(ProvisioningLog.job == asked.job_id).count()
            assert runs == asked.logs_at_cancel, f"job {job.id} ({job.action} of {asked.ref}) ran after its cancel"
            assert job.status in ("cancelled", "running"), (
                f"job {job.id} ({job.action} of {asked.ref}) is {job.status} after its cancel")

    @invariant()
    def every_service_is_steady_or_alerted(self):
        busy = {service_id for (service_id,) in Job.select(Job.service).where(
            Job.status.in_(OPEN_JOB_STATUSES)).tuples()}
        alerts = None
        for service in Service.select():
            if service.id in busy or service.status in ("active", "suspended", "terminated"):
                continue
            if service.status == "pending" and self.refs[service.ref].create_cancelled:
                continue  # the admin cancelled the create: their choice, not a silent stop
            alerts = alert_texts() if alerts is None else alerts
            assert any(mentions_service(text, service.ref) for text in alerts), (
                f"service {service.ref} is {service.status} with no job in flight and no alert queued")


@pytest.fixture
def world(shop, settings, registry, vault, whm):
    """Two products with different overdue days; few attempts, so dead workers exhaust them;
    alerts go to a webhook (never sent here), so an alert is a row in the outbox."""
    catalog.add_product(registry, name="short", panel="cpanel", group_name="web", package="basic",
                        suspend_after_days=PRODUCTS["short"][0], terminate_after_days=PRODUCTS["short"][1])
    tuned = dataclasses.replace(settings, retry_max_attempts=2, retry_terminate_attempts=2, max_runs=4,
                                per_server_runs=4, suspend_after_days=PRODUCTS["starter"][0],
                                terminate_after_days=PRODUCTS["starter"][1],
                                alert_webhook_url="http://127.0.0.1:9/alerts")
    daemon = Daemon(tuned, vault, owner="model-worker")
    daemon.bring_tick_forward = lambda: None  # no scheduler here: the machine ticks itself
    yield World(tuned, registry, vault, whm, daemon, retry_policy(tuned))
    daemon.worker.shutdown()


def test_the_lifecycle_keeps_its_promises_whatever_happens(world):
    machine = type("LifecycleModel", (LifecycleModel,), {"world": world})
    run_state_machine_as_test(machine, settings=MODEL_SETTINGS)
