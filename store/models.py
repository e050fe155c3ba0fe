"""Database schema: typed SQLAlchemy 2.x models, identical on SQLite and PostgreSQL.

Times are stored in UTC and always come back timezone-aware, whatever the backend: SQLite has no
timezone type, and mixing naive and aware datetimes is the classic source of off-by-seven-hours bugs
in Asia/Jakarta.
"""

from __future__ import annotations

import enum
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for busy tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def place_kecamatan(text: str | None) -> str | None:
    """The kecamatan a place text names (conversation.places.kecamatan_of, the canonical recogniser:
    misspellings and abbreviations included), or None."""
    from conversation.places import kecamatan_of  # pure, no I/O: the conversation package's own table

    return kecamatan_of(text) if text else None


def _kecamatan_default(context: Any) -> str | None:
    """Every complaint INSERT that leaves `kecamatan` out (the intake's batches, record_complaint,
    Open311 POST, seeds) gets the kecamatan of its `location_text`, so no writer can forget it."""
    return place_kecamatan(context.get_current_parameters().get("location_text"))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class ComplaintStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    FORWARDED = "forwarded"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    REOPENED = "reopened"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    """Given up on: attempts exhausted or a permanent provider error; `last_error` says why."""
    UNDELIVERED = "undelivered"


class Reporter(Base):
    """A person. Several channel identities (SMS, WhatsApp, Telegram...) can belong to one reporter."""

    __tablename__ = "reporters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    """Random, opaque: lets a batch find the rows it just inserted, and seeds the reporter's pseudonym."""
    display_name: Mapped[str | None] = mapped_column(String(200))
    """The profile name in clear: only written without a privacy vault (bare pipeline tests) or by a
    version before names were sealed; `lapor keys rotate` seals what is left."""
    display_name_enc: Mapped[str | None] = mapped_column(Text)
    """The profile name encrypted (workflow.privacy), read through `open_name`."""
    language: Mapped[str] = mapped_column(String(8), default="id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="reporter")


class ChannelIdentity(Base):
    """How we reach a reporter: a phone number (E.164), a Telegram user id, an X account..."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_channel_identities_kind_address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    address_enc: Mapped[str | None] = mapped_column(Text)
    """The address encrypted (workflow.privacy); when set, `address` holds its keyed lookup hash."""
    last_channel: Mapped[str | None] = mapped_column(String(32))
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column()

    reporter: Mapped[Reporter] = relationship(back_populates="identities")


class InboundMessage(Base):
    """Every message a citizen sent, once: the unique key is what makes provider retries harmless."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id", name="uq_inbound_messages_channel_provider_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    text: Mapped[str | None] = mapped_column(Text)
    media: Mapped[list[Any]] = mapped_column(default=list)
    location: Mapped[dict[str, Any] | None] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    """The intake machine's state for one reporter, plus when it next wants a clock tick."""

    __tablename__ = "conversations"

    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel: Mapped[str | None] = mapped_column(String(32))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    timer_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_status_created", "status", "created_at"),
        # Possible-duplicate search: same category and same place (by words or nearby point).
        Index("ix_complaints_near_key", "category", "location_key"),
        Index("ix_complaints_near_point", "category", "latitude"),
        # Every list is newest first (inbox pages, Open311): see migration 0005.
        Index("ix_complaints_created", "created_at", "id"),
        # The inbox's area filter, newest first within a kecamatan: see migration 0006.
        Index("ix_complaints_kecamatan_created", "kecamatan", "created_at", "id"),
        # Open311's service_code lists and the inbox's category filter, newest first: migration 0007.
        # (The inbox search's index is per backend, outside the models: see SEARCH_OBJECTS.)
        Index("ix_complaints_category_created", "category", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(16), unique=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    origin_channel: Mapped[str] = mapped_column(String(32))
    origin_medium: Mapped[str] = mapped_column(String(16))
    origin_identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    origin_thread_id: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text)
    location_text: Mapped[str | None] = mapped_column(Text)
    location_key: Mapped[str | None] = mapped_column(String(128))
    """`location_text` normalised ("jl pemuda depan paragon"): equal keys are the same place."""
    kecamatan: Mapped[str | None] = mapped_column(String(32), default=_kecamatan_default)
    """The kecamatan (district) the place names, canonical spelling, or None: what the inbox filters
    and the monthly report counts by. An INSERT that does not give it gets `place_kecamatan` of its
    `location_text`; an officer's choice (dashboard/record.py) and a place text added later
    (gateway/effects.py) set it explicitly; migration 0006 filled the rows from before."""
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    media: Mapped[list[Any]] = mapped_column(default=list)
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    category_confidence: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=ComplaintStatus.SUBMITTED.value)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8), default="id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # ---- workflow (workflow/lifecycle.py) ----
    confidential: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Content kept out of public views (tracking page, open data); staff still see it."""
    department: Mapped[str | None] = mapped_column(String(32), index=True)
    """The lead department (OPD) code once forwarded; others in `complaint_departments`."""
    sla_scope: Mapped[str | None] = mapped_column(String(16))
    """single / coordination / agency: 5, 10 or 30 working days to resolve."""
    verify_due_at: Mapped[datetime | None] = mapped_column()
    forwarded_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    paused_at: Mapped[datetime | None] = mapped_column()
    """Set while waiting for the reporter: the deadline moves by the working days paused."""
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """0 none, 1 reminded, 2 head of department, 3 city admin; claimed with a conditional UPDATE."""
    escalated_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    feedback_due_at: Mapped[datetime | None] = mapped_column(index=True)
    """After resolution: closed automatically when the reporter has not answered YA/BELUM by then."""
    closed_at: Mapped[datetime | None] = mapped_column()
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"))
    rating: Mapped[int | None] = mapped_column(Integer)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    events: Mapped[list[StatusEvent]] = relationship(
        back_populates="complaint", order_by="StatusEvent.id", lazy="raise"
    )


class ComplaintFollower(Base):
    """A reporter who said YA to 'is this the same as LPR-...?': they get that complaint's updates too."""

    __tablename__ = "complaint_followers"
    __table_args__ = (UniqueConstraint("complaint_id", "reporter_id", name="uq_complaint_followers_pair"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusEvent(Base):
    """The audit trail: every status change, who made it, and the note the citizen may see."""

    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str | None] = mapped_column(String(32))
    """The workflow action (verify, forward, resolve...). Internal notes are separate events with
    public=False, so the tracking page can show every public event's `note` as it is."""
    evidence: Mapped[list[Any] | None] = mapped_column()
    """Media references proving the work (required on resolve)."""

    complaint: Mapped[Complaint] = relationship(back_populates="events", lazy="raise")


class OutboxMessage(Base):
    """A reply owed to someone. Written in the same transaction as its cause; sent by the dispatcher."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_provider", "provider_message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    to_kind: Mapped[str] = mapped_column(String(16))
    to_address: Mapped[str] = mapped_column(String(64))
    """Like `channel_identities.address`: the keyed lookup hash of the recipient when contacts are
    encrypted, the address itself only without a vault. Read through `AddressBook.recipient`."""
    to_address_enc: Mapped[str | None] = mapped_column(Text)
    """The recipient's address encrypted; the dispatcher opens it just before `adapter.send`."""
    text: Mapped[str] = mapped_column(Text)
    media: Mapped[list[Any]] = mapped_column(default=list)
    reply_to: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), default="reply")
    template: Mapped[str | None] = mapped_column(String(64))
    template_vars: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Hints for the adapter (`sms_suffix`, `window_closed`, ...): OutboundMessage.metadata."""
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("reporters.id"))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    send_started_at: Mapped[datetime | None] = mapped_column()
    """Set while a send is in flight: a crash leaves it set, and the row is then 'in doubt'."""
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EarlyReceipt(Base):
    """A delivery receipt that arrived before we recorded which outbox row it belongs to.

    Providers may call back faster than our outcome commit; the receipt waits here and is applied
    when the row's provider id is recorded, instead of being dropped.
    """

    __tablename__ = "early_receipts"

    provider_message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column()


class User(Base):
    """An officer or admin of the dashboard."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default="admin")
    department: Mapped[str | None] = mapped_column(String(32))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    display_name: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64))
    """Where reminders and escalations reach the officer, through the same outbox as citizens."""
    whatsapp_number: Mapped[str | None] = mapped_column(String(32))


class Department(Base):
    """A city department (OPD) or the city team itself; data, so admins add one without a deploy."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    is_city_team: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Category(Base):
    """A complaint category slug (conversation/categories.toml) and the department it routes to."""

    __tablename__ = "categories"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_id: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    """The routing rule: where a verified complaint of this category is forwarded by default."""
    sla_scope: Mapped[str] = mapped_column(String(16), default="single")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class ComplaintDepartment(Base):
    """A disposition: one complaint forwarded to one department (lead or supporting)."""

    __tablename__ = "complaint_departments"
    __table_args__ = (UniqueConstraint("complaint_id", "department", name="uq_complaint_departments_pair"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    lead: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A reminder or escalation for one staff member, shown in the dashboard (and sent via outbox)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column()


class IdentityReveal(Base):
    """The audit of every time a city admin saw a reporter's real contact, and why."""

    __tablename__ = "identity_reveals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UpstreamState(enum.StrEnum):
    """Where one forward to the upstream Open311 server stands (gateway/upstream.py)."""

    PENDING = "pending"
    """To be POSTed (or, when `send_started_at` is set, looked up upstream first) at `next_attempt_at`."""
    SENDING = "sending"
    """Claimed by a worker until `lease_until`; a lapsed lease with `send_started_at` is in doubt."""
    AWAITING_ID = "awaiting_id"
    """The upstream answered with a token only: `GET tokens/{token}` until it gives the request id."""
    LINKED = "linked"
    """Tracked: `service_request_id` known, its status pulled at `next_attempt_at`."""
    CLOSED = "closed"
    """The upstream closed the request: nothing more to pull."""
    FAILED = "failed"
    """The upstream refused the request for good (4xx); `last_error` says why."""


class UpstreamRequest(Base):
    """A complaint forwarded to the upstream Open311 server: the durable job and the two-way link.

    One row per complaint (the unique key is what makes a forward happen once); `send_started_at`
    marks a POST that may have reached the upstream, so a retry looks it up there before posting again.
    """

    __tablename__ = "upstream_requests"
    __table_args__ = (Index("ix_upstream_requests_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), unique=True)
    endpoint: Mapped[str] = mapped_column(String(255))
    service_code: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=UpstreamState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    send_started_at: Mapped[datetime | None] = mapped_column()
    token: Mapped[str | None] = mapped_column(String(128))
    service_request_id: Mapped[str | None] = mapped_column(String(128), index=True)
    upstream_status: Mapped[str | None] = mapped_column(String(32))
    """The upstream's `open` / `closed`."""
    upstream_detail: Mapped[str | None] = mapped_column(String(64))
    """Its extended status when it publishes one (FixMyStreet's `fixed`, `in progress`...)."""
    upstream_notes: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_at: Mapped[datetime | None] = mapped_column()
    polled_at: Mapped[datetime | None] = mapped_column()


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


# Core tables, typed, for the hot paths that use multi-row statements instead of ORM objects.
reporters = _table(Reporter)
channel_identities = _table(ChannelIdentity)
inbound_messages = _table(InboundMessage)
conversations = _table(Conversation)
complaints = _table(Complaint)
complaint_followers = _table(ComplaintFollower)
status_events = _table(StatusEvent)
outbox = _table(OutboxMessage)
early_receipts = _table(EarlyReceipt)
users = _table(User)
departments = _table(Department)
categories = _table(Category)
complaint_departments = _table(ComplaintDepartment)
notifications = _table(Notification)
identity_reveals = _table(IdentityReveal)
upstream_requests = _table(UpstreamRequest)


SEARCH_OBJECTS = "complaints_search"
"""The inbox search's index, made per backend by migration 0007 and so outside these models: on
PostgreSQL the GIN index `ix_complaints_search` (pg_trgm, on an expression), on SQLite the FTS5
table `complaints_search` with its shadow tables (`complaints_search_data`, ...) and triggers.
tests/test_migration_0007.py checks them."""


def described_by_models(name: str | None, type_: str, parent_names: MutableMapping[Any, Any]) -> bool:
    """Alembic's `include_name`: False for the search objects above, which the models cannot
    describe, so comparing the models with the database (autogenerate, tests/test_store.py) leaves
    them alone instead of reporting them as removed."""
    if type_ == "table":
        return not (name or "").startswith(SEARCH_OBJECTS)
    if type_ == "index":
        return name != "ix_" + SEARCH_OBJECTS
    return True
