"""Work done once a day across every daemon sharing the database (the overdue sweep, the sync,
the usage collection): a compare-and-set on one ``Setting`` row per kind of work, holding the
last day claimed."""

from __future__ import annotations

import datetime

from provisiond.models import Setting


def claim(key: str, day: datetime.date) -> bool:
    """True for the one caller that gets ``day`` for the work named ``key``."""
    value = day.isoformat()
    Setting.insert(key=key, value="").on_conflict_ignore().execute()
    return Setting.update(value=value).where((Setting.key == key) & (Setting.value < value)).execute() == 1


def last_day(key: str) -> datetime.date | None:
    """The last day claimed for the work named ``key``, or None before the first."""
    row = Setting.get_or_none(Setting.key == key)
    return datetime.date.fromisoformat(row.value) if row and row.value else None
