"""The same webhooks delivered three times, one after another and all at once.

Providers re-deliver whenever they did not see our 2xx in time, and two deliveries of one message
can race through two connections. Whatever the timing: one stored message, one complaint per
conversation, one reply per message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from gateway.addressbook import AddressBook
from gateway.app import ENGINE, WORKFLOW
from store import models
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.fault.support import SMS_PATH, citizen, replies_by_recipient
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

PROBLEMS = [
    ("lampu jalan mati", "Jl. Pemuda depan Paragon"),
    ("jalan berlubang besar", "Jl. Majapahit dekat pom bensin"),
    ("sampah menumpuk", "Gang Mawar 5 Tembalang"),
    ("got mampet", "Jl. Pandanaran 12"),
    ("pohon tumbang", "Jl. Sisingamangaraja depan SMA"),
    ("banjir setinggi lutut", "Kaligawe dekat pasar"),
    ("lampu lalu lintas rusak", "Simpang Lima sisi timur"),
    ("trotoar rusak", "Jl. Gajahmada depan hotel"),
]
TURNS = 3
DELIVERIES = 3


@pytest.fixture
async def gateway(database_url: str, fake_twilio: FakeTwilio) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__TWILIO__ACCOUNT_SID=fake_twilio.account_sid,
        CHANNELS__TWILIO__AUTH_TOKEN=fake_twilio.auth_token,
        CHANNELS__TWILIO__SMS_FROM="+15005550006",
        CHANNELS__TWILIO__API_BASE=fake_twilio.base_url,
        DASHBOARD__ENABLED="false",
    )
    running = await start_gateway(config, sock)
    yield running
    await running.stop()


async def deliver(gateway: RunningGateway, fake: FakeTwilio, form: dict[str, str], *, at_once: bool) -> None:
    headers = {"X-Twilio-Signature": sign(gateway.url + SMS_PATH, form, fake.auth_token)}
    if at_once:
        responses = await asyncio.gather(
            *(gateway.post_form(SMS_PATH, form, headers) for _ in range(DELIVERIES))
        )
    else:
        responses = [await gateway.post_form(SMS_PATH, form, headers) for _ in range(DELIVERIES)]
    assert [r.status for r in responses] == [200] * DELIVERIES


def turns(sender: str) -> list[str]:
    what, where = PROBLEMS[int(sender[-2:])]
    return [f"LaporHendi {what}", f"di {where}", "ya"]


async def conversations(
    gateway: RunningGateway, fake: FakeTwilio, sequential: list[str], concurrent: list[str]
) -> None:
    """Whole complaints, every turn delivered three times; each next turn only once every citizen
    has the reply to the previous one, as a citizen answers the question they were sent."""
    senders = sequential + concurrent
    for turn in range(TURNS):
        deliveries = []
        for sender in senders:
            form = sms_params(From=sender, Body=turns(sender)[turn], AccountSid=fake.account_sid)
            deliveries.append(deliver(gateway, fake, form, at_once=sender in concurrent))
        await asyncio.gather(*deliveries)
        await fake.wait_for_messages(len(senders) * (turn + 1), timeout=30)


async def test_webhooks_delivered_three_times_make_one_of_everything(
    gateway: RunningGateway, fake_twilio: FakeTwilio
) -> None:
    sequential = [citizen(i) for i in range(4)]
    concurrent = [citizen(i) for i in range(4, 8)]
    await conversations(gateway, fake_twilio, sequential, concurrent)
    senders = sequential + concurrent
    async with gateway.app[ENGINE].connect() as conn:
        inbound = Counter(
            str(s) for s in (await conn.execute(select(models.InboundMessage.provider_message_id))).scalars()
        )
        complaints = (
            await conn.execute(
                select(models.Complaint.status, func.count()).group_by(models.Complaint.status)
            )
        ).all()
        # Recipients are stored as their keyed lookup hash (and encrypted): count by the hash.
        book = AddressBook(gateway.app[WORKFLOW].settings.vault)
        keys = {book.key("phone", sender): sender for sender in senders}
        owed = Counter(
            keys[str(to)]
            for to in (
                await conn.execute(
                    select(models.outbox.c.to_address).where(models.outbox.c.to_address.in_(list(keys)))
                )
            ).scalars()
        )
    assert len(inbound) == len(senders) * TURNS and set(inbound.values()) == {1}
    assert [tuple(row) for row in complaints] == [("submitted", len(senders))]
    assert owed == dict.fromkeys(senders, TURNS)
    await fake_twilio.wait_for_messages(len(senders) * TURNS)
    assert replies_by_recipient(fake_twilio) == dict.fromkeys(senders, TURNS)
