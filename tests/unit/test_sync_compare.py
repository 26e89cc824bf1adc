"""sync.compare: the drift report as a pure function, a table of cases."""

from __future__ import annotations

import datetime
import pytest

from provisiond.sync import compare, counts, fingerprint

NOW = datetime.datetime(2026, 11, 28, 3, 30, 5, 123456)


def acct(username, domain=None, package="basic", suspended=False, email=None):
    return {"username": username, "domain": domain or f"{username}.example.com", "package": package,
            "suspended": suspended, "email": email}


def svc(ref, username, status="active", domain=None, package="basic"):
    return {"ref": ref, "username": username, "domain": domain or f"{username}.example.com",
            "package": package, "status": status}


CASES = {
    "in step": ([acct("amy")], [svc("A", "amy")], {}),
    "orphan": ([acct("bob", suspended=True, package="pro")], [],
               {"orphans": [{"username": "bob", "domain": "bob.example.com", "package": "pro", "suspended": True}]}),
    "missing active": ([], [svc("A", "amy")],
                       {"missing": [{"ref": "A", "username": "amy", "domain": "amy.example.com", "status": "active"}]}),
    "missing suspended": ([], [svc("A", "amy", "suspended")],
                          {"missing": [{"ref": "A", "username": "amy", "domain": "amy.example.com",
                                        "status": "suspended"}]}),
    "suspended on the panel only": ([acct("amy", suspended=True)], [svc("A", "amy")],
                                    {"state_drift": [{"ref": "A", "username": "amy", "provisiond": "active",
                                                      "panel": "suspended"}]}),
    "suspended in provisiond only": ([acct("amy")], [svc("A", "amy", "suspended")],
                                     {"state_drift": [{"ref": "A", "username": "amy", "provisiond": "suspended",
                                                       "panel": "active"}]}),
    "package": ([acct("amy", package="pro")], [svc("A", "amy")],
                {"package_drift": [{"ref": "A", "username": "amy", "provisiond": "basic", "panel": "pro"}]}),
    "identity": ([acct("amy", domain="other.example.net")], [svc("A", "amy")],
                 {"identity_drift": [{"ref": "A", "username": "amy", "provisiond": "amy.example.com",
                                      "panel": "other.example.net"}]}),
    "domain case is no drift": ([acct("amy", domain="AMY.example.com")], [svc("A", "amy")], {}),
    "pending service's account is known, not compared": ([acct("amy", package="pro")], [svc("A", "amy", "pending")], {}),
    "failed service's account is known": ([acct("amy")], [svc("A", "amy", "failed")], {}),
    "pending absent is not missing": ([], [svc("A", "amy", "pending")], {}),
    "terminated service's account left on the panel is an orphan": (
        [acct("amy")], [svc("A", "amy", "terminated")],
        {"orphans": [{"username": "amy", "domain": "amy.example.com", "package": "basic", "suspended": False}]}),
    "terminated and absent is nothing": ([], [svc("A", "amy", "terminated"), svc("B", "bob", "closed")], {}),
    "several kinds on one account": (
        [acct("amy", package="pro", suspended=True)], [svc("A", "amy")],
        {"state_drift": [{"ref": "A", "username": "amy", "provisiond": "active", "panel": "suspended"}],
         "package_drift": [{"ref": "A", "username": "amy", "provisiond": "basic", "panel": "pro"}]}),
}


@pytest.mark.parametrize("name", CASES)
def test_compare(name):
    accounts, services, expected = CASES[name]
    report = compare("whm1", accounts, services, NOW)
    for kind in ("orphans", "missing", "state_drift", "package_drift", "identity_drift"):
        assert report[kind] == expected.get(kind, []), (name, kind)


def test_the_report_has_exactly_the_issue_shape():
    report = compare("whm1", [acct("amy"), acct("zed")], [svc("A", "amy"), svc("B", "bob", "suspended"),
                                                          svc("C", "cy", "pending")], NOW)
    assert list(report) == ["server", "checked_at", "panel_accounts", "services", "orphans", "missing",
                            "state_drift", "package_drift", "identity_drift"]
    assert report["server"] == "whm1" and report["checked_at"] == "2026-11-28T03:30:05Z"
    assert (report["panel_accounts"], report["services"]) == (2, 2)  # pending holds no account yet
    assert [list(o) for o in report["orphans"]] == [["username", "domain", "package", "suspended"]]
    assert [list(m) for m in report["missing"]] == [["ref", "username", "domain", "status"]]
    assert counts(report) == {"orphans": 1, "missing": 1, "state_drift": 0, "package_drift": 0,
                              "identity_drift": 0}


def test_lists_are_ordered_by_username_and_the_fingerprint_ignores_when():
    accounts = [acct(u) for u in ("zed", "amy", "kim")]
    first = compare("whm1", accounts, [], NOW)
    again = compare("whm1", list(reversed(accounts)), [], NOW + datetime.timedelta(days=1))
    assert [o["username"] for o in first["orphans"]] == ["amy", "kim", "zed"]
    assert fingerprint(first) == fingerprint(again)
    assert fingerprint(first) != fingerprint(compare("whm1", accounts[:2], [], NOW))


def test_ten_thousand_accounts_in_one_compare():
    accounts = [acct(f"u{i:05d}", suspended=i % 7 == 0, package="pro" if i % 11 == 0 else "basic")
                for i in range(10_000)]
    services = [svc(f"R{i}", f"u{i:05d}") for i in range(0, 10_000, 2)] + [svc("X", "gone")]
    report = compare("whm1", accounts, services, NOW)  # its time is measured in bench/sync.py
    assert len(report["orphans"]) == 5_000 and len(report["missing"]) == 1
    assert len(report["state_drift"]) == len([i for i in range(0, 10_000, 2) if i % 7 == 0])
    assert len(report["package_drift"]) == len([i for i in range(0, 10_000, 2) if i % 11 == 0])
