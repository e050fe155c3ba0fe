"""A description read line by line says what reading all of it at once says.

`conversation.description` keeps the reading of a draft's description where it stood and reads
only the line a turn adds. Each piece is held here to the plain computation over the whole text,
on texts made of the words the rules single out (markers, stop words, names, intro words, clause
marks, odd spaces and characters), on long texts and on the machine's own turns:
- `PlaceStream` and `LineRest` (a text given in parts) against `find_place` of the whole text;
- `Scan.settled`/`resume`: what a text's scan settles stands whatever follows it;
- `Scores` and `_chunk_scores` against `_score`'s greedy claims over all the words;
- `_CLAUSE_END` against the pattern it replaced;
- `Description` and `describe` against `plain_suggestion` and `plain_summary`;
- the machine with the reading against the machine with the plain functions, turn by turn.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation import api, description, machine
from conversation.categories import (
    _CLAUSE_END,
    _LONGEST_FIRST,
    CATEGORIES,
    POSITION,
    Scores,
    _chunk_scores,
    _evidence,
    _possible_phrases,
    _score,
    clauses,
    suggest,
)
from conversation.description import Description, describe, plain_suggestion, plain_summary
from conversation.places import (
    _SINGLE_NAMES,
    KNOWN_NAMES,
    PLACE_NOUNS,
    RELATIVE_WORDS,
    STOP_WORDS,
    STREET_WORDS,
    LineRest,
    PlaceStream,
    _near_single_name,
    find_place,
    read,
)
from conversation.state import MAX_DESCRIPTION
from conversation.text import distance, words

WIB = timezone(timedelta(hours=7))
AT = datetime(2025, 3, 10, 8, 0, tzinfo=WIB)
CHECKS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

# Words the place rules and the category rules single out, and some they must pass over.
RULE_WORDS = [
    "di", "Di", "DI", "at", "on", "in", "In", "near", "front", "of", "ke", "the", "dan", "jalan", "Jalan",
    "jl", "Jl.", "jln.", "gg", "gang", "lampu", "merah", "penerangan", "lampunya", "raya", "Raya", "rt", "RT",
    "rw", "RW.02", "rt.04/rw.02", "04", "3", "12", "no", "No.", "depan", "dekat", "Pemuda", "Street", "st",
    "road",
    "sudah", "mati", "rusak", "banjir", "Banjir", "Kanal", "Barat", "Semarang", "Tengah", "tembalan",
    "Tembalang", "pedurangan", "x", "abc", "Abc", "pasar", "sekolah", "SD", "Simpang", "Lima", "tolong",
    "trotoar", "jualan", "parkir", "air", "masuk", "rumah", "sampah", "menumpuk", "mampet", "saluran",
]
ODD = [
    ",", ".", ";", "!", "?", "(", ")", "-", "'", ":", "…", "😡", "di,", "di.", "x.di", "Pemuda.", "gang.",
    "a/b", "_", "dı", "dİ", "é", "㎏", "x;y", "!!", "..", "a?b", "jl.", "Jl..", "rt.", "kec.", "Gg.",
]
NAME_WORDS = sorted({word for name in KNOWN_NAMES for word in name})[:60]
KEYWORDS = sorted({word for c in CATEGORIES for phrase in c.keywords for word in phrase})
VOCABULARY = (
    RULE_WORDS + ODD + NAME_WORDS + KEYWORDS[::3] + sorted(STREET_WORDS)[:10] + sorted(RELATIVE_WORDS)[:10]
    + sorted(PLACE_NOUNS)[:10] + sorted(STOP_WORDS)[:15]
)
SPACES = [" ", " ", " ", "  ", "\t", "\u2003", "\r", "", "\x0b", "\u3000"]
SLUGS = [None, "no-such-category", *(c.slug for c in CATEGORIES)]


@st.composite
def lines(draw: st.DrawFn, max_words: int = 14) -> str:
    text = ""
    for _ in range(draw(st.integers(0, max_words))):
        text += draw(st.sampled_from(SPACES)) + draw(st.sampled_from(VOCABULARY))
    return text + draw(st.sampled_from(SPACES))


def _rest(found: Any) -> tuple[bool, str | None]:
    return (found is not None, found.rest if found is not None else None)


# ---- place phrases of a text given in parts ---------------------------------------------------


@CHECKS
@given(st.lists(lines(), min_size=1, max_size=6))
def test_a_text_given_in_parts_after_spaces_is_cut_as_all_of_it(parts: list[str]) -> None:
    stream, emitted = PlaceStream(), []
    for count, part in enumerate(parts, start=1):
        stream = stream.extend(part, " ", emitted)
        has_place, rest = stream.close(list(emitted))
        assert (has_place, rest if has_place else None) == _rest(find_place(" ".join(parts[:count])))


@CHECKS
@given(st.lists(lines(), min_size=1, max_size=6))
def test_lines_given_one_by_one_are_cut_as_all_of_them(parts: list[str]) -> None:
    stream, found = LineRest(), []
    for count, part in enumerate(parts, start=1):
        stream = stream.extend(part, found)
        closing = list(found)
        has_place, rest = stream.close(closing)
        whole = "\n".join(parts[:count])
        assert (has_place, rest if has_place else None) == _rest(find_place(whole))
        # The words given out are the rest's, in order: what the category is scored on.
        assert words(rest) == closing


@CHECKS
@given(lines(), lines(), st.sampled_from([" ", "\n"]))
def test_what_a_scan_settles_stands_whatever_follows(first: str, then: str, separator: str) -> None:
    alone, both = read(first), read(first + separator + then)
    assert both.spans[: alone.settled] == alone.spans[: alone.settled]
    assert all(decision < alone.resume for decision in alone.decisions[: alone.settled])


def test_a_place_that_runs_on_into_the_next_line_is_cut_there_only_on_one_line() -> None:
    # "RW 05" then "saluran mampet": after a space the phrase takes "saluran", not after a break.
    first, then = "banjir di Kelurahan Tlogosari Kulon RT 5 RW 05", "saluran mampet depan SD Negeri"
    stream = PlaceStream().extend(first, " ", []).extend(then, " ", [])
    lines_ = LineRest().extend(first, []).extend(then, [])
    assert stream.close([]) == (True, _rest(find_place(f"{first} {then}"))[1])
    assert lines_.close([]) == (True, _rest(find_place(f"{first}\n{then}"))[1])
    assert stream.close([]) != lines_.close([])


# ---- category scores of words given a few at a time -------------------------------------------


SCORED = [*KEYWORDS, "x", "di", "12", "lampuu", "banjr", "jalann", "tidak"]


def _plain_scores(tokens: list[str]) -> dict[int, float]:
    evidence = _evidence(tokens)
    possible = _possible_phrases(evidence.present)
    scores = {position: _score(evidence, phrases) for position, phrases in possible.items()}
    return {position: score for position, score in scores.items() if score}


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(SCORED), max_size=14))
def test_chunk_scores_are_the_greedy_claims(tokens: list[str]) -> None:
    assert dict(_chunk_scores(tuple(tokens))) == _plain_scores(tokens)


@CHECKS
@given(st.lists(st.lists(st.sampled_from(SCORED), max_size=8), min_size=1, max_size=10))
def test_scores_given_a_few_words_at_a_time_are_those_of_all(chunks: list[list[str]]) -> None:
    scores, seen = Scores(), []
    for chunk in chunks:
        scores, seen = scores.add(chunk), seen + chunk
        assert scores.suggestion() == suggest(" ".join(seen))
        plain = _plain_scores(seen)
        for category in CATEGORIES:
            assert scores.has(POSITION[category.slug]) == (plain.get(POSITION[category.slug], 0.0) > 0)


@CHECKS
@given(
    st.lists(st.lists(st.sampled_from(SCORED), max_size=8), max_size=6),
    st.lists(st.sampled_from(SCORED), max_size=3),
)
def test_scores_with_the_last_words_apart_are_those_of_all(
    chunks: list[list[str]], last: list[str]
) -> None:
    scores = Scores()
    for chunk in chunks:
        scores = scores.add(chunk)
    seen = [word for chunk in chunks for word in chunk]
    assert scores.suggestion(last) == suggest(" ".join(seen + last))
    assert scores.suggestion() == suggest(" ".join(seen))


def test_a_long_run_of_phrases_that_overlap_is_still_scored_as_one() -> None:
    # Every point between these words is inside some phrase: no sum can end before the last.
    run = ["air", "masuk", "rumah"] * 30
    assert Scores().add(run[:40]).add(run[40:]).suggestion() == suggest(" ".join(run))


# ---- clause marks -------------------------------------------------------------------------------

_PLAIN_CLAUSE_END = re.compile(
    r"(?<!\bjl)(?<!\bjln)(?<!\bgg)(?<!\bno)(?<!\bkel)(?<!\bkec)(?<!\brt)(?<!\brw)[.!?;,\n]+", re.IGNORECASE
)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="jlngokecrtw .!?;,\nJLNRT\u0130\u0131x", max_size=40) | lines())
def test_clause_marks_are_found_as_the_plain_pattern_finds_them(text: str) -> None:
    assert _CLAUSE_END.split(text) == _PLAIN_CLAUSE_END.split(text)
    found = [match.span() for match in _CLAUSE_END.finditer(text)]
    assert found == [match.span() for match in _PLAIN_CLAUSE_END.finditer(text)]


# ---- the description ------------------------------------------------------------------------


@CHECKS
@given(st.lists(lines(), min_size=1, max_size=7), st.sampled_from(SLUGS))
def test_a_description_read_line_by_line_says_what_all_of_it_says(parts: list[str], slug: str | None) -> None:
    reading = Description()
    for count, part in enumerate(parts, start=1):
        reading = reading.extend(part)
        text = "\n".join(parts[:count])
        assert reading.suggestion() == plain_suggestion(text), text
        assert reading.summary(text, slug) == plain_summary(text, slug), (text, slug)


@CHECKS
@given(
    st.lists(lines(), min_size=1, max_size=5),
    st.lists(lines(), min_size=1, max_size=3),
    st.sampled_from(SLUGS),
)
def test_describe_reads_on_from_a_kept_reading(
    before: list[str], added: list[str], slug: str | None
) -> None:
    old, new = "\n".join(before), "\n".join(before + added)
    describe(old)
    for reading in (describe(new, old), describe(new)):
        assert reading.suggestion() == plain_suggestion(new)
        assert reading.summary(new, slug) == plain_summary(new, slug)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "\n\n\n",
        "lampu mati\r\ndi Jl. Pemuda\r\n",
        "  sampah\u3000menumpuk \t di gang 3\u2003",
        "banjir di\nJl. Majapahit",  # an intro word before a place on the next line
        "saluran mampet di\n, depan SD",
        "jalan\nrusak parah",  # a phrase across a line break
        "lampu\njalan mati",  # "lampu jalan" is a thing on one line, not a street
        "KTP belum jadi, sudah 3 bulan. Tolong dibantu; makasih!",
    ],
)
def test_odd_descriptions(text: str) -> None:
    for slug in SLUGS[:4]:
        assert describe(text).summary(text, slug) == plain_summary(text, slug)
    assert describe(text).suggestion() == plain_suggestion(text)


def test_a_description_longer_than_the_limit_is_read_as_the_plain_functions_read_it() -> None:
    body = "Saluran air di depan rumah kami di Jl. Pamularsih Raya RT 05 sudah mampet, air meluap ke jalan"
    text = ""
    reading = Description()
    while len(text) < MAX_DESCRIPTION + 500:
        line = f"{body} {len(text)}"
        text = f"{text}\n{line}" if text else line
        reading = reading.extend(line)
    cut = text[:MAX_DESCRIPTION]
    assert reading.suggestion() == plain_suggestion(text)
    assert reading.summary(text, "saluran") == plain_summary(text, "saluran")
    assert describe(cut).suggestion() == plain_suggestion(cut)
    assert describe(cut).summary(cut, "saluran") == plain_summary(cut, "saluran")


# ---- the machine, turn by turn ------------------------------------------------------------------


TURNS = [
    "LaporHendi lampu PJU mati di Jl. Pemuda no 12 depan Paragon",
    "Lapor Hendi jalan berlubang 30 cm di Jl. Majapahit dekat lampu merah Gayamsari",
    "#LaporHendi banjir setinggi lutut di Kelurahan Tlogosari Kulon RT 4 RW 05",
    "sampah menumpuk di gang 7 Pedurungan sudah seminggu",
    "saluran mampet depan SD Negeri Sendangmulyo 3",
    "pohon tumbang di Jl. Setiabudi no 9 arah Banyumanik",
    "YA", "LEWATI", "BATAL", "tidak", "di Jl. Pemuda", "KTP belum jadi, sudah 3 bulan.", "tolong segera!",
]


class _PlainReading:
    """`describe` as the plain functions read a description (the machine before the reading)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def suggestion(self) -> Any:
        return plain_suggestion(self.text)

    def summary(self, text: str, category: str | None) -> str:
        return plain_summary(text, category)


@CHECKS
@given(st.lists(st.sampled_from(TURNS) | lines(8), min_size=1, max_size=12), st.sampled_from(["sms", "web"]))
def test_the_machine_says_and_files_what_it_did_reading_all_of_it(texts: list[str], medium: str) -> None:
    def run(reader: Any) -> list[api.StepResult]:
        results, state = [], None
        original = machine.describe
        machine.describe = reader  # type: ignore[assignment]
        try:
            for i, text in enumerate(texts):
                at = AT + timedelta(minutes=2 * i)
                ctx = api.Context(now=at, new_tracking_code="LPR-7K3M9Q")
                result = machine.step(state, api.Turn(medium=medium, at=at, text=text), ctx)
                results.append(result)
                state = json.loads(json.dumps(result.state))
        finally:
            machine.describe = original
        return results

    def plain(text: str, previous: str | None = None) -> _PlainReading:
        return _PlainReading(text)

    assert run(description.describe) == run(plain)


def test_the_reading_of_a_sender_who_keeps_writing_does_not_grow() -> None:
    # Every turn reads its own line: the first line is read once, whatever follows it.
    first = "lampu PJU mati di Jl. Pemuda no 12 depan Paragon"
    before = read.cache_info().misses
    text, reading = first, describe(first)
    for n in range(30):
        line = f"sampah menumpuk di gang {n} Pedurungan sudah seminggu"
        reading = describe(f"{text}\n{line}", text)
        text = f"{text}\n{line}"
    assert read.cache_info().misses - before <= 31 + 1
    assert reading.suggestion() == plain_suggestion(text)


def test_clauses_split_as_before() -> None:
    text = "Selamat malam pak. Saluran air di Jl. Pamularsih Raya RT 05 sudah mampet, tolong!"
    assert clauses(text) == [c.strip() for c in _PLAIN_CLAUSE_END.split(text) if c.strip()]
    assert _LONGEST_FIRST  # the plain greedy the chunks are checked against is still there


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(sorted(_SINGLE_NAMES)), st.text(alphabet="aeiknrstuy", max_size=2), st.integers(0, 9))
def test_a_slip_of_a_one_word_name_is_found_by_its_index(name: str, letters: str, where: int) -> None:
    # A word near a name (a letter dropped, doubled, changed or swapped), and any word at all.
    at = where % len(name)
    dropped, added = name[:at] + name[at + 1 :], name[:at] + letters + name[at:]
    changed = name[:at] + letters[:1] + name[at + 1 :]
    swapped = name[:at] + name[at + 1 : at + 2] + name[at : at + 1] + name[at + 2 :]
    near = {name, dropped, added, changed, swapped, letters + name, name + letters}
    for word in near:
        assert _near_single_name.__wrapped__(word) == (
            len(word) >= 6 and any(distance(word, known, 1) <= 1 for known in _SINGLE_NAMES)
        ), word
