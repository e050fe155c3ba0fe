"""Delivery receipts on a real database: forward-only, early ones kept, window failures re-queued."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from adapters.base import Address, AddressKind, DeliveryStatus, OutboundMessage, StatusUpdate
from adapters.whatsapp.window import SessionWindows, needs_template, template_for
from gateway.outbox import OutcomeRecorder
from gateway.receipts import apply_receipts
from store import models
from store.db import Database
from store.migrate import upgrade
from tests.harness import ManualClock

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await upgrade(db.engine)
    yield db
    await db.dispose()


async def owed_row(db: Database, *, status: str = "sending", provider_id: str | None = None) -> int:
    def insert(conn):  # type: ignore[no-untyped-def]
        return conn.execute(
            models.outbox.insert().returning(models.outbox.c.id),
            {
                "channel": "twilio_whatsapp",
                "to_kind": "phone",
                "to_address": "+6281234567890",
                "text": "Aduan LPR-7K3M9Q sedang dikerjakan",
                "media": [],
                "kind": "status_update",
                "template_vars": {},
                "meta": {},
                "status": status,
                "attempts": 1,
                "next_attempt_at": NOW,
                "provider_message_id": provider_id,
                "created_at": NOW,
                "updated_at": NOW,
            },
        ).scalar_one()

    return int(await db.run(insert))


def receipt(provider_id: str, status: DeliveryStatus, code: str | None = None) -> StatusUpdate:
    return StatusUpdate("twilio_whatsapp", provider_id, status, NOW, status.value, error_code=code)


async def outbox_rows(db: Database) -> list[dict[str, object]]:
    async with db.engine.connect() as conn:
        return [
            dict(r)
            for r in (await conn.execute(select(models.outbox).order_by(models.outbox.c.id))).mappings()
        ]


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        ([DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ], "read"),
        ([DeliveryStatus.READ, DeliveryStatus.DELIVERED, DeliveryStatus.SENT], "read"),
        ([DeliveryStatus.DELIVERED, DeliveryStatus.FAILED], "delivered"),
        ([DeliveryStatus.SENT, DeliveryStatus.UNDELIVERED], "undelivered"),
        ([DeliveryStatus.QUEUED], "sent"),
    ],
)
async def test_statuses_only_move_forward(db: Database, sequence: list[DeliveryStatus], final: str) -> None:
    await owed_row(db, status="sent", provider_id="SMa")
    for status in sequence:
        await db.run(lambda conn, s=status: apply_receipts(conn, [receipt("SMa", s)], NOW))
    assert [r["status"] for r in await outbox_rows(db)] == [final]


async def test_a_receipt_faster_than_our_commit_waits_for_its_row(db: Database) -> None:
    row_id = await owed_row(db)
    await db.run(lambda conn: apply_receipts(conn, [receipt("SMearly", DeliveryStatus.DELIVERED)], NOW))
    assert (await outbox_rows(db))[0]["status"] == "sending"
    await OutcomeRecorder(db).record(
        row_id,
        {
            "status": "sent",
            "provider_message_id": "SMearly",
            "sent_at": NOW,
            "send_started_at": None,
            "lease_owner": None,
            "lease_until": None,
            "last_error": None,
            "error_code": None,
            "next_attempt_at": NOW,
            "updated_at": NOW,
        },
    )
    assert (await outbox_rows(db))[0]["status"] == "delivered"
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(models.early_receipts))).all() == []


async def test_a_window_failure_queues_the_message_again_as_a_template(db: Database) -> None:
    await owed_row(db, status="sent", provider_id="SMlate")
    failed = receipt("SMlate", DeliveryStatus.FAILED, code="63016")
    await db.run(lambda conn: apply_receipts(conn, [failed], NOW))
    await db.run(lambda conn: apply_receipts(conn, [failed], NOW))  # the provider retries its callback
    original, again = await outbox_rows(db)
    assert original["status"] == "failed" and original["error_code"] == "63016"
    assert again["status"] == "pending" and again["text"] == original["text"]
    assert again["meta"] == {"window_closed": True, "retry_of": original["id"]}

    message = OutboundMessage(
        int(str(again["id"])),
        "twilio_whatsapp",
        Address(AddressKind.PHONE, "+6281234567890"),
        str(again["text"]),
        kind="status_update",
        metadata={"window_closed": True},
    )
    windows = SessionWindows(ManualClock())
    windows.saw(message.to)  # even a window this process believes open: the provider said closed
    assert needs_template(message, {"*": "HXfallback"}, windows)
    assert template_for(message, {"*": "HXfallback"}) == "HXfallback"
    assert template_for(message, {"status_update": "HXstatus", "*": "HXfallback"}) == "HXstatus"
