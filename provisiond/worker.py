"""One tick of work: claim → group → render → execute → record.

``Worker.tick(now)`` is what the daemon's scheduler calls and what tests call directly. Each
free run slot takes the oldest due job's (server, action) and claims up to ``batch_size`` jobs
that can share that run, one inventory host per job; for an HTTP panel the run then takes the
same action's jobs on other servers of that panel with free calls, up to ``servers_per_run``
servers (and no more than leaves a run per core), each server with its own forks. Runs go to a
thread pool, so a tick never waits for a playbook unless asked to (``wait=True``, used by
``run --once``).

Runs are bounded by the panels, not by the controller's cores: a server takes at most its own
``max_concurrency`` panel calls at once, counted as the forks of every run on it (a run gets
as many forks as it has hosts, up to what the server has free), and at most
``per_server_runs`` runs. ``max_runs`` (``Settings.run_slots``) is only a safety cap on
memory across the fleet, so a slow or failing server holds its own places and nobody else's.

While a run lasts, its cancel check renews the jobs' leases and notices a cancel request or a
lost lease; the run is stopped once every job in it should stop. Outcomes are recorded up to
``RECORD_CHUNK`` jobs to a transaction, each job in a savepoint that is rolled back when the
worker no longer owns the job (fence).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime
import logging
import math
import os
import random
import socket
import threading
import time
import uuid

import peewee as pw

from provisiond import (artifacts, catalog, db, execute, lifecycle, outcomes, panels, queue, render,
                        step_secrets, variants)
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import ProvisiondError
from provisiond.models import Job, JobStatus, Product, Server, Service, database, utcnow
from provisiond.policies import FailureKind, RetryPolicy, classify

log = logging.getLogger("provisiond.worker")
SUCCEEDED, FAILED, QUEUED = JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.QUEUED.value
CANCELLED, HELD = JobStatus.CANCELLED.value, JobStatus.NEEDS_ATTENTION.value


class _NotOwner(Exception):
    """The job was claimed by someone else meanwhile: record nothing."""


_NEVER = threading.Event()  # recording goes on during shutdown; its retries end by time
# A run's jobs are recorded this many to a transaction: one commit (on SQLite, one fsync) for
# many. Runs that end together take turns (_recording_turn), a chunk at a time.
RECORD_CHUNK = 50
_SQLITE_WRITER = threading.Lock()
DEFAULT_CONCURRENCY = 2  # a server's max_concurrency when it was not read (models.Server's default)
CORES = len(os.sched_getaffinity(0))


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(base=settings.retry_base, factor=settings.retry_factor, cap=settings.retry_cap,
                       max_attempts=settings.retry_max_attempts,
                       max_attempts_by_action={"terminate": settings.retry_terminate_attempts})


class Worker:
    def __init__(self, settings: Settings, vault: Vault, owner: str | None = None):
        self.settings = settings
        self.vault = vault
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.policy = retry_policy(settings)
        self.rng = random.Random()
        self._pool = concurrent.futures.ThreadPoolExecutor(settings.run_slots(), thread_name_prefix="run")
        self._lock = threading.Lock()
        self._running: set[concurrent.futures.Future] = set()
        self._server_runs: collections.Counter[int] = collections.Counter()
        self._server_calls: collections.Counter[int] = collections.Counter()   # forks of its runs
        self.on_run_finished = lambda: None   # the daemon brings its next tick forward

    # -- ticking -------------------------------------------------------------------------
    def tick(self, now: datetime.datetime | None = None, wait: bool = False) -> list[concurrent.futures.Future]:
        """Start runs for due jobs, as many as free slots allow; returns the runs started."""
        now = now or utcnow()
        registry = panels.discover(self.settings.panel_dirs())
        for folder, problem in registry.problems.items():
            log.warning("panel %s skipped: %s", folder, problem)
        lifecycle.place_waiting(registry, self.policy, settings=self.settings)
        outcomes.reap(self.settings)
        started = []
        servers = {sid: (panel_id, limit) for sid, panel_id, limit
                   in Server.select(Server.id, Server.panel, Server.max_concurrency).tuples()}
        limits = {sid: limit for sid, (_panel, limit) in servers.items()}
        while self.free_slots() > 0:
            parts = self._claim_run(now, limits, self._shared_servers(registry, servers))
            if not parts:
                break
            future = self._pool.submit(self._run_batch, registry, parts)
            shares = [(jobs[0].server_id, forks) for jobs, forks in parts]
            with self._lock:
                self._running.add(future)
                for sid, forks in shares:
                    self._server_runs[sid] += 1
                    self._server_calls[sid] += forks
            future.add_done_callback(lambda f, shares=shares: self._done(f, shares))
            started.append(future)
        if wait:
            self.wait(started)
        return started

    def _shared_servers(self, registry: panels.Registry, servers: dict[int, tuple[str, int]]) -> dict[int, list[int]]:
        """Server id → the other servers of its panel that one run may serve with it: an HTTP
        panel's (its calls are made by ansible-playbook itself); an SSH panel's run is its server's."""
        if self.settings.servers_per_run <= 1:
            return {}
        by_panel = collections.defaultdict(list)
        for sid, (panel_id, _limit) in servers.items():
            by_panel[panel_id].append(sid)
        shared = {}
        for panel_id, ids in by_panel.items():
            try:
                http = registry.get(panel_id).connection != "ssh"
            except ProvisiondError:
                http = False
            if http and len(ids) > 1:
                shared.update({sid: ids for sid in ids})
        return shared

    def free_slots(self) -> int:
        with self._lock:
            return self.settings.run_slots() - len(self._running)

    def _free_calls(self, server_id: int, limits: dict[int, int]) -> int:
        """Panel calls the server can still take now (its max_concurrency less its runs' forks)."""
        if self._server_runs[server_id] >= self.settings.per_server_runs:
            return 0
        return limits.get(server_id, DEFAULT_CONCURRENCY) - self._server_calls[server_id]

    def _busy_servers(self, limits: dict[int, int]) -> list[int]:
        with self._lock:
            return [sid for sid in set(self._server_runs) | set(self._server_calls)
                    if self._free_calls(sid, limits) <= 0]

    def _claim_run(self, now, limits: dict[int, int], shared: dict[int, list[int]]) -> list[tuple[list[Job], int]]:
        """The next run: the oldest due job's (server, action) batch, then batches of the same
        action on other servers of that panel with free calls (up to ``servers_per_run``), each
        with its own forks. One ansible-playbook then drives several servers: a run costs about
        1 CPU-s and 33 MiB to start, a server's calls almost nothing (bench/RESULTS.md)."""
        busy = self._busy_servers(limits)
        head = queue.next_due(now, skip_servers=busy)
        if head is None:
            return []
        server_id, action = head
        parts = [self._claim_batch(now, limits, server_id, action)]
        if not parts[0][0]:
            return []
        taken = {server_id}
        others = [sid for sid in shared.get(server_id, ()) if sid != server_id and sid not in busy]
        while len(taken) < self._servers_per_run(len(shared.get(server_id, ())) or 1):
            head = queue.next_due(now, action=action, servers=[sid for sid in others if sid not in taken])
            if head is None:
                break
            taken.add(head[0])
            parts.append(self._claim_batch(now, limits, head[0], action))
        return [(jobs, forks) for jobs, forks in parts if jobs]

    def _servers_per_run(self, servers: int) -> int:
        """How many of a panel's ``servers`` one run may serve: ``servers_per_run``, but no more
        than leaves a run per core, since one ansible-playbook computes on one core at a time."""
        return max(1, min(self.settings.servers_per_run, math.ceil(servers / CORES)))

    def _claim_batch(self, now, limits: dict[int, int], server_id: int, action: str) -> tuple[list[Job], int]:
        """One server's share of a run and its forks: as many forks as hosts, up to the server's
        free calls (and the ``forks`` setting when it is set), so no fork waits for a panel that is
        already answering as many calls as it takes. A share that gets only part of its server's
        calls takes that part of ``batch_size``, so it does not hold a long batch on a narrow
        share of the panel once the other runs end."""
        with self._lock:
            free = self._free_calls(server_id, limits)
        share = max(1, self.settings.batch_size * free // max(free, limits.get(server_id, DEFAULT_CONCURRENCY)))
        jobs = queue.claim(self.owner, now, share, self.settings.lease_seconds,
                           server_id=server_id, action=action)
        forks = min(len(jobs), free, self.settings.forks or free)
        return jobs, max(1, forks)

    def _done(self, future, shares: list[tuple[int, int]]) -> None:
        with self._lock:
            self._running.discard(future)
            for server_id, forks in shares:
                self._server_runs[server_id] -= 1
                self._server_calls[server_id] -= forks
        if future.exception() is not None:
            log.error("a run crashed", exc_info=future.exception())
        self.on_run_finished()

    def wait(self, futures=None) -> None:
        with self._lock:
            pending = list(futures if futures is not None else self._running)
        concurrent.futures.wait(pending)

    def shutdown(self) -> None:
        """Let the running playbooks finish, then stop."""
        self.wait()  # runs of a pool replaced by reconfigure() included
        self._pool.shutdown(wait=True)

    def reconfigure(self, settings: Settings) -> None:
        """Use new settings from the next tick on (a reload); running playbooks go on as they were."""
        with self._lock:
            slots = self.settings.run_slots()
            self.settings = settings
            self.policy = retry_policy(settings)
            if settings.run_slots() != slots:
                old, self._pool = self._pool, concurrent.futures.ThreadPoolExecutor(
                    settings.run_slots(), thread_name_prefix="run")
                old.shutdown(wait=False)  # its runs finish; shutdown() waits for them

    # -- one run -------------------------------------------------------------------------
    def _run_batch(self, registry: panels.Registry, parts: list[tuple[list[Job], int]]) -> None:
        """One run of one action: each part is one server's jobs and its forks."""
        action = parts[0][0][0].action
        by_panel: dict[str, list] = collections.defaultdict(list)
        for jobs, forks in parts:
            # This thread's first statement finds out whether its connection was dropped meanwhile.
            server = db.retrying(lambda jobs=jobs: Server.get_by_id(jobs[0].server_id), "starting a run", _NEVER,
                                 give_up_after=self.settings.lease_seconds)
            try:
                panel = registry.get(server.panel)
                panel.require(action)
                credentials = catalog.open_credentials(server.credentials, self.vault, server.name)
                connection_vars(panel, server, credentials)
            except ProvisiondError as exc:
                for job in jobs:
                    self._record_refusal(job, str(exc))
                continue
            by_panel[panel.id].append((panel, server, credentials, jobs, forks))
        for members in by_panel.values():   # one panel, unless a server's panel was edited meanwhile
            if members[0][0].connection == "ssh":
                for member in members:
                    self._run(action, [member])
            else:
                self._run(action, members)

    def _run(self, action: str, members: list) -> None:
        panel = members[0][0]
        role_dirs = render.roles_path(panel, tuple(self.settings.role_dirs()))
        parts, runnable = [], []
        # The run's services and their products in one query, not two for each job.
        services = {service.id: service for service in
                    Service.select(Service, Product).join(Product)
                    .where(Service.id.in_([job.service_id for *_, jobs, _forks in members for job in jobs
                                           if job.service_id]))}
        for _panel, server, credentials, jobs, forks in members:
            accounts = []
            for job in jobs:
                try:
                    accounts.append(self._account(job, role_dirs, services.get(job.service_id)))
                except ProvisiondError as exc:
                    self._record_refusal(job, str(exc))
                    continue
                runnable.append(job)
            parts.append(render.ServerPart(connection_vars(panel, server, credentials), credentials, accounts, forks))
        wanted = {render.host_name(job_id) for job_id in self._still_wanted(runnable)}
        runnable = [job for job in runnable if render.host_name(job.id) in wanted]
        for part in parts:
            part.accounts = [a for a in part.accounts if a.host in wanted]
        parts = [part for part in parts if part.accounts]
        if not runnable:
            return
        names = [server.name for _panel, server, _credentials, jobs, _forks in members
                 if any(render.host_name(job.id) in wanted for job in jobs)]
        label = names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}"
        ident = f"{utcnow():%Y%m%dT%H%M%S}-{label}-{action}-{runnable[0].id}-{uuid.uuid4().hex[:6]}"
        guard = _RunGuard(runnable, self.settings)
        spec = render.build_parts(panel, action, parts, timeout=self.settings.timeout_for(action),
                                  verbosity=self.settings.ansible_verbosity, ident=ident, cancelled=guard,
                                  role_dirs=tuple(self.settings.role_dirs()),
                                  backup_dir=str(self.settings.backup_dir), runs_dir=self.settings.runs_dir)
        spec.strategy, spec.poll_interval = self.settings.ansible_strategy, self.settings.ansible_poll_interval
        result = execute.run(spec)
        servers = ", ".join(names)
        log.info("run on %s: %s of %d job(s), %.1f s, %s", servers, action, len(runnable),
                 result.duration, result.status, extra={"server": servers, "action": action,
                                                         "jobs": len(runnable), "duration": round(result.duration, 3),
                                                         "outcome": result.status})
        kept = artifacts.keep_run(self.settings.artifacts_dir, ident, result)
        for chunk in pw.chunked(runnable, RECORD_CHUNK):
            # A lost connection rolls the chunk back: try again on a new one, for as long as
            # the jobs' leases would have kept them ours.
            statuses = db.retrying(lambda chunk=chunk: self._record_chunk(chunk, result, kept, panel),
                                   f"recording jobs {chunk[0].id}-{chunk[-1].id}", _NEVER,
                                   give_up_after=self.settings.lease_seconds)
            for job in chunk:
                if statuses[job.id] is None:
                    log.warning("job %s was taken over by another worker; its result was not recorded", job.id)
                    continue
                service = services.get(job.service_id)
                _log_outcome(job, statuses[job.id], service.ref if service is not None else None)

    def _still_wanted(self, jobs: list[Job]) -> set[int]:
        """The run guard's first look, before anything runs: a job whose cancel was requested
        since its claim ends cancelled, one that is no longer ours is left to its new owner."""
        state = queue.heartbeat(jobs, utcnow(), self.settings.lease_seconds)
        for job in jobs:
            if not state[job.id]:
                self._record_cancelled(job)
        return {job_id for job_id, go_on in state.items() if go_on}

    def _account(self, job: Job, role_dirs=(), service: Service | None = None) -> render.Account:
        if service is None and job.service_id:
            service = Service.get_by_id(job.service_id)
        secrets = {}
        values = {"job_id": job.id, "action": job.action, "params": job.params, "attempt": job.attempts,
                  "previous_error": job.last_error}
        if service is not None:
            values.update(service_id=service.id, ref=service.ref, domain=service.domain,
                          email=service.email, name=service.name, username=service.username,
                          remote_id=service.remote_id, fields=service.fields or {},
                          package=job.params.get("package", service.package),
                          package_config=variants.package_config(service, job.params),
                          reason=job.params.get("reason"),
                          extra_steps=service.product.extra_roles if job.action == "create" else [],
                          backup_before_terminate=service.product.backup_before_terminate)
            if service.password:
                secrets["password"] = self.vault.decrypt(service.password, f"password of service {service.ref}")
            if values["extra_steps"]:  # made once per service; a retry gets the same ones
                made = step_secrets.for_run(service.id, values["extra_steps"], role_dirs, self.vault)
                if made:
                    secrets["steps"] = made
        if job.secret_params:
            secrets.update(self.vault.decrypt_json(job.secret_params, f"parameters of job {job.id}"))
        return render.Account(render.host_name(job.id), values, secrets)

    # -- recording -------------------------------------------------------------------------
    def _record_refusal(self, job: Job, message: str) -> None:
        """The core refused to run the job (unsupported action, undecryptable secret)."""
        now = utcnow()
        empty = execute.RunResult("error", None, time.time(), 0.0, "", {})
        host = execute.HostResult(render.host_name(job.id), ok=False, message=message)
        try:
            with database.atomic():
                if not queue.fail(job, now, message):
                    raise _NotOwner
                outcomes.ended(job, FAILED, message, settings=self.settings)
                artifacts.record_attempt(job, host, empty, status=FAILED, panel=None, kept=None)
        except _NotOwner:
            return
        _log_outcome(job, JobStatus.FAILED.value)

    def _record_cancelled(self, job: Job) -> None:
        """The job's cancel was requested before its run started: it ends without running."""
        with database.atomic():
            if queue.cancel_running(job, utcnow(), "cancelled before it ran"):
                outcomes.ended(job, CANCELLED, "cancelled before it ran", settings=self.settings)

    def _record_chunk(self, jobs: list[Job], result: execute.RunResult, kept,
                      panel: panels.Panel) -> dict[int, str | None]:
        """Record ``jobs`` in one transaction, each in a savepoint of its own, so a job that is no
        longer ours (``_NotOwner``: None) rolls back alone. Job id → the attempt's log status."""
        statuses: dict[int, str | None] = {}
        with _recording_turn(), database.atomic():
            for job in jobs:
                try:
                    statuses[job.id] = self._record(job, result.host(render.host_name(job.id)), result, kept,
                                                    panel.id, str(panel.path))
                except _NotOwner:
                    statuses[job.id] = None
        return statuses

    def _record(self, job: Job, host: execute.HostResult, result: execute.RunResult, kept, panel_id: str,
                folder: str) -> str:
        now = utcnow()
        with database.atomic():
            status = self._settle(job, host, result, now)
            artifacts.record_attempt(job, host, result, status=status, panel=panel_id, kept=kept, folder=folder)
            for step, problem in host.steps.items():
                artifacts.record_step(job, step, problem, result, panel=panel_id, kept=kept, folder=folder,
                                      events=host.events)
        return status

    def _settle(self, job: Job, host: execute.HostResult, result: execute.RunResult, now) -> str:
        """Move the job on (queue) and its service (outcomes); returns the attempt's log status."""
        status, message = self._end_job(job, host, result, now)
        if status is None:
            raise _NotOwner
        outcomes.ended(job, status, message, settings=self.settings, vault=self.vault, reported=host.stats)
        if status in (SUCCEEDED, CANCELLED, HELD):
            return status
        if result.status == "timeout":
            return "timeout"
        return "retrying" if status == QUEUED else FAILED

    def _end_job(self, job: Job, host: execute.HostResult, result: execute.RunResult,
                 now) -> tuple[str | None, str | None]:
        """The job's new status (None: no longer ours) and the message that goes with it."""
        if host.ok:
            return (SUCCEEDED if queue.finish(job, now) else None), None
        message = host.message or f"run ended {result.status}"
        if result.status == "canceled":
            done = queue.cancel_running(job, now, "cancelled while running: " + message)
            return (CANCELLED if done else None), "cancelled while running"
        if host.stats.get("outcome") == "needs_attention":
            return (HELD if queue.fail(job, now, message, JobStatus.NEEDS_ATTENTION) else None), message
        if host.transient is not None:  # the panel call said itself whether to try again
            kind = FailureKind.TRANSIENT if host.transient else FailureKind.PERMANENT
        else:
            kind = classify(message, timed_out=result.status == "timeout", unreachable=host.unreachable)
        if kind is FailureKind.TRANSIENT and job.attempts < job.max_attempts:
            delay = self.policy.delay(job.attempts, self.rng)
            return queue.retry_later(job, now, message, now + datetime.timedelta(seconds=delay)), message
        return (FAILED if queue.fail(job, now, message) else None), message


class _RunGuard:
    """The run's cancel check: renews leases, and says stop once no job of the run should go on."""

    CHECK_SECONDS = 2.0

    def __init__(self, jobs: list[Job], settings: Settings):
        self.jobs = jobs
        self.settings = settings
        self.last_check = float("-inf")  # the first call, as the run starts, looks at once
        self.last_renewal = time.monotonic()
        self.stop = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last_check < self.CHECK_SECONDS:
            return self.stop
        self.last_check = now
        renew = now - self.last_renewal >= self.settings.heartbeat_seconds
        lease = self.settings.lease_seconds if renew else 0.0
        if renew:
            self.last_renewal = now
        try:
            state = queue.heartbeat(self.jobs, utcnow(), lease, renew=renew)
        except pw.PeeweeException as exc:
            if not db.connection_lost(exc):
                raise
            # The run goes on; the next check, on a new connection, renews the leases.
            log.warning("leases of jobs %s not renewed: lost the database connection (%s)",
                        [j.id for j in self.jobs], db.first_line(exc))
            if renew:
                self.last_renewal = 0.0  # renew at the next check
            return self.stop
        self.stop = not any(state.values())
        return self.stop


def _recording_turn():
    """On SQLite, the process's runs take turns to record on a lock of their own. SQLite has one
    writer, and a connection that finds the database busy sleeps in growing steps of up to
    100 ms before it looks again (``sqliteDefaultBusyCallback``), often long after the writer is
    done. PostgreSQL records runs side by side."""
    return contextlib.nullcontext() if db.is_postgres() else _SQLITE_WRITER


def _log_outcome(job: Job, status: str, ref: str | None = None) -> None:
    """One INFO line per job outcome: job, ref, action, status and, when it will be tried
    again, the next attempt. An outcome that ends the job, with its service's ref known, is
    logged without reading the job back (a run records hundreds at once)."""
    row = {"ref": ref}
    if ref is None or status not in (SUCCEEDED, FAILED, CANCELLED, HELD):
        try:
            row = (Job.select(Job.status, Job.run_after, Service.ref)
                   .join(Service, pw.JOIN.LEFT_OUTER, on=(Job.service == Service.id))
                   .where(Job.id == job.id).dicts().first()) or {}
        except pw.PeeweeException:
            row = {"ref": ref}  # the outcome is recorded; only this line goes without details
    ref = row.get("ref")
    next_attempt = row["run_after"] if row.get("status") == JobStatus.QUEUED.value else None
    log.info("job %s (ref %s): %s %s%s", job.id, ref or "-", job.action, status,
             f", next attempt at {next_attempt:%Y-%m-%d %H:%M:%S} UTC" if next_attempt else "",
             extra={"job": job.id, "ref": ref, "action": job.action, "status": status,
                    "next_attempt": next_attempt.isoformat() if next_attempt else None})


def test_server(settings: Settings, vault: Vault, registry: panels.Registry, server: Server) -> dict:
    """Run the panel's test_connection playbook now and record the server's health."""
    panel = registry.get(server.panel)
    panel.require("test_connection")
    credentials = catalog.open_credentials(server.credentials, vault, server.name)
    if panel.connection == "ssh" and not server.host_key:
        catalog.pin_host_key(panel, server)
    outcome = run_test_connection(settings, panel, server, credentials)
    Server.update(health=outcome["health"], health_message=None if outcome["health"] == "ok" else outcome["message"],
                  health_checked_at=utcnow()).where(Server.id == server.id).execute()
    return outcome


def run_test_connection(settings: Settings, panel: panels.Panel, server: Server, credentials: dict) -> dict:
    """One test_connection run against ``server`` (saved or not: nothing is written) with the
    credentials in clear; its outcome as ``server test`` shows it."""
    host = "server_test"
    ident = f"{utcnow():%Y%m%dT%H%M%S}-{server.name}-test_connection-{uuid.uuid4().hex[:6]}"
    spec = render.build(panel, "test_connection",
                        connection_vars(panel, server, credentials), credentials,
                        [render.Account(host, {"server": server.name}, {})],
                        timeout=settings.timeout_default, forks=1, ident=ident, runs_dir=settings.runs_dir)
    result = execute.run(spec)
    outcome = result.host(host)
    return {"server": server.name, "health": "ok" if outcome.ok else "failed", "message": outcome.message,
            "failed_task": outcome.failed_task, "reported": outcome.stats,
            "duration": round(result.duration, 3)}


def connection_vars(panel: panels.Panel, server: Server, credentials: dict) -> dict:
    """The run's ``panel`` variable; an SSH panel needs its host key pinned first."""
    if panel.connection == "ssh" and not server.host_key:
        raise ProvisiondError(f"server {server.name}: its SSH host key is not pinned yet; "
                              f"run `provisiond server test {server.name}`")
    return render.server_vars(panel, server.host, server.port, credentials, server.host_key)
