"""The daemon: an APScheduler scheduler that ticks the worker, woken early when work arrives.

Jobs on the scheduler: ``tick`` every ``tick_seconds`` (120 by default; ``max_instances=1``,
``coalesce``; sooner when a waiting retry falls due before then), the reaper, the overdue sweep
(cron), the daily sync of every server (``sync_cron``) and usage collection (``usage_cron``),
each once across the daemons like the sweep, and artifact pruning. Every enqueue wakes the
daemons at commit, which brings the next tick forward: on PostgreSQL by NOTIFY (a listener
thread idles in select()), on SQLite by touching a file beside the database that the daemon
stats every ``wake_check_seconds``. A wake-up that arrives while a tick runs is not lost to
``max_instances=1``: the tick runs once more before it returns, and one that meets a tick just
ending is tried again a moment later. SIGTERM and SIGINT stop the scheduler, let running
playbooks finish and record, then exit; SIGHUP reads the settings again (``reload``).

Each tick records the daemon's heartbeat (``health``). Every part that uses the database (tick,
reaper, sweep, notifier, the runs, the wake-up listener) outlives a lost PostgreSQL connection:
it waits, 0.5 s doubling up to 30 s, and carries on with a new one (``db.retrying``).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import select
import signal
import socket
import threading
from pathlib import Path
from typing import Callable

import peewee as pw
from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from provisiond import artifacts, db, health, notify, orphans, outcomes, panels, queue, sweep, sync, usage
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import ProvisiondError
from provisiond.models import utcnow
from provisiond.worker import Worker, retry_policy

log = logging.getLogger("provisiond.daemon")


def wake(settings: Settings | None = None) -> None:
    """Wake running daemons now (enqueues already do this themselves, at commit)."""
    db.announce_work()


def _stamp(path: Path | None) -> int:
    try:
        return os.stat(path).st_mtime_ns if path else 0
    except FileNotFoundError:
        return 0


def _listen(url: str, stopping: threading.Event, on_wake) -> None:
    """PostgreSQL: LISTEN for enqueue notifications; a dedicated connection, idle in select().

    A lost connection is opened again with a growing delay; once it is back, the tick is
    brought forward, since enqueues announced meanwhile were not heard.
    """
    import psycopg2
    import psycopg2.extensions
    delay = db.RECONNECT_FIRST
    while not stopping.is_set():
        conn = None
        try:
            conn = psycopg2.connect(url, connect_timeout=10)
            conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            conn.cursor().execute(f"LISTEN {db.WAKE_CHANNEL}")
            if delay > db.RECONNECT_FIRST:
                log.info("the PostgreSQL wake-up connection is back")
                on_wake()
            delay = db.RECONNECT_FIRST
            while not stopping.is_set():
                if select.select([conn], [], [], 1.0)[0]:
                    conn.poll()
                    if conn.notifies:
                        conn.notifies.clear()
                        on_wake()
        except psycopg2.Error as exc:
            log.warning("lost the PostgreSQL wake-up connection (%s); trying again in %.1f s",
                        db.first_line(exc), delay)
            stopping.wait(delay)
            delay = min(db.RECONNECT_MAX, delay * 2)
        finally:
            if conn is not None:
                conn.close()


class Daemon:
    def __init__(self, settings: Settings, vault: Vault, owner: str | None = None,
                 reload_settings: Callable[[], Settings] | None = None):
        self.settings = settings
        self.worker = Worker(settings, vault, owner)
        self.reload_settings = reload_settings  # SIGHUP reads the settings again through it
        self.on_reload: list[Callable[[Settings], None]] = []  # told the new settings (`run --api`)
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(job_defaults={
            "max_instances": 1, "coalesce": True, "misfire_grace_time": 60})
        self._wake_file = db.wake_file()
        self._wake_stamp = _stamp(self._wake_file)
        self._woken = threading.Event()
        self._ticking = False
        self._reload_requested = threading.Event()
        self._previous_sighup = None

    def _guarded(self, what: str, work: Callable[[], object]) -> Callable[[], object]:
        """``work`` as a scheduler job that outlives a lost database connection: it waits,
        with a growing delay, and does the work again on a new connection."""
        return lambda: db.retrying(work, what, self.stopping)

    def tick(self) -> None:
        """The worker's tick, repeated while work was announced during it."""
        self._ticking = True
        try:
            while not self.stopping.is_set():
                self._woken.clear()
                db.retrying(self._tick_once, "tick", self.stopping)
                if not self._woken.is_set():
                    break
        finally:
            self._ticking = False
        if not self.stopping.is_set():
            db.retrying(self._tick_at_next_retry, "tick", self.stopping)

    def _tick_at_next_retry(self) -> None:
        """Bring the next tick forward to the moment a waiting retry becomes due: a retry
        30 s out runs then, not at the next ``tick_seconds`` interval."""
        due = queue.next_wakeup(utcnow())
        tick = self.scheduler.get_job("tick")
        if due is None or tick is None:
            return
        due = due.replace(tzinfo=datetime.timezone.utc)
        if tick.next_run_time is None or due < tick.next_run_time:
            self.scheduler.modify_job("tick", next_run_time=due)

    def _tick_once(self) -> None:
        self.worker.tick(utcnow())
        health.beat(self.worker.owner, utcnow())

    def _check_wake(self) -> None:
        stamp = _stamp(self._wake_file)
        if stamp != self._wake_stamp:
            self._wake_stamp = stamp
            self.bring_tick_forward()

    def bring_tick_forward(self) -> None:
        self._woken.set()
        if not self.stopping.is_set() and not self._ticking:  # a running tick goes round again
            self.scheduler.modify_job("tick", next_run_time=utcnow_local())

    def _tick_skipped(self, event) -> None:
        """A wake-up met a tick that was just ending (max_instances): try again a moment later."""
        if event.job_id == "tick" and self._woken.is_set() and not self.stopping.is_set():
            self.scheduler.modify_job("tick", next_run_time=utcnow_local() + datetime.timedelta(seconds=0.05))

    def start(self) -> None:
        clean_up_after_dead_runs(self.settings)
        health.register(self.worker.owner, utcnow())
        self.scheduler.add_job(self.tick, "interval", seconds=self.settings.tick_seconds, id="tick",
                               next_run_time=utcnow_local())
        if db.is_postgres():
            threading.Thread(target=_listen, args=(self.settings.database_url, self.stopping,
                                                   self.bring_tick_forward),
                             name="wake-listener", daemon=True).start()
        else:
            self.scheduler.add_job(self._check_wake, "interval", seconds=self.settings.wake_check_seconds,
                                   id="wake")
        self.scheduler.add_job(self._guarded("reaper", self.reap), "interval",
                               seconds=self.settings.reaper_seconds, id="reaper")
        self.scheduler.add_job(self._guarded("sweep", self.sweep), CronTrigger.from_crontab(self.settings.sweep_cron),
                               id="sweep")
        self.scheduler.add_job(self._guarded("sync", self.sync), CronTrigger.from_crontab(self.settings.sync_cron),
                               id="sync")
        self.scheduler.add_job(self._guarded("usage", self.collect_usage),
                               CronTrigger.from_crontab(self.settings.usage_cron), id="usage")
        self.scheduler.add_job(self.prune, "interval", hours=6, id="prune", next_run_time=utcnow_local())
        self.scheduler.add_job(self._guarded("notifier", self.deliver), "interval",
                               seconds=self.settings.notify_seconds, id="notify")
        self.worker.on_run_finished = self.bring_tick_forward
        self.scheduler.add_listener(self._tick_skipped, EVENT_JOB_MAX_INSTANCES)
        if sweep_missed(self.settings, datetime.datetime.now().astimezone()):
            self.scheduler.add_job(self._guarded("sweep", self.sweep), id="sweep-catch-up")
        self._watch_reload()
        self.scheduler.start()
        log.info("provisiond running as %s; ticking every %ss", self.worker.owner, self.settings.tick_seconds)

    def reap(self) -> None:
        reaped = outcomes.reap(self.settings)
        if reaped:
            log.warning("jobs whose worker stopped renewing its lease were reaped: %s", reaped)
            self.bring_tick_forward()

    def sweep(self) -> None:
        """Today's overdue sweep, once across every daemon sharing the database."""
        today = datetime.date.today()
        if sweep.last_day() == today:
            return
        result = run_sweep(self.settings, today, claim=True)  # marks the day done only when complete
        if not result.claimed and not result.failed:
            return  # another daemon swept today
        log.info("overdue sweep %s: %d decisions, %d jobs enqueued", today, len(result.decisions), result.enqueued)
        if result.enqueued:
            self.bring_tick_forward()

    def sync(self) -> None:
        """Today's sync of every enabled server, once across every daemon sharing the database."""
        outcomes = run_sync(self.settings, self.worker.vault, datetime.date.today())
        if outcomes is not None:
            log.info("daily sync: %s", ", ".join(f"{name} {what}" for name, what in outcomes.items()) or "no server")

    def collect_usage(self) -> None:
        """Today's usage collection, once across every daemon sharing the database."""
        if not usage.claim_day(datetime.date.today()):
            return  # another daemon collected today
        results = usage.collect_all(self.settings, self.worker.vault, panels.discover(self.settings.panel_dirs()))
        failed = [r.server for r in results if not r.ok]
        log.info("usage collected from %d servers%s", len(results) - len(failed),
                 f"; not from {', '.join(failed)}" if failed else "")

    def deliver(self) -> None:
        """Send what is due in the notification outbox."""
        notify.deliver(self.settings, self.worker.vault, utcnow())

    def prune(self) -> None:
        prune_artifacts(self.settings)

    # -- reloading the settings (SIGHUP) -------------------------------------------------
    def _watch_reload(self) -> None:
        """SIGHUP asks for a reload; a thread of its own does it, outside the signal handler."""
        if threading.current_thread() is threading.main_thread():
            self._previous_sighup = signal.signal(signal.SIGHUP, lambda *_: self._reload_requested.set())
        threading.Thread(target=self._reload_loop, name="reload", daemon=True).start()

    def _reload_loop(self) -> None:
        while not self.stopping.is_set():
            if self._reload_requested.wait(1.0):
                self._reload_requested.clear()
                self.reload()

    def reload(self) -> None:
        """Read the settings again: playbooks_path, limits and notification settings apply
        from the next tick; running playbooks go on untouched. A bad file changes nothing."""
        if self.reload_settings is None:
            log.warning("reload asked for, but this daemon has no settings source; nothing changed")
            return
        try:
            new = self.reload_settings()
        except ProvisiondError as exc:
            log.error("settings not reloaded, the current ones stay: %s", exc)
            return
        if new.database_url != self.settings.database_url:
            log.warning("reload: a new database_url takes a restart; still using the current database")
            new = dataclasses.replace(new, database_url=self.settings.database_url)
        old, self.settings = self.settings, new
        self.worker.reconfigure(new)
        self._reschedule(old, new)
        for hook in self.on_reload:
            hook(new)
        log.info("settings reloaded; panels are searched in %s",
                 ", ".join(str(p) for p in new.panel_dirs()))

    def _reschedule(self, old: Settings, new: Settings) -> None:
        for job_id, name in (("tick", "tick_seconds"), ("reaper", "reaper_seconds"),
                             ("notify", "notify_seconds"), ("wake", "wake_check_seconds")):
            if getattr(old, name) != getattr(new, name) and self.scheduler.get_job(job_id):
                self.scheduler.reschedule_job(job_id, trigger="interval", seconds=getattr(new, name))
        if old.sweep_cron != new.sweep_cron:
            self.scheduler.reschedule_job("sweep", trigger=CronTrigger.from_crontab(new.sweep_cron))
        if old.sync_cron != new.sync_cron:
            self.scheduler.reschedule_job("sync", trigger=CronTrigger.from_crontab(new.sync_cron))
        if old.usage_cron != new.usage_cron and self.scheduler.get_job("usage"):
            self.scheduler.reschedule_job("usage", trigger=CronTrigger.from_crontab(new.usage_cron))

    # -- stopping --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop ticking, let running playbooks finish and be recorded."""
        self.stopping.set()
        self.scheduler.shutdown(wait=True)
        self.worker.shutdown()
        if self._previous_sighup is not None:
            signal.signal(signal.SIGHUP, self._previous_sighup)
        try:
            health.stopped(self.worker.owner, utcnow())
        except pw.PeeweeException as exc:
            log.warning("could not record the stop: %s", exc)
        log.info("provisiond stopped")

    def serve_forever(self) -> None:
        def on_signal(signum, _frame):
            log.info("signal %s: finishing the current runs, then stopping", signum)
            self.stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self.stopping.wait(1.0):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def clean_up_after_dead_runs(settings: Settings) -> None:
    """Before anything is claimed or reaped: kill the runs whose provisiond died (SIGKILL, a
    crash, a reboot) and remove their run dirs, secrets included. See ``orphans``."""
    killed, removed = orphans.reap(settings.runs_dir)
    if killed or removed:
        log.warning("cleaned up after a provisiond that died: %d run process(es) killed, "
                    "%d run dir(s) removed", len(killed), len(removed))


def utcnow_local() -> datetime.datetime:
    """APScheduler wants an aware datetime for 'now'."""
    return datetime.datetime.now(datetime.timezone.utc)


def run_sweep(settings: Settings, today: datetime.date, dry_run: bool = False,
              claim: bool = False) -> sweep.SweepResult:
    policy = retry_policy(settings)
    return sweep.run(today, dry_run=dry_run, default_suspend=settings.suspend_after_days,
                     default_terminate=settings.terminate_after_days,
                     max_attempts={a: policy.attempts_for(a) for a in ("suspend", "terminate")},
                     claim=claim, settings=settings)


def run_sync(settings: Settings, vault: Vault, today: datetime.date) -> dict[str, str] | None:
    """The daily sync of every enabled server, by the one daemon that claims ``today`` (None
    for the others); server -> same, changed or why it failed."""
    if not sync.claim_day(today):
        return None
    return sync.sync_all(settings, vault, panels.discover(settings.panel_dirs()), utcnow())


def sweep_missed(settings: Settings, now: datetime.datetime) -> bool:
    """True when the sweep's last scheduled time has passed without a sweep that day."""
    trigger = CronTrigger.from_crontab(settings.sweep_cron, timezone=now.tzinfo)
    previous, probe = None, now - datetime.timedelta(days=8)
    while True:
        fire = trigger.get_next_fire_time(previous, probe)
        if fire is None or fire > now:
            break
        previous, probe = fire, fire + datetime.timedelta(seconds=1)
    if previous is None:
        return False
    done = sweep.last_day()
    return done is None or done < previous.date()


def prune_artifacts(settings: Settings) -> int:
    """Remove kept run folders older than ``artifacts_keep_days``; returns how many went."""
    removed = artifacts.prune(settings.artifacts_dir, settings.artifacts_keep_days)
    if removed:
        log.info("removed %d kept run folders older than %s days", removed, settings.artifacts_keep_days)
    return removed


def run_once(settings: Settings, vault: Vault) -> dict[str, int]:
    """All a cron job needs: one tick (waiting for its runs), then the notification outbox is
    sent and old run folders are pruned. Returns how many runs, notifications and folders."""
    clean_up_after_dead_runs(settings)
    beating = f"{socket.gethostname()}:run --once"  # one heartbeat row per host, not per cron run
    health.register(beating, utcnow())
    worker = Worker(settings, vault)
    try:
        runs = len(worker.tick(utcnow(), wait=True))
    finally:
        worker.shutdown()
    health.beat(beating, utcnow())
    sent = notify.deliver(settings, vault, utcnow())
    health.stopped(beating, utcnow())
    return {"runs": runs, "notifications": sent, "pruned": prune_artifacts(settings)}
