"""The look-ups, indexes and caches that keep a conversation step cheap answer as the plain rules do.

Each test states the rule a fast path stands in for (one slip, the first listed category wins a
tie, a time is written back in ISO form, ...) and checks the fast path against it, on the edges a
shortcut could get wrong.
"""

from __future__ import annotations

import json
import re
import string
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation import api
from conversation.catalog import SHRINKABLE, render, template
from conversation.categories import CATEGORIES, VOCABULARY, _keyword_words, _token_matches, suggest
from conversation.codes import ALPHABET, LENGTH, PREFIX, is_code, new_code
from conversation.commands import _ORDER, _one_slip, _slips_of, parse_command
from conversation.gsm import BASIC, EXTENSION, SEGMENT, septets, to_gsm7
from conversation.guards import stage_of
from conversation.keywords import strip_keyword
from conversation.machine import step
from conversation.places import KNOWN_NAMES, RELATIVE_WORDS, STREET_WORDS, find_place
from conversation.state import ConversationState, Filed, Stage, dump, load
from conversation.text import FuzzyIndex, distance, fold, shorten, words

WIB = timezone(timedelta(hours=7))
AT = datetime(2025, 3, 10, 8, 0, tzinfo=WIB)
PHRASE_WORDS = sorted({word for _name, phrase in _ORDER for word in phrase})


def _mutations(word: str) -> list[str]:
    """Every word one edit away (delete, swap neighbours, replace or insert a letter)."""
    letters = "aeiknrstu"
    found = {word[:i] + word[i + 1 :] for i in range(len(word))}
    found |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    found |= {word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in letters}
    found |= {word[:i] + c + word[i:] for i in range(len(word) + 1) for c in letters}
    return sorted(found)


# ---- commands: the one-slip index ---------------------------------------------------------


@pytest.mark.parametrize("word", PHRASE_WORDS)
def test_the_slip_index_finds_every_phrase_word_within_one_slip(word: str) -> None:
    for typed in [word, *_mutations(word)]:
        assert _slips_of(typed) == {w for w in PHRASE_WORDS if _one_slip(typed, w)}, typed


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12))
def test_the_slip_index_on_any_word(typed: str) -> None:
    assert _slips_of(typed) == {w for w in PHRASE_WORDS if _one_slip(typed, w)}


def test_a_fuzzy_index_finds_every_word_within_its_depth() -> None:
    vocabulary = frozenset({"banjir", "genangan", "lampu", "rob", "kk", "sampah"})
    index = FuzzyIndex(vocabulary, depth=2)
    for word in vocabulary:
        for once in _mutations(word):
            for typed in [once, *_mutations(once)[::25]]:
                within = {w for w in vocabulary if distance(typed, w, 2) <= 2}
                assert within <= index.candidates(typed), typed


def test_every_phrase_is_its_command_and_earlier_phrases_win() -> None:
    for name, phrase in _ORDER:
        command = parse_command(" ".join(phrase))
        assert command is not None
        # A phrase listed under two commands does not exist, so the words name this one.
        assert command.name is name, phrase
    # An exact word beats a typo of an earlier command's word ("indo" is not "info").
    indo = parse_command("indo")
    assert indo is not None and indo.name.value == "indonesian"


def test_a_typo_in_the_second_word_of_a_phrase() -> None:
    command = parse_command("cek stauts LPR-7K3M9Q")
    assert command is not None and command.codes == ("LPR-7K3M9Q",)
    command = parse_command("tidak ada fotp")
    assert command is not None and command.name.value == "skip"


# ---- keywords: one alternation tried in the keywords' order ---------------------------------


@pytest.mark.parametrize(
    ("keywords", "text", "expected"),
    [
        (("Lapor", "LaporHendi"), "LaporHendi jalan rusak", ("LaporHendi", "jalan rusak")),
        (("LaporHendi", "Lapor"), "Lapor Hendi: jalan rusak", ("LaporHendi", "jalan rusak")),
        (("Lapor", "LaporHendi"), "Lapor, jalan rusak", ("Lapor", "jalan rusak")),
        (("LaporSemar", "LaporHendi"), "#LaporHendi #LaporSemar banjir", ("LaporHendi", "banjir")),
        (("LaporHendi", "LaporHendi"), "laporhendi sampah", ("LaporHendi", "sampah")),
        (("", "  ", "LaporHendi"), "LaporHendi sampah", ("LaporHendi", "sampah")),
        (("", "  "), "LaporHendi sampah", (None, "LaporHendi sampah")),
        ((), "  sampah  ", (None, "sampah")),
        (("Lapor.Kota",), "lapor.kota sampah", ("Lapor.Kota", "sampah")),
        (("LaporHendi",), "sampah #LaporHendi, tolong", ("LaporHendi", "sampah tolong")),
        (("LaporSemar", "LaporHendi"), "banjir #laporsemar #LaporHendi", ("LaporHendi", "banjir")),
    ],
)
def test_keyword_alternation(keywords: tuple[str, ...], text: str, expected: tuple[str | None, str]) -> None:
    assert strip_keyword(text, keywords) == expected
    assert strip_keyword(text, list(keywords)) == expected


# ---- places: most words skip the span checks ------------------------------------------------


@pytest.mark.parametrize("name", sorted(" ".join(k) for k in KNOWN_NAMES))
def test_every_known_name_is_a_place_in_any_case(name: str) -> None:
    for typed in (name, name.upper(), name.title()):
        found = find_place(f"banjir {typed} sudah 3 hari")
        assert found is not None, typed


@pytest.mark.parametrize("marker", sorted(STREET_WORDS | RELATIVE_WORDS))
def test_every_marker_starts_a_place(marker: str) -> None:
    found = find_place(f"sampah numpuk {marker} Pemuda")
    assert found is not None and found.text.endswith("Pemuda"), marker


def test_places_that_start_without_a_marker() -> None:
    assert find_place("banjir RT.04/RW.02 parah") is not None
    assert find_place("banjir rt 4 parah") is not None
    assert find_place("lampu mati in front of Balai Kota") is not None
    assert find_place("broken light on Pemuda") is not None
    assert find_place("pothole Pemuda Street") is not None
    assert find_place("rob di Tembalan") is not None  # one typo in a one-word name


# ---- categories: phrases looked up by word, ties to the first category -------------------------


def test_a_tie_goes_to_the_category_listed_first() -> None:
    singles = [(c, next(p[0] for p in c.keywords if len(p) == 1)) for c in CATEGORIES if c.keywords]
    (first, word_a), (_second, word_b) = singles[0], singles[1]
    for text in (f"{word_a} {word_b}", f"{word_b} {word_a}"):
        found = suggest(text)
        assert found.slug == first.slug
        assert found.confidence == round(1.0 / (1.0 + 1.0 + 0.6), 2)


def test_a_phrase_counts_once_where_a_longer_one_covers_it() -> None:
    # "jalan rusak" (a phrase) and "rusak parah" overlap at "rusak": the longer-first phrase wins
    # the position, so the second scores only where it has words of its own.
    assert suggest("jalan rusak parah").slug == "jalan_rusak"
    assert suggest("lampu lampu lampu").slug == "lampu_pju"


def test_words_out_of_order_score_nothing_even_where_a_phrase_was_possible() -> None:
    singles = {p[0] for c in CATEGORIES for p in c.keywords if len(p) == 1}
    pairs = [p for c in CATEGORIES for p in c.keywords if len(p) == 2 and not singles & set(p)]
    assert pairs
    for first, second in pairs:
        assert suggest(f"{second} {first}") == suggest("saya mau tanya"), (first, second)


@pytest.mark.parametrize("number", ["0", "3", "12", "154", "2025", "081234567890"])
def test_a_number_stands_for_no_keyword(number: str) -> None:
    assert _keyword_words(number) == frozenset()
    assert not any(_token_matches(number, keyword) for keyword in VOCABULARY)


# ---- GSM-7 ----------------------------------------------------------------------------------


CHARACTERS = [*sorted(BASIC | EXTENSION), "😡", "é", "\u2019", "\t"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(CHARACTERS), max_size=200))
def test_septets_count_extension_characters_twice(text: str) -> None:
    assert septets(text) == len(text) + sum(ch in EXTENSION for ch in text)


def test_gsm7_text_only_has_its_spaces_tidied() -> None:
    assert to_gsm7("a\n\nb\fc\r d  ") == "a b c d"
    assert to_gsm7("harga €5 [murah]") == "harga €5 [murah]"
    assert to_gsm7("caf\u00e9 \u2018ok\u2019\tya") == "caf\u00e9 'ok' ya"
    assert to_gsm7("na\u00efve \u015f") == "naive s"


@pytest.mark.parametrize("name", SHRINKABLE)
def test_long_values_with_extension_characters_still_fit(name: str) -> None:
    value = "€[" * 200
    for key in ("confirm", "ask_photo", "status_item_dept", "status_bad_code", "remind_location"):
        if f"{{{name}}}" not in template("id", key):
            continue
        params: dict[str, Any] = dict.fromkeys(("summary", "place", "department", "text", "note"), "x")
        params |= {name: value, "code": "LPR-7K3M9Q", "category": "Sampah", "status": "Diterima",
                   "updated": "01/02 03:04"}
        assert septets(render("id", key, **params)) <= SEGMENT


# ---- state: cached times and filed entries ------------------------------------------------------


def _stored(at: str) -> dict[str, Any]:
    return {"v": 1, "stage": "idle", "last_activity": at, "last_turn_at": at,
            "filed": [{"code": "LPR-7K3M9Q", "at": at, "fingerprint": "lampu mati"}]}


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        ("2025-03-10T08:00:00+07:00", "2025-03-10T08:00:00+07:00"),
        ("2025-03-10 08:00:00+07:00", "2025-03-10T08:00:00+07:00"),
        ("2025-03-10T01:00:00Z", "2025-03-10T01:00:00+00:00"),
        ("2025-03-10T08:00:00.500000+07:00", "2025-03-10T08:00:00.500000+07:00"),
        ("2025-03-10T08:00+07:00", "2025-03-10T08:00:00+07:00"),
    ],
)
def test_times_are_written_back_in_iso_form(stored: str, written: str) -> None:
    for _ in range(2):  # the second read comes from the caches
        state = load(_stored(stored))
        assert state.filed and state.filed[0].at == datetime.fromisoformat(stored)
        dumped = dump(state, stage_of(state))
        assert dumped["filed"][0]["at"] == written
        assert dumped["last_activity"] == dumped["last_turn_at"] == written


@pytest.mark.parametrize(
    "entry",
    [
        {"code": "LPR-7K3M9Q", "at": "2025-03-10T08:00:00"},  # no zone
        {"code": "LPR-7K3M9Q", "at": "yesterday"},
        {"code": "LPR-7K3M9Q"},
        {"code": 7, "at": "2025-03-10T08:00:00+07:00"},
        {"code": "LPR-7K3M9Q", "at": "2025-03-10T08:00:00+07:00", "fingerprint": None},
        "LPR-7K3M9Q",
        ["LPR-7K3M9Q", "2025-03-10T08:00:00+07:00"],
    ],
)
def test_a_bad_filed_entry_still_makes_a_fresh_state(entry: Any) -> None:
    good = {"code": "LPR-4HX2PT", "at": "2025-03-10T08:00:00+07:00"}
    raw = {"v": 1, "language": "en", "filed": [good, entry]}
    for _ in range(2):
        state = load(json.loads(json.dumps(raw)), "id")
        assert state.filed == [] and state.language == "id"


def test_filed_entries_may_leave_out_the_optional_fields() -> None:
    state = load({"v": 1, "filed": [{"at": "2025-03-10T08:00:00+07:00"}]})
    assert state.filed == [Filed(code="", at=AT, fingerprint="")]


def test_a_filed_entry_is_equal_to_one_made_in_code() -> None:
    loaded = load(_stored("2025-03-10 08:00:00+07:00")).filed[0]
    assert loaded == Filed(code="LPR-7K3M9Q", at=AT, fingerprint="lampu mati")
    assert repr(loaded) == repr(Filed(code="LPR-7K3M9Q", at=AT, fingerprint="lampu mati"))


def test_equal_times_in_two_zones_are_each_written_in_their_own() -> None:
    utc = AT.astimezone(UTC)
    for moment in (AT, utc, AT, utc):
        filed = [Filed("LPR-7K3M9Q", moment)]
        state = ConversationState(last_activity=moment, last_turn_at=moment, filed=filed)
        dumped = dump(state, Stage.IDLE)
        assert dumped["last_activity"] == dumped["filed"][0]["at"] == moment.isoformat()


def test_the_same_state_in_another_zone_keeps_its_zone() -> None:
    utc = AT.astimezone(UTC)
    turn = api.Turn(medium="sms", at=AT, text="lampu mati di Jl. Pemuda")
    first = step(None, turn, api.Context(AT, "LPR-7K3M9Q"))
    again = step(first.state, api.Turn(medium="sms", at=utc, text="tolong"), api.Context(utc, "LPR-7K3M9Q"))
    assert first.state["last_activity"] == "2025-03-10T08:00:00+07:00"
    assert again.state["last_activity"] == "2025-03-10T01:00:00+00:00"
    assert again.state["draft"]["started_at"] == "2025-03-10T08:00:00+07:00"


# ---- words and codes ----------------------------------------------------------------------------


def test_whitespace_is_what_the_regex_called_whitespace() -> None:
    # fold, shorten and find_place tidy spaces with str.split(), where they used `\\s+`.
    every = [chr(c) for c in range(0x3001)]  # U+3000 is the last whitespace character
    assert [ch for ch in every if re.match(r"\s", ch)] == [ch for ch in every if ch.isspace()]
    assert not any(chr(c).isspace() for c in range(0x3001, sys.maxunicode + 1, 7))
    assert fold(" Jl.\u3000Pemuda\x1c\t No. 3\u00a0") == "jl. pemuda no. 3"
    assert shorten("a\u2003 b\n\nc", 10) == "a b c"
    found = find_place("Lampu mati\u2003 di Jl. Pemuda \u2003, tolong")
    assert found is not None and found.rest == "Lampu mati, tolong"


def test_words_are_a_fresh_list_every_time() -> None:
    first = words("Lampu PJU mati")
    first.append("changed")
    assert words("Lampu PJU mati") == ["lampu", "pju", "mati"]


def test_new_codes_are_uniform_over_the_alphabet() -> None:
    codes = [new_code() for _ in range(3000)]
    assert all(is_code(code) and code.startswith(PREFIX) for code in codes)
    assert len(set(codes)) == len(codes)
    for position in range(LENGTH):
        seen = Counter(code[len(PREFIX) + position] for code in codes)
        assert set(seen) == set(ALPHABET)
        # 3000 draws over 31 characters: about 97 each; a skewed draw would be far off.
        assert max(seen.values()) < 170 and min(seen.values()) > 40


_KEYWORD_PIECES = st.sampled_from(
    ["LaporHendi", "lapor hendi", "#LaporHendi", "LaporHendy", "Lapor", "@lapor:", "YA", "LEWATI", "jalan",
     "rusak", "  ", " ", "\t", "#", ":", "Jl. Pemuda", "12", "é"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_KEYWORD_PIECES, max_size=6).map("".join), st.sampled_from([0, 1, 2]))
def test_a_stripped_keyword_is_the_plain_strip_even_from_the_cache(text: str, which: int) -> None:
    """`strip_keyword` is cached by the text and the keywords: asked again (of a list or a tuple
    of the same keywords, or other keywords) it gives what `plain_strip_keyword` gives."""
    from conversation.keywords import plain_strip_keyword

    keywords = [api.Settings().keywords, ("Lapor",), ("LaporSemar", "LaporHendi")][which]
    plain = plain_strip_keyword(text, keywords)
    assert strip_keyword(text, keywords) == plain
    assert strip_keyword(text, list(keywords)) == plain
    assert strip_keyword(text, ("Aduan",)) == plain_strip_keyword(text, ("Aduan",))
