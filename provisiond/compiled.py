"""Statements peewee builds once and then keeps as SQL, for the reads asked all day.

A billing system polls ``GET /v1/services/{ref}`` and sends its token with every request; each
is one indexed read that the database answers in a few hundredths of a millisecond, while
peewee takes about a millisecond of Python to build its SQL from the query objects. A
``Statement`` builds its query the first time it runs on a kind of database (SQLite and
PostgreSQL write SQL differently), keeps the text, and afterwards only sends it with new values.

The query is written with peewee as usual; each value that changes between runs is a
``Statement.value(name)`` in it. Rows come back as tuples of Python values, converted by each
selected field as peewee would (``DateTimeField`` text on SQLite, ``JsonField``).
"""

from __future__ import annotations

from typing import Any, Callable

import peewee as pw

from provisiond.models import database


class Mark(str):
    """A value's place in a statement while it is built (peewee passes a text through as is)."""

    def __new__(cls, name: str):
        mark = super().__new__(cls, f"\x00{name}\x00")  # text no value holds
        mark.name = name
        return mark


class Statement:
    """``build(**marks)`` returns a peewee select whose changing values are the marks; the
    statement is built once per kind of database and run with ``rows(**values)``."""

    def __init__(self, build: Callable[..., pw.Select], *names: str):
        self.build, self.names = build, names
        self._compiled: dict[type, tuple[str, list, list]] = {}

    def rows(self, **values: Any) -> list[tuple]:
        """The rows for ``values`` (one for each name), each a tuple of Python values."""
        sql, params, converters = self._for(database.obj)
        bound = [values[p.name] if isinstance(p, Mark) else p for p in params]
        cursor = database.execute_sql(sql, bound)
        return [tuple(value if convert is None or value is None else convert(value)
                      for convert, value in zip(converters, row)) for row in cursor.fetchall()]

    def _for(self, db: pw.Database) -> tuple[str, list, list]:
        compiled = self._compiled.get(type(db))
        if compiled is None:
            marks = {name: Mark(name) for name in self.names}
            query = self.build(**marks)
            sql, params = query.sql()
            by_text = {str(mark): mark for mark in marks.values()}
            params = [by_text.get(p, p) if isinstance(p, str) else p for p in params]
            converters = [_converter(column) for column in query._returning]
            compiled = self._compiled[type(db)] = (sql, params, converters)
        return compiled


def _converter(column) -> Callable[[Any], Any] | None:
    """How peewee turns this column's database value into Python (None: as it comes)."""
    node = column.unwrap() if isinstance(column, pw.Alias) else column
    if isinstance(node, pw.Field):
        return node.python_value
    return None
