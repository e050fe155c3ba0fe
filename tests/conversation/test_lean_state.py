"""The stored state, version 2: prints instead of folded texts, fields at rest left out; and a
tracking code made only when a complaint is filed.

Version 1 states (every field written, fingerprints as the folded texts) must keep loading and
mean the same: each step from a version 1 state says and does what it does from the version 2
state of the same conversation, and writes the same version 2 state.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation import api
from conversation.commands import fold_text
from conversation.guards import stage_of
from conversation.machine import step
from conversation.state import VERSION, ConversationState, Filed, Stage, dump, load, problems
from conversation.state import print_of as print_of
from conversation.state import same_print as same_print

WIB = timezone(timedelta(hours=7))
AT = datetime(2025, 3, 10, 8, 0, tzinfo=WIB)
CODE = "LPR-7K3M9Q"


def _dump_v1(state: ConversationState, stage: Stage, texts: dict[str, str]) -> dict[str, Any]:
    """What version 1 wrote (every field; fingerprints as folded texts, found back by print)."""

    def text(kept: str) -> str:
        return texts.get(kept, kept)

    draft = state.draft
    return {
        "v": 1,
        "stage": stage.value,
        "language": state.language,
        "language_chosen": state.language_chosen,
        "anonymous_next": state.anonymous_next,
        "medium": state.medium,
        "awaiting_duplicates": state.awaiting_duplicates,
        "awaiting_status": state.awaiting_status,
        "last_activity": state.last_activity.isoformat() if state.last_activity else None,
        "reminded": state.reminded,
        "last_fingerprint": text(state.last_fingerprint),
        "last_turn_at": state.last_turn_at.isoformat() if state.last_turn_at else None,
        "filed": [
            {"code": f.code, "at": f.at.isoformat(), "fingerprint": text(f.fingerprint)} for f in state.filed
        ],
        "draft": None
        if draft is None
        else {
            "started_at": draft.started_at.isoformat(),
            "description": draft.description,
            "place_text": draft.place_text,
            "latitude": draft.latitude,
            "longitude": draft.longitude,
            "attachments": [{"ref": a.ref, "content_type": a.content_type} for a in draft.attachments],
            "category": draft.category,
            "confidence": draft.confidence,
            "anonymous": draft.anonymous,
            "asked": draft.asked,
            "photo_skipped": draft.photo_skipped,
            "expired": draft.expired,
            "duplicate_of": draft.duplicate_of,
            "duplicate_summary": draft.duplicate_summary,
            "duplicates_checked": draft.duplicates_checked,
        },
    }


TURNS = [
    "lampu PJU mati di Jl. Pemuda no 12 depan Paragon", "YA", "ya", "tidak", "LEWATI", "BATAL", "BARU",
    "sampah menumpuk di gang 7 Pedurungan", "di Jl. Majapahit", "KTP belum jadi", "makasih", "halo",
    "ANONIM", "ENGLISH", "STATUS", "", "  ",
]
GAPS = [0, 1, 5, 90, 2000]  # minutes: a double send, a reply, a reminder, an expiry


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(TURNS), st.sampled_from(GAPS)), min_size=1, max_size=14))
def test_a_version_1_state_means_what_the_version_2_state_means(turns: list[tuple[str, int]]) -> None:
    state: dict[str, Any] | None = None
    texts: dict[str, str] = {}  # print -> folded text, to write version 1 states back
    at = AT
    for text, minutes in turns:
        at += timedelta(minutes=minutes)
        events: list[api.Event] = [api.Turn(medium="sms", at=at, text=text)]
        texts[print_of(fold_text(text))] = fold_text(text)
        while events:
            event = events.pop()
            ctx = api.Context(now=at, new_tracking_code=CODE)
            old = None if state is None else _dump_v1(load(state), Stage(state["stage"]), texts)
            result = step(state, event, ctx)
            if old is not None:
                assert problems(old) == []
                assert step(json.loads(json.dumps(old)), event, ctx) == result
            for effect in result.effects:
                if isinstance(effect, api.SubmitComplaint | api.JoinComplaint):
                    folded = fold_text(effect.draft.description)
                    texts[print_of(folded)] = folded
                if isinstance(effect, api.FindDuplicates):
                    events.append(api.DuplicateAnswer(at=at, candidates=()))
                if isinstance(effect, api.LookupStatus):
                    events.append(api.StatusAnswer(at=at, requested_codes=effect.codes, found=()))
            state = json.loads(json.dumps(result.state))
            assert state["v"] == VERSION and problems(state) == []


def test_a_repeat_and_a_complaint_filed_before_are_known_from_a_version_1_state() -> None:
    text = "lampu PJU mati di Jl. Pemuda no 12"
    v1 = {
        "v": 1, "stage": "idle", "language": "id", "last_activity": AT.isoformat(),
        "last_turn_at": AT.isoformat(),
        "last_fingerprint": fold_text("halo"),
        "filed": [{"code": "LPR-4HX2PT", "at": AT.isoformat(), "fingerprint": fold_text(text)}],
    }
    later = AT + timedelta(minutes=5)
    again = step(v1, api.Turn(medium="sms", at=later, text=text), api.Context(later, CODE))
    assert [e.key for e in again.effects if isinstance(e, api.Reply)] == ["already_filed"]
    assert again.state["filed"][0]["fingerprint"] == print_of(fold_text(text))
    # The state written back is version 2 and still knows the complaint.
    twice = step(again.state, api.Turn(medium="sms", at=later, text=text), api.Context(later, CODE))
    assert [e.key for e in twice.effects if isinstance(e, api.Reply)] == ["already_filed"]


def test_prints() -> None:
    assert print_of("") == "" and same_print("", "")
    assert print_of("lampu mati").startswith("#") and len(print_of("lampu mati")) == 21
    assert same_print(print_of("lampu mati"), "lampu mati") and same_print("lampu mati", "lampu mati")
    assert not same_print(print_of("lampu mati"), "lampu padam") and not same_print("lampu mati", "lampu")
    # A folded text never looks like a print.
    assert not fold_text("#" + print_of("x")[1:]).startswith("#")


def test_fields_at_rest_are_left_out_and_load_as_they_were() -> None:
    state = ConversationState(filed=[Filed(CODE, AT, print_of("lampu mati"))])
    dumped = dump(state, stage_of(state))
    assert dumped == {"v": VERSION, "stage": "idle", "language": "id",
                      "filed": [{"code": CODE, "at": AT.isoformat(), "fingerprint": print_of("lampu mati")}]}
    assert load(dumped) == state
    first = step(None, api.Turn(medium="sms", at=AT, text="lampu mati di Jl. Pemuda"), api.Context(AT, CODE))
    assert set(first.state["draft"]) == {"started_at", "description", "place_text", "category", "confidence"}
    assert dump(load(first.state), stage_of(load(first.state))) == first.state


def test_a_version_2_state_is_smaller() -> None:
    state: dict[str, Any] | None = None
    for i in range(12):
        at = AT + timedelta(hours=3 * i)
        for text in (f"lampu PJU mati di Jl. Pemuda no {i} depan Balai Kota, sudah 3 hari gelap", "YA"):
            result = step(state, api.Turn(medium="sms", at=at, text=text), api.Context(at, CODE))
            state = result.state
            if any(isinstance(e, api.FindDuplicates) for e in result.effects):
                state = step(state, api.DuplicateAnswer(at=at, candidates=()), api.Context(at, CODE)).state
    assert state is not None and len(state["filed"]) == 10
    loaded = load(state)
    texts = {f.fingerprint: f"lampu pju mati di jl pemuda no {i} depan balai kota sudah 3 hari gelap"
             for i, f in enumerate(loaded.filed)}
    old = json.dumps(_dump_v1(loaded, Stage.IDLE, texts))
    assert len(json.dumps(state)) < len(old) * 0.7  # ten entries of code and time remain


@pytest.mark.parametrize("version", [0, 3, "1", None, [1]])
def test_other_versions_are_a_fresh_reporter(version: Any) -> None:
    raw = {"v": version, "language": "en"}
    assert load(raw) == ConversationState() and problems(raw)


# ---- the tracking code, made when it is used ------------------------------------------------------


def test_a_tracking_code_is_made_only_by_a_step_that_files_once() -> None:
    made: list[str] = []

    def new_code() -> str:
        made.append(f"LPR-{len(made) + 2}K3M9Q")
        return made[-1]

    ctx = api.Context(now=AT, new_tracking_code=new_code)
    first = step(None, api.Turn(medium="sms", at=AT, text="lampu PJU mati di Jl. Pemuda"), ctx)
    asked = step(first.state, api.Turn(medium="sms", at=AT, text="YA"), ctx)
    assert made == []
    filed = step(asked.state, api.DuplicateAnswer(at=AT, candidates=()), ctx)
    submitted = [e for e in filed.effects if isinstance(e, api.SubmitComplaint)]
    assert made == ["LPR-2K3M9Q"] and submitted[0].draft.tracking_code == "LPR-2K3M9Q"
    assert "LPR-2K3M9Q" in " ".join(e.text for e in filed.effects if isinstance(e, api.Reply))
    # A plain code still works, and is the same as one made on demand.
    plain = step(asked.state, api.DuplicateAnswer(at=AT, candidates=()), api.Context(AT, "LPR-2K3M9Q"))
    assert plain == filed


# ---- loading: the plain shape read inline is read as the long way reads it -------------------------

values = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.floats(allow_nan=True), st.just(0.5), st.just(1.0),
    st.text(max_size=5), st.just([]), st.just([{"ref": "a.jpg"}]), st.just({}),
)
draft_fields = st.dictionaries(
    st.sampled_from([
        "description", "place_text", "category", "confidence", "asked", "anonymous", "photo_skipped",
        "expired", "duplicate_of", "duplicate_summary", "duplicates_checked", "attachments", "latitude",
        "longitude",
    ]),
    values,
    max_size=8,
)
state_fields = st.dictionaries(
    st.sampled_from([
        "language_chosen", "anonymous_next", "awaiting_duplicates", "awaiting_status", "reminded", "medium",
        "last_fingerprint",
    ]),
    values,
    max_size=5,
)


def _read(read: Any, raw: dict[str, Any]) -> Any:
    try:
        return read(raw)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        return type(exc)


@settings(max_examples=1000, deadline=None)
@given(draft_fields, state_fields)
def test_the_plain_shape_is_read_as_the_long_way_reads_it(draft: dict[str, Any], top: dict[str, Any]) -> None:
    from conversation import state as kept

    draft = {"started_at": AT.isoformat(), **draft}
    plain = kept._plain_draft(draft)
    if plain is not None:
        assert plain == kept._checked_draft(draft)
    raw = {"v": VERSION, **top, "draft": draft}
    fast = _read(kept._load, raw)
    slow = _read(lambda r: kept._checked_state(r, "id", [], r["draft"]), raw)
    assert fast == slow or (isinstance(fast, type) and isinstance(slow, type))


times = st.sampled_from(
    [None, AT.isoformat(), AT.replace(tzinfo=None).isoformat(), "not a time", "", 0, 1, [], AT.isoformat()]
)


def _outcome(read: Any, raw: dict[str, Any]) -> Any:
    from conversation import state as kept

    try:
        return ("read", read(raw))
    except (kept._Invalid, ValueError, TypeError, KeyError, OverflowError) as exc:
        return ("raised", repr(exc))


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from([VERSION, VERSION, 1, 0, None, "2", []]),
    st.sampled_from(["id", "en", None, "xx", 3]),
    times, times, times, st.sampled_from([None, {}, {}, [], "draft"]), st.one_of(st.just({}), draft_fields),
    st.one_of(st.just({}), state_fields),
)
def test_the_stored_times_version_and_language_are_read_as_the_plain_checks_read_them(
    version: Any, language: Any, started: Any, activity: Any, turn_at: Any, shape: Any,
    draft: dict[str, Any], top: dict[str, Any],
) -> None:
    """`_load` reads the version, the language and the three stored times in its own frame: the
    same state, or the same error (what `problems` reports), as `_readable`, `_str` and
    `_opt_time` / `_time_required` give, a draft read the long way."""
    from conversation import state as kept

    def plain(raw: dict[str, Any]) -> ConversationState:
        if not kept._readable(raw.get("v")):
            raise kept._Invalid("v")
        lang = kept._str(raw, "language", "id")
        if lang not in kept.CATALOGS:
            raise kept._Invalid("language")
        return kept._checked_state(raw, lang, [], raw.get("draft"))

    raw: dict[str, Any] = {"v": version, **top, "last_activity": activity, "last_turn_at": turn_at}
    if language is not None:
        raw["language"] = language
    if shape == {}:
        raw["draft"] = {"started_at": started, **draft}
    elif shape is not None:
        raw["draft"] = shape
    assert _outcome(kept._load, raw) == _outcome(plain, raw)
    if isinstance(raw.get("draft"), dict):
        fast = _outcome(kept._plain_draft, raw["draft"])
        if fast != ("read", None):
            assert fast == _outcome(kept._checked_draft, raw["draft"])
