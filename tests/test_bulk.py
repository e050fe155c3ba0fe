"""store.bulk: plain-SQL writes store exactly what SQLAlchemy Core stores, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from store import models
from store.bulk import (
    decode_json,
    fetch,
    insert_rows,
    padded,
    parse_sqlite_time,
    select_in,
    sqlite_time,
    update_rows,
)
from store.db import Database
from store.migrate import upgrade

JAKARTA = timezone(timedelta(hours=7))
ON_THE_SECOND = datetime(2026, 10, 2, 9, 30, tzinfo=JAKARTA)
"""No microseconds: `isoformat` would drop them, SQLAlchemy's SQLite format never does."""
LATER = datetime(2026, 10, 2, 3, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


def outbox_row(n: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "channel": "twilio_sms",
        "to_kind": "phone",
        "to_address": f"hash-{n}",
        "to_address_enc": None,
        "text": "Aduan LPR-7K3M9Q diterima 🙏",
        "media": [{"url": "media/1.jpg", "content_type": "image/jpeg"}],
        "reply_to": None,
        "kind": "reply",
        "template_vars": {},
        "meta": {"sms_suffix": "https://x/lacak/LPR-7K3M9Q", "n": n},
        "complaint_id": None,
        "reporter_id": None,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": ON_THE_SECOND,
        "created_at": LATER,
        "updated_at": ON_THE_SECOND,
    }
    return row | changes


def read_back(conn: Connection, address: str) -> dict[str, Any]:
    table = models.outbox
    row = conn.execute(select(table).where(table.c.to_address == address)).mappings().one()
    return {key: value for key, value in row.items() if key != "id"}


STORED_AS_TEXT = "SELECT created_at, next_attempt_at, media, meta, template_vars, lease_until FROM outbox"


async def test_rows_written_in_bulk_read_back_exactly_like_core_rows(db: Database) -> None:
    def work(conn: Connection) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
        conn.execute(models.outbox.insert(), [outbox_row(1)])
        insert_rows(conn, models.outbox, [outbox_row(2), outbox_row(3, text="dua")])
        core, bulk = read_back(conn, "hash-1"), read_back(conn, "hash-2")
        raw = [tuple(r) for r in conn.exec_driver_sql(STORED_AS_TEXT + " ORDER BY id")]
        return core, bulk, raw

    core, bulk, raw = await db.run(work)
    assert bulk | {"to_address": "hash-1", "meta": core["meta"]} == core
    assert bulk["meta"] == {"sms_suffix": "https://x/lacak/LPR-7K3M9Q", "n": 2}
    assert bulk["next_attempt_at"] == ON_THE_SECOND and bulk["next_attempt_at"].tzinfo is not None
    if db.sqlite:  # the very same text on disk, so ordering and comparisons mix both writers' rows
        core_raw, bulk_raw = raw[0], raw[1]
        assert core_raw[:2] == bulk_raw[:2] == ("2026-10-02 03:00:00.123456", "2026-10-02 02:30:00.000000")
        assert core_raw[2] == bulk_raw[2] and core_raw[4] == bulk_raw[4] == "{}"


async def test_core_comparisons_find_bulk_rows(db: Database) -> None:
    def work(conn: Connection) -> list[str]:
        insert_rows(
            conn, models.outbox, [outbox_row(1), outbox_row(2, created_at=LATER + timedelta(hours=1))]
        )
        table = models.outbox
        query = select(table.c.to_address).where(table.c.created_at > LATER).order_by(table.c.id)
        return list(conn.execute(query).scalars())

    assert await db.run(work) == ["hash-2"]


async def test_update_rows_changes_only_the_keyed_rows(db: Database) -> None:
    def work(conn: Connection) -> list[tuple[Any, ...]]:
        insert_rows(conn, models.outbox, [outbox_row(n) for n in range(1, 4)])
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM outbox ORDER BY id")]
        update_rows(
            conn,
            models.outbox,
            "id",
            [
                {"id": ids[0], "status": "sent", "meta": {"done": True}, "updated_at": LATER},
                {"id": ids[2], "status": "failed", "meta": {}, "updated_at": LATER},
            ],
        )
        table = models.outbox
        query = select(table.c.status, table.c.meta, table.c.updated_at).order_by(table.c.id)
        return [tuple(row) for row in conn.execute(query)]

    assert await db.run(work) == [
        ("sent", {"done": True}, LATER),
        ("pending", {"sms_suffix": "https://x/lacak/LPR-7K3M9Q", "n": 2}, ON_THE_SECOND),
        ("failed", {}, LATER),
    ]


async def test_select_in_answers_each_match_once_whatever_the_padding(db: Database) -> None:
    def work(conn: Connection) -> tuple[list[Any], list[Any], Any]:
        insert_rows(
            conn,
            models.outbox,
            [outbox_row(n, channel="telegram" if n == 4 else "twilio_sms") for n in range(1, 6)],
        )
        wanted = ["hash-1", "hash-3", "hash-4", "hash-9", "hash-3"]  # 4 distinct, one absent, one repeated
        found = select_in(
            conn, models.outbox, ("to_address",), "to_address", wanted, {"channel": "twilio_sms"}
        )
        metas = select_in(conn, models.outbox, ("meta",), "to_address", ["hash-5"])
        return sorted(address for (address,) in found), metas, decode_json(conn, metas[0][0])

    found, metas, meta = await db.run(work)
    assert found == ["hash-1", "hash-3"]
    assert len(metas) == 1 and meta == {"sms_suffix": "https://x/lacak/LPR-7K3M9Q", "n": 5}


def test_padding_keeps_statement_texts_few() -> None:
    assert padded([]) == []
    assert padded(["a"]) == ["a"]
    assert padded(["a", "b", "c"]) == ["a", "b", "c", "c"]
    assert padded(["a", "a", "b"]) == ["a", "b"]
    assert {len(padded(range(n))) for n in range(1, 257)} == {1, 2, 4, 8, 16, 32, 64, 128, 256}


async def test_fetch_writes_placeholders_and_times_for_the_dialect(db: Database) -> None:
    def work(conn: Connection) -> list[tuple[Any, ...]]:
        insert_rows(conn, models.outbox, [outbox_row(1), outbox_row(2, created_at=LATER + timedelta(days=1))])
        return fetch(
            conn,
            "SELECT to_address, created_at FROM outbox WHERE channel = ? AND created_at > ?",
            "twilio_sms",
            LATER.astimezone(JAKARTA),
        )

    rows = await db.run(work)
    assert [(address, parse_sqlite_time(at)) for address, at in rows] == [
        ("hash-2", LATER + timedelta(days=1))
    ]


async def test_a_column_with_a_python_default_must_be_given(db: Database) -> None:
    """complaints.kecamatan is computed by its column default, which plain SQL cannot run: leaving it
    out would store NULL for every complaint the intake files."""
    complaint = {
        "tracking_code": "LPR-7K3M9Q",
        "reporter_id": None,
        "origin_channel": "twilio_sms",
        "origin_medium": "sms",
        "description": "lampu mati",
        "created_at": LATER,
    }

    def work(conn: Connection) -> None:
        insert_rows(conn, models.complaints, [complaint])

    with pytest.raises(ValueError, match=r"complaints\.\w+ has a Python-side default"):
        await db.run(work)


async def test_naive_datetimes_are_refused(db: Database) -> None:
    def work(conn: Connection) -> None:
        insert_rows(conn, models.outbox, [outbox_row(1, created_at=datetime(2026, 1, 1))])

    with pytest.raises(ValueError, match="naive datetime"):
        await db.run(work)


def test_unknown_columns_never_reach_sql() -> None:
    with pytest.raises(KeyError, match="no column"):
        select_in(None, models.outbox, ("id; DROP TABLE outbox",), "id", [1])  # type: ignore[arg-type]


async def test_update_rows_refuses_a_row_twice(db: Database) -> None:
    """One statement over many rows applies one of two updates to a row, and which is undefined."""

    def work(conn: Connection) -> None:
        rows = [{"id": 1, "status": "sent"}, {"id": 1, "status": "failed"}]
        update_rows(conn, models.outbox, "id", rows)

    with pytest.raises(ValueError, match=r"outbox\.id appears twice"):
        await db.run(work)


def test_json_values_are_written_as_json_dumps_writes_them() -> None:
    """Empty lists and objects skip the encoder; every value still reads back the same text."""
    from store.bulk import _json_column

    values: list[Any] = [[], {}, None, 0, "", False, 0.0, [1], {"a": [None]}, "teks", [[]], {"": {}}]
    assert _json_column(values) == [json.dumps(value) for value in values]


async def test_a_refused_row_raises_sqlalchemys_error_and_writes_nothing(db: Database) -> None:
    """The pipeline retries races and isolates bad messages by SQLAlchemy's IntegrityError: the
    driver's own error (SQLite's statements go to the driver directly) must come out as that."""
    row = {
        "channel": "twilio_sms",
        "provider_message_id": "SM1",
        "identity_id": None,
        "reporter_id": None,
        "complaint_id": None,
        "text": "lampu mati",
        "media": [],
        "location": None,
        "received_at": LATER,
        "created_at": LATER,
    }

    def twice(conn: Connection) -> None:
        insert_rows(conn, models.inbound_messages, [row])
        insert_rows(conn, models.inbound_messages, [row])

    with pytest.raises(IntegrityError):
        await db.run(twice)
    table = models.inbound_messages
    assert await db.run(lambda conn: select_in(conn, table, ("id",), "channel", ["twilio_sms"])) == []


@given(
    st.datetimes(timezones=st.sampled_from([UTC, JAKARTA, timezone(timedelta(hours=-9, minutes=-30))]))
)
def test_sqlite_times_are_sqlalchemys_format(value: datetime) -> None:
    utc = value.astimezone(UTC) if value.utcoffset() else value
    expected = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}"
    )
    assert sqlite_time(value) == expected
