"""The inbound pipeline on a real database with the real conversation machine: group commit,
dedup, identity across channels, isolation of a failing message, and clock ticks."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.base import Address, AddressKind, InboundMessage, Medium
from conversation import api as conv
from conversation.machine import step
from gateway.effects import Stepper
from gateway.pipeline import Ingestor, IngestUnavailable
from gateway.timers import ConversationTimers
from store.db import Database
from store.migrate import upgrade
from store.models import ChannelIdentity, Complaint, ComplaintFollower, Conversation, OutboxMessage, Reporter
from store.models import InboundMessage as InboundRow
from tests.harness import ManualClock

PHONE = "+6281234567890"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await upgrade(db.engine)
    yield db
    await db.dispose()


@pytest.fixture
def engine(db: Database) -> AsyncEngine:
    return db.engine


def make_ingestor(db: Database, clock: ManualClock, new_code: Callable[[], str] | None = None) -> Ingestor:
    stepper = Stepper(step, conv.Settings(), new_code) if new_code else Stepper(step, conv.Settings())
    return Ingestor(db, stepper, clock=clock, writers=2)


def sms(
    text: str,
    sender: str = PHONE,
    channel: str = "twilio_sms",
    medium: Medium = Medium.SMS,
    sid: str | None = None,
    at: ManualClock | None = None,
) -> InboundMessage:
    from datetime import UTC, datetime

    return InboundMessage(
        channel=channel,
        medium=medium,
        provider_message_id=sid or uuid.uuid4().hex,
        sender=Address(AddressKind.PHONE, sender),
        received_at=at() if at else datetime.now(UTC),
        text=text,
    )


async def rows(engine: AsyncEngine, table: type, *where: object) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(table.__table__).where(*where))).mappings()]  # type: ignore[attr-defined]


async def scalar(engine: AsyncEngine, query: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())  # type: ignore[call-overload]


async def test_concurrent_webhooks_share_commits_and_all_land(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    ingestor = make_ingestor(db, clock)
    await ingestor.start()
    try:
        messages = [
            sms("LaporHendi lampu PJU mati di Jl. Pemuda", sender=f"+62812000{i:05d}", at=clock)
            for i in range(120)
        ]
        await asyncio.gather(*(ingestor.ingest([m]) for m in messages))
    finally:
        await ingestor.stop()
    assert await scalar(engine, select(func.count()).select_from(InboundRow)) == 120
    assert await scalar(engine, select(func.count()).select_from(Reporter)) == 120
    assert await scalar(engine, select(func.count()).select_from(OutboxMessage)) == 120
    assert ingestor.stats.batches < 120, "concurrent requests were grouped into shared commits"


async def test_a_handler_that_stops_waiting_loses_nothing_and_holds_up_no_one(
    db: Database, engine: AsyncEngine, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook handler cancelled while its batch commits (a shutdown, a provider hanging up):
    its message is still stored, and the handlers after it in the batch get their answer."""
    ingestor = Ingestor(db, Stepper(step, conv.Settings()), clock=clock)
    await ingestor.start()
    try:
        gone = [
            asyncio.create_task(ingestor.ingest([sms("lampu mati", sender=f"+62812111{i:05d}", at=clock)]))
            for i in range(3)
        ]
        last = asyncio.create_task(
            ingestor.ingest([sms("jalan berlubang di Jl. Pemuda", sender="+6281222200000", at=clock)])
        )
        ingestor.on_committed.append(lambda: [task.cancel() for task in gone])
        async with asyncio.timeout(30):  # a writer that died on a cancelled handler never answers
            await last
        for task in gone:
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await ingestor.stop()
    assert await scalar(engine, select(func.count()).select_from(InboundRow)) == 4
    assert ingestor.stats.batches == 1
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_duplicates_in_one_batch_and_across_batches_are_processed_once(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    ingestor = make_ingestor(db, clock)
    await ingestor.start()
    try:
        message = sms("LaporHendi jalan berlubang di Jl. Majapahit", sid="SMdup", at=clock)
        await asyncio.gather(*(ingestor.ingest([message]) for _ in range(5)))
        await ingestor.ingest([message])
    finally:
        await ingestor.stop()
    assert await scalar(engine, select(func.count()).select_from(InboundRow)) == 1
    assert await scalar(engine, select(func.count()).select_from(OutboxMessage)) == 1
    assert ingestor.stats.duplicates == 5


async def test_same_number_on_sms_then_whatsapp_is_one_reporter_and_one_conversation(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    ingestor = make_ingestor(db, clock)
    await ingestor.start()
    try:
        await ingestor.ingest([sms("LaporHendi lampu PJU mati", at=clock)])
        clock.advance(minutes=2)
        await ingestor.ingest(
            [sms("di Jl. Pemuda depan Paragon", channel="twilio_whatsapp", medium=Medium.WHATSAPP, at=clock)]
        )
    finally:
        await ingestor.stop()
    assert await scalar(engine, select(func.count()).select_from(Reporter)) == 1
    assert await scalar(engine, select(func.count()).select_from(ChannelIdentity)) == 1
    replies = await rows(engine, OutboxMessage)
    assert [r["channel"] for r in sorted(replies, key=lambda r: r["id"])] == ["twilio_sms", "twilio_whatsapp"]
    assert "Pemuda" in str(replies[-1]["text"]), "the WhatsApp message continued the SMS conversation"


async def test_a_failing_message_does_not_take_its_batch_down(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    """A complaint code that collides with an existing one fails its own message only."""
    taken = "LPR-AAAAAA"
    codes = itertools.chain([taken], itertools.repeat(taken))
    ingestor = make_ingestor(db, clock, new_code=lambda: next(codes))
    await ingestor.start()
    try:
        await ingestor.ingest(
            [sms("LaporHendi lampu PJU mati di Jl. Pemuda", sender="+6281200000001", at=clock)]
        )
        await ingestor.ingest([sms("YA", sender="+6281200000001", at=clock)])
        assert await scalar(engine, select(func.count()).select_from(Complaint)) == 1
        # Now a second citizen confirms while others just start drafts: only the confirmation collides.
        await ingestor.ingest(
            [sms("LaporHendi banjir di Tlogosari Kulon", sender="+6281200000002", at=clock)]
        )
        results = await asyncio.gather(
            ingestor.ingest([sms("YA", sender="+6281200000002", at=clock)]),
            *(
                ingestor.ingest([sms("LaporHendi sampah di gang 5", sender=f"+62812000001{i:02d}", at=clock)])
                for i in range(10)
            ),
            return_exceptions=True,
        )
    finally:
        await ingestor.stop()
    assert isinstance(results[0], IngestUnavailable)
    assert all(r is None for r in results[1:])
    assert await scalar(engine, select(func.count()).select_from(InboundRow)) == 2 + 1 + 10


async def test_idle_conversation_gets_a_reminder_on_its_channel(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    ingestor = make_ingestor(db, clock)
    stepper = Stepper(step, conv.Settings())
    woken: list[bool] = []
    timers = ConversationTimers(db, stepper, clock=clock, on_committed=lambda: woken.append(True))
    await ingestor.start()
    try:
        await ingestor.ingest(
            [sms("LaporHendi lampu PJU mati", channel="twilio_whatsapp", medium=Medium.WHATSAPP, at=clock)]
        )
    finally:
        await ingestor.stop()
    assert await timers.run_due() == 0
    clock.advance(minutes=31)
    assert await timers.run_due() == 1
    assert woken == [True]
    replies = sorted(await rows(engine, OutboxMessage), key=lambda r: r["id"])
    assert len(replies) == 2 and replies[-1]["channel"] == "twilio_whatsapp"
    assert replies[-1]["to_address"] == PHONE
    timer = (await rows(engine, Conversation))[0]["timer_at"]
    assert timer is not None and timer > clock() + timedelta(hours=1), (
        "next tick is the expiry, not another reminder"
    )


async def test_a_second_report_of_the_same_problem_is_offered_the_first(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    ingestor = make_ingestor(db, clock)
    first, second, elsewhere = "+6281200000011", "+6281200000012", "+6281200000013"
    await ingestor.start()
    try:
        for sender in (first, second, elsewhere):
            place = "Jl. Pemuda depan Paragon" if sender != elsewhere else "Jl. Majapahit dekat Gayamsari"
            await ingestor.ingest([sms(f"LaporHendi lampu PJU mati di {place}", sender=sender, at=clock)])
            await ingestor.ingest([sms("YA", sender=sender, at=clock)])
            clock.advance(minutes=5)
        complaints = await rows(engine, Complaint)
        assert len(complaints) == 2, "the second citizen was asked first, not filed"
        original = min(complaints, key=lambda c: int(str(c["id"])))
        question = sorted(await rows(engine, OutboxMessage), key=lambda r: int(str(r["id"])))[3]
        assert question["to_address"] == second
        assert str(original["tracking_code"]) in str(question["text"]) and "YA" in str(question["text"])
        await ingestor.ingest([sms("ya", sender=second, at=clock)])
    finally:
        await ingestor.stop()
    assert await scalar(engine, select(func.count()).select_from(Complaint)) == 2
    followers = await rows(engine, ComplaintFollower)
    assert [f["complaint_id"] for f in followers] == [original["id"]]


def telegram(
    text: str | None, user: str = "777000111", *, contact: str | None = None, at: ManualClock
) -> InboundMessage:
    return InboundMessage(
        channel="telegram",
        medium=Medium.TELEGRAM,
        provider_message_id=uuid.uuid4().hex,
        sender=Address(AddressKind.TELEGRAM, user),
        received_at=at(),
        text=text,
        extra={"contact_phone": contact} if contact else {},
    )


async def test_sharing_a_phone_number_on_telegram_joins_the_sms_reporter(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    ingestor = make_ingestor(db, clock)
    await ingestor.start()
    try:
        await ingestor.ingest([sms("LaporHendi lampu PJU mati di Jl. Pemuda", at=clock)])
        await ingestor.ingest([sms("YA", at=clock)])
        await ingestor.ingest([telegram("halo", at=clock)])
        assert await scalar(engine, select(func.count()).select_from(Reporter)) == 2
        await ingestor.ingest([telegram(None, contact=PHONE, at=clock)])
        await ingestor.ingest([telegram("STATUS", at=clock)])
    finally:
        await ingestor.stop()
    identities = await rows(engine, ChannelIdentity)
    assert {i["kind"] for i in identities} == {"phone", "telegram"}
    assert len({i["reporter_id"] for i in identities}) == 1, "both identities belong to one reporter"
    replies = sorted(
        await rows(engine, OutboxMessage, OutboxMessage.channel == "telegram"),
        key=lambda r: int(str(r["id"])),
    )
    assert replies[-2]["kind"] == "contact_saved"
    code = (await rows(engine, Complaint))[0]["tracking_code"]
    assert str(code) in str(replies[-1]["text"]), "STATUS on Telegram lists the complaint filed by SMS"


async def test_a_new_number_shared_on_telegram_becomes_a_second_identity(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    ingestor = make_ingestor(db, clock)
    await ingestor.start()
    try:
        await ingestor.ingest([telegram(None, contact="+6281299990000", at=clock)])
    finally:
        await ingestor.stop()
    identities = await rows(engine, ChannelIdentity)
    assert sorted((i["kind"], i["address"]) for i in identities) == [
        ("phone", "+6281299990000"),
        ("telegram", "777000111"),
    ]
    assert len({i["reporter_id"] for i in identities}) == 1


async def test_a_flooding_sender_is_stored_but_slowed_and_others_are_not(
    db: Database, engine: AsyncEngine, clock: ManualClock
) -> None:
    from gateway.ratelimit import SenderLimiter

    ingestor = Ingestor(
        db, Stepper(step, conv.Settings()), clock=clock, limiter=SenderLimiter(per_minute=6, burst=3)
    )
    flooder, neighbour = "+6281200000666", "+6281200000777"
    await ingestor.start()
    try:
        for i in range(8):
            await ingestor.ingest([sms(f"LaporHendi sampah menumpuk {i}", sender=flooder, at=clock)])
        await ingestor.ingest([sms("LaporHendi lampu PJU mati di Jl. Pemuda", sender=neighbour, at=clock)])
        clock.advance(minutes=1)
        await ingestor.ingest([sms("BATAL", sender=flooder, at=clock)])
    finally:
        await ingestor.stop()
    stored = await rows(engine, InboundRow)
    assert len(stored) == 10, "every message is kept"
    replies = await rows(engine, OutboxMessage, OutboxMessage.to_address == flooder)
    kinds = [r["kind"] for r in sorted(replies, key=lambda r: int(str(r["id"])))]
    assert kinds.count("slow_down") == 1, "told once, politely"
    assert len(kinds) == 3 + 1 + 1, "three answered, one slow-down notice, then answered again after a pause"
    assert len(await rows(engine, OutboxMessage, OutboxMessage.to_address == neighbour)) == 1
