"""Property tests: whatever a citizen (or a broken pipeline) throws at the machine, it stays sound.

Any sequence of turns (random text, commands, photos, locations), ticks and pipeline answers must
never raise, must leave a valid state that survives a strict JSON round trip, and must only ever
send texts that fit one SMS.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation import api
from conversation.gsm import fits_one_segment
from conversation.machine import step
from conversation.state import Stage, problems

WIB = timezone(timedelta(hours=7))
START = datetime(2025, 3, 10, 8, 0, tzinfo=WIB)
CODE = "LPR-7K3M9Q"

PHRASES = [
    "ya", "YA", "tidak", "BATAL", "btal", "LEWATI", "skip", "BANTUAN", "help", "STATUS", "cek LPR-7K3M9Q",
    "status lpr 4hx2pt", "status hallo", "BARU", "BARU: sampah di pasar Bulu", "ANONIM", "ENGLISH",
    "INDONESIA", "LaporHendi", "LaporHendi jalan rusak", "lampu PJU mati di Jl. Pemuda", "di Jl. Majapahit",
    "depan pasar Johar", "banjir di pedurangan", "KTP belum jadi", "😡", "👍", "halo min", "makasih",
    "rob", "gang 3 RT 04 RW 02", "", " ", "\n", "#LaporHendi", "LPR-", "€€€[]{}", "ok siap",
]
texts = st.one_of(
    st.sampled_from(PHRASES), st.text(max_size=300), st.text(alphabet="abcLPR- 0O1", max_size=20)
)
coordinates = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=-8, max_value=-6), st.none()
)
places = st.one_of(
    st.none(),
    st.builds(api.Place, latitude=coordinates, longitude=coordinates, text=st.one_of(st.none(), texts)),
)
attachments = st.lists(
    st.builds(api.Attachment, ref=st.text(min_size=1, max_size=20), content_type=st.none()), max_size=3
).map(tuple)
media = st.sampled_from(["sms", "whatsapp", "telegram", "twitter", "web", "fax"])
infos = st.builds(
    api.ComplaintInfo,
    code=st.sampled_from(["LPR-9WRC6B", "LPR-4HX2PT", "LPR-7K3M9Q", "garbage"]),
    status=st.sampled_from(["submitted", "forwarded", "resolved", "weird"]),
    category=st.one_of(st.none(), st.sampled_from(["sampah", "nope"])),
    summary=texts,
    department=st.one_of(st.none(), texts),
    updated_at=st.one_of(st.none(), st.just(START)),
)

# An event is built from an offset (seconds after the previous event) so time mostly moves forward
# but may also stand still or jump days, as clocks and schedulers really do.
gaps = st.one_of(st.integers(0, 120), st.integers(1700, 1900), st.integers(80000, 90000), st.just(-30))


@st.composite
def events(draw: st.DrawFn, at: datetime) -> api.Event:
    kind = draw(st.sampled_from(["turn", "turn", "turn", "tick", "status", "duplicates"]))
    if kind == "turn":
        return api.Turn(medium=draw(media), at=at, text=draw(st.one_of(st.none(), texts)),
                        attachments=draw(attachments), place=draw(places))
    if kind == "tick":
        return api.Tick(at=at)
    if kind == "status":
        codes = draw(st.lists(st.sampled_from(["LPR-9WRC6B", "LPR-4HX2PT"]), max_size=2).map(tuple))
        found = draw(st.lists(infos, max_size=5).map(tuple))
        return api.StatusAnswer(at=at, requested_codes=codes, found=found)
    return api.DuplicateAnswer(at=at, candidates=draw(st.lists(infos, max_size=3).map(tuple)))


@st.composite
def conversations(draw: st.DrawFn) -> list[api.Event]:
    at = START
    found: list[api.Event] = []
    for _ in range(draw(st.integers(1, 25))):
        at += timedelta(seconds=draw(gaps))
        found.append(draw(events(at)))
    return found


def check(result: api.StepResult, ctx: api.Context) -> dict[str, Any]:
    encoded = json.dumps(result.state, allow_nan=False)
    stored: dict[str, Any] = json.loads(encoded)
    assert stored == result.state
    assert problems(stored) == []
    filings = [e for e in result.effects if isinstance(e, api.SubmitComplaint | api.JoinComplaint)]
    assert len(filings) <= 1
    for effect in result.effects:
        if isinstance(effect, api.Reply):
            assert effect.text.strip()
            assert fits_one_segment(effect.text), effect.text
        if isinstance(effect, api.SubmitComplaint):
            assert effect.draft.tracking_code == ctx.new_tracking_code
            assert effect.draft.description.strip()
    if result.timer_at is not None:
        assert result.timer_at.tzinfo is not None
        assert stored["stage"] != Stage.IDLE.value
    return stored


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_any_sequence_keeps_a_valid_state(sequence: list[api.Event]) -> None:
    state: dict[str, Any] | None = None
    for event in sequence:
        ctx = api.Context(now=event.at, new_tracking_code=CODE)
        result = step(state, event, ctx)
        stored = check(result, ctx)
        # Deterministic: the same stored state and event give the same result.
        assert step(stored, event, ctx) == step(json.loads(json.dumps(stored)), event, ctx)
        state = stored


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
state_keys = st.sampled_from(["v", "stage", "language", "draft", "filed", "last_activity", "reminded",
                              "awaiting_duplicates", "medium", "description", "started_at"])
garbage_states = st.one_of(
    json_values,
    st.dictionaries(state_keys, json_values, max_size=8),
    st.dictionaries(state_keys, json_values, max_size=8).map(lambda d: {**d, "v": 1}),
)


@settings(max_examples=200, deadline=None)
@given(garbage_states, st.sampled_from(["lampu PJU mati di Jl. Pemuda", "ya", "BATAL", "STATUS", "😡"]))
def test_garbage_state_is_a_fresh_reporter(garbage: Any, text: str) -> None:
    turn = api.Turn(medium="sms", at=START, text=text)
    ctx = api.Context(now=START, new_tracking_code=CODE)
    result = step(garbage, turn, ctx)
    check(result, ctx)
    if not isinstance(garbage, dict) or problems(garbage):
        assert result == step(None, turn, ctx)


def test_naive_clock_values_in_a_stored_state_are_rejected() -> None:
    ctx = api.Context(now=START, new_tracking_code=CODE)
    first = step(None, api.Turn(medium="sms", at=START, text="jalan rusak"), ctx)
    tampered = {**first.state, "last_activity": datetime(2025, 1, 1).isoformat()}
    assert problems(tampered)
    later = api.Turn(medium="sms", at=START + timedelta(minutes=1), text="di Jl. Pemuda")
    result = step(tampered, later, ctx)
    # Fresh reporter: "di Jl. Pemuda" alone starts a new draft that still needs the problem.
    assert result.state["stage"] == Stage.DESCRIPTION.value


def test_timer_follows_the_settings() -> None:
    quick = api.Settings(reminder_after=timedelta(minutes=5), expire_after=timedelta(hours=1))
    ctx = api.Context(now=START, new_tracking_code=CODE, settings=quick)
    result = step(None, api.Turn(medium="sms", at=START, text="jalan rusak"), ctx)
    assert result.timer_at == START + timedelta(minutes=5)
    reminded = step(result.state, api.Tick(at=START + timedelta(minutes=5)), ctx)
    assert [e.key for e in reminded.effects if isinstance(e, api.Reply)] == ["remind_location"]
    assert reminded.timer_at == START + timedelta(hours=1)
    early = step(reminded.state, api.Tick(at=START + timedelta(minutes=6)), ctx)
    assert early.effects == ()
    assert early.timer_at == START + timedelta(hours=1)
    utc_tick = api.Tick(at=(START + timedelta(hours=1)).astimezone(UTC))
    expired = step(reminded.state, utc_tick, ctx)
    assert [e.key for e in expired.effects if isinstance(e, api.Reply)] == ["expired_kept_location"]
    assert expired.timer_at is None


def test_answers_nobody_asked_for_are_ignored() -> None:
    ctx = api.Context(now=START, new_tracking_code=CODE)
    candidate = api.ComplaintInfo("LPR-9WRC6B", "submitted", None, "x")
    stray = api.DuplicateAnswer(at=START, candidates=(candidate,))
    result = step(None, stray, ctx)
    assert result.effects == ()
    assert result.state["stage"] == Stage.IDLE.value
