"""The panel simulators serve at most ``max_concurrency`` calls at once, like a busy panel: a
third call to a two-at-a-time WHM waits until one of the first two has answered."""

from __future__ import annotations

import statistics
import threading

import requests

from provisiond.sandbox.cpanel import WhmSimulator

TOKEN = "whm-limit-token"


class HeldWhm(WhmSimulator):
    """A WHM whose calls each wait for the test's go-ahead once they are being served."""

    def __init__(self, **kwargs):
        super().__init__(token=TOKEN, **kwargs)
        self.served = threading.Semaphore(0)     # released once per call that reached the panel
        self.go_ahead = threading.Semaphore(0)   # the test lets one call answer per release
        self.order: list[str] = []

    def handle(self, request):
        with self.lock:
            self.order.append(request.query.get("user", "?"))
        self.served.release()
        self.go_ahead.acquire()
        return super().handle(request)


def _ask(sim, user, answers):
    answers[user] = requests.get(f"{sim.url}/json-api/accountsummary",
                                 params={"api.version": "1", "user": user},
                                 headers={"Authorization": f"whm root:{TOKEN}"}, timeout=30).status_code


def _arrived(sim, count):
    """Wait (without timing anything) until ``count`` requests reached the simulator's door."""
    while True:
        with sim.lock:
            if len(sim.requests) >= count:
                return
        threading.Event().wait(0.01)


def test_a_third_call_waits_until_one_of_two_answers():
    answers = {}
    with HeldWhm(max_concurrency=2) as sim:
        threads = [threading.Thread(target=_ask, args=(sim, user, answers)) for user in ("a", "b")]
        for thread in threads:
            thread.start()
        assert sim.served.acquire(timeout=30) and sim.served.acquire(timeout=30)
        third = threading.Thread(target=_ask, args=(sim, "c", answers))
        third.start()
        _arrived(sim, 3)
        # The third call is at the door but not served: both places are taken.
        assert sorted(sim.order) == ["a", "b"] and sim.in_flight == 2
        sim.go_ahead.release()                  # one of the first two answers ...
        assert sim.served.acquire(timeout=30)   # ... and only then is the third served
        assert sim.order[2] == "c" and sim.peak_in_flight == 2
        sim.go_ahead.release()
        sim.go_ahead.release()
        for thread in [*threads, third]:
            thread.join(30)
    assert answers == {"a": 200, "b": 200, "c": 200}


def test_without_a_limit_every_call_is_served_at_once():
    answers = {}
    with HeldWhm() as sim:
        threads = [threading.Thread(target=_ask, args=(sim, user, answers)) for user in "abc"]
        for thread in threads:
            thread.start()
        for _ in range(3):
            assert sim.served.acquire(timeout=30)
        assert sim.in_flight == 3
        for _ in range(3):
            sim.go_ahead.release()
        for thread in threads:
            thread.join(30)
    assert answers == {"a": 200, "b": 200, "c": 200}


def test_a_slow_call_is_drawn_from_a_lognormal_with_the_given_mean():
    sim = WhmSimulator(token=TOKEN, latency=0.2, slow_calls={"createacct": 8.0}, seed=13)
    try:
        class Call:  # only the path matters to the draw
            def __init__(self, path):
                self.path = path
        draws = [sim.delay_for(Call("/json-api/createacct")) for _ in range(20000)]
        assert 7.6 < statistics.fmean(draws) < 8.4
        assert min(draws) < 4 < 12 < max(draws)          # spread, not a fixed 8 s
        assert sim.delay_for(Call("/json-api/accountsummary")) == 0.2   # reads keep the fixed latency
    finally:
        sim._server.server_close()
