"""The daemon: an APScheduler scheduler that ticks the worker, woken early when work arrives.

Jobs on the scheduler: ``tick`` every ``tick_seconds`` (120 by default; ``max_instances=1``,
``coalesce``), and ``wake`` every ``wake_check_seconds``, a cheap stat of the wake file that
enqueuers touch, which brings the next tick forward. SIGTERM and SIGINT stop the scheduler, let
running playbooks finish and record, then exit.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import threading
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.models import utcnow
from provisiond.worker import Worker

log = logging.getLogger("provisiond.daemon")


def wake(settings: Settings) -> None:
    """Tell a running daemon that work is waiting (called after every enqueue)."""
    path = settings.wake_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _stamp(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


class Daemon:
    def __init__(self, settings: Settings, vault: Vault, owner: str | None = None):
        self.settings = settings
        self.worker = Worker(settings, vault, owner)
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(job_defaults={
            "max_instances": 1, "coalesce": True, "misfire_grace_time": 60})
        self._wake_stamp = _stamp(settings.wake_file)

    def tick(self) -> None:
        if not self.stopping.is_set():
            self.worker.tick(utcnow())

    def _check_wake(self) -> None:
        stamp = _stamp(self.settings.wake_file)
        if stamp != self._wake_stamp:
            self._wake_stamp = stamp
            self.bring_tick_forward()

    def bring_tick_forward(self) -> None:
        if not self.stopping.is_set():
            self.scheduler.modify_job("tick", next_run_time=utcnow_local())

    def start(self) -> None:
        self.scheduler.add_job(self.tick, "interval", seconds=self.settings.tick_seconds, id="tick",
                               next_run_time=utcnow_local())
        self.scheduler.add_job(self._check_wake, "interval", seconds=self.settings.wake_check_seconds,
                               id="wake")
        self.worker.on_run_finished = self.bring_tick_forward
        self.scheduler.start()
        log.info("provisiond running as %s; ticking every %ss", self.worker.owner, self.settings.tick_seconds)

    def stop(self) -> None:
        """Stop ticking, let running playbooks finish and be recorded."""
        self.stopping.set()
        self.scheduler.shutdown(wait=True)
        self.worker.shutdown()
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


def utcnow_local() -> datetime.datetime:
    """APScheduler wants an aware datetime for 'now'."""
    return datetime.datetime.now(datetime.timezone.utc)


def run_once(settings: Settings, vault: Vault) -> int:
    """One tick; waits for its runs. Returns how many runs it started."""
    worker = Worker(settings, vault)
    try:
        return len(worker.tick(utcnow(), wait=True))
    finally:
        worker.shutdown()
