"""Table tests for provisiond.policies: placement, retry, classification, overdue sweep."""

from __future__ import annotations

import dataclasses
import datetime
import random

import pytest

from provisiond.policies import (
    Decision,
    FailureKind,
    OverdueFacts,
    RetryPolicy,
    ServerLoad,
    Strategy,
    classify,
    on_payment,
    place,
    resolve_days,
    sweep,
)

T = FailureKind.TRANSIENT
P = FailureKind.PERMANENT
TODAY = datetime.date(2024, 3, 15)


def ago(days: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=days)


# --------------------------------------------------------------------------- placement


def srv(id, placed, max_accounts=100, enabled=True, healthy=True):
    return ServerLoad(id, f"web{id}", enabled, healthy, max_accounts, placed)


LL, FILL, RR = Strategy.LEAST_LOADED, Strategy.FILL_UNTIL_FULL, Strategy.ROUND_ROBIN


@pytest.mark.parametrize(
    "servers, strategy, last, expected",
    [
        # nothing usable
        ([], LL, None, None),
        ([srv(1, 100), srv(2, 50, max_accounts=50)], LL, None, None),
        ([srv(1, 0, enabled=False), srv(2, 0, healthy=False)], LL, None, None),
        ([srv(1, 0, max_accounts=0), srv(2, 0, max_accounts=-1)], FILL, None, None),
        ([srv(1, 120)], RR, None, None),  # over-placed counts as full
        # least-loaded: ratio, not count
        ([srv(1, 10, 20), srv(2, 40, 100)], LL, None, 2),
        ([srv(1, 5), srv(2, 3), srv(3, 4)], LL, None, 2),
        # least-loaded ties: same ratio -> fewer placed -> lowest id
        ([srv(1, 10, 100), srv(2, 5, 50)], LL, None, 2),
        ([srv(3, 5), srv(2, 5), srv(1, 5)], LL, None, 1),
        # least-loaded skips disabled / unhealthy / full even when emptier
        ([srv(1, 0, enabled=False), srv(2, 90)], LL, None, 2),
        ([srv(1, 0, healthy=False), srv(2, 90)], LL, None, 2),
        ([srv(1, 0, max_accounts=0), srv(2, 99)], LL, None, 2),
        # fill-until-full: lowest id with room
        ([srv(2, 0), srv(1, 99)], FILL, None, 1),
        ([srv(1, 100), srv(2, 0), srv(3, 50)], FILL, None, 2),
        ([srv(1, 10, enabled=False), srv(2, 90)], FILL, None, 2),
        # round-robin: next id after last, wrapping
        ([srv(1, 0), srv(2, 0), srv(3, 0)], RR, None, 1),
        ([srv(1, 0), srv(2, 0), srv(3, 0)], RR, 1, 2),
        ([srv(3, 0), srv(1, 0), srv(2, 0)], RR, 2, 3),
        ([srv(1, 0), srv(2, 0), srv(3, 0)], RR, 3, 1),
        ([srv(1, 0), srv(2, 100), srv(3, 0)], RR, 1, 3),
        ([srv(1, 0), srv(5, 0), srv(9, 0)], RR, 6, 9),  # last server since removed
        ([srv(1, 0), srv(2, 0), srv(3, 0, enabled=False)], RR, 2, 1),
        ([srv(4, 0)], RR, 4, 4),
    ],
)
def test_place(servers, strategy, last, expected):
    chosen = place(servers, strategy, last)
    assert (chosen.id if chosen else None) == expected
    assert place(list(reversed(servers)), strategy, last) == chosen


@pytest.mark.parametrize("strategy", [LL, FILL, RR, Strategy.LEAST_DISK])
def test_placement_considers_only_servers_of_the_products_panel(strategy):
    cpanel = [dataclasses.replace(srv(i, 0), panel="cpanel") for i in (1, 2, 3)]
    plesk = dataclasses.replace(srv(4, 99), panel="plesk")
    assert place([*cpanel, plesk], strategy, 1, panel="plesk").id == 4
    assert place(cpanel, strategy, None, panel="plesk") is None
    assert place([*cpanel, dataclasses.replace(plesk, placed=100)], strategy, None, panel="plesk") is None


def disk(id, used_mb, placed=1, **kwargs):
    return dataclasses.replace(srv(id, placed, **kwargs), disk_used_mb=used_mb)


LD = Strategy.LEAST_DISK


@pytest.mark.parametrize(
    "servers, expected",
    [
        ([], None),
        # the least disk used wins, whatever the account counts
        ([disk(1, 5000.0, placed=2), disk(2, 800.0, placed=40)], 2),
        ([disk(1, 10.5), disk(2, 10.25), disk(3, 11.0)], 2),
        # a new server (never collected, no account) is the emptiest
        ([disk(1, 1.0), disk(2, None, placed=0)], 2),
        # a server with accounts but no collection yet ranks after every measured one
        ([disk(1, None, placed=1), disk(2, 90000.0, placed=80)], 2),
        ([disk(1, None, placed=5), disk(2, None, placed=1)], 2),  # among unknowns: least-loaded
        # ties on disk: least-loaded order (ratio, count, id)
        ([disk(1, 100.0, placed=10, max_accounts=20), disk(2, 100.0, placed=40)], 2),
        ([disk(3, 0.0, placed=0), disk(2, 0.0, placed=0)], 2),
        # no room: skipped even when emptiest
        ([disk(1, 0.0, enabled=False), disk(2, 50.0)], 2),
        ([disk(1, 0.0, healthy=False), disk(2, 50.0)], 2),
        ([disk(1, 0.0, placed=100), disk(2, 50.0)], 2),
        ([disk(1, 0.0, placed=100)], None),
    ],
)
def test_place_least_disk(servers, expected):
    chosen = place(servers, LD)
    assert (chosen.id if chosen else None) == expected
    assert place(list(reversed(servers)), "least-disk") == chosen


def test_strategy_accepts_stored_string():
    assert place([srv(1, 1), srv(2, 0)], "least-loaded").id == 2
    assert Strategy("fill-until-full") is FILL


# --------------------------------------------------------------------------- retry


class FixedRng(random.Random):
    """uniform() returns its low bound (fraction 0) or its high bound (fraction 1)."""

    def __init__(self, fraction: float):
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a, b):
        return a + (b - a) * self.fraction


@pytest.mark.parametrize(
    "policy, attempt, low, high",
    [
        (RetryPolicy(), 1, 15, 30),
        (RetryPolicy(), 2, 30, 60),
        (RetryPolicy(), 3, 60, 120),
        (RetryPolicy(), 6, 480, 960),
        (RetryPolicy(), 7, 900, 1800),  # 1920 capped at 1800
        (RetryPolicy(), 50, 900, 1800),
        (RetryPolicy(), 5000, 900, 1800),  # factor ** n overflows: still the cap
        (RetryPolicy(), 10**12, 900, 1800),
        (RetryPolicy(base=10, factor=3, cap=100), 1, 5, 10),
        (RetryPolicy(base=10, factor=3, cap=100), 3, 45, 90),
        (RetryPolicy(base=10, factor=3, cap=100), 4, 50, 100),
        (RetryPolicy(base=10, factor=1, cap=100), 9, 5, 10),
    ],
)
def test_delay_bounds(policy, attempt, low, high):
    assert policy.delay(attempt, FixedRng(0)) == pytest.approx(low)
    assert policy.delay(attempt, FixedRng(1)) == pytest.approx(high)
    assert policy.delay(attempt, FixedRng(0.5)) == pytest.approx((low + high) / 2)
    for seed in range(20):
        assert low <= policy.delay(attempt, random.Random(seed)) <= high


def test_delay_is_reproducible_with_the_same_seed():
    policy = RetryPolicy()
    assert policy.delay(3, random.Random(7)) == policy.delay(3, random.Random(7))


@pytest.mark.parametrize("attempt", [0, -1])
def test_delay_refuses_attempt_below_one(attempt):
    with pytest.raises(ValueError):
        RetryPolicy().delay(attempt, random.Random(0))


@pytest.mark.parametrize(
    "policy, action, expected",
    [
        (RetryPolicy(), "create", 6),
        (RetryPolicy(), "suspend", 6),
        (RetryPolicy(), "terminate", 3),
        (RetryPolicy(max_attempts=2), "create", 2),
        (RetryPolicy(max_attempts_by_action={"create": 9}), "create", 9),
        (RetryPolicy(max_attempts_by_action={"create": 9}), "terminate", 6),
    ],
)
def test_attempts_for(policy, action, expected):
    assert policy.attempts_for(action) == expected


@pytest.mark.parametrize(
    "action, attempts_done, kind, expected",
    [
        ("create", 1, P, ("fail", None)),
        ("create", 1, T, ("retry", 15.0)),
        ("create", 2, T, ("retry", 30.0)),
        ("create", 5, T, ("retry", 240.0)),
        ("create", 6, T, ("fail", None)),
        ("create", 7, T, ("fail", None)),
        ("create", 3, P, ("fail", None)),
        ("terminate", 2, T, ("retry", 30.0)),
        ("terminate", 3, T, ("fail", None)),
        ("terminate", 1, P, ("fail", None)),
        ("suspend", 1, "transient", ("retry", 15.0)),
        ("suspend", 1, "permanent", ("fail", None)),
    ],
)
def test_next_step(action, attempts_done, kind, expected):
    assert RetryPolicy().next_step(action, attempts_done, kind, FixedRng(0)) == expected


def test_retry_policy_is_frozen_and_hashable():
    overrides = {"terminate": 2}
    policy = RetryPolicy(max_attempts_by_action=overrides)
    overrides["terminate"] = 99  # the caller's dict is copied
    assert policy.attempts_for("terminate") == 2
    with pytest.raises(TypeError):
        policy.max_attempts_by_action["create"] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.base = 1
    assert hash(policy) == hash(RetryPolicy(max_attempts_by_action={"terminate": 2}))
    assert policy == RetryPolicy(max_attempts_by_action={"terminate": 2})
    assert RetryPolicy() != policy


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    "message, kwargs, expected",
    [
        # the run itself
        ("", {"timed_out": True}, T),
        ("UNREACHABLE! Failed to connect to the host via ssh", {"unreachable": True}, T),
        ("Sorry, that is invalid", {"timed_out": True}, T),
        # network
        ("Connection refused", {}, T),
        ("[Errno 111] Connection refused", {}, T),
        ("Connection reset by peer", {}, T),
        ("ssh: connect to host web1.example.net port 22: Connection timed out", {}, T),
        ("HTTPSConnectionPool(host='web1', port=2087): Read timed out. (read timeout=30)", {}, T),
        ("ssh: Could not resolve hostname web1.example.net: Name or service not known", {}, T),
        ("[Errno -3] Temporary failure in name resolution", {}, T),
        ("connect to host 10.0.0.5 port 22: No route to host", {}, T),
        # HTTP status
        ("Service Unavailable", {"http_status": 503}, T),
        ("Internal Server Error", {"http_status": 500}, T),
        ("Bad Gateway", {"http_status": 502}, T),
        ("Too Many Requests", {"http_status": 429}, T),
        ("Access denied", {"http_status": 403}, P),
        ("Unauthorized", {"http_status": 401}, P),
        ("Not Found", {"http_status": 404}, P),
        ("The server is busy, try again later", {"http_status": 400}, P),  # 4xx decides
        ("Sorry, a group for that username already exists.", {"http_status": 200}, P),
        ("Server is busy", {"http_status": 200}, T),
        # a busy panel
        ("The system is currently busy. Please try again later.", {}, T),
        ("Unable to create account: load average is too high (12.4)", {}, T),
        ("The resource is temporarily unavailable", {}, T),
        ("Account database is locked by another process", {}, T),
        ("Please try again in a few minutes", {}, T),
        # a panel refusing the request (WHM, DirectAdmin, Plesk, Virtualmin)
        ("Sorry, a group for that username already exists.", {}, P),
        ("Sorry, the domain example.com is already in use.", {}, P),
        ("Sorry, “example.com” is not a valid domain.", {}, P),
        ("The package “gold_plan” does not exist.", {}, P),
        ("User example does not exist", {}, P),
        ("That username is reserved", {}, P),
        ("Domain name busybox.com is already owned by another user", {}, P),
        ("Permission denied (publickey,password).", {}, P),
        ("", {}, P),
    ],
)
def test_classify(message, kwargs, expected):
    assert classify(message, **kwargs) is expected


# --------------------------------------------------------------------------- overdue


def facts(
    days_overdue=0,
    status="active",
    reason=None,
    hold_until=None,
    never_terminate=False,
    suspend=10,
    terminate=45,
    paid=True,
):
    return OverdueFacts(
        service_id=7,
        status=status,
        status_reason=reason,
        paid_until=ago(days_overdue) if paid else None,
        hold_until=hold_until,
        never_terminate=never_terminate,
        suspend_after_days=suspend,
        terminate_after_days=terminate,
    )


SUSPEND = ("suspend", "overdue")


def TERMINATE(days):
    return ("terminate", f"overdue {days} days")


@pytest.mark.parametrize(
    "service, expected",
    [
        # suspend boundary
        (facts(-30), None),  # paid ahead
        (facts(0), None),
        (facts(9), None),
        (facts(10), SUSPEND),
        (facts(11), SUSPEND),
        (facts(10, status="suspended", reason="overdue"), None),  # already suspended
        # terminate boundary: only a service suspended for non-payment
        (facts(44), SUSPEND),
        (facts(44, status="suspended", reason="overdue"), None),
        (facts(45, status="suspended", reason="overdue"), TERMINATE(45)),
        (facts(400, status="suspended", reason="overdue"), TERMINATE(400)),
        # admin / abuse suspensions are left to the admin: never terminated by the sweep
        (facts(45, status="suspended", reason="admin"), None),
        (facts(50, status="suspended", reason="abuse"), None),
        (facts(20, status="suspended", reason="abuse"), None),
        (facts(50, status="suspended", reason=None), None),
        # never_terminate: still suspended, never terminated
        (facts(45, never_terminate=True), SUSPEND),
        (facts(400, never_terminate=True), SUSPEND),
        (facts(400, status="suspended", reason="overdue", never_terminate=True), None),
        (facts(9, never_terminate=True), None),
        # hold_until: today and tomorrow hold, yesterday does not
        (facts(50, hold_until=TODAY), None),
        (facts(50, hold_until=ago(-1)), None),
        (facts(50, hold_until=ago(1)), SUSPEND),
        (facts(50, status="suspended", reason="overdue", hold_until=ago(1)), TERMINATE(50)),
        (facts(12, hold_until=ago(1)), SUSPEND),
        (facts(12, hold_until=TODAY), None),
        # no paid_until: never
        (facts(paid=False), None),
        (facts(paid=False, status="suspended", reason="overdue"), None),
        # statuses the sweep leaves alone
        (facts(100, status="pending"), None),
        (facts(100, status="terminated", reason="overdue"), None),
        (facts(100, status="failed"), None),
        # per-product overrides, resolved by the caller
        (facts(3, suspend=3, terminate=7), SUSPEND),
        (facts(2, suspend=3, terminate=7), None),
        (facts(7, suspend=3, terminate=7, status="suspended", reason="overdue"), TERMINATE(7)),
        (facts(20, suspend=30, terminate=90), None),
        (facts(0, suspend=0, terminate=0), SUSPEND),
        (facts(0, suspend=0, terminate=0, status="suspended", reason="overdue"), TERMINATE(0)),
        (facts(1, suspend=0, terminate=60), SUSPEND),
    ],
)
def test_sweep_single_service(service, expected):
    decisions = sweep([service], TODAY)
    if expected is None:
        assert decisions == []
    else:
        assert decisions == [Decision(service.service_id, *expected)]


@pytest.mark.parametrize("days_overdue", [45, 331, 3650])
def test_an_active_overdue_service_is_suspended_first_never_terminated(days_overdue):
    """The sweep suspends an active service past its terminate days (a payment date moved
    back); only the next sweep, once it is suspended for non-payment, may terminate it."""
    active = facts(days_overdue)
    assert sweep([active], TODAY) == [Decision(7, "suspend", "overdue")]
    suspended = dataclasses.replace(active, status="suspended", status_reason="overdue")
    assert sweep([suspended], TODAY) == [Decision(7, "terminate", f"overdue {days_overdue} days")]


def test_sweep_keeps_input_order_and_skips_the_rest():
    services = [
        dataclasses.replace(facts(50, status="suspended", reason="overdue"), service_id=1),
        dataclasses.replace(facts(5), service_id=2),
        dataclasses.replace(facts(12), service_id=3),
        dataclasses.replace(facts(99, status="terminated"), service_id=4),
    ]
    assert sweep(iter(services), TODAY) == [
        Decision(1, "terminate", "overdue 50 days"),
        Decision(3, "suspend", "overdue"),
    ]
    assert sweep([], TODAY) == []


@pytest.mark.parametrize(
    "product_suspend, product_terminate, defaults, expected",
    [
        (None, None, {}, (10, 45)),
        (3, None, {}, (3, 45)),
        (None, 60, {}, (10, 60)),
        (5, 20, {}, (5, 20)),
        (0, 0, {}, (0, 0)),
        (None, None, {"default_suspend": 7, "default_terminate": 30}, (7, 30)),
        (14, None, {"default_suspend": 7, "default_terminate": 30}, (14, 30)),
    ],
)
def test_resolve_days(product_suspend, product_terminate, defaults, expected):
    assert resolve_days(product_suspend, product_terminate, **defaults) == expected


@pytest.mark.parametrize(
    "product_suspend, product_terminate",
    [(-1, None), (None, -5), (60, None), (20, 10), (None, 3651), (1_000_000, 1_000_000)],
)
def test_resolve_days_refuses_nonsense(product_suspend, product_terminate):
    with pytest.raises(ValueError):
        resolve_days(product_suspend, product_terminate)


@pytest.mark.parametrize(
    "status, reason, paid_until, expected",
    [
        ("suspended", "overdue", ago(-30), "unsuspend"),
        ("suspended", "overdue", TODAY, "unsuspend"),
        ("suspended", "overdue", ago(1), None),  # payment does not reach today
        ("suspended", "overdue", ago(20), None),
        ("suspended", "admin", ago(-30), None),
        ("suspended", "abuse", ago(-30), None),
        ("suspended", None, ago(-30), None),
        ("active", None, ago(-30), None),
        ("terminated", "overdue", ago(-30), None),
        ("pending", None, ago(-30), None),
        ("failed", None, ago(-30), None),
    ],
)
def test_on_payment(status, reason, paid_until, expected):
    assert on_payment(status, reason, paid_until, TODAY) == expected


@pytest.mark.parametrize("message", [
    "Failed to connect to the host via ssh: @@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@",
    "Host key verification failed.",
    "root@127.0.0.1: Permission denied (publickey).",
])
def test_ssh_trust_failures_are_permanent_even_when_unreachable(message):
    assert classify(message, unreachable=True) is FailureKind.PERMANENT
