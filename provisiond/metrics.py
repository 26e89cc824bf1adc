"""Prometheus metrics, read from the database at each scrape (``GET /metrics``).

Every number comes from the shared database, not from one process's memory, so any API process
answers for the whole fleet and a restart loses nothing. The attempt histogram and the failure
counts are cumulative over the provisioning log (they fall only when old rows are pruned).

- ``provisiond_jobs{status}``: jobs by status.
- ``provisiond_queue_oldest_age_seconds``: age of the oldest queued job (0 when none).
- ``provisiond_attempt_duration_seconds{panel,action}``: histogram of attempts' run time.
- ``provisiond_attempt_failures_total{panel,action,kind}``: failed attempts; ``kind`` is
  ``transient`` (retried, timed out), ``permanent`` (failed) or ``needs_attention``.
- ``provisiond_daemon_last_tick_timestamp_seconds{owner,host}`` and ``provisiond_daemon_up``.
- ``provisiond_sweep_last_day_timestamp_seconds``: the last overdue sweep's day.
- ``provisiond_sync_last_timestamp_seconds{server}`` and ``provisiond_sync_drift{server,kind}``:
  when each server was last synced and what that sync found (``kind``: orphans, missing,
  state_drift, package_drift, identity_drift), so an alert can fire on drift or a stale sync.
"""

from __future__ import annotations

import calendar
import datetime

import peewee as pw
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from provisiond import health, sweep, sync
from provisiond.config import Settings
from provisiond.models import Daemon, ProvisioningLog, Server, ServerSync, utcnow

BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
FAILURE_KINDS = {"retrying": "transient", "timeout": "transient", "failed": "permanent",
                 "needs_attention": "needs_attention"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _epoch(moment: datetime.datetime) -> float:
    return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6


class DatabaseCollector:
    """A prometheus_client collector whose ``collect`` queries the database."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self):
        now = utcnow()
        jobs = GaugeMetricFamily("provisiond_jobs", "Jobs by status.", labels=["status"])
        for status, count in health.queue_depth().items():
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily("provisiond_queue_oldest_age_seconds",
                                "Seconds since the oldest queued job was enqueued (0: none queued).",
                                value=health.oldest_queued_age(now) or 0.0)
        yield self._durations()
        yield self._failures()
        yield from self._daemons(now)
        last = sweep.last_day()
        if last is not None:
            yield GaugeMetricFamily("provisiond_sweep_last_day_timestamp_seconds",
                                    "The day of the last overdue sweep (midnight UTC).",
                                    value=calendar.timegm(last.timetuple()))
        yield from self._syncs()

    def _durations(self) -> HistogramMetricFamily:
        log = ProvisioningLog
        le = [pw.fn.SUM(pw.Case(None, [(log.duration <= bound, 1)], 0)) for bound in BUCKETS]
        rows = (log.select(log.panel, log.action, pw.fn.COUNT(log.id), pw.fn.SUM(log.duration), *le)
                .where(log.panel.is_null(False)).group_by(log.panel, log.action).tuples())
        family = HistogramMetricFamily("provisiond_attempt_duration_seconds",
                                       "Run time of provisioning attempts.", labels=["panel", "action"])
        for panel, action, count, total, *cumulative in rows:
            buckets = [(str(bound), int(n or 0)) for bound, n in zip(BUCKETS, cumulative)]
            family.add_metric([panel, action], buckets + [("+Inf", count)], float(total or 0.0))
        return family

    def _failures(self) -> CounterMetricFamily:
        log = ProvisioningLog
        rows = (log.select(log.panel, log.action, log.status, pw.fn.COUNT(log.id))
                .where(log.status.in_(list(FAILURE_KINDS))).group_by(log.panel, log.action, log.status).tuples())
        counts: dict[tuple[str, str, str], int] = {}
        for panel, action, status, n in rows:
            key = (panel or "", action, FAILURE_KINDS[status])
            counts[key] = counts.get(key, 0) + n
        family = CounterMetricFamily("provisiond_attempt_failures", "Failed provisioning attempts.",
                                     labels=["panel", "action", "kind"])
        for labels, n in sorted(counts.items()):
            family.add_metric(list(labels), n)
        return family

    def _daemons(self, now: datetime.datetime):
        ticks = GaugeMetricFamily("provisiond_daemon_last_tick_timestamp_seconds",
                                  "When each daemon last ticked.", labels=["owner", "host"])
        up = GaugeMetricFamily("provisiond_daemon_up", "1 while a daemon ticks on time, else 0.",
                               labels=["owner", "host"])
        for daemon in Daemon.select().where(Daemon.stopped_at.is_null()):
            if daemon.last_tick_at is not None:
                ticks.add_metric([daemon.owner, daemon.host], _epoch(daemon.last_tick_at))
            up.add_metric([daemon.owner, daemon.host],
                          1.0 if health.daemon_state(daemon, self.settings, now) == "running" else 0.0)
        yield ticks
        yield up


    def _syncs(self):
        checked = GaugeMetricFamily("provisiond_sync_last_timestamp_seconds",
                                    "When each server's accounts were last compared with provisiond's.",
                                    labels=["server"])
        drift = GaugeMetricFamily("provisiond_sync_drift", "What each server's last sync found, by kind.",
                                  labels=["server", "kind"])
        columns = [getattr(ServerSync, kind) for kind in sync.DRIFT_KINDS]
        rows = (ServerSync.select(Server.name, ServerSync.checked_at, *columns).join(Server)
                .order_by(Server.name).tuples())
        for name, checked_at, *counts in rows:
            checked.add_metric([name], _epoch(checked_at))
            for kind, n in zip(sync.DRIFT_KINDS, counts):
                drift.add_metric([name, kind], n)
        yield checked
        yield drift


def render(settings: Settings) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(settings))
    return generate_latest(registry)
