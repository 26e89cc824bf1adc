"""/metrics for Prometheus, read from the database; /docs that opens without internet."""

from __future__ import annotations

import calendar
import re

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from provisiond import api, health, lifecycle
from provisiond.models import Job, ProvisioningLog, ServerSync, utcnow
from tests.helpers import settle


def _scrape(client: TestClient) -> dict[str, list]:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(answer.text)}


def _value(samples, name: str, **labels) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def test_metrics_count_jobs_attempts_failures_and_daemons_from_the_database(
        cpanel_setup, settings, vault, registry, worker, whm):
    whm.fail_next(1, status=503)
    _, job = lifecycle.order(registry, vault, product="starter", domain="metrics.example.com",
                             email="me@metrics.example.com")
    assert settle(worker, job).status == "queued"  # a 503: retried after its backoff
    Job.update(run_after=utcnow()).where(Job.id == job.id).execute()  # the backoff is over
    assert settle(worker, job).status == "succeeded"
    _, queued = lifecycle.order(registry, vault, product="starter", domain="waits.example.com",
                                email="me@waits.example.com")
    health.register("daemon-a", utcnow())
    health.beat("daemon-a", utcnow())

    with TestClient(api.create_app(settings, vault)) as client:
        metrics = _scrape(client)  # no token needed, like /v1/health

    jobs = metrics["provisiond_jobs"]
    assert _value(jobs, "provisiond_jobs", status="succeeded") == 1
    assert _value(jobs, "provisiond_jobs", status="queued") == 1
    assert _value(metrics["provisiond_queue_oldest_age_seconds"], "provisiond_queue_oldest_age_seconds") >= 0
    durations = metrics["provisiond_attempt_duration_seconds"]
    attempts = ProvisioningLog.select().where(ProvisioningLog.action == "create").count()
    assert attempts == 2
    assert _value(durations, "provisiond_attempt_duration_seconds_count", panel="cpanel", action="create") == attempts
    assert _value(durations, "provisiond_attempt_duration_seconds_bucket", panel="cpanel", action="create",
                  le="+Inf") == attempts
    total = sum(r.duration for r in ProvisioningLog.select())
    assert abs(_value(durations, "provisiond_attempt_duration_seconds_sum", panel="cpanel", action="create")
               - total) < 1e-6
    failures = metrics["provisiond_attempt_failures"]
    assert _value(failures, "provisiond_attempt_failures_total", panel="cpanel", action="create",
                  kind="transient") == 1
    assert _value(metrics["provisiond_daemon_up"], "provisiond_daemon_up", owner="daemon-a") == 1
    assert queued.status == "queued"


def test_docs_open_without_any_address_outside_the_api(cpanel_setup, settings, vault):
    with TestClient(api.create_app(settings, vault)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
        assert "https://" not in page.text and "http://" not in page.text
        for source in sources:
            assert client.get(source).status_code == 200, source
        assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN


def test_metrics_give_each_servers_last_sync_and_its_drift(cpanel_setup, settings, vault):
    server, _ = cpanel_setup
    with TestClient(api.create_app(settings, vault)) as client:
        assert _scrape(client).get("provisiond_sync_drift", []) == []   # no server synced yet
        checked = utcnow().replace(microsecond=0)
        ServerSync.create(server=server, checked_at=checked, panel_accounts=4, services=3, orphans=1, missing=0,
                          state_drift=2, package_drift=0, identity_drift=0, fingerprint="f", report={})
        metrics = _scrape(client)
    drift = metrics["provisiond_sync_drift"]
    assert _value(drift, "provisiond_sync_drift", server="whm1", kind="orphans") == 1
    assert _value(drift, "provisiond_sync_drift", server="whm1", kind="state_drift") == 2
    assert _value(drift, "provisiond_sync_drift", server="whm1", kind="missing") == 0
    assert _value(metrics["provisiond_sync_last_timestamp_seconds"], "provisiond_sync_last_timestamp_seconds",
                  server="whm1") == calendar.timegm(checked.timetuple())
