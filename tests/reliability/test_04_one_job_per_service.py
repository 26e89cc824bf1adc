"""Guarantee 4: one mutating job per service at a time, identical pending requests merged.

Eight threads fire the same requests for the same three services at once (suspend, then
change_package, then change_password): each wave leaves exactly one job per service, and every
thread got that job back. Then two daemon processes work the queue while the test polls the job
rows: never two running jobs for one service, and each service's jobs run in request order.
The database itself refuses a second running job of a service. Six billing systems ordering
one ref at once get one service and one create job, every answer a 200 or 201.
"""

from __future__ import annotations

import collections
import threading

import peewee as pw
import pytest

from fastapi.testclient import TestClient

from provisiond import api, lifecycle, queue, tokens
from provisiond.models import Job, Service, database as proxy, utcnow
from provisiond.worker import Worker
from tests.reliability.conftest import wait_for

THREADS = 8
WAVES = [("suspend", {"reason": "overdue"}), ("change_package", {"package": "pro"}),
         ("change_password", {})]


def active_services(registry, vault, settings, n: int) -> list[Service]:
    orders = [lifecycle.order(registry, vault, product="starter", domain=f"one{i}.example.com",
                              email=f"o@one{i}.example.com")[0] for i in range(n)]
    worker = Worker(settings, vault, owner="setup")
    try:
        worker.tick(wait=True)  # one run creates them all
    finally:
        worker.shutdown()
    services = [Service.get_by_id(s.id) for s in orders]
    assert {s.status for s in services} == {"active"}
    return services


def concurrently(calls) -> list:
    """Run the calls in threads released together; returns results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            results[index] = exc
        finally:
            proxy.obj.close()  # each thread's own connection

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_identical_requests_merge_and_run_one_at_a_time(shop, registry, vault, settings, whm,
                                                                     daemons):
    services = active_services(registry, vault, settings, 3)
    for action, kwargs in WAVES:
        calls = [lambda s=s: lifecycle.request(registry, vault, s.ref, action, **kwargs)
                 for s in services for _ in range(THREADS)]
        results = concurrently(calls)
        errors = [r for r in results if isinstance(r, Exception)]
        assert errors == [], errors[:3]
        for i, service in enumerate(services):
            got = {job.id for job in results[i * THREADS:(i + 1) * THREADS]}
            in_db = [j.id for j in Job.select().where((Job.service == service) & (Job.action == action))]
            assert len(got) == 1 and list(got) == in_db, (action, service.ref, got, in_db)
    assert Job.select().where(Job.status == "queued").count() == 3 * len(WAVES)

    for _ in range(2):
        daemons(max_runs=2, per_server_runs=2, batch_size=20)
    peak = collections.Counter()

    def all_done() -> bool:
        running = (Job.select(Job.service, pw.fn.COUNT(Job.id).alias("n"))
                   .where(Job.status == "running").group_by(Job.service).tuples())
        for service_id, n in running:
            peak[service_id] = max(peak[service_id], n)
        return Job.select().where(Job.status.in_(("queued", "running"))).count() == 0

    assert wait_for(all_done, 120, interval=0.02), list(Job.select(Job.id, Job.status).tuples())
    assert peak and max(peak.values()) == 1
    assert {j.status for j in Job.select()} == {"succeeded"}, [  # why, when one did not
        (j.id, j.action, j.status, j.attempts, j.last_error) for j in Job.select() if j.status != "succeeded"]
    for service in services:
        jobs = list(Job.select().where(Job.service == service).order_by(Job.id))
        assert [j.action for j in jobs] == ["create"] + [a for a, _ in WAVES]
        assert [j.finished_at for j in jobs] == sorted(j.finished_at for j in jobs)  # in request order
        account = whm.accounts[service.username]
        assert account.suspended and account.plan == "pro"
        assert account.password == vault.decrypt(Service.get_by_id(service.id).password)


def test_the_database_refuses_a_second_running_job_of_a_service(shop, registry, vault, database):
    service, create = lifecycle.order(registry, vault, product="starter", domain="uniq.example.com",
                                      email="o@uniq.example.com")
    [running] = queue.claim("w1", utcnow(), 5, 60)
    assert running.id == create.id
    Service.update(status="active").where(Service.id == service.id).execute()
    second = lifecycle.request(registry, vault, service.ref, "suspend")
    assert queue.claim("w2", utcnow(), 5, 60) == []  # it waits behind the running create
    with pytest.raises(pw.IntegrityError):
        with database.atomic():
            Job.update(status="running").where(Job.id == second.id).execute()


def test_parallel_identical_orders_give_one_service_and_no_500(shop, settings, vault):
    token = tokens.create("billing")
    order = {"product": "starter", "domain": "race.example.com", "email": "o@race.example.com",
             "ref": "INV-RACE"}
    with TestClient(api.create_app(settings, vault), raise_server_exceptions=False) as client:
        def post(body=order):
            return client.post("/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"})
        answers = concurrently([post] * 6)
        assert [getattr(a, "status_code", a) for a in answers].count(201) == 1, answers
        assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
        assert len({a.json()["service"]["id"] for a in answers}) == 1
        conflicting = post(order | {"domain": "other.example.com"})
        assert conflicting.status_code == 409 and "domain" in conflicting.json()["detail"]
    assert Service.select().count() == 1 and Job.select().count() == 1
