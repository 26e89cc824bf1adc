"""Table tests for the pure parts of provisiond.usage: reading a report, levels and crossings."""

from __future__ import annotations

import pytest

from provisiond import usage
from provisiond.errors import PanelError

NONE = dict.fromkeys(usage.FIGURES)


@pytest.mark.parametrize("entry, expected", [
    ({"username": "a"}, {}),
    ({"username": "a", "disk_used_mb": "12M", "disk_limit_mb": "unlimited"}, {"disk_used_mb": 12.0}),
    ({"username": "a", "disk_used_mb": 0, "disk_limit_mb": 0, "bandwidth_limit_mb": "0"}, {"disk_used_mb": 0.0}),
    ({"username": "a", "inodes_used": "3150", "inodes_limit": 5e4, "mailboxes": 4.0}, {
        "inodes_used": 3150, "inodes_limit": 50000, "mailboxes": 4}),
    ({"username": "a", "bandwidth_used_mb": 0.5, "bandwidth_limit_mb": " 2048 "}, {
        "bandwidth_used_mb": 0.5, "bandwidth_limit_mb": 2048.0}),
])
def test_readings(entry, expected):
    assert usage.readings([entry]) == {"a": NONE | expected}


@pytest.mark.parametrize("reported, words", [
    ({"username": "a"}, "list"),
    ([{"disk_used_mb": 1}], "username"),
    ([{"username": ""}], "username"),
    ([{"username": "a", "disk_used_mb": "lots"}], "disk_used_mb"),
    ([{"username": "a", "disk_used_mb": -1}], "disk_used_mb"),
    ([{"username": "a", "inodes_used": 1e30}], "inodes_used"),
    ([{"username": "a", "mailboxes": True}], "mailboxes"),
    ([{"username": "a", "databases": float("nan")}], "databases"),
])
def test_a_bad_report_is_refused_naming_the_figure(reported, words):
    with pytest.raises(PanelError, match=words):
        usage.readings(reported)


@pytest.mark.parametrize("used, limit, expected", [
    (None, 100, 0), (50, None, 0), (50, 0, 0), (89.9, 100, 0), (90, 100, 90), (99.99, 100, 90),
    (100, 100, 100), (250, 100, 100), (9, 10, 90),
])
def test_level(used, limit, expected):
    assert usage.level(used, limit) == expected


def figures(disk=None, disk_limit=None, bandwidth=None, bandwidth_limit=None, inodes=None, inodes_limit=None):
    return {"disk_used_mb": disk, "disk_limit_mb": disk_limit, "bandwidth_used_mb": bandwidth,
            "bandwidth_limit_mb": bandwidth_limit, "inodes_used": inodes, "inodes_limit": inodes_limit}


@pytest.mark.parametrize("previous, current, expected", [
    (None, figures(10, 100), []),
    (None, figures(95, 100), [("disk", 90)]),                      # a first collection already over
    (figures(50, 100), figures(95, 100), [("disk", 90)]),
    (figures(95, 100), figures(97, 100), []),                      # still over: once per crossing
    (figures(95, 100), figures(100, 100), [("disk", 100)]),
    (figures(50, 100), figures(120, 100), [("disk", 100)]),        # straight past both: one alert
    (figures(120, 100), figures(95, 100), []),                     # falling back never alerts
    (figures(80, 100), figures(80, 80), [("disk", 100)]),          # the limit was lowered
    (figures(95, None), figures(95, 100), [("disk", 90)]),         # a limit was set
    (figures(bandwidth=1, bandwidth_limit=10, inodes=1, inodes_limit=10),
     figures(bandwidth=10, bandwidth_limit=10, inodes=9, inodes_limit=10), [("bandwidth", 100), ("inodes", 90)]),
])
def test_crossings(previous, current, expected):
    assert usage.crossings(previous, current) == expected
