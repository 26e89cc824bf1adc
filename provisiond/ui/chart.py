"""The overview's bar chart of attempts and failures per hour, laid out here and drawn by the
template as inline SVG: no script, no style attribute (the console's CSP forbids both), the
same picture in every browser. ``hourly_bars`` is pure: counts and the clock in, coordinates out.

Geometry, in SVG user units (the SVG scales to its box)::

    y = TOP ............ the axis top (``top`` attempts, a round number >= the busiest hour)
        |  ▇     ▇
        |  ▇  ▇  ▇ ▆     a bar per hour, oldest left; its failures drawn over it from the base
    y = TOP + PLOT_HEIGHT  the base (0)
          13:00  16:00   a label every ``LABEL_EVERY`` hours, at clock hours divisible by it
"""

from __future__ import annotations

import datetime
from typing import Mapping

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 24
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BAR_FILL = 0.72      # share of an hour's slot its bar covers
LABEL_EVERY = 3      # hours between axis labels
HOUR = datetime.timedelta(hours=1)


def hour_of(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def first_hour(now: datetime.datetime, hours: int = 24) -> datetime.datetime:
    """The start of the oldest hour shown: the current hour is the last of ``hours``."""
    return hour_of(now) - (hours - 1) * HOUR


def nice_top(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value`` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def hourly_bars(counts: Mapping[datetime.datetime, tuple[int, int]], now: datetime.datetime,
                hours: int = 24) -> dict:
    """The chart of the ``hours`` hours ending with the current one.

    ``counts`` maps an hour (a naive UTC time; minutes are ignored) to (attempts, failures);
    hours missing from it had none, hours outside the window are left out. Returns ``width``,
    ``height``, ``top`` (attempts at the axis top), ``base`` (the y of zero), ``bars`` (one
    per hour, oldest first: ``hour``, ``attempts``, ``failures``, ``x``, ``width``, ``y``,
    ``height``, ``failure_y``, ``failure_height``, ``title``), ``labels`` (``x``, ``y``,
    ``text``) and the window's ``attempts`` and ``failures``.
    """
    start = first_hour(now, hours)
    window: dict[datetime.datetime, tuple[int, int]] = {}
    for moment, (attempts, failures) in counts.items():
        hour = hour_of(moment)
        if start <= hour < start + hours * HOUR:
            had = window.get(hour, (0, 0))
            window[hour] = (had[0] + attempts, had[1] + failures)
    top = nice_top(max((a for a, _ in window.values()), default=0))
    slot = PLOT_WIDTH / hours
    base = TOP + PLOT_HEIGHT
    bars, labels = [], []
    for index in range(hours):
        hour = start + index * HOUR
        attempts, failures = window.get(hour, (0, 0))
        x = LEFT + index * slot + slot * (1 - BAR_FILL) / 2
        height = _scaled(attempts, top)
        failure_height = _scaled(min(failures, attempts), top)
        bars.append({"hour": hour, "attempts": attempts, "failures": failures,
                     "x": round(x, 2), "width": round(slot * BAR_FILL, 2),
                     "y": round(base - height, 2), "height": height,
                     "failure_y": round(base - failure_height, 2), "failure_height": failure_height,
                     "title": f"{hour:%H:%M}–{hour + HOUR:%H:%M} UTC: {attempts} attempts, {failures} failed"})
        if hour.hour % LABEL_EVERY == 0:
            labels.append({"x": round(LEFT + (index + 0.5) * slot, 2), "y": HEIGHT - 8, "text": f"{hour:%H}:00"})
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top_y": TOP,
            "base": base, "top": top, "bars": bars, "labels": labels,
            "attempts": sum(b["attempts"] for b in bars), "failures": sum(b["failures"] for b in bars)}


def _scaled(value: int, top: int) -> float:
    return round(PLOT_HEIGHT * value / top, 2)
