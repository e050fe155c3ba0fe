"""SMS end to end: signed Twilio webhooks into the real server, replies out through twilio's client
to a fake Twilio REST API on loopback, delivery receipts back in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from gateway.app import DISPATCHER, ENGINE
from store.models import Complaint, InboundMessage, OutboxMessage, StatusEvent
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.harness import ManualClock, RunningGateway, start_twilio_gateway

CITIZEN = "+6281234567890"
SMS_PATH = "/webhooks/twilio/sms"


@pytest.fixture
async def gateway(
    database_url: str, fake_twilio: FakeTwilio, clock: ManualClock
) -> AsyncIterator[RunningGateway]:
    """The gateway with the dispatcher driven by the test (`drain()`), so time is the test's."""
    running = await start_twilio_gateway(
        database_url,
        fake_twilio,
        clock=clock,
        background=False,
        OUTBOX__MAX_ATTEMPTS="3",
        DASHBOARD__ENABLED="false",
    )
    yield running
    await running.stop()


async def text_in(gw: RunningGateway, fake: FakeTwilio, body: str, sid: str | None = None) -> int:
    params = sms_params(From=CITIZEN, Body=body, MessageSid=sid, AccountSid=fake.account_sid)
    url = gw.url + SMS_PATH
    response = await gw.post_form(
        SMS_PATH, params, {"X-Twilio-Signature": sign(url, params, fake.auth_token)}
    )
    return response.status


async def reply_for(gw: RunningGateway, fake: FakeTwilio, body: str) -> str:
    before = len(fake.sent)
    assert await text_in(gw, fake, body) == 200
    await gw.app[DISPATCHER].drain()
    sent = await fake.wait_for_messages(before + 1)
    assert len(sent) == before + 1, "exactly one reply per message"
    assert sent[-1]["to"] == CITIZEN
    return str(sent[-1]["body"])


async def count(gw: RunningGateway, model: type) -> int:
    async with gw.app[ENGINE].connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def test_keyword_sms_becomes_a_tracked_complaint(
    gateway: RunningGateway, fake_twilio: FakeTwilio
) -> None:
    question = await reply_for(gateway, fake_twilio, "LaporHendi lampu jalan mati")
    assert "lokasi" in question.lower()
    confirm = await reply_for(gateway, fake_twilio, "di Jl. Pemuda depan Paragon")
    assert "YA" in confirm
    done = await reply_for(gateway, fake_twilio, "ya")
    async with gateway.app[ENGINE].connect() as conn:
        complaint = (await conn.execute(select(Complaint.__table__))).mappings().one()
        events = (await conn.execute(select(StatusEvent.__table__))).mappings().all()
    assert complaint["tracking_code"] in done
    assert complaint["status"] == "submitted"
    assert complaint["origin_channel"] == "twilio_sms"
    assert "Pemuda" in (complaint["location_text"] or "")
    assert complaint["category"] == "lampu_pju"
    assert [e["to_status"] for e in events] == ["submitted"]
    assert len(done) <= 306, "a confirmation fits two SMS segments"


async def test_replies_go_out_through_twilio_and_delivery_receipts_come_back(
    gateway: RunningGateway, fake_twilio: FakeTwilio
) -> None:
    await reply_for(gateway, fake_twilio, "LaporHendi jalan berlubang di Jl. Majapahit")
    sid = fake_twilio.sent[-1]["sid"]
    assert fake_twilio.sent[-1]["from"] == "+15005550006"
    url, form, headers = fake_twilio.status_callback_request(sid, "delivered")
    assert url == gateway.url + "/webhooks/twilio/status"
    response = await gateway.post_form("/webhooks/twilio/status", form, headers)
    assert response.status == 200
    async with gateway.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(OutboxMessage.__table__))).mappings().one()
    assert (row["provider_message_id"], row["status"]) == (sid, "delivered")
    # A late "sent" callback does not move the row backwards.
    url, form, headers = fake_twilio.status_callback_request(sid, "sent")
    assert (await gateway.post_form("/webhooks/twilio/status", form, headers)).status == 200
    async with gateway.app[ENGINE].connect() as conn:
        assert (await conn.execute(select(OutboxMessage.status))).scalar_one() == "delivered"


async def test_a_retried_webhook_is_acknowledged_but_processed_once(
    gateway: RunningGateway, fake_twilio: FakeTwilio
) -> None:
    sid = "SM" + "1" * 32
    assert await text_in(gateway, fake_twilio, "LaporHendi sampah menumpuk di gang 5", sid) == 200
    assert await text_in(gateway, fake_twilio, "LaporHendi sampah menumpuk di gang 5", sid) == 200
    await gateway.app[DISPATCHER].drain()
    assert await count(gateway, InboundMessage) == 1
    assert await count(gateway, OutboxMessage) == 1
    assert len(fake_twilio.sent) == 1


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda form, headers: headers.update({"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}), 403),
        (lambda form, headers: headers.pop("X-Twilio-Signature"), 403),
        (lambda form, headers: form.update({"Body": "tampered after signing"}), 403),
        (lambda form, headers: form.update({"Body": "x" * 70_000}), 413),
    ],
    ids=["forged-signature", "no-signature", "tampered-body", "oversized-body"],
)
async def test_bad_webhooks_are_refused_and_nothing_is_written(
    gateway: RunningGateway,
    fake_twilio: FakeTwilio,
    mutate,
    status: int,  # type: ignore[no-untyped-def]
) -> None:
    form = sms_params(From=CITIZEN, Body="LaporHendi jalan rusak", AccountSid=fake_twilio.account_sid)
    headers = {"X-Twilio-Signature": sign(gateway.url + SMS_PATH, form, fake_twilio.auth_token)}
    mutate(form, headers)
    response = await gateway.post_form(SMS_PATH, form, headers)
    assert response.status == status
    assert await count(gateway, InboundMessage) == 0
    assert await count(gateway, OutboxMessage) == 0


async def test_wrong_content_type_and_missing_fields_get_a_reason(
    gateway: RunningGateway, fake_twilio: FakeTwilio
) -> None:
    async with gateway.session.post(gateway.url + SMS_PATH, json={"Body": "hi"}) as response:
        assert response.status == 415
        assert "x-www-form-urlencoded" in (await response.json())["error"]
    form = sms_params(From=CITIZEN, Body="hi", AccountSid=fake_twilio.account_sid)
    del form["From"]
    headers = {"X-Twilio-Signature": sign(gateway.url + SMS_PATH, form, fake_twilio.auth_token)}
    async with gateway.session.post(gateway.url + SMS_PATH, data=form, headers=headers) as response:
        assert response.status == 400
        assert "From" in (await response.json())["error"]
    assert await count(gateway, InboundMessage) == 0


async def test_rate_limited_send_waits_for_retry_after_then_goes_once(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    fake_twilio.fail_next(1, status=429, code=20429, retry_after=120)
    assert await text_in(gateway, fake_twilio, "LaporHendi pohon tumbang di Jl. Setiabudi") == 200
    dispatcher = gateway.app[DISPATCHER]
    await dispatcher.drain()
    assert fake_twilio.sent == [] and len(fake_twilio.requests) == 1
    clock.advance(seconds=119)
    await dispatcher.drain()
    assert len(fake_twilio.requests) == 1, "Retry-After is honoured"
    clock.advance(seconds=2)
    await dispatcher.drain()
    assert len(fake_twilio.sent) == 1
    async with gateway.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(OutboxMessage.__table__))).mappings().one()
    assert (row["status"], row["attempts"]) == ("sent", 1)  # the throttled try is not an attempt


async def test_permanent_errors_give_up_with_the_reason_stored(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    fake_twilio.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")
    assert await text_in(gateway, fake_twilio, "LaporHendi banjir di Tlogosari") == 200
    await gateway.app[DISPATCHER].drain()
    clock.advance(hours=1)
    await gateway.app[DISPATCHER].drain()
    async with gateway.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(OutboxMessage.__table__))).mappings().one()
    assert row["status"] == "failed"
    assert row["error_code"] == "21211"
    assert len(fake_twilio.requests) == 1, "a permanent error is not retried"


async def test_server_errors_retry_with_backoff_until_attempts_run_out(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    fake_twilio.fail_next(5, status=500)
    assert await text_in(gateway, fake_twilio, "LaporHendi saluran mampet depan SD") == 200
    for _ in range(5):
        await gateway.app[DISPATCHER].drain()
        clock.advance(hours=1)
    async with gateway.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(OutboxMessage.__table__))).mappings().one()
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert len(fake_twilio.requests) == 3 and fake_twilio.sent == []
