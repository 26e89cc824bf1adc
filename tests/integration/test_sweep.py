"""The overdue sweep on a real database: the SQL agrees with the pure policy, runs once a day."""

from __future__ import annotations

import dataclasses
import datetime
import random
import threading

import pytest

from provisiond import catalog, policies, sweep
from provisiond.daemon import sweep_missed
from provisiond.models import Job, Service

TODAY = datetime.date(2026, 11, 22)


def make_services(cpanel_setup, registry, count: int, seed: int) -> list[policies.OverdueFacts]:
    """Random services over two products (one with overrides); returns the pure policy's facts."""
    server, starter = cpanel_setup
    custom = catalog.add_product(registry, name="custom", panel="cpanel", group_name="web", package="pro",
                                 suspend_after_days=3, terminate_after_days=20)
    rng = random.Random(seed)
    facts = []
    for i in range(count):
        product = rng.choice([starter, custom])
        paid = TODAY - datetime.timedelta(days=rng.randint(-5, 60)) if rng.random() > 0.1 else None
        hold = TODAY + datetime.timedelta(days=rng.randint(-3, 3)) if rng.random() < 0.2 else None
        service = Service.create(ref=f"S{i}", product=product, server=server, domain=f"s{i}.example.com",
                                 email="o@example.com", package=product.package, username=f"u{i}",
                                 status=rng.choice(["active", "active", "suspended", "pending", "terminated"]),
                                 status_reason=rng.choice([None, "overdue", "admin", "abuse"]),
                                 paid_until=paid, hold_until=hold, never_terminate=rng.random() < 0.15)
        suspend_days, terminate_days = policies.resolve_days(product.suspend_after_days,
                                                             product.terminate_after_days)
        facts.append(policies.OverdueFacts(service.id, service.status, service.status_reason, paid, hold,
                                           service.never_terminate, suspend_days, terminate_days))
    return facts


def test_sql_sweep_makes_the_same_decisions_as_the_policy(cpanel_setup, registry):
    facts = make_services(cpanel_setup, registry, 300, seed=7)
    expected = sorted(policies.sweep(facts, TODAY), key=lambda d: d.service_id)
    assert expected  # the random table does contain overdue services
    assert sweep.decide(TODAY) == expected


def test_a_sweep_enqueues_once_and_skips_services_with_open_jobs(cpanel_setup, registry):
    make_services(cpanel_setup, registry, 120, seed=3)
    dry = sweep.run(TODAY, dry_run=True)
    assert dry.enqueued == 0 and Job.select().count() == 0
    result = sweep.run(TODAY)
    assert result.enqueued == len(result.decisions) == len(dry.decisions) > 0
    suspends = Job.select().where(Job.action == "suspend")
    assert all(job.params == {"reason": "overdue"} for job in suspends)
    assert all(Job.get(Job.service == d.service_id).action == d.action for d in result.decisions)
    again = sweep.run(TODAY)
    assert again.decisions == [] and again.enqueued == 0  # everything has an open job now


def test_only_one_daemon_sweeps_a_day(database):
    winners = []

    def contend():
        winners.append(sweep.claim_day(TODAY))

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners.count(True) == 1
    assert sweep.claim_day(TODAY + datetime.timedelta(days=1))
    assert sweep.last_day() == TODAY + datetime.timedelta(days=1)


def test_a_missed_sweep_is_caught_up_at_start(database, settings):
    tz = datetime.timezone.utc
    after_three = datetime.datetime(2026, 11, 22, 3, 30, tzinfo=tz)
    before_three = datetime.datetime(2026, 11, 22, 2, 30, tzinfo=tz)
    assert sweep_missed(settings, after_three)          # never swept
    sweep.claim_day(datetime.date(2026, 11, 21))
    assert not sweep_missed(settings, before_three)    # yesterday's ran; today's is not due yet
    assert sweep_missed(settings, after_three)          # today's 03:00 passed without a sweep
    sweep.claim_day(datetime.date(2026, 11, 22))
    assert not sweep_missed(settings, after_three)


def _service(cpanel_setup, ref: str, **fields) -> Service:
    server, product = cpanel_setup
    product = fields.pop("product", product)
    return Service.create(ref=ref, product=product, server=server, domain=f"{ref.lower()}.example.com",
                          email="o@example.com", package=product.package, username=ref.lower(), **fields)


def test_a_payment_date_moved_back_is_refused_unless_corrected_and_audited(cpanel_setup, settings, capsys):
    from provisiond import audit, cli
    _service(cpanel_setup, "INV-7", status="active", paid_until=datetime.date(2027, 1, 1))
    argv = ["--home", str(settings.home), "--database-url", settings.database_url,
            "service", "paid", "INV-7", "--until", "2026-01-01"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "paid_until" in err and "2026-01-01" in err and "2027-01-01" in err and len(err.splitlines()) == 1
    assert Service.get(Service.ref == "INV-7").paid_until == datetime.date(2027, 1, 1)
    assert audit.entries("service:INV-7") == []

    assert cli.main([*argv, "--correct"]) == 0
    assert Service.get(Service.ref == "INV-7").paid_until == datetime.date(2026, 1, 1)
    [entry] = audit.entries("service:INV-7")
    assert entry.action == "payment.correct" and entry.actor.startswith("cli:")
    assert entry.detail == {"previous": "2027-01-01", "paid_until": "2026-01-01"}
    assert cli.main(argv[:-2] + ["--until", "2027-06-01"]) == 0  # forward needs no --correct


def test_the_sweep_suspends_an_active_service_past_its_terminate_days_never_terminates_it(cpanel_setup):
    """The issue's case: paid until 2026-01-01, 325 days overdue and active: suspended, not
    terminated; terminated only once it is suspended for non-payment."""
    active = _service(cpanel_setup, "LATE", status="active", paid_until=datetime.date(2026, 1, 1))
    admin = _service(cpanel_setup, "HELD", status="suspended", status_reason="admin",
                     paid_until=datetime.date(2026, 1, 1))
    assert sweep.decide(TODAY) == [policies.Decision(active.id, "suspend", "overdue")]
    Service.update(status="suspended", status_reason="overdue").where(Service.id == active.id).execute()
    assert sweep.decide(TODAY) == [policies.Decision(active.id, "terminate", "overdue 325 days")]
    assert admin.id not in [d.service_id for d in sweep.decide(TODAY)]


def test_overdue_days_are_bounded_when_a_product_is_added(cpanel_setup, registry):
    from provisiond.errors import ValidationError
    from provisiond.models import Product
    for field, days in (("terminate_after_days", 1_000_000), ("suspend_after_days", 3651),
                        ("suspend_after_days", -1)):
        with pytest.raises(ValidationError) as refused:
            catalog.add_product(registry, name="huge", panel="cpanel", group_name="web", package="pro",
                                **{field: days})
        assert refused.value.field == field
    assert not Product.select().where(Product.name == "huge").exists()
    assert catalog.add_product(registry, name="decade", panel="cpanel", group_name="web", package="pro",
                               suspend_after_days=3650, terminate_after_days=3650).terminate_after_days == 3650


def test_one_bad_product_never_stops_the_sweep_nor_claims_the_day(cpanel_setup, registry, settings):
    """A product stored with a day count the door now refuses (the issue's 1,000,000) used to
    crash every sweep with OverflowError after the day was claimed: nobody was swept again."""
    from provisiond.daemon import run_sweep
    from provisiond.models import Notification, Product
    server, starter = cpanel_setup
    bad = catalog.add_product(registry, name="bad", panel="cpanel", group_name="web", package="pro")
    Product.update(terminate_after_days=1_000_000).where(Product.id == bad.id).execute()
    good = _service(cpanel_setup, "GOOD", status="active", paid_until=TODAY - datetime.timedelta(days=30))
    _service(cpanel_setup, "BAD", status="active", paid_until=TODAY - datetime.timedelta(days=30),
             product=bad)
    alerting = dataclasses.replace(settings, alert_webhook_url="http://127.0.0.1:9/alerts")

    for decided in ([(good.id, "suspend")], []):  # the catch-up and the cron run: one alert
        result = run_sweep(alerting, TODAY, claim=True)
        assert list(result.failed) == ["bad"] and not result.claimed
        assert [(d.service_id, d.action) for d in result.decisions] == decided  # then: has an open job
        assert sweep.last_day() is None  # not finished, so not claimed: it runs again
    assert [j.service_id for j in Job.select()] == [good.id]
    [alert] = Notification.select().where(Notification.kind == "alert_webhook")
    assert "bad" in alert.payload["subject"]

    Product.update(terminate_after_days=None).where(Product.id == bad.id).execute()
    fixed = run_sweep(alerting, TODAY, claim=True)
    assert fixed.claimed and fixed.failed == {} and sweep.last_day() == TODAY
    assert Job.select().count() == 2  # the good service's suspend was not enqueued twice
    assert run_sweep(alerting, TODAY, claim=True).enqueued == 0  # the day is taken
