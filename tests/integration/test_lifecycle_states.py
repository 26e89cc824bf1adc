"""No dead ends: every service state an order can reach has a command that leaves it, unless it
is terminal (lifecycle.TERMINAL), and a terminal state takes no command at all.

The walk starts from a fresh order and follows every command an admin or a billing system has,
breadth first. A command whose job must run is ended the way an admin can end it without a
panel: the job is held (needs_attention) and resolved as the panel would show it
(``job resolve``), which moves the service exactly as that outcome of a run would.
"""

from __future__ import annotations

import collections
import itertools

import pytest

from provisiond import lifecycle, outcomes, queue
from provisiond.errors import StateError
from provisiond.models import Job, ServiceStatus
from tests.helpers import hold

ADMIN = "cli:admin@ops"
_domains = itertools.count()


def _resolved(job: Job, succeeded: bool, vault) -> None:
    """The job held on its run and resolved by an admin; a job that is not queued (a create
    that ended long ago) is resolved as it is, which only a held job allows."""
    if job.status == "queued":
        hold(job)
    outcomes.resolve(job.id, succeeded, actor=ADMIN, vault=vault)


def _create_job(service) -> Job:
    return service.jobs.where(Job.action == "create").order_by(Job.id.desc()).first()


def _run(action: str, succeeded: bool = True):
    def command(ctx, service):
        _resolved(lifecycle.request(ctx.registry, ctx.vault, service.ref, action), succeeded, ctx.vault)
    return command


def _create(succeeded: bool):
    def command(ctx, service):
        _resolved(_create_job(service), succeeded, ctx.vault)
    return command


def _cancel_create_and_close(ctx, service):
    outcomes.cancel(_create_job(service).id)
    lifecycle.close(service.ref, actor=ADMIN)


def _close(ctx, service):
    lifecycle.close(service.ref, actor=ADMIN)


def _retry_create(ctx, service):
    lifecycle.retry_job(_create_job(service).id, 3)


# Every command, by the state it is given in; a command may also be refused in other states.
COMMANDS = {
    "job resolve --succeeded (create)": _create(True),
    "job resolve --failed (create)": _create(False),
    "job cancel, service close": _cancel_create_and_close,
    "service suspend": _run("suspend"),
    "service unsuspend": _run("unsuspend"),
    "service terminate": _run("terminate"),
    "service change-package": lambda ctx, s: _resolved(lifecycle.request(
        ctx.registry, ctx.vault, s.ref, "change_package", package="gold"), True, ctx.vault),
    "service close": _close,
    "job retry (create)": _retry_create,
}


class Walk:
    def __init__(self, registry, vault):
        self.registry, self.vault = registry, vault

    def fresh(self, path: list[str]):
        """A new order taken along ``path``; returns the service as it is then."""
        service, _ = lifecycle.order(self.registry, self.vault, product="starter",
                                     domain=f"walk{next(_domains)}.example.com", email="me@walk.example.com")
        for name in path:
            COMMANDS[name](self, service)
            self.settle_open_jobs(service)
        return lifecycle.get_service(service.id)

    def settle_open_jobs(self, service) -> None:
        """A job left queued (a fresh order's create, a retried one) is cancelled once the
        service's state was read, so that the next hold claims only its own job."""
        for job in service.jobs.where(Job.status == "queued"):
            outcomes.cancel(job.id)

    def apply(self, path: list[str], name: str) -> str | None:
        """The state after ``name`` from the end of ``path``; None when it is refused there."""
        service = self.fresh(path)
        try:
            COMMANDS[name](self, service)
            return lifecycle.get_service(service.id).status
        except StateError:
            return None
        finally:
            self.settle_open_jobs(service)


def test_every_non_terminal_service_state_has_a_command_that_leaves_it(cpanel_setup, registry, vault):
    walk = Walk(registry, vault)
    paths = {"pending": []}
    exits: dict[str, set[str]] = collections.defaultdict(set)
    todo = collections.deque(["pending"])
    while todo:
        state = todo.popleft()
        for name in COMMANDS:
            after = walk.apply(paths[state], name)
            if after is None or after == state:
                continue
            exits[state].add(f"{name} → {after}")
            if after not in paths:
                paths[after] = paths[state] + [name]
                todo.append(after)

    terminal = {s.value for s in lifecycle.TERMINAL}
    assert set(paths) == {s.value for s in ServiceStatus}, "a state no order ever reaches"
    dead_ends = {state for state in paths if state not in terminal and not exits[state]}
    assert dead_ends == set()
    assert {state for state in terminal if exits[state]} == set()
    # The ways out the state diagram in provisiond/lifecycle.py promises.
    assert {"job cancel, service close → closed", "job resolve --succeeded (create) → active",
            "job resolve --failed (create) → failed"} <= exits["pending"]
    assert {"service close → closed", "job retry (create) → pending",
            "service terminate → terminated"} <= exits["failed"]
    assert "service suspend → suspended" in exits["active"]
    assert "service unsuspend → active" in exits["suspended"]


@pytest.mark.parametrize("status", ["active", "suspended", "terminated", "closed"])
def test_a_service_that_holds_or_held_an_account_cannot_be_closed(cpanel_setup, registry, vault, status):
    walk = Walk(registry, vault)
    path = {"active": ["job resolve --succeeded (create)"],
            "suspended": ["job resolve --succeeded (create)", "service suspend"],
            "terminated": ["job resolve --succeeded (create)", "service terminate"],
            "closed": ["job cancel, service close"]}[status]
    service = walk.fresh(path)
    assert service.status == status
    with pytest.raises(StateError, match=f"is {status}; close needs it pending or failed"):
        lifecycle.close(service.ref, actor=ADMIN)
    assert queue.open_job(service) is None
