"""The reporter's conversation state: what the store persists between steps, as a versioned dict.

One state per reporter, whatever channel they write from, so moving from SMS to WhatsApp on the
same number continues the same conversation. The dict is plain JSON. Loading is tolerant on
purpose: a state from an older version, a hand-edited row or garbage must never crash intake, so
anything unreadable is treated as a fresh reporter rather than raised.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from conversation.api import Attachment, Place
from conversation.catalog import CATALOGS

VERSION = 2
# Version 1 held fingerprints as the folded text itself and wrote every field; it still loads (see
# `same_print`), and is written back as version 2.
READABLE = (1, VERSION)
MAX_DESCRIPTION = 4000
MAX_ATTACHMENTS = 10
MAX_FILED = 10


class Stage(enum.StrEnum):
    """Where the conversation is, named after what is still missing."""

    IDLE = "idle"
    DESCRIPTION = "description"
    LOCATION = "location"
    PHOTO = "photo"
    CONFIRMATION = "confirmation"
    DUPLICATE = "duplicate"


@dataclass
class DraftState:
    """The complaint being collected."""

    started_at: datetime
    description: str = ""
    place_text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    attachments: list[Attachment] = field(default_factory=list)
    category: str | None = None
    confidence: float = 0.0
    anonymous: bool = False
    asked: int = 0
    photo_skipped: bool = False
    expired: bool = False
    duplicate_of: str | None = None
    duplicate_summary: str = ""
    duplicates_checked: bool = False

    @property
    def place(self) -> Place | None:
        if self.place_text is None and self.latitude is None:
            return None
        return Place(latitude=self.latitude, longitude=self.longitude, text=self.place_text)


@dataclass(frozen=True, slots=True)
class Filed:
    """A complaint this reporter filed or joined (for STATUS, late photos and repeats). Never
    changed once recorded: the list is only prepended to and trimmed. `fingerprint`: the print
    of its folded description (`print_of`), or that text itself in a version 1 state."""

    code: str
    at: datetime
    fingerprint: str = ""


# ---- fingerprints ----------------------------------------------------------------------------
#
# A turn's fingerprint (its folded text) is compared with the last turn's and with the filed
# complaints' to spot a message sent twice. Only equality matters, so the state keeps a digest
# instead of the text (a folded description can be 4,000 characters, ten times over): "#" and 20
# hex digits of BLAKE2b. A folded text has only [a-z0-9 ], so it never starts with "#": a
# version 1 state's texts are told apart and compared as texts.


@lru_cache(maxsize=4096)
def print_of(folded: str) -> str:
    """What the state keeps of a folded text ("" stays "": no fingerprint)."""
    if not folded:
        return ""
    return "#" + hashlib.blake2b(folded.encode(), digest_size=10).hexdigest()


def same_print(kept: str, folded: str) -> bool:
    """Whether `kept` (a print, or a version 1 text) is that of the folded text `folded`."""
    if kept.startswith("#"):
        return kept == print_of(folded)
    return kept == folded


@dataclass
class ConversationState:
    language: str = "id"
    language_chosen: bool = False
    anonymous_next: bool = False
    medium: str | None = None
    draft: DraftState | None = None
    awaiting_duplicates: bool = False
    awaiting_status: bool = False
    last_activity: datetime | None = None
    reminded: bool = False
    last_fingerprint: str = ""
    last_turn_at: datetime | None = None
    filed: list[Filed] = field(default_factory=list)


# ---- dumping -------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return _iso(id(value), value) if value is not None else None


@lru_cache(maxsize=4096)
def _iso(_identity: int, value: datetime) -> str:
    """`value.isoformat()`, cached per datetime object: loading shares one object per stored text
    (`_parse_time`), so the times a step did not change are not formatted again.

    Keyed by identity, not equality: equal times in different zones are written differently. The
    object is part of the key, which keeps it alive, so its id cannot be reused while cached.
    """
    return value.isoformat()


def dump(state: ConversationState, stage: Stage) -> dict[str, Any]:
    """The JSON-serialisable form; `stage` is stored for observers (dashboard, logs), not trusted.

    A field at the value `load` gives it when it is missing (false, null, 0, "", []) is left
    out: the store writes every state at every turn, and most fields are at rest most of the time.
    """
    found: dict[str, Any] = {"v": VERSION, "stage": _STAGE_VALUES[stage], "language": state.language}
    flags = (
        state.language_chosen, state.anonymous_next, state.awaiting_duplicates, state.awaiting_status,
        state.reminded,
    )
    if True in flags:
        found.update({key: True for key, flag in zip(_FLAGS, flags, strict=True) if flag})
    if state.medium is not None:
        found["medium"] = state.medium
    if state.last_activity is not None:
        found["last_activity"] = _time(state.last_activity)
    if state.last_fingerprint:
        found["last_fingerprint"] = _kept_print(state.last_fingerprint)
    if state.last_turn_at is not None:
        found["last_turn_at"] = _time(state.last_turn_at)
    if state.filed:
        found["filed"] = [_dump_filed(f) for f in state.filed]
    if state.draft is not None:
        found["draft"] = _dump_draft(state.draft)
    return found


# A stage's value by dict, not through the enum's `value` descriptor (a Python call in 3.11).
_STAGE_VALUES: dict[Stage, str] = {stage: stage.value for stage in Stage}
_FLAGS = ("language_chosen", "anonymous_next", "awaiting_duplicates", "awaiting_status", "reminded")
# A draft's fields left out at rest: those whose rest is "false, 0 or empty", those whose is None.
_DRAFT_EMPTY = ("confidence", "anonymous", "asked", "photo_skipped", "expired", "duplicate_summary",
                "duplicates_checked")
_DRAFT_NONE = ("place_text", "latitude", "longitude", "category", "duplicate_of")


@lru_cache(maxsize=4096)
def _kept_print(fingerprint: str) -> str:
    """What is written of a fingerprint: a print as it is, a version 1 text as its print."""
    return fingerprint if fingerprint[:1] == "#" else print_of(fingerprint)


def _dump_filed(filed: Filed) -> dict[str, Any]:
    entry = {"code": filed.code, "at": _time(filed.at)}
    if filed.fingerprint:
        entry["fingerprint"] = _kept_print(filed.fingerprint)
    return entry


def _dump_draft(draft: DraftState) -> dict[str, Any]:
    found: dict[str, Any] = {"started_at": _time(draft.started_at), "description": draft.description}
    if draft.attachments:
        found["attachments"] = [{"ref": a.ref, "content_type": a.content_type} for a in draft.attachments]
    # The fields read off the instance's dict in this frame (no pairs zipped, no comprehension).
    fields = draft.__dict__
    for key in _DRAFT_EMPTY:
        if fields[key]:
            found[key] = fields[key]
    for key in _DRAFT_NONE:
        if fields[key] is not None:
            found[key] = fields[key]
    return found


# ---- loading -------------------------------------------------------------------------------


class _Invalid(ValueError):
    """A field that cannot be read; the whole state is then treated as fresh."""


def _str(raw: Mapping[str, Any], key: str, default: str = "") -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise _Invalid(key)
    return value


def _opt_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise _Invalid(key)
    return value


def _bool(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if value is not True and value is not False:  # the only two bools, checked without isinstance
        raise _Invalid(key)
    return value


def _int(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Invalid(key)
    return value


def _float(raw: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid(key)
    if not low <= float(value) <= high:
        raise _Invalid(key)
    return float(value)


def _opt_time(raw: Mapping[str, Any], key: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(key)
    parsed = _parse_time(value)
    if parsed.tzinfo is None:
        raise _Invalid(key)
    return parsed


@lru_cache(maxsize=4096)
def _parse_time(value: str) -> datetime:
    """`datetime.fromisoformat`, cached: every step reads the same filed times again. Datetimes are
    immutable, so states may share them (and `_iso` then finds their text). A bad text raises,
    and is not cached."""
    return datetime.fromisoformat(value)


def _time_required(raw: Mapping[str, Any], key: str) -> datetime:
    value = _opt_time(raw, key)
    if value is None:
        raise _Invalid(key)
    return value


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    # A plain dict (what JSON gives) is checked without the slower abstract-class test.
    if type(value) is not dict and not isinstance(value, Mapping):
        raise _Invalid(key)
    return value


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(key)
    return value


_FLAG_IDS = frozenset({id(True), id(False)})


def _flags(values: tuple[object, ...]) -> bool:
    """Whether all are bools: the only two, by identity (0 and 1 are not, nor a bool subclass)."""
    return _FLAG_IDS.issuperset(map(id, values))


def _plain_draft(raw: Mapping[str, Any]) -> DraftState | None:
    """The draft `dump` writes, read without a helper call a field (None: not of that plain shape,
    read the long way). The same checks: a plain str, a bool, a float in range, a count."""
    get = raw.get
    description, summary = get("description", ""), get("duplicate_summary", "")
    place_text, category, duplicate_of = get("place_text"), get("category"), get("duplicate_of")
    confidence, asked = get("confidence"), get("asked", 0)
    anonymous, skipped, expired = get("anonymous", False), get("photo_skipped", False), get("expired", False)
    checked, attachments = get("duplicates_checked", False), get("attachments", ())
    if not (
        type(description) is str
        and type(summary) is str
        and (place_text is None or type(place_text) is str)
        and (category is None or type(category) is str)
        and (duplicate_of is None or type(duplicate_of) is str)
        and (confidence is None or (type(confidence) is float and 0.0 <= confidence <= 1.0))
        and type(asked) is int
        and asked >= 0
        and _flags((anonymous, skipped, expired, checked))
        and (attachments == () or attachments == [])
        and get("latitude") is None
        and get("longitude") is None
    ):
        return None
    # The fields in their order (no attachments, no coordinates: checked above); a stored time
    # (a plain str) read in this frame, anything else by `_time_required`, which raises.
    started = get("started_at")
    if type(started) is str:
        started = _parse_time(started)
        if started.tzinfo is None:
            raise _Invalid("started_at")
    else:
        started = _time_required(raw, "started_at")
    return DraftState(
        started, description[:MAX_DESCRIPTION], place_text, None, None, [],
        category, confidence or 0.0, anonymous, asked, skipped, expired, duplicate_of, summary, checked,
    )


def _load_draft(raw: Mapping[str, Any]) -> DraftState:
    plain = _plain_draft(raw)
    return plain if plain is not None else _checked_draft(raw)


def _checked_draft(raw: Mapping[str, Any]) -> DraftState:
    attachments = []
    for item in _list(raw.get("attachments", []), "attachments")[:MAX_ATTACHMENTS]:
        entry = _mapping(item, "attachment")
        ref = _str(entry, "ref")
        if not ref:
            raise _Invalid("attachment.ref")
        attachments.append(Attachment(ref=ref, content_type=_opt_str(entry, "content_type")))
    latitude = _float(raw, "latitude", -90.0, 90.0)
    longitude = _float(raw, "longitude", -180.0, 180.0)
    if (latitude is None) != (longitude is None):
        raise _Invalid("coordinates")
    confidence = _float(raw, "confidence", 0.0, 1.0)
    return DraftState(
        started_at=_time_required(raw, "started_at"),
        description=_str(raw, "description")[:MAX_DESCRIPTION],
        place_text=_opt_str(raw, "place_text"),
        latitude=latitude,
        longitude=longitude,
        attachments=attachments,
        category=_opt_str(raw, "category"),
        confidence=confidence or 0.0,
        anonymous=_bool(raw, "anonymous"),
        asked=_int(raw, "asked"),
        photo_skipped=_bool(raw, "photo_skipped"),
        expired=_bool(raw, "expired"),
        duplicate_of=_opt_str(raw, "duplicate_of"),
        duplicate_summary=_str(raw, "duplicate_summary"),
        duplicates_checked=_bool(raw, "duplicates_checked"),
    )


def _load_filed(items: list[Any]) -> list[Filed]:
    """The filed entries; a reporter's whole list is read at every step, so a plain entry (a dict
    of three strings, what `dump` writes) is read inline and only anything else goes the long way."""
    filed = []
    for item in items:
        if type(item) is dict:
            code, at, fingerprint = item.get("code", ""), item.get("at"), item.get("fingerprint", "")
            if type(code) is str and type(at) is str and type(fingerprint) is str:
                filed.append(_filed(code, at, fingerprint))
                continue
        entry = _mapping(item, "filed")
        code = _str(entry, "code")
        at = entry.get("at")
        if not isinstance(at, str):
            raise _Invalid("at")
        filed.append(_filed(code, at, _str(entry, "fingerprint")))
    return filed


@lru_cache(maxsize=4096)
def _filed(code: str, at: str, fingerprint: str) -> Filed:
    """A filed entry from its stored fields, cached: the same entries are read at every step, and
    a `Filed` never changes, so states may share it."""
    moment = _parse_time(at)
    if moment.tzinfo is None:
        raise _Invalid("at")
    return Filed(code, moment, fingerprint)


_NOT_FILED: Any = object()


def _readable(version: object) -> bool:
    """A version `load` reads (compared as `==` compares, which `in` does: whatever the JSON
    value, no error)."""
    return version in READABLE


def _load(raw: Mapping[str, Any]) -> ConversationState:
    # `_readable` and `_str` in this frame (the same checks, the same errors in the same order).
    get = raw.get
    if get("v") not in READABLE:
        raise _Invalid("v")
    language = get("language", "id")
    if not isinstance(language, str) or language not in CATALOGS:
        raise _Invalid("language")
    filed_raw = get("filed", _NOT_FILED)
    # A reporter who filed nothing has no list stored (`dump` leaves it out): nothing to read.
    filed = [] if filed_raw is _NOT_FILED else _load_filed(_list(filed_raw, "filed")[:MAX_FILED])
    draft_raw = get("draft")
    flags = (
        get("language_chosen", False), get("anonymous_next", False), get("awaiting_duplicates", False),
        get("awaiting_status", False), get("reminded", False),
    )
    medium, fingerprint = get("medium"), get("last_fingerprint", "")
    if _flags(flags) and type(fingerprint) is str and (medium is None or type(medium) is str):
        # What `dump` writes, read without a helper call a field, in the order the fields are
        # (so any error is the one `_checked_state` would meet first): the draft, then the times,
        # a plain str read in this frame and anything else by `_opt_time`.
        if draft_raw is None:
            draft = None
        else:
            draft_map = _mapping(draft_raw, "draft")
            draft = _plain_draft(draft_map)
            if draft is None:
                draft = _checked_draft(draft_map)
        activity, turn_at = get("last_activity"), get("last_turn_at")
        activity = _parse_time(activity) if type(activity) is str else _opt_time(raw, "last_activity")
        if activity is not None and activity.tzinfo is None:
            raise _Invalid("last_activity")
        turn_at = _parse_time(turn_at) if type(turn_at) is str else _opt_time(raw, "last_turn_at")
        if turn_at is not None and turn_at.tzinfo is None:
            raise _Invalid("last_turn_at")
        return ConversationState(
            language, flags[0], flags[1], medium, draft, flags[2], flags[3], activity, flags[4],
            fingerprint, turn_at, filed,
        )
    return _checked_state(raw, language, filed, draft_raw)


def _checked_state(
    raw: Mapping[str, Any], language: str, filed: list[Filed], draft_raw: Any
) -> ConversationState:
    return ConversationState(
        language=language,
        language_chosen=_bool(raw, "language_chosen"),
        anonymous_next=_bool(raw, "anonymous_next"),
        medium=_opt_str(raw, "medium"),
        draft=None if draft_raw is None else _load_draft(_mapping(draft_raw, "draft")),
        awaiting_duplicates=_bool(raw, "awaiting_duplicates"),
        awaiting_status=_bool(raw, "awaiting_status"),
        last_activity=_opt_time(raw, "last_activity"),
        reminded=_bool(raw, "reminded"),
        last_fingerprint=_str(raw, "last_fingerprint"),
        last_turn_at=_opt_time(raw, "last_turn_at"),
        filed=filed,
    )


def load(raw: object, default_language: str = "id") -> ConversationState:
    """The state in `raw`, or a fresh one when `raw` is None, of another version, or unreadable."""
    if type(raw) is dict or isinstance(raw, Mapping):
        try:
            return _load(raw)
        except (_Invalid, ValueError, TypeError, KeyError, OverflowError):
            pass
    return ConversationState(language=default_language if default_language in CATALOGS else "id")


def problems(raw: Mapping[str, Any]) -> list[str]:
    """What is wrong with a dumped state (empty when it is valid); used by tests and health checks."""
    found: list[str] = []
    if not _readable(raw.get("v")):
        found.append("version")
    try:
        state = _load(raw)
    except (_Invalid, ValueError, TypeError, KeyError, OverflowError) as exc:
        return [*found, f"unreadable: {exc!r}"]
    stage = raw.get("stage")
    if not isinstance(stage, str) or stage not in {s.value for s in Stage}:
        found.append(f"stage {stage!r}")
    if (state.draft is None) != (stage == Stage.IDLE.value):
        found.append("stage and draft disagree")
    if state.draft is not None and stage == Stage.DUPLICATE.value and not state.draft.duplicate_of:
        found.append("duplicate stage without a candidate")
    if state.awaiting_duplicates and state.draft is None:
        found.append("awaiting duplicates without a draft")
    return found
