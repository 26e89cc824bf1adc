"""Guarantee 5: ambiguous outcomes are reconciled, not blindly retried.

The WHM simulator SIGKILLs the daemon the moment it has stored a new account, before its
answer leaves: the panel did the work, provisiond recorded nothing. After the lease a second
daemon reads the panel first, finds the account with the service's domain and completes the
create: one account, one createacct, the job succeeded. A terminate interrupted the same way
meets an account whose domain is not the service's and deletes nothing: needs_attention.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from provisiond import lifecycle, queue
from provisiond.models import Job, ProvisioningLog, Service, utcnow
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN
from tests.reliability.conftest import run_processes, wait_for


class KillingWhm(WhmSimulator):
    """Kills ``victim`` (a pid) right after a createacct succeeded, before answering it."""

    victim: int | None = None

    def op_createacct(self, params):
        response = super().op_createacct(params)
        if self.victim and params.get("username") in self.accounts:
            os.kill(self.victim, signal.SIGKILL)
            self.victim = None
        return response


@pytest.fixture
def whm():
    with KillingWhm(token=WHM_TOKEN) as simulator:
        yield simulator


def test_create_interrupted_after_the_panel_call_completes_once(shop, registry, vault, whm, daemons,
                                                                 server_name):
    service, job = lifecycle.order(registry, vault, product="starter", domain="ambiguous.example.com",
                                   email="me@ambiguous.example.com")
    first = daemons()
    whm.victim = first.pid
    assert first.wait(60) == -signal.SIGKILL, "the daemon was not killed at createacct"
    assert list(whm.accounts) == [service.username]      # the panel has it ...
    assert Job.get_by_id(job.id).status == "running"       # ... provisiond does not know

    daemons()
    assert wait_for(lambda: Job.get_by_id(job.id).status not in ("queued", "running"), 60)
    done = Job.get_by_id(job.id)
    assert (done.status, done.attempts) == ("succeeded", 2), done.last_error
    assert [r.path for r in whm.requests].count("/json-api/createacct") == 1
    assert [a.domain for a in whm.accounts.values()] == ["ambiguous.example.com"]
    service = Service.get_by_id(service.id)
    assert service.status == "active" and service.remote_id == service.username
    [log] = ProvisioningLog.select().where(ProvisioningLog.job == job.id)
    assert (log.attempt, log.status) == (2, "succeeded")
    assert run_processes(server_name) == {}


def test_terminate_after_an_interruption_deletes_nothing_it_cannot_verify(shop, registry, vault, whm,
                                                                          settings):
    service, create = lifecycle.order(registry, vault, product="starter", domain="mine.example.com",
                                      email="me@mine.example.com")
    worker = Worker(settings, vault, owner="second-daemon")
    try:
        worker.tick(wait=True)
        assert Job.get_by_id(create.id).status == "succeeded"
        job = lifecycle.request(registry, vault, service.ref, "terminate")
        [claimed] = queue.claim("dead-daemon", utcnow(), 1, lease_seconds=1)  # it died holding it
        assert claimed.id == job.id
        # Meanwhile the username on the panel came to belong to another customer's domain.
        whm.accounts[service.username].domain = "someone-else.example.com"
        time.sleep(1.2)
        worker.tick(wait=True)  # reaps the dead daemon's job and runs it again
    finally:
        worker.shutdown()
    done = Job.get_by_id(job.id)
    assert (done.status, done.attempts) == ("needs_attention", 2)
    assert "someone-else.example.com" in done.last_error
    assert service.username in whm.accounts                  # nothing deleted
    assert not any(r.path.endswith("/removeacct") for r in whm.requests)
    assert Service.get_by_id(service.id).status == "active"
    assert queue.claim("anyone", utcnow(), 5, 60) == []      # held for a human, not retried
