"""Plain SQL for the intake's hot path: what SQLAlchemy Core does for every row, done once per batch.

Why: a gateway process is bound by the GIL, and Core's executemany spends 30-50 µs of Python per row
(a parameter dict, then a bind processor for every datetime and JSON value) where the database
itself needs about 12. The intake writes four to six rows per message, so that overhead alone capped
a SQLite gateway at a few hundred messages a second. Here a statement's text and its per-column
converters are worked out once per (dialect, table, columns) from the table's own types; SQLite's
executemany gets plain tuples, PostgreSQL one statement over column arrays.

The stored values are exactly what Core would have written (SQLite datetimes as
`YYYY-MM-DD HH:MM:SS.ffffff` UTC text, JSON as `json.dumps` text, a JSON None as `null`), so rows
from here and from Core read back the same. A column with a Python-side default must be given
explicitly: its default could not run here, and silently storing NULL instead would be a bug.

IN lists are padded to a power of two with their last value, so the drivers' statement caches
(sqlite3's and asyncpg's prepared statements) see a handful of texts rather than one per batch size.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from store.models import UTCDateTime

ColumnConvert = Callable[[Sequence[Any]], list[Any]]
"""Turns one column's Python values into what the driver stores."""
_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]
"""Compiles column types to the names PostgreSQL casts arrays to."""


@dataclass(frozen=True, slots=True)
class Flavor:
    """How one dialect wants parameters written and values passed."""

    name: str
    paramstyle: str

    @property
    def sqlite(self) -> bool:
        return self.name == "sqlite"

    @property
    def arrays(self) -> bool:
        """Many rows as one statement over column arrays (`unnest`) instead of one per row:
        PostgreSQL spends ~17 µs of CPU a row that way against ~27 for executemany's binds."""
        return self.name == "postgresql"

    def placeholders(self, count: int, start: int = 1) -> list[str]:
        if self.paramstyle == "qmark":
            return ["?"] * count
        if self.paramstyle in ("numeric_dollar", "numeric"):
            mark = "$" if self.paramstyle == "numeric_dollar" else ":"
            return [f"{mark}{n}" for n in range(start, start + count)]
        if self.paramstyle in ("format", "pyformat"):
            return ["%s"] * count
        raise NotImplementedError(f"paramstyle {self.paramstyle}")


def flavor(conn: Connection) -> Flavor:
    return Flavor(conn.dialect.name, conn.dialect.paramstyle)


def sqlite_time(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite dialect stores it (UTC, naive, always with microseconds)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use an aware one")
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def aware_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use an aware one")
    return value


def parse_sqlite_time(value: str | datetime | None) -> datetime | None:
    """A stored SQLite datetime back as an aware UTC datetime (the reverse of `sqlite_time`)."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _time_column(convert: Callable[[datetime], Any]) -> ColumnConvert:
    """Most rows of a batch carry the same `now`: each distinct datetime is converted once."""

    def converted(values: Sequence[datetime | None]) -> list[Any]:
        once = {value: None if value is None else convert(value) for value in set(values)}
        return [once[value] for value in values]

    return converted


_EMPTY_JSON: dict[type, str] = {list: "[]", dict: "{}", type(None): "null"}
"""Most JSON values the intake writes are an empty list or object (media, meta): no encoder call."""


def _json_column(values: Sequence[Any]) -> list[str]:
    return [(None if value else _EMPTY_JSON.get(type(value))) or json.dumps(value) for value in values]


def _converter(column_type: Any, fl: Flavor) -> ColumnConvert | None:
    if isinstance(column_type, UTCDateTime):
        return _time_column(sqlite_time if fl.sqlite else aware_time)
    if isinstance(column_type, JSON):
        return _json_column
    return None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    columns: tuple[str, ...]
    converters: tuple[ColumnConvert | None, ...]
    columnar: bool = False
    """Parameters are one array per column (see `Flavor.arrays`), not one tuple per row."""

    def params(self, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]] | tuple[list[Any], ...]:
        """The rows' values in column order, converted column by column (C loops, not per value)."""
        take = itemgetter(*self.columns)
        taken = [take(row) for row in rows] if len(self.columns) > 1 else [(take(row),) for row in rows]
        columns: list[Sequence[Any]] = list(zip(*taken, strict=True))
        for index, convert in enumerate(self.converters):
            if convert is not None:
                columns[index] = convert(columns[index])
        if self.columnar:
            return tuple(list(column) for column in columns)
        return list(zip(*columns, strict=True))


def _converters(table: Table, columns: Sequence[str], fl: Flavor) -> tuple[ColumnConvert | None, ...]:
    return tuple(_converter(table.c[_known(table, name)].type, fl) for name in columns)


def _known(table: Table, name: str) -> str:
    """`name`, once it is known to be one of the table's columns: only those reach SQL text here."""
    if name not in table.c:
        raise KeyError(f"{table.name} has no column {name!r}")
    return name


def _arrays(table: Table, columns: Sequence[str], fl: Flavor) -> str:
    """`unnest($1::VARCHAR(32)[], $2::JSON[], ...)` for these columns."""
    marks = fl.placeholders(len(columns))
    typed = (
        f"{mark}::{table.c[name].type.compile(dialect=_POSTGRESQL)}[]"
        for mark, name in zip(marks, columns, strict=True)
    )
    return f"unnest({', '.join(typed)})"


@lru_cache(maxsize=256)
def _insert_plan(table: Table, columns: tuple[str, ...], fl: Flavor) -> _Plan:
    given = set(columns)
    for column in table.columns:
        default = column.default
        if column.name not in given and default is not None and not column.primary_key:
            raise ValueError(f"{table.name}.{column.name} has a Python-side default: give it explicitly")
    converters = _converters(table, columns, fl)
    names = ", ".join(columns)
    if fl.arrays:
        sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM {_arrays(table, columns, fl)}"  # noqa: S608
        return _Plan(sql, columns, converters, columnar=True)
    marks = ", ".join(fl.placeholders(len(columns)))
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 - own columns
    return _Plan(sql, columns, converters)


@lru_cache(maxsize=256)
def _update_plan(table: Table, key: str, columns: tuple[str, ...], fl: Flavor) -> _Plan:
    every = (*columns, key)
    converters = _converters(table, every, fl)
    if fl.arrays:
        assignments = ", ".join(f"{name} = v.{name}" for name in columns)
        sql = (
            f"UPDATE {table.name} SET {assignments} FROM {_arrays(table, every, fl)}"  # noqa: S608
            f" AS v({', '.join(every)}) WHERE {table.name}.{key} = v.{key}"
        )
        return _Plan(sql, every, converters, columnar=True)
    marks = fl.placeholders(len(every))
    assignments = ", ".join(f"{name} = {mark}" for name, mark in zip(columns, marks, strict=False))
    sql = f"UPDATE {table.name} SET {assignments} WHERE {key} = {marks[-1]}"  # noqa: S608 - own columns
    return _Plan(sql, every, converters)


def _execute(conn: Connection, sql: str, params: Any) -> Any:
    """`conn.exec_driver_sql(sql, params)` (a list of tuples: executemany), answered by the driver.

    On the SQLite writer (pysqlite) the statement goes straight to the sqlite3 connection, inside
    the transaction `conn` began: SQLAlchemy's execution context around a plain statement is ~15 µs
    of Python (27.6 against 12.0 µs for a two-value IN look-up), as much as SQLite's own work, and
    the intake runs about fifteen a batch. Errors come out as SQLAlchemy's, as they would have.
    """
    if conn.dialect.driver != "pysqlite":
        return conn.exec_driver_sql(sql, params)
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    try:
        if isinstance(params, list):
            return driver.executemany(sql, params)
        return driver.execute(sql, params)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error, dialect=conn.dialect) from exc


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (all rows give the same columns) in one driver executemany."""
    if not rows:
        return
    plan = _insert_plan(table, tuple(rows[0]), flavor(conn))
    _execute(conn, plan.sql, plan.params(rows))


def update_rows(conn: Connection, table: Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """`UPDATE table SET <the other columns> WHERE key = row[key]` for every row, in one statement.

    Each key once: in one statement over many rows, which of two updates to a row wins is undefined.
    """
    if not rows:
        return
    if len({row[key] for row in rows}) != len(rows):
        raise ValueError(f"update_rows: a {table.name}.{key} appears twice")
    columns = tuple(name for name in rows[0] if name != key)
    plan = _update_plan(table, key, columns, flavor(conn))
    _execute(conn, plan.sql, plan.params(rows))


def padded(values: Iterable[Any]) -> list[Any]:
    """`values` (deduplicated) padded to a power of two with its last value (see the module docstring)."""
    unique = list(dict.fromkeys(values))
    if not unique:
        return unique
    size = 1
    while size < len(unique):
        size *= 2
    return unique + [unique[-1]] * (size - len(unique))


def select_in(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    column: str,
    values: Iterable[Any],
    equal: Mapping[str, Any] | None = None,
    *,
    suffix: str = "",
) -> list[tuple[Any, ...]]:
    """`SELECT columns FROM table WHERE <equal...> AND column IN values`, as plain tuples.

    Values come back as the driver gives them: only select columns that need no decoding (ids,
    strings), or decode them with `decode_json` / `parse_sqlite_time`."""
    fixed = dict(equal or {})
    for name in (*columns, column, *fixed):
        _known(table, name)
    wanted = padded(values)
    if not wanted:
        return []
    fl = flavor(conn)
    marks = fl.placeholders(len(fixed) + len(wanted))
    where = [f"{name} = {mark}" for name, mark in zip(fixed, marks, strict=False)]
    where.append(f"{column} IN ({', '.join(marks[len(fixed) :])})")
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {' AND '.join(where)}{suffix}"  # noqa: S608
    return [tuple(row) for row in _execute(conn, sql, (*fixed.values(), *wanted))]


def fetch(conn: Connection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one plain SELECT written with `?` placeholders, on any dialect; datetimes in `params` are
    stored-format converted. For hot questions whose statement building would cost more than the
    database's answer (SQLAlchemy builds and caches a `select()` in ~100 µs, the driver runs it in ~30)."""
    fl = flavor(conn)
    if fl.paramstyle != "qmark":
        pieces = sql.split("?")
        marks = fl.placeholders(len(pieces) - 1)
        sql = pieces[0] + "".join(mark + piece for mark, piece in zip(marks, pieces[1:], strict=True))
    time = sqlite_time if fl.sqlite else aware_time
    values = tuple(time(p) if isinstance(p, datetime) else p for p in params)
    return [tuple(row) for row in _execute(conn, sql, values)]


def decode_json(conn: Connection, value: Any) -> Any:
    """A JSON column's value as read by `select_in`: SQLite gives text, asyncpg already decoded it."""
    return json.loads(value) if isinstance(value, str) and conn.dialect.name == "sqlite" else value
