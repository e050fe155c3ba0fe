"""How times are shown to citizens: Semarang's wall clock (WIB, UTC+7, no daylight saving)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

try:
    from zoneinfo import ZoneInfo

    JAKARTA: tzinfo = ZoneInfo("Asia/Jakarta")
except Exception:  # pragma: no cover - a system without tz data: WIB has been UTC+7 since 1964
    JAKARTA = timezone(timedelta(hours=7), "WIB")


def local_time(moment: datetime) -> str:
    """`31/12 23:59` in Asia/Jakarta; a naive time is taken to be UTC rather than guessed."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(JAKARTA).strftime("%d/%m %H:%M")
