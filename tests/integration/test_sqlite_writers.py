"""Two writers on the SQLite file: the second waits its turn, it does not fail.

A transaction that reads, then writes, failed at once with "database is locked" when another
connection had committed after its read (SQLite cannot wait there; db.SqliteDatabase). Seen
once in test_daemon under load. Every transaction now takes the write lock at BEGIN.
"""

from __future__ import annotations

import threading

import pytest

from provisiond import tokens
from provisiond.models import ApiToken


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_writer_that_read_first_is_not_refused_when_another_writes_meanwhile(database):
    written, problems = threading.Event(), []

    def other_writer():
        try:
            tokens.create("second")   # reads (is the name taken?), then inserts
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escaped
            problems.append(exc)
        finally:
            written.set()

    with database.atomic():
        assert ApiToken.select().count() == 0           # this transaction reads first
        other = threading.Thread(target=other_writer)
        other.start()
        written.wait(2)   # now it waits for this transaction; before, it committed here
        ApiToken.create(name="first", token_hash="f" * 64)  # then writes: "database is locked" before
    other.join(60)
    assert not problems, problems
    assert sorted(t.name for t in ApiToken.select()) == ["first", "second"]
