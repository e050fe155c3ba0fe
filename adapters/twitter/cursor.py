"""The polling cursor and the citizen's public thread, read from what the gateway already stored.

No key-value table is needed: every tweet the poller or the webhook took in is an `inbound_messages`
row (channel `twitter`, provider id = tweet id, a numeric string), written in the same transaction as
its effects. So the newest tweet id *in the store* is exactly the newest tweet that is durable, and
`since_id` taken from it after a restart neither misses a tweet (nothing newer was stored) nor
repeats one (a re-fetched tweet would be deduplicated anyway). DMs are stored as `dm:<event id>`.

Tweet ids are compared as numbers (snowflakes grow with time); the cast is done in SQL so one
aggregate answers it on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, and_, cast, func, not_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.twitter.parse import CHANNEL, DM_PREFIX
from store import models


async def newest_tweet_id(engine: AsyncEngine, channel: str = CHANNEL) -> int | None:
    table = models.inbound_messages
    query = select(func.max(cast(table.c.provider_message_id, BigInteger))).where(
        table.c.channel == channel, not_(table.c.provider_message_id.like(DM_PREFIX + "%"))
    )
    async with engine.connect() as conn:
        value = (await conn.execute(query)).scalar()
    return int(value) if value is not None else None


async def newest_dm_id(engine: AsyncEngine, channel: str = CHANNEL) -> int | None:
    table = models.inbound_messages
    digits = func.substr(table.c.provider_message_id, len(DM_PREFIX) + 1)
    query = select(func.max(cast(digits, BigInteger))).where(
        table.c.channel == channel, table.c.provider_message_id.like(DM_PREFIX + "%")
    )
    async with engine.connect() as conn:
        value = (await conn.execute(query)).scalar()
    return int(value) if value is not None else None


async def latest_public_tweet(
    engine: AsyncEngine, reporter_id: int | None, channel: str = CHANNEL
) -> str | None:
    """The citizen's most recent tweet we took in: where a receipt goes when the talk moved to DM.

    Found by reporter, not by X account id: identities are stored as keyed hashes."""
    if reporter_id is None:
        return None
    messages = models.inbound_messages
    query = (
        select(messages.c.provider_message_id)
        .where(
            and_(
                messages.c.channel == channel,
                messages.c.reporter_id == reporter_id,
                not_(messages.c.provider_message_id.like(DM_PREFIX + "%")),
            )
        )
        .order_by(messages.c.id.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        value = (await conn.execute(query)).scalar()
    return str(value) if value is not None else None
