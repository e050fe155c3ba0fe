"""kill -9 in the middle of a burst of signed Twilio SMS webhooks, then a restart.

Two `lapor serve` processes share the database, the burst is spread over both (as a load balancer
would), and the first is killed while the other carries on taking webhooks, then restarted.
- PostgreSQL: both processes send. The survivor's dispatcher takes over the dead one's sends in
  doubt once their leases lapse, and both claim from one outbox.
- SQLite: the supported shape is one process that sends and web-only ones (`[worker] enabled =
  false`; a SQLite dispatcher takes over every lease at start, right only when nobody else holds
  one). The victim is the sender: nothing goes out while it is down, and on restart it settles the
  sends it was killed in the middle of.

Invariants, over what the gateway *acknowledged* (a 200 to Twilio):
- every acknowledged message is stored once, before and after the restart;
- once the provider has re-delivered what was never acknowledged (Twilio-style retries), every
  message is stored exactly once and every citizen got exactly one reply: none lost, none doubled,
  although a dispatcher was killed with sends in flight.

The burst is the issue's 5,000 webhooks (about 25 s on SQLite and 45 s on PostgreSQL with two
processes, on two busy cores); `LAPOR_FAULT_BURST` changes it for a quick local run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.fakes.twilio import FakeTwilio
from tests.fault.support import (
    TwilioPlayer,
    burst_size,
    free_port,
    gateway_process,
    on_postgresql,
    replies_by_recipient,
    sms_webhooks,
    stored,
)
from tests.harness import GatewayProcess, migrate

TOPOLOGY = "two-senders" if PG_URL else "sender-and-web"
"""Which of the two processes send replies: both on PostgreSQL, only the first (the victim) on SQLite."""
PROCESSES = 2


@pytest.mark.parametrize("topology", [TOPOLOGY])
async def test_kill_9_mid_burst_loses_no_acknowledged_message_and_sends_each_reply_once(
    database_url: str, fake_twilio: FakeTwilio, tmp_path: Path, topology: str
) -> None:
    assert (topology == "two-senders") == on_postgresql(database_url)
    processes = PROCESSES
    count = burst_size(5000)
    await migrate(database_url)
    gateways: list[GatewayProcess] = []
    for index in range(processes):  # one after the other: the first creates the shared privacy key
        sends = index == 0 or topology == "two-senders"
        worker = "true" if sends else "false"
        gateway = gateway_process(
            database_url, fake_twilio, tmp_path, port=free_port(), WORKER__ENABLED=worker
        )
        await gateway.start()
        gateways.append(gateway)
    victim = gateways[0]
    hooks = sms_webhooks(fake_twilio, count)
    shares = [hooks[index::processes] for index in range(processes)]
    players = [TwilioPlayer(g.port, fake_twilio.auth_token, concurrency=32 // processes) for g in gateways]

    started = time.perf_counter()
    bursts: list[asyncio.Task[None]] = []
    try:
        # Twilio re-delivers whatever was not acknowledged with a 200 (a 503, a refused connection
        # while the victim is down), until it is: every burst runs until its whole share is taken.
        bursts.extend(
            asyncio.create_task(player.burst(share, retry_until_acked=True))
            for player, share in zip(players, shares, strict=True)
        )
        # Kill once half the victim's share is acknowledged and replies are being sent.
        await players[0].wait_for_acks(len(shares[0]) // 2, timeout=60)
        await fake_twilio.wait_for_messages(1, timeout=30)
        await victim.kill()
        acked_before_kill = set(players[0].delivery.acked)
        assert len(acked_before_kill) < len(shares[0]), "the kill came after the victim's whole share"

        after_kill = await stored(database_url, tmp_path)
        assert acked_before_kill <= set(after_kill.inbound_sids), "an acknowledged message was lost"
        assert max(after_kill.inbound_sids.values()) == 1
        assert set(after_kill.inbound_sids) <= {hook.sid for hook in hooks}

        # Restart on the same public URL: the re-deliveries reach it from then on.
        restarted = gateway_process(database_url, fake_twilio, tmp_path, port=victim.port)
        await restarted.start()
        gateways[0] = restarted
        await asyncio.gather(*bursts)
        await fake_twilio.wait_for_messages(count, timeout=30 + count / 20)
    finally:
        for burst in bursts:
            burst.cancel()
        codes = [await g.terminate() for g in gateways if g.proc and g.proc.returncode is None]
    elapsed = time.perf_counter() - started
    assert codes == [0] * processes, "".join(gateways[0].output)[-3000:]

    final = await stored(database_url, tmp_path)
    assert set().union(*(p.delivery.acked for p in players)) == {hook.sid for hook in hooks}
    assert sum(p.delivery.statuses[500] for p in players) == 0, players[0].delivery.bodies_5xx[:5]
    assert final.inbound_sids == {hook.sid: 1 for hook in hooks}, "each message stored exactly once"
    assert final.outbox_to == {hook.sender: 1 for hook in hooks}, "each message owes exactly one reply"
    assert final.outbox_status == {"sent": count}, final.outbox_status
    replies = replies_by_recipient(fake_twilio)
    doubled = {to: n for to, n in replies.items() if n > 1}
    assert not doubled, f"replies sent twice: {list(doubled.items())[:5]}"
    assert replies == {hook.sender: 1 for hook in hooks}
    sent_ids = [message["sid"] for message in fake_twilio.sent]
    assert len(sent_ids) == len(set(sent_ids)) == count
    reconciled = sum("was sent before a crash" in line for g in gateways for line in g.output)
    statuses = sum((p.delivery.statuses for p in players), Counter[int]())
    print(
        f"kill -9 burst, {topology}: {count} webhooks, {len(acked_before_kill)} acked by "
        f"the victim before the kill, {reconciled} in-doubt send(s) reconciled, answers "
        f"{dict(statuses)}, {elapsed:.1f}s"
    )
