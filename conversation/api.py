"""The conversation's contract with the gateway: what goes into a step and what comes out.

The machine is pure: the pipeline hands it the reporter's persisted state, one event and a context
(clock, a fresh tracking code or a function making one, settings), and gets back the new state plus
effects. Anything that needs the database (a status lookup, a duplicate search) is an effect whose
answer the pipeline feeds back as another event in the same transaction, so the machine never does
I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Place:
    """Where the problem is: coordinates when the channel shared them, words otherwise."""

    latitude: float | None = None
    longitude: float | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A stored photo or document (a reference into the media store, or the provider URL)."""

    ref: str
    content_type: str | None = None


# ---- events: what the machine reacts to -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    """One message from the citizen. `medium` is sms / whatsapp / telegram / twitter / web."""

    medium: str
    at: datetime
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    place: Place | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """The clock moved (the scheduler calls this when `State.timer_at` has passed)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class ComplaintInfo:
    """What a citizen may learn about a complaint: no personal data in here."""

    code: str
    status: str
    category: str | None
    summary: str
    department: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """Answer to `LookupStatus`: the complaints found (empty when the code is unknown)."""

    at: datetime
    requested_codes: tuple[str, ...]
    found: tuple[ComplaintInfo, ...]


@dataclass(frozen=True, slots=True)
class DuplicateAnswer:
    """Answer to `FindDuplicates`: open complaints that may be the same problem, best first."""

    at: datetime
    candidates: tuple[ComplaintInfo, ...]


Event = Turn | Tick | StatusAnswer | DuplicateAnswer


# ---- effects: what the pipeline must do ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """Text for the citizen on the channel they used. `key` is the catalog key (for tests/metrics)."""

    text: str
    key: str


@dataclass(frozen=True, slots=True)
class Draft:
    """A complaint ready to file."""

    tracking_code: str
    description: str
    place: Place | None
    attachments: tuple[Attachment, ...]
    category: str | None
    category_confidence: float
    anonymous: bool
    language: str
    medium: str


@dataclass(frozen=True, slots=True)
class SubmitComplaint:
    draft: Draft


@dataclass(frozen=True, slots=True)
class AddEvidence:
    """A photo or place that arrived for a complaint already filed."""

    code: str
    attachments: tuple[Attachment, ...] = ()
    place: Place | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class JoinComplaint:
    """The citizen said YA to a possible duplicate: follow that complaint instead of filing one."""

    code: str
    draft: Draft


@dataclass(frozen=True, slots=True)
class LookupStatus:
    """Codes asked for; empty means 'my open complaints'. Answer with `StatusAnswer`."""

    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FindDuplicates:
    """Look for open, recent complaints like this draft. Answer with `DuplicateAnswer`."""

    category: str | None
    place: Place | None


Effect = Reply | SubmitComplaint | AddEvidence | JoinComplaint | LookupStatus | FindDuplicates


@dataclass(frozen=True, slots=True)
class Settings:
    keywords: tuple[str, ...] = ("LaporHendi", "LaporSemar", "Lapor")
    reminder_after: timedelta = timedelta(minutes=30)
    expire_after: timedelta = timedelta(hours=24)
    default_language: str = "id"
    tracking_url: str | None = None


DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True, slots=True)
class Context:
    """What a step gets besides the state and the event.

    `new_tracking_code`: the code a complaint filed in this step gets. Few steps file one, so it
    may be given as a function that makes one (`conversation.codes.new_code`): the machine calls
    it only when it files, at most once a step. A plain code still works (tests, replays).
    """

    now: datetime
    new_tracking_code: str | Callable[[], str]
    # One shared default (settings are frozen): a context is made for every step.
    settings: Settings = DEFAULT_SETTINGS

    def tracking_code(self) -> str:
        """The code for a complaint filed in this step (made now if it is to be made)."""
        code = self.new_tracking_code
        return code if isinstance(code, str) else code()


@dataclass(frozen=True, slots=True)
class StepResult:
    """`state` is JSON-serialisable (see `State`); `timer_at` tells the pipeline when to Tick."""

    state: Mapping[str, Any]
    effects: tuple[Effect, ...]
    timer_at: datetime | None
