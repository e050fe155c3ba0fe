"""Crash and restart: every acknowledged message is kept and every owed reply is sent exactly once.

The gateway runs as a real child process (`python -m gateway serve`), killed with SIGKILL or stopped
with SIGTERM while replies are owed and one is in flight at a fake Twilio that holds its answer.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aiohttp

from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.harness import GatewayProcess, bound_socket, migrate

CITIZENS = ["+6281200000001", "+6281200000002", "+6281200000003"]


def gateway_process(database_url: str, fake: FakeTwilio, tmp_path: Path) -> GatewayProcess:
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {
        "LAPOR_DATABASE__URL": database_url,
        "LAPOR_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": fake.account_sid,
        "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": fake.auth_token,
        "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        "LAPOR_CHANNELS__TWILIO__API_BASE": fake.base_url,
        "LAPOR_OUTBOX__CONCURRENCY": "1",
        "LAPOR_OUTBOX__BATCH_SIZE": "1",
        "LAPOR_OUTBOX__LEASE_SECONDS": "2",
        "LAPOR_OUTBOX__POLL_SECONDS": "0.2",
        "LAPOR_DASHBOARD__ENABLED": "false",
    }
    return GatewayProcess(env, port, str(tmp_path))


async def post_complaints(process: GatewayProcess, fake: FakeTwilio) -> None:
    url = f"http://127.0.0.1:{process.port}/webhooks/twilio/sms"
    async with aiohttp.ClientSession() as session:
        for number in CITIZENS:
            form = sms_params(From=number, Body="LaporHendi lampu mati", AccountSid=fake.account_sid)
            headers = {"X-Twilio-Signature": sign(url, form, fake.auth_token)}
            async with session.post(url, data=form, headers=headers) as response:
                assert response.status == 200, await response.text()


async def test_kill_during_a_send_loses_nothing_and_sends_nothing_twice(
    database_url: str, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    await migrate(database_url)
    fake_twilio.response_delay = 30  # the first send is accepted by "Twilio", its answer never arrives
    process = gateway_process(database_url, fake_twilio, tmp_path)
    await process.start()
    await post_complaints(process, fake_twilio)
    await fake_twilio.wait_for_messages(1, timeout=30)
    await process.kill()
    assert len(fake_twilio.sent) == 1, "one reply was mid-send, two still owed"

    fake_twilio.response_delay = 0
    restarted = gateway_process(database_url, fake_twilio, tmp_path)
    await restarted.start()
    await fake_twilio.wait_for_messages(len(CITIZENS), timeout=30)
    await restarted.wait_for_output("was sent before a crash")  # the in-doubt row was checked, not resent
    assert await restarted.terminate() == 0
    assert Counter(m["to"] for m in fake_twilio.sent) == Counter(CITIZENS), "".join(restarted.output)


async def test_graceful_stop_finishes_the_send_in_flight(
    database_url: str, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    await migrate(database_url)
    fake_twilio.response_delay = 1.0
    process = gateway_process(database_url, fake_twilio, tmp_path)
    await process.start()
    await post_complaints(process, fake_twilio)
    await fake_twilio.wait_for_messages(1, timeout=30)
    assert await process.terminate() == 0
    sent_before_restart = len(fake_twilio.sent)

    fake_twilio.response_delay = 0
    restarted = gateway_process(database_url, fake_twilio, tmp_path)
    await restarted.start()
    await fake_twilio.wait_for_messages(len(CITIZENS), timeout=30)
    assert await restarted.terminate() == 0
    assert sent_before_restart >= 1
    assert Counter(m["to"] for m in fake_twilio.sent) == Counter(CITIZENS)
    assert not any("was sent before a crash" in line for line in restarted.output)


async def test_web_only_process_and_a_separate_worker(
    database_url: str, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    """`[worker] enabled = false` serves webhooks only; `lapor worker` sends what they owe."""
    await migrate(database_url)
    web_only = gateway_process(database_url, fake_twilio, tmp_path)
    web_only.env["LAPOR_WORKER__ENABLED"] = "false"
    await web_only.start()
    await post_complaints(web_only, fake_twilio)
    assert fake_twilio.sent == [], "the web process does not send"
    worker = GatewayProcess(
        web_only.env, web_only.port, str(tmp_path), command="worker", ready="Lapor worker"
    )
    await worker.start()
    await fake_twilio.wait_for_messages(len(CITIZENS), timeout=30)
    assert await worker.terminate() == 0
    assert await web_only.terminate() == 0
    assert Counter(m["to"] for m in fake_twilio.sent) == Counter(CITIZENS)
