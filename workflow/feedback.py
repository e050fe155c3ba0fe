"""The reporter's answer after resolution: YA closes, BELUM (with a reason) reopens, 1-5 rates.

SP4N-LAPOR! asks the reporter whether the follow-up settled the problem; a citizen who says no must
not have to file again. The intake pipeline calls `answer_in(conn, reporter_id, text, now, settings)`
inside its own transaction, before stepping the conversation machine, whenever that reporter has no
draft in progress: it returns None when the text is not such an answer (or nothing awaits one), and
the machine then handles the message as usual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from store import models
from store.bulk import fetch
from store.models import ComplaintStatus as S
from workflow import notify
from workflow.access import Action, Actor
from workflow.lifecycle import Change, Outcome, apply
from workflow.settings import WorkflowSettings

_YES = {"ya", "y", "iya", "yes", "sudah", "udah", "beres", "ok", "oke", "done", "fixed", "sip"}
_NO = {"belum", "blm", "tidak", "tdk", "no", "not", "nope", "gak", "nggak", "ga"}
_WORD = re.compile(r"[a-zA-Z]+|\d+")


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str
    """yes / no / rating"""
    reason: str | None = None
    rating: int | None = None


def parse_answer(text: str | None) -> Answer | None:
    """`YA`, `BELUM jalannya masih berlubang`, `5`: or None for anything else."""
    if not text:
        return None
    stripped = text.strip()
    words = _WORD.findall(stripped.lower())
    if not words:
        return None
    first = words[0]
    if len(words) == 1 and first.isdigit() and 1 <= int(first) <= 5:
        return Answer("rating", rating=int(first))
    if first in _YES and len(words) <= 3:
        return Answer("yes")
    if first in _NO:
        rest = stripped[stripped.lower().find(first) + len(first) :].strip(" ,.:;-!")
        return Answer("no", reason=rest or None)
    return None


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    code: str
    outcome: str
    """closed / reopened / rated"""
    transition: Outcome | None = None


def _awaiting(conn: Connection, reporter_id: int) -> str | None:
    """The tracking code of the reporter's latest resolved complaint, which awaits their answer.

    Plain SQL: the intake asks this for every "YA" it receives, inside its batch transaction."""
    rows = fetch(
        conn,
        "SELECT tracking_code FROM complaints WHERE reporter_id = ? AND status = ?"
        " ORDER BY resolved_at DESC LIMIT 1",
        reporter_id,
        S.RESOLVED.value,
    )
    return str(rows[0][0]) if rows else None


def _rateable(conn: Connection, reporter_id: int, now: datetime, settings: WorkflowSettings) -> Any:
    table = models.complaints
    return conn.execute(
        select(table)
        .where(
            table.c.reporter_id == reporter_id,
            table.c.status == S.CLOSED.value,
            table.c.rating.is_(None),
            table.c.closed_at >= now - timedelta(days=settings.rating_days),
        )
        .order_by(table.c.closed_at.desc())
        .limit(1)
    ).one_or_none()


def answer_in(
    conn: Connection, reporter_id: int, text: str | None, now: datetime, settings: WorkflowSettings
) -> FeedbackResult | None:
    """Apply the reporter's answer, with its status message, in the caller's transaction."""
    answer = parse_answer(text)
    if answer is None:
        return None
    if answer.kind == "rating":
        return _rate(conn, reporter_id, answer.rating or 0, now, settings)
    code = _awaiting(conn, reporter_id)
    if code is None:
        return None
    citizen = Actor.citizen()
    if answer.kind == "yes":
        change = Change(Action.CLOSE, citizen, close_reason="citizen")
        return FeedbackResult(code, "closed", apply(conn, code, change, settings, now))
    reason = answer.reason or "warga menyatakan belum beres"
    change = Change(Action.REOPEN, citizen, note=f"Pelapor: {reason}")
    return FeedbackResult(code, "reopened", apply(conn, code, change, settings, now))


def _rate(
    conn: Connection, reporter_id: int, rating: int, now: datetime, settings: WorkflowSettings
) -> FeedbackResult | None:
    complaint = _rateable(conn, reporter_id, now, settings)
    if complaint is None:
        return None
    table = models.complaints
    done = conn.execute(
        update(table)
        .where(table.c.id == complaint.id, table.c.rating.is_(None))
        .values(rating=rating, updated_at=now)
    )
    if done.rowcount != 1:
        return None
    conn.execute(
        models.status_events.insert().values(
            complaint_id=complaint.id,
            from_status=complaint.status,
            to_status=complaint.status,
            actor="citizen",
            action="rate",
            note=f"Nilai {rating}/5",
            public=False,
            created_at=now,
        )
    )
    notify.tell_citizens(conn, complaint, "rated", {"code": complaint.tracking_code}, now, settings)
    return FeedbackResult(complaint.tracking_code, "rated")
