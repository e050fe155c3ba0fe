"""Carrying out what the conversation machine asked for, inside one transaction.

`IntakeUnit` collects the rows a batch produces (messages, complaints, status events, outbox rows,
conversation states) in memory and writes them with a few multi-row statements at `flush()`. The
machine's questions to the database (status lookups, duplicate search) are answered immediately and
fed back to the machine as events, so it stays pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from adapters.base import Address, InboundMessage, StatusUpdate
from conversation import api as conv
from conversation.catalog import render
from conversation.codes import new_code as new_tracking_code
from gateway.addressbook import PLAIN, AddressBook
from gateway.contacts import CONTACT_KEY
from gateway.ratelimit import SenderLimiter
from gateway.receipts import apply_receipts
from store import models
from store.bulk import decode_json, fetch, insert_rows, parse_sqlite_time, select_in, update_rows
from store.models import (
    ComplaintStatus,
    OutboxStatus,
)

StepFunction = Callable[[Mapping[str, Any] | None, conv.Event, conv.Context], conv.StepResult]

OPEN_STATUSES = (
    ComplaintStatus.SUBMITTED,
    ComplaintStatus.VERIFIED,
    ComplaintStatus.FORWARDED,
    ComplaintStatus.IN_PROGRESS,
    ComplaintStatus.REOPENED,
)
OPEN_IN = ", ".join(f"'{status.value}'" for status in OPEN_STATUSES)
"""The open statuses as an SQL list (our own constants) for plain-SQL questions."""
DUPLICATE_WINDOW = timedelta(days=30)
DUPLICATE_RADIUS_M = 150.0
MAX_FOLLOW_UPS = 4
"""Lookups answered per step; the machine never needs more than one or two."""


FeedbackHook = Callable[[Connection, int, str, datetime], str | None]
"""The workflow's answer-to-"is it fixed?" handler: the complaint code it handled, or None."""


class Stepper:
    """The conversation machine plus what it needs from outside: settings and fresh tracking codes."""

    def __init__(
        self,
        step: StepFunction,
        settings: conv.Settings,
        new_code: Callable[[], str] = new_tracking_code,
    ) -> None:
        self._step = step
        self.settings = settings
        self._new_code = new_code

    def __call__(self, state: Mapping[str, Any] | None, event: conv.Event, now: datetime) -> conv.StepResult:
        # The code is made only by a step that files a complaint (few do).
        return self._step(
            state, event, conv.Context(now=now, new_tracking_code=self._new_code, settings=self.settings)
        )


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where the machine's replies go: the channel and address the citizen last wrote from."""

    channel: str
    address: Address
    identity_id: int
    reporter_id: int
    reply_to: str | None = None
    thread_id: str | None = None


@dataclass
class _ConversationRow:
    state: dict[str, Any] | None
    exists: bool
    channel: str | None = None
    identity_id: int | None = None
    timer_at: datetime | None = None
    dirty: bool = False


def to_turn(message: InboundMessage) -> conv.Turn:
    place = None
    if message.location is not None:
        loc = message.location
        place = conv.Place(loc.latitude, loc.longitude, loc.address or loc.label)
    return conv.Turn(
        medium=message.medium.value,
        at=message.received_at,
        text=message.text,
        attachments=tuple(conv.Attachment(m.url, m.content_type) for m in message.media),
        place=place,
    )


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); plenty accurate at city scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def _summary(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class IntakeUnit:
    """One transaction's worth of intake work; see the module docstring."""

    def __init__(
        self,
        conn: Connection,
        stepper: Stepper,
        now: datetime,
        limiter: SenderLimiter | None = None,
        feedback: FeedbackHook | None = None,
        addresses: AddressBook = PLAIN,
    ) -> None:
        self._addresses = addresses
        self._conn = conn
        self._limiter = limiter
        self._feedback = feedback
        self._stepper = stepper
        self._now = now
        self._conversations: dict[int, _ConversationRow] = {}
        self._complaints: dict[str, dict[str, Any]] = {}
        self._status_events: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []
        self._outbox: list[dict[str, Any]] = []
        self._followers: list[dict[str, Any]] = []
        self._identity_updates: dict[int, dict[str, Any]] = {}
        self._evidence: list[tuple[str, conv.AddEvidence]] = []
        self.wrote_outbox = False

    # ---- delivery receipts -------------------------------------------------------------

    def apply_status_updates(self, updates: Iterable[StatusUpdate]) -> None:
        apply_receipts(self._conn, updates, self._now)

    # ---- citizen messages ----------------------------------------------------------------

    def handle_messages(
        self, messages: list[InboundMessage], identities: Mapping[tuple[str, str], tuple[int, int]]
    ) -> None:
        self._load_conversations({identities[(m.sender.kind.value, m.sender.value)][1] for m in messages})
        for message in messages:
            identity_id, reporter_id = identities[(message.sender.kind.value, message.sender.value)]
            target = ReplyTarget(
                channel=message.channel,
                address=message.sender,
                identity_id=identity_id,
                reporter_id=reporter_id,
                reply_to=message.provider_message_id,
                thread_id=message.thread_id,
            )
            row = {
                "channel": message.channel,
                "provider_message_id": message.provider_message_id,
                "identity_id": identity_id,
                "reporter_id": reporter_id,
                "complaint_code": None,
                "text": message.text,
                "media": [{"url": m.url, "content_type": m.content_type} for m in message.media],
                "location": _location_json(message),
                "received_at": message.received_at,
                "created_at": self._now,
            }
            self._messages.append(row)
            self._identity_updates[identity_id] = {
                "id": identity_id,
                "last_channel": message.channel,
                "last_seen_at": self._now,
            }
            if self._limiter is not None:
                allowed, tell = self._limiter.check(str(message.sender), self._now)
                if not allowed:
                    # Stored above (nothing is lost), but not stepped: a flood must not starve others.
                    if tell:
                        self.add_outbox(
                            target, render(self._language(reporter_id), "slow_down"), kind="slow_down"
                        )
                    continue
            if message.extra.get(CONTACT_KEY) and not (message.text or message.media or message.location):
                # "Share my phone number" alone: linked by the pipeline; nothing for the dialog.
                self.add_outbox(
                    target, render(self._language(reporter_id), "contact_saved"), kind="contact_saved"
                )
                continue
            if self._feedback is not None and message.text and not self._has_draft(reporter_id):
                # "YA" / "BELUM, masih gelap" / "5" after a resolution answers the workflow's
                # question; with a draft open, YA confirms the draft instead.
                answered = self._feedback(self._conn, reporter_id, message.text, self._now)
                if answered is not None:
                    row["complaint_code"] = answered
                    continue
            codes = self._run(target, to_turn(message))
            if codes:
                row["complaint_code"] = codes[-1]

    def _has_draft(self, reporter_id: int) -> bool:
        state = self._conversations[reporter_id].state or {}
        return bool(state.get("draft"))

    def _language(self, reporter_id: int) -> str:
        state = self._conversations[reporter_id].state or {}
        return str(state.get("language", "id"))

    # ---- clock ticks (reminders, expiry) ---------------------------------------------------

    def handle_tick(self, reporter_id: int, target: ReplyTarget) -> None:
        self._load_conversations({reporter_id})
        self._run(target, conv.Tick(at=self._now))

    # ---- the step loop -------------------------------------------------------------------

    def _run(self, target: ReplyTarget, event: conv.Event) -> list[str]:
        """Step the machine, carry out its effects, answer its questions; return complaint codes touched."""
        conversation = self._conversations[target.reporter_id]
        touched: list[str] = []
        pending: list[conv.Event] = [event]
        rounds = 0
        while pending and rounds <= MAX_FOLLOW_UPS:
            rounds += 1
            result = self._stepper(conversation.state, pending.pop(0), self._now)
            conversation.state = dict(result.state)
            conversation.timer_at = result.timer_at
            conversation.channel = target.channel
            conversation.identity_id = target.identity_id
            conversation.dirty = True
            for effect in result.effects:
                follow_up = self._apply(effect, target, touched)
                if follow_up is not None:
                    pending.append(follow_up)
        return touched

    def _apply(self, effect: conv.Effect, target: ReplyTarget, touched: list[str]) -> conv.Event | None:
        match effect:
            case conv.Reply(text=text, key=key):
                self.add_outbox(target, text, kind=key, complaint_code=touched[-1] if touched else None)
            case conv.SubmitComplaint(draft=draft):
                self._file(draft, target)
                touched.append(draft.tracking_code)
            case conv.AddEvidence(code=code):
                self._evidence.append((code, effect))
                touched.append(code)
            case conv.JoinComplaint(code=code):
                self._followers.append(
                    {
                        "complaint_code": code,
                        "reporter_id": target.reporter_id,
                        "identity_id": target.identity_id,
                        "channel": target.channel,
                        "created_at": self._now,
                    }
                )
                touched.append(code)
            case conv.LookupStatus(codes=codes):
                found = self._lookup(codes, target.reporter_id)
                return conv.StatusAnswer(at=self._now, requested_codes=codes, found=found)
            case conv.FindDuplicates(category=category, place=place):
                return conv.DuplicateAnswer(at=self._now, candidates=self._duplicates(category, place))
        return None

    def add_outbox(
        self,
        target: ReplyTarget,
        text: str,
        *,
        kind: str = "reply",
        complaint_code: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self._outbox.append(
            {
                "channel": target.channel,
                "to_kind": target.address.kind.value,
                **self._addresses.recipient_columns(target.address.kind.value, target.address.value),
                "text": text,
                "media": [],
                "reply_to": target.thread_id or target.reply_to,
                "kind": kind,
                "template_vars": {},
                "meta": dict(meta or {}),
                "complaint_code": complaint_code,
                "reporter_id": target.reporter_id,
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": self._now,
                "created_at": self._now,
                "updated_at": self._now,
            }
        )

    def _file(self, draft: conv.Draft, target: ReplyTarget) -> None:
        place = draft.place
        self._complaints[draft.tracking_code] = {
            "tracking_code": draft.tracking_code,
            "reporter_id": target.reporter_id,
            "origin_channel": target.channel,
            "origin_medium": draft.medium,
            "origin_identity_id": target.identity_id,
            "origin_thread_id": target.thread_id or target.reply_to,
            "description": draft.description,
            "location_text": place.text if place else None,
            "location_key": location_key(place.text if place else None),
            "kecamatan": models.place_kecamatan(place.text if place else None),
            "latitude": place.latitude if place else None,
            "longitude": place.longitude if place else None,
            "media": [{"url": a.ref, "content_type": a.content_type} for a in draft.attachments],
            "category": draft.category,
            "category_confidence": draft.category_confidence,
            "status": ComplaintStatus.SUBMITTED.value,
            "anonymous": draft.anonymous,
            "language": draft.language,
            "confidential": False,
            "escalation_level": 0,
            "reopen_count": 0,
            "created_at": self._now,
            "updated_at": self._now,
        }
        self._status_events.append(
            {
                "complaint_code": draft.tracking_code,
                "from_status": None,
                "to_status": ComplaintStatus.SUBMITTED.value,
                "actor": "citizen",
                "note": None,
                "public": True,
                "created_at": self._now,
            }
        )

    def _load_conversations(self, reporter_ids: set[int]) -> None:
        wanted = [rid for rid in reporter_ids if rid not in self._conversations]
        if not wanted:
            return
        conn = self._conn
        rows = select_in(
            conn,
            models.conversations,
            ("reporter_id", "state", "channel", "identity_id"),
            "reporter_id",
            sorted(wanted),
            # One reporter's turns never interleave across processes.
            suffix=" FOR UPDATE" if conn.dialect.name == "postgresql" else "",
        )
        for reporter_id, state, channel, identity_id in rows:
            self._conversations[reporter_id] = _ConversationRow(
                decode_json(conn, state), True, channel, identity_id
            )
        for reporter_id in wanted:
            self._conversations.setdefault(reporter_id, _ConversationRow(None, False))

    def _lookup(self, codes: tuple[str, ...], reporter_id: int) -> tuple[conv.ComplaintInfo, ...]:
        table = models.complaints
        query = select(
            table.c.tracking_code, table.c.status, table.c.category, table.c.description, table.c.updated_at
        )
        if codes:
            query = query.where(table.c.tracking_code.in_(codes))
        else:
            query = (
                query.where(
                    table.c.reporter_id == reporter_id, table.c.status.in_([s.value for s in OPEN_STATUSES])
                )
                .order_by(table.c.created_at.desc())
                .limit(5)
            )
        found = {
            code: conv.ComplaintInfo(code, status, category, _summary(description), None, updated)
            for code, status, category, description, updated in self._conn.execute(query)
        }
        for code, row in self._complaints.items():  # filed earlier in this same batch
            if (code in codes) or (not codes and row["reporter_id"] == reporter_id):
                found[code] = conv.ComplaintInfo(
                    code, row["status"], row["category"], _summary(row["description"]), None, self._now
                )
        return tuple(found.values())

    def _duplicates(self, category: str | None, place: conv.Place | None) -> tuple[conv.ComplaintInfo, ...]:
        """Open, recent complaints of the same category at the same place (same words, or ~150 m).

        Both tests are index look-ups (`ix_complaints_near_key`, `ix_complaints_near_point`), so the
        question costs the same with ten complaints or a million.
        """
        if category is None or place is None:
            return ()
        key = location_key(place.text)
        nearby: list[str] = []
        params: list[Any] = [category]
        if key:
            nearby.append("location_key = ?")
            params.append(key)
        if place.latitude is not None and place.longitude is not None:
            dlat = DUPLICATE_RADIUS_M / 111_000
            dlon = dlat / max(0.1, math.cos(math.radians(place.latitude)))
            nearby.append("(latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ?)")
            params += [
                place.latitude - dlat,
                place.latitude + dlat,
                place.longitude - dlon,
                place.longitude + dlon,
            ]
        if not nearby:
            return ()
        # The SQL text is only our own fragments and constants; every value is a parameter.
        where = f"category = ? AND ({' OR '.join(nearby)}) AND status IN ({OPEN_IN}) AND created_at >= ?"
        rows = fetch(
            self._conn,
            "SELECT tracking_code, status, description, location_key, latitude, longitude, updated_at"  # noqa: S608
            f" FROM complaints WHERE {where} ORDER BY created_at DESC LIMIT 10",
            *params,
            self._now - DUPLICATE_WINDOW,
        )
        matches = []
        for code, status, description, row_key, lat, lon, updated in rows:
            near = (
                place.latitude is not None
                and place.longitude is not None
                and lat is not None
                and lon is not None
                and distance_m(place.latitude, place.longitude, lat, lon) <= DUPLICATE_RADIUS_M
            )
            if near or (key and row_key == key):
                updated_at = parse_sqlite_time(updated)
                matches.append(
                    conv.ComplaintInfo(code, status, category, _summary(description), None, updated_at)
                )
        return tuple(matches[:3])

    # ---- writing --------------------------------------------------------------------------

    def flush(self) -> None:
        conn = self._conn
        ids = self._insert_complaints()
        insert_rows(conn, models.status_events, [_resolve(row, ids) for row in self._status_events])
        self._apply_evidence(ids)
        if self._followers:
            self._insert_followers(ids)
        insert_rows(conn, models.inbound_messages, [_resolve(row, ids) for row in self._messages])
        if self._outbox:
            insert_rows(conn, models.outbox, [_resolve(row, ids) for row in self._outbox])
            self.wrote_outbox = True
        self._save_conversations()
        update_rows(conn, models.channel_identities, "id", list(self._identity_updates.values()))

    def _insert_complaints(self) -> dict[str, int]:
        insert_rows(self._conn, models.complaints, list(self._complaints.values()))
        wanted = (
            {row["complaint_code"] for row in (*self._messages, *self._outbox, *self._followers)}
            | {code for code, _ in self._evidence}
            | set(self._complaints)
        )
        wanted.discard(None)
        table = models.complaints
        return dict(select_in(self._conn, table, ("tracking_code", "id"), "tracking_code", sorted(wanted)))

    def _apply_evidence(self, ids: Mapping[str, int]) -> None:
        """Photos or a place sent after filing: appended to the complaint, never overwritten."""
        table = models.complaints
        for code, evidence in self._evidence:
            if code not in ids:
                continue
            media, location_text, lat = (
                self._conn.execute(
                    select(table.c.media, table.c.location_text, table.c.latitude).where(
                        table.c.id == ids[code]
                    )
                )
            ).one()
            values: dict[str, Any] = {"updated_at": self._now}
            if evidence.attachments:
                values["media"] = [
                    *media,
                    *({"url": a.ref, "content_type": a.content_type} for a in evidence.attachments),
                ]
            if evidence.place is not None:
                if evidence.place.latitude is not None and lat is None:
                    values["latitude"] = evidence.place.latitude
                    values["longitude"] = evidence.place.longitude
                if evidence.place.text and not location_text:
                    values["location_text"] = evidence.place.text
                    values["location_key"] = location_key(evidence.place.text)
                    values["kecamatan"] = models.place_kecamatan(evidence.place.text)
            self._conn.execute(update(table).where(table.c.id == ids[code]).values(**values))

    def _insert_followers(self, ids: Mapping[str, int]) -> None:
        table = models.complaint_followers
        rows = [_resolve(row, ids) for row in self._followers if row["complaint_code"] in ids]
        existing = {
            (cid, rid)
            for cid, rid in self._conn.execute(
                select(table.c.complaint_id, table.c.reporter_id).where(
                    table.c.complaint_id.in_([r["complaint_id"] for r in rows])
                )
            )
        }
        fresh = [r for r in rows if (r["complaint_id"], r["reporter_id"]) not in existing]
        if fresh:
            self._conn.execute(table.insert(), fresh)

    def _save_conversations(self) -> None:
        table = models.conversations
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for reporter_id, row in self._conversations.items():
            if not row.dirty:
                continue
            values = {
                "reporter_id": reporter_id,
                "state": row.state,
                "channel": row.channel,
                "identity_id": row.identity_id,
                "timer_at": row.timer_at,
                "updated_at": self._now,
            }
            (updates if row.exists else inserts).append(values)
        insert_rows(self._conn, table, inserts)
        update_rows(self._conn, table, "reporter_id", updates)


def _resolve(row: Mapping[str, Any], ids: Mapping[str, int]) -> dict[str, Any]:
    """Swap the in-batch complaint code for the complaint's row id."""
    out = {k: v for k, v in row.items() if k != "complaint_code"}
    code = row.get("complaint_code")
    out["complaint_id"] = ids.get(code) if code else None
    return out


def _location_json(message: InboundMessage) -> dict[str, Any] | None:
    loc = message.location
    if loc is None:
        return None
    return {"latitude": loc.latitude, "longitude": loc.longitude, "address": loc.address, "label": loc.label}


def location_key(text: str | None) -> str | None:
    """A place's words, normalised so "Jl. Pemuda" and "jalan pemuda" compare equal."""
    if not text:
        return None
    lowered = text.lower().replace("jalan ", "jl ").replace("jl.", "jl ")
    key = " ".join("".join(ch if ch.isalnum() else " " for ch in lowered).split())
    return key[:128] or None
