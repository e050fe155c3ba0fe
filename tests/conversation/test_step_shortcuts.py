"""Shortcuts on a step's path held to the plain rules they stand in for.

Each is a rule read in place, or by a quicker C call, where the plain form costs a step calls or a
regex scan: the stage read off the slots without a call a guard, septets counted off the bytes, the
words of a rest's items, a stored version looked up with `in`, a stage's value by dict, a message
that cannot be a command left at its first word, an ASCII fingerprint from the words already read,
a keyword's rest tidied without the regex when it has no run of blanks, the regexes that tidy a
place's rest skipped where they cannot match, an ASCII text cut into tokens by a bitmap pattern,
the RT/RW pattern tried only on words that start as it does, every number scored as the word "0".
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conversation.api import Attachment
from conversation.categories import (
    CATEGORIES,
    SLUGS,
    VOCABULARY,
    Scores,
    _chunk_scores,
    _evidence,
    _score,
    _suggestion,
    scored,
    suggest,
)
from conversation.commands import (
    _ENGLISH_MARKERS,
    _INDONESIAN_MARKERS,
    _ORDER,
    Command,
    _exact_phrases,
    _match,
    _near_phrases,
    _strip_politeness,
    fold_text,
    looks_english,
    parse_command,
    plain_fold_text,
)
from conversation.gsm import EXTENSION, plain_septets, septets
from conversation.guards import MEDIA_CHANNELS, plain_stage_of, stage_of
from conversation.keywords import _BLANKS, _tidy
from conversation.places import (
    _ASCII_TOKEN,
    _DANGLING_INTRO,
    _DIGIT_AFTER_RT,
    _INTRO_BEFORE_PLACE,
    _RT_RW,
    _SPACE_BEFORE_PUNCTUATION,
    _TOKEN,
    _is_rt_rw,
    _punctuated,
    _read_token,
    _tokens,
    _without_dangling,
    _without_intro_before,
)
from conversation.state import READABLE, ConversationState, DraftState, Stage, dump
from conversation.state import _readable as readable
from conversation.text import words, words_of

AT = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)

# ---- the stage, read off the slots ----------------------------------------------------------------

drafts = st.builds(
    DraftState,
    started_at=st.just(AT),
    description=st.sampled_from(["", " ", "\n", "lampu mati", " x "]),
    place_text=st.sampled_from([None, "", "Jl. Pemuda"]),
    latitude=st.sampled_from([None, -6.99, 0.0]),
    attachments=st.lists(st.just(Attachment("media/1.jpg", "image/jpeg")), max_size=2),
    category=st.sampled_from([None, "", "not-a-slug", *SLUGS]),
    asked=st.integers(min_value=0, max_value=2),
    photo_skipped=st.booleans(),
    duplicate_of=st.sampled_from([None, "", "LPR-7K3M9Q"]),
)


@settings(max_examples=600, deadline=None)
@given(st.none() | drafts, st.sampled_from([None, "sms", "twitter", *sorted(MEDIA_CHANNELS)]))
def test_the_stage_is_the_guards_stage(draft: DraftState | None, medium: str | None) -> None:
    state = ConversationState(draft=draft, medium=medium)
    assert stage_of(state) is plain_stage_of(state)


def test_every_stage_is_reached() -> None:
    """So the comparison above meets each branch (a shortcut that skipped one would show)."""
    seen = set()
    for description in ("", "lampu mati"):
        for place in (None, "Jl. Pemuda"):
            for category in (None, "kependudukan", "jalan"):
                for asked in (0, 1):
                    for duplicate in (None, "LPR-7K3M9Q"):
                        draft = DraftState(AT, description, place, category=category, asked=asked,
                                           duplicate_of=duplicate)
                        state = ConversationState(draft=draft, medium="whatsapp")
                        seen.add(stage_of(state))
                        assert stage_of(state) is plain_stage_of(state)
    seen.add(stage_of(ConversationState()))
    assert seen == set(Stage)


# ---- septets ---------------------------------------------------------------------------------------

SEPTET_CHARACTERS = sorted(EXTENSION) + list(string.printable) + ["€", "é", "ü", "\u2019", "😀", "\x00"]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(SEPTET_CHARACTERS), max_size=200) | st.text(max_size=60))
def test_septets_are_the_plain_count(text: str) -> None:
    assert septets(text) == plain_septets(text)


def test_septets_of_each_extension_character() -> None:
    for ch in sorted(EXTENSION):
        assert septets(ch) == plain_septets(ch) == 2, repr(ch)
        assert septets(f"a{ch}b") == 4, repr(ch)


# ---- the words of a rest's items --------------------------------------------------------------------

ITEM_CHARACTERS = [*string.ascii_letters, *string.digits, *".,-'/_!?", "é", "É", "ß", "İ", "٣", "²"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(ITEM_CHARACTERS), max_size=8) | st.text(max_size=6),
                max_size=8))
def test_the_words_of_items_are_the_words_of_each(items: list[str]) -> None:
    assert words_of(items) == [word for item in items for word in words(item)]


def test_the_words_of_items_on_the_edges() -> None:
    for item in ("", "ABC", "Jl.", "12", "no12", "RT.04/RW.02", "x_y", "Ünter", "²", "٣"):
        assert words_of([item]) == words(item), item


# ---- the stored version, the stage's value -----------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES | st.sampled_from([1, 2, 1.0, 2.0, True, 3, "2"]))
def test_a_readable_version_is_one_equal_to_a_known_one(version: Any) -> None:
    assert readable(version) == any(version == known for known in READABLE)


def test_the_stage_is_written_as_its_plain_value() -> None:
    for stage in Stage:
        written = dump(ConversationState(), stage)["stage"]
        assert written == stage.value and type(written) is str


# ---- a message's commands, fingerprint, language and keyword rest ------------------------------------

COMMAND_WORDS = sorted({word for _name, phrase in _ORDER for word in phrase})
MESSAGE_WORDS = st.sampled_from(
    [*COMMAND_WORDS, "btal", "lewat1", "stauts", "LPR-7K3M9Q", "7k3m9q", "lampu", "mati", "the", "street",
     "jalan", "BARU", "Baru:", "tolong", "saja", "ya", "no", "12", "#", "—", "é"]
)


def _plain_parse_command(text: str) -> Command | None:
    """`parse_command` as it was: both phrase searches tried on every message."""
    tokens = words(text)
    if not tokens or len(tokens) > 12:
        return None
    core = _strip_politeness(tokens)
    return _match(text, tokens, core, _exact_phrases(core)) or _match(text, tokens, core, _near_phrases(core))


@settings(max_examples=600, deadline=None)
@given(st.lists(MESSAGE_WORDS, min_size=1, max_size=6), st.sampled_from([" ", "  ", ": ", ", "]))
def test_a_command_is_found_as_the_plain_search_finds_it(chosen: list[str], separator: str) -> None:
    text = separator.join(chosen)
    assert parse_command.__wrapped__(text) == _plain_parse_command(text)


def test_commands_that_start_with_a_slip_are_still_found() -> None:
    for text in ("btal", "lewatii", "cek stauts LPR-7K3M9Q", "tolong batal", "BARU lampu mati di Jl. Pemuda"):
        found = parse_command.__wrapped__(text)
        assert found is not None and found == _plain_parse_command(text), text


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from([*string.printable, "é", "ß", "İ", "ﬁ", "\u00a0", "²"]), max_size=40))
def test_a_fingerprint_is_the_plain_fold(text: str) -> None:
    assert fold_text.__wrapped__(text) == plain_fold_text(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["the", "is", "street", "di", "jalan", "lampu", "broken", "x", "of"]),
                max_size=8))
def test_english_is_told_by_the_plain_counts(tokens: list[str]) -> None:
    text = " ".join(tokens)
    english = sum(t in _ENGLISH_MARKERS for t in tokens)
    indonesian = sum(t in _INDONESIAN_MARKERS for t in tokens)
    assert looks_english(text) == (english >= 2 and english > indonesian * 2)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\n\r\u00a0ab.:")), max_size=20))
def test_a_keyword_rest_is_tidied_as_the_regex_tidies_it(text: str) -> None:
    assert _tidy(text) == _BLANKS.sub(" ", text).strip()


# ---- the rest's regexes, skipped where they cannot match ---------------------------------------------

REST_CHARACTERS = [*" \t\n.,;!?-'", *"diatonnearDIATONNEARxj", "ı", "İ", "é", "\u00a0", "\x1c"]


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.sampled_from(REST_CHARACTERS), max_size=14))
def test_the_rest_regexes_are_skipped_only_where_they_match_nothing(text: str) -> None:
    assert _without_intro_before(text) == _INTRO_BEFORE_PLACE.sub("", text)
    punctuated = _punctuated(text)
    assert punctuated == bool(re.search("[,.;!?]", text))
    assert _without_dangling(text, punctuated) == _DANGLING_INTRO.sub("", text)
    if not punctuated:
        assert _SPACE_BEFORE_PUNCTUATION.sub("", text) == text


def test_the_rest_regexes_on_their_edges() -> None:
    for text in ("di", "lampu mati di", "jadi", "DI  ", "di\n", "in", "ın", "dİ", "near", "x near ", "xnear",
                 "x at.", "on , y", "d i", ""):
        assert _without_intro_before(text) == _INTRO_BEFORE_PLACE.sub("", text), text
        assert _without_dangling(text, _punctuated(text)) == _DANGLING_INTRO.sub("", text), text


# ---- a text's tokens --------------------------------------------------------------------------------


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=st.sampled_from([*string.printable, "\x00", "\x7f", "\x1c"]), max_size=40))
def test_ascii_text_is_cut_into_the_tokens_the_plain_pattern_cuts(text: str) -> None:
    plain = [match.span() for match in _TOKEN.finditer(text)]
    assert [match.span() for match in _ASCII_TOKEN.finditer(text)] == plain
    toks, where = _tokens(text)
    assert where == plain and [tok.raw for tok in toks] == [text[a:b] for a, b in plain]


def _plain_is_rt_rw(toks: list[Any], i: int) -> bool:
    norm = toks[i].norm
    if _RT_RW.match(norm):
        return True
    return norm in ("rt", "rw") and i + 1 < len(toks) and bool(_DIGIT_AFTER_RT.match(toks[i + 1].norm))


@settings(max_examples=800, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("rtwRTW0123./:-x ")), max_size=9), min_size=1,
                max_size=3))
def test_an_rt_rw_word_is_told_as_the_plain_rule_tells_it(raws: list[str]) -> None:
    toks = [_read_token(raw) for raw in raws]
    for i in range(len(toks)):
        assert _is_rt_rw(toks, i) == _plain_is_rt_rw(toks, i), raws


# ---- numbers scored as one word ------------------------------------------------------------------------

SCORE_WORDS = st.sampled_from([*sorted(VOCABULARY), "12", "0", "356", "²", "٣", "rt", "jalan", "x"])


@settings(max_examples=500, deadline=None)
@given(st.lists(SCORE_WORDS, max_size=10), st.lists(SCORE_WORDS, max_size=6))
def test_numbers_score_as_the_words_they_are(first: list[str], then: list[str]) -> None:
    """The scores (and the suggestion) of words with their numbers as written, read by the plain
    scorer, are those of the words as scoring sees them, whole or given a few at a time."""
    text = " ".join(first + then)
    plain = _score_all(tuple(first + then))
    assert _chunk_scores(scored(first + then)) == plain
    grown = Scores().add(first).add(then)
    assert dict(grown.scores()) == plain
    assert dict(Scores().add(first).scores(then)) == plain
    assert suggest.__wrapped__(text) == _suggestion(plain)


def _score_all(tokens: tuple[str, ...]) -> dict[int, float]:
    """Each category's score by `_score`, the plain rule (a phrase where its words stand)."""
    evidence = _evidence(list(tokens))
    found = {}
    for position, category in enumerate(CATEGORIES):
        phrases = [p for p in category.by_length if evidence.present.issuperset(p)]
        score = _score(evidence, phrases)
        if score > 0:
            found[position] = score
    return found
