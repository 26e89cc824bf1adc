"""The overview's hourly bar chart, as coordinates: 24 bars oldest first, heights in
proportion, failures drawn within their hour's bar, labels at clock hours divisible by three."""

from __future__ import annotations

import datetime

import pytest

from provisiond.ui import chart

NOW = datetime.datetime(2026, 11, 28, 13, 25, 7)
HOUR = datetime.timedelta(hours=1)


def bar_at(result: dict, hour: datetime.datetime) -> dict:
    return next(b for b in result["bars"] if b["hour"] == hour)


def test_no_attempts_gives_24_empty_bars_ending_with_the_current_hour():
    result = chart.hourly_bars({}, NOW)
    hours = [b["hour"] for b in result["bars"]]
    assert len(hours) == 24 and hours[-1] == datetime.datetime(2026, 11, 28, 13)
    assert hours[0] == datetime.datetime(2026, 11, 27, 14) and hours == sorted(hours)
    assert all(b["height"] == 0 and b["y"] == result["base"] for b in result["bars"])
    assert result["top"] == 1 and result["attempts"] == result["failures"] == 0


def test_heights_are_in_proportion_and_failures_sit_inside_their_bar():
    counts = {datetime.datetime(2026, 11, 28, 10): (10, 4), datetime.datetime(2026, 11, 28, 12, 40): (5, 0)}
    result = chart.hourly_bars(counts, NOW)
    busy, quiet = bar_at(result, datetime.datetime(2026, 11, 28, 10)), bar_at(result, datetime.datetime(2026, 11, 28, 12))
    assert result["top"] == 10
    assert busy["height"] == chart.PLOT_HEIGHT and busy["y"] == chart.TOP
    assert quiet["height"] == chart.PLOT_HEIGHT / 2
    assert busy["failure_height"] == pytest.approx(chart.PLOT_HEIGHT * 0.4)
    assert busy["failure_y"] + busy["failure_height"] == pytest.approx(result["base"])
    assert busy["title"] == "10:00–11:00 UTC: 10 attempts, 4 failed"
    assert (result["attempts"], result["failures"]) == (15, 4)


def test_hours_outside_the_window_are_left_out():
    counts = {NOW - 24 * HOUR: (7, 7), NOW + HOUR: (3, 1), NOW - 23 * HOUR: (2, 1)}
    result = chart.hourly_bars(counts, NOW)
    assert (result["attempts"], result["failures"]) == (2, 1)
    assert result["bars"][0]["attempts"] == 2


def test_bars_do_not_overlap_and_stay_inside_the_plot():
    result = chart.hourly_bars({NOW: (1, 1)}, NOW)
    bars = result["bars"]
    for left, right in zip(bars, bars[1:]):
        assert left["x"] + left["width"] < right["x"]
    assert bars[0]["x"] >= chart.LEFT and bars[-1]["x"] + bars[-1]["width"] <= chart.WIDTH - chart.RIGHT


def test_labels_every_three_clock_hours_under_their_bar():
    result = chart.hourly_bars({}, NOW)
    texts = [label["text"] for label in result["labels"]]
    assert texts == ["15:00", "18:00", "21:00", "00:00", "03:00", "06:00", "09:00", "12:00"]
    noon = bar_at(result, datetime.datetime(2026, 11, 28, 12))
    assert result["labels"][-1]["x"] == pytest.approx(noon["x"] + noon["width"] / 2, abs=0.02)


@pytest.mark.parametrize("busiest, top", [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (20, 20),
                                          (21, 50), (999, 1000), (1001, 2000)])
def test_the_axis_top_is_a_round_number_at_least_the_busiest_hour(busiest, top):
    assert chart.nice_top(busiest) == top
