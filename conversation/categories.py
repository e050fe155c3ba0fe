"""Category suggestion: which of the city's complaint categories a citizen's words point to.

The categories live in `categories.toml` (slug, names, keywords) because the workflow routes each
slug to a department and officers rename things; this module only reads them. The suggestion is a
hint with a confidence, never a question to the citizen: an officer confirms it at verification.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from conversation.text import FuzzyIndex, close_to, words

FALLBACK = "lainnya"


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    name_id: str
    name_en: str
    needs_location: bool
    keywords: tuple[tuple[str, ...], ...]

    @property
    def by_length(self) -> tuple[tuple[str, ...], ...]:
        """Keyword phrases, longest first (a phrase beats the single words inside it)."""
        return tuple(sorted(self.keywords, key=len, reverse=True))

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_id


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The best category and how sure we are (0.0 = a guess, close to 1.0 = clear words)."""

    slug: str
    confidence: float


def _load() -> tuple[Category, ...]:
    with (Path(__file__).parent / "categories.toml").open("rb") as handle:
        data = tomllib.load(handle)
    loaded = []
    for row in data["category"]:
        keywords = tuple(tuple(words(k)) for k in row.get("keywords", ()) if words(k))
        loaded.append(
            Category(
                slug=row["slug"],
                name_id=row["name_id"],
                name_en=row["name_en"],
                needs_location=bool(row.get("needs_location", True)),
                keywords=keywords,
            )
        )
    return tuple(loaded)


CATEGORIES: tuple[Category, ...] = _load()
BY_SLUG = MappingProxyType({c.slug: c for c in CATEGORIES})
SLUGS: tuple[str, ...] = tuple(BY_SLUG)


VOCABULARY: frozenset[str] = frozenset(word for c in CATEGORIES for phrase in c.keywords for word in phrase)
_FUZZY = FuzzyIndex(VOCABULARY)


def _token_matches(token: str, keyword: str) -> bool:
    # Short words ("rob", "got", "kk") must match exactly; longer ones may carry a typo.
    if len(keyword) < 5:
        return token == keyword
    return close_to(token, keyword)


# A number ("154", a phone number) is never a keyword nor a typo of one while no keyword has a
# digit: it would take an edit per letter, and a keyword tolerates two at most.
_NUMBERS_MATCH_NOTHING = not any(ch.isdigit() for word in VOCABULARY for ch in word)


def scored(tokens: Sequence[str]) -> tuple[str, ...]:
    """The words as scoring sees them. Where no keyword has a digit, a number stands for no
    keyword (`_keyword_words`), as "0" does: so every number is "0" here, and the caches keyed by
    words (`_chunk_scores`, `_straddled_between`) find one message's words in the next one's that
    differs only in its numbers (a house number, a count). Same scores: only what each word
    stands for counts."""
    if _NUMBERS_MATCH_NOTHING and any(map(str.isdigit, tokens)):
        return tuple(["0" if token.isdigit() else token for token in tokens])
    return tuple(tokens)


@lru_cache(maxsize=8192)
def _keyword_words(token: str) -> frozenset[str]:
    """The keyword words `token` stands for (itself, or what it is a typo of). Cached: citizens
    use a small vocabulary, and this is the hot path of every suggestion."""
    if token in VOCABULARY:
        return frozenset({token})
    if _NUMBERS_MATCH_NOTHING and token.isdigit():
        return frozenset()
    return frozenset(k for k in _FUZZY.candidates(token) if _token_matches(token, k))


# Each category's phrases longest first, and every keyword phrase listed under each of its words
# with its category (by position) and rank there: a text's words lead straight to the phrases it
# may contain, instead of every category trying all of its phrases on every text.
_LONGEST_FIRST: dict[str, tuple[tuple[str, ...], ...]] = {c.slug: c.by_length for c in CATEGORIES}
_PHRASES_WITH: dict[str, list[tuple[int, int, tuple[str, ...]]]] = {}
for _position, _category in enumerate(CATEGORIES):
    for _rank, _phrase in enumerate(_category.by_length):
        for _word in set(_phrase):
            _PHRASES_WITH.setdefault(_word, []).append((_position, _rank, _phrase))


@dataclass(frozen=True, slots=True)
class _Evidence:
    """What a text says in keyword words, read once for every category: the keyword words each
    token stands for, all of them together, and where each one stands."""

    stands_for: list[frozenset[str]]
    present: frozenset[str]
    positions: dict[str, list[int]]


def _evidence(tokens: list[str]) -> _Evidence:
    stands_for = [_keyword_words(t) for t in tokens]
    positions: dict[str, list[int]] = {}
    for index, keyword_words in enumerate(stands_for):
        for word in keyword_words:
            positions.setdefault(word, []).append(index)
    return _Evidence(stands_for, frozenset(positions), positions)


def _possible_phrases(present: frozenset[str]) -> dict[int, list[tuple[str, ...]]]:
    """Per category position, the phrases all of whose words the text has, longest first."""
    found = {
        entry for word in present for entry in _PHRASES_WITH.get(word, ()) if present.issuperset(entry[2])
    }
    by_category: dict[int, list[tuple[str, ...]]] = {}
    for position, _rank, phrase in sorted(found):
        by_category.setdefault(position, []).append(phrase)
    return by_category


def _score(evidence: _Evidence, phrases: list[tuple[str, ...]]) -> float:
    """Sum of keyword weights found; each position counts once, for the longest phrase there.

    `phrases`: a category's phrases, longest first, leaving out those whose words the text lacks.
    A phrase is tried only where its first word stands.
    """
    stands_for = evidence.stands_for
    used = [False] * len(stands_for)
    score = 0.0
    for phrase in phrases:
        size = len(phrase)
        for start in evidence.positions[phrase[0]]:
            if start + size > len(stands_for) or any(used[start : start + size]):
                continue
            if not all(phrase[i] in stands_for[start + i] for i in range(1, size)):
                continue
            used[start : start + size] = [True] * size
            score += 1.0 + 0.75 * (size - 1)
    return score


@lru_cache(maxsize=4096)
def suggest(text: str) -> Suggestion:
    """The category `text` most likely belongs to, with a confidence in [0, 1).

    Confidence grows with the evidence for the winner and shrinks with the runner-up's: a single
    weak word gives about 0.6, a clear phrase 0.75+, two categories tied 0.5 or less.
    """
    return _suggestion(_chunk_scores(scored(words(text))))


# For `_chunk_scores`: the phrases of several words starting with each word, as (category
# position, rank in the category, phrase), and the categories with each word as a phrase alone.
_LONG_PHRASES_FROM: dict[str, tuple[tuple[int, int, tuple[str, ...]], ...]] = {}
_ALONE_IN: dict[str, frozenset[int]] = {}
for _position, _category in enumerate(CATEGORIES):
    for _rank, _phrase in enumerate(_category.by_length):
        if len(_phrase) == 1:
            _ALONE_IN[_phrase[0]] = _ALONE_IN.get(_phrase[0], frozenset()) | {_position}
        else:
            _entry = (_position, _rank, _phrase)
            _LONG_PHRASES_FROM[_phrase[0]] = (*_LONG_PHRASES_FROM.get(_phrase[0], ()), _entry)
_NO_SCORES: Mapping[int, float] = MappingProxyType({})


@lru_cache(maxsize=1024)
def _alone(found: frozenset[str]) -> tuple[int, ...]:
    """The categories with a phrase of one word among `found` (what a token stands for)."""
    return tuple(sorted(frozenset().union(*(_ALONE_IN.get(word, frozenset()) for word in found))))


@lru_cache(maxsize=8192)
def _chunk_scores(tokens: tuple[str, ...]) -> Mapping[int, float]:
    """Each category's score (by position in `CATEGORIES`) over these words, as `_score` counts
    it (a category not here scores 0). Cached: the same words come back as a message, a line of
    the description and a clause of it.

    `_score` tries a category's phrases longest first, each where it matches from left to right,
    taking the positions no phrase took before: so the matches of the phrases of several words
    are played out in that order, and then each phrase of one word takes every position its word
    stands at that none took, 1 each.
    """
    stands_for = [_keyword_words(t) for t in tokens]
    matches = []
    for start, found in enumerate(stands_for):
        for word in found:
            for position, rank, phrase in _LONG_PHRASES_FROM.get(word, ()):
                size = len(phrase)
                if start + size > len(tokens):
                    continue
                if all(phrase[i] in stands_for[start + i] for i in range(1, size)):
                    matches.append((position, rank, start, size))
    scores: dict[int, float] = {}
    taken: dict[int, set[int]] = {}
    for position, _rank, start, size in sorted(matches):
        claimed = taken.setdefault(position, set())
        if claimed.isdisjoint(range(start, start + size)):
            claimed.update(range(start, start + size))
            scores[position] = scores.get(position, 0.0) + 1.0 + 0.75 * (size - 1)
    for index, found in enumerate(stands_for):
        if found:
            for position in _alone(found):
                if index not in taken.get(position, ()):
                    scores[position] = scores.get(position, 0.0) + 1.0
    return MappingProxyType(scores) if scores else _NO_SCORES


def _suggestion(scores: Mapping[int, float]) -> Suggestion:
    # Ranked by score and, of equal scores, the category listed first (the larger -position).
    ranked = sorted(((score, -position) for position, score in scores.items()), reverse=True)
    best, position = ranked[0] if ranked else (0.0, 0)
    if best <= 0:
        return Suggestion(FALLBACK, 0.0)
    runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
    confidence = best / (best + runner_up + 0.6)
    return Suggestion(CATEGORIES[-position].slug, round(min(confidence, 0.95), 2))


# A run of sentence and comma marks, not the dot of an abbreviation. The look-ahead only says
# first what the run starts with, so the look-behinds are tried where a mark is, not at every
# character (14 times faster, the same matches).
_CLAUSE_END = re.compile(
    r"(?=[.!?;,\n])(?<!\bjl)(?<!\bjln)(?<!\bgg)(?<!\bno)(?<!\bkel)(?<!\bkec)(?<!\brt)(?<!\brw)[.!?;,\n]+",
    re.IGNORECASE,
)


def clauses(text: str) -> list[str]:
    """The text cut at sentence and comma boundaries (not at the dot of "Jl." or "Gg.")."""
    return [c.strip() for c in _CLAUSE_END.split(text) if c.strip()]


def key_clause(text: str, slug: str | None) -> str:
    """The clause that names the problem ("Saluran air ... sudah mampet"), for a long rant's summary.

    Falls back to the first clause with words in it.
    """
    parts = clauses(text)
    category = BY_SLUG.get(slug or FALLBACK)
    if category is not None and category.keywords:
        for part in parts:
            evidence = _evidence(words(part))
            phrases = [p for p in _LONGEST_FIRST[category.slug] if evidence.present.issuperset(p)]
            if _score(evidence, phrases) > 0:
                return part
    return parts[0] if parts else text.strip()


def needs_location(slug: str | None) -> bool:
    """Whether a complaint of this category needs a place before it can be filed."""
    category = BY_SLUG.get(slug or FALLBACK)
    return True if category is None else category.needs_location


def display_name(slug: str | None, lang: str) -> str:
    category = BY_SLUG.get(slug or FALLBACK) or BY_SLUG[FALLBACK]
    return category.name(lang)


# ---- scores that grow: a category's score over words that come a few at a time ----------------
#
# `_score` claims phrases longest first, each at the first free place it matches. Where no
# occurrence of a phrase of several words straddles a point between two words, the claims on each
# side never meet, so the score of all the words is the sum of the scores of the two sides (each
# an exact sum of quarters: no rounding). `Scores` keeps the sum of the words up to such a point
# and the few words after it.

LONGEST_PHRASE = max(len(phrase) for c in CATEGORIES for phrase in c.keywords)
POSITION: Mapping[str, int] = MappingProxyType({c.slug: i for i, c in enumerate(CATEGORIES)})
_LONG_RUN = 48  # pending words past which a cut is looked for anywhere


def _straddled(stands_for: list[frozenset[str]], cut: int) -> bool:
    """Whether some phrase of several words matches across the point before word `cut` (all the
    words such a phrase would take must be in `stands_for`)."""
    for start in range(max(0, cut - LONGEST_PHRASE + 1), cut):
        for word in stands_for[start]:
            for _position, _rank, phrase in _LONG_PHRASES_FROM.get(word, ()):
                size = len(phrase)
                if start + size > cut and all(phrase[i] in stands_for[start + i] for i in range(1, size)):
                    return True
    return False


class Scores:
    """Category scores over a word sequence given a few words at a time, as `suggest` would score
    all of them; immutable to its users (`add` gives a new one).

    Lazy: the runs of words between points no phrase straddles are kept (`runs`) and scored (by
    `_chunk_scores`, which caches them) only when a score is asked for, then added up into
    `totals` for good: a description with a place never scores all its words, only those the
    place leaves.
    """

    __slots__ = ("pending", "runs", "totals")

    def __init__(
        self,
        totals: Mapping[int, float] = MappingProxyType({}),
        runs: tuple[tuple[str, ...], ...] = (),
        pending: tuple[str, ...] = (),
    ) -> None:
        self.totals = totals  # the scores of the runs added up so far
        self.runs = runs  # runs of words after those, not added up yet
        self.pending = pending  # words after the last point no phrase straddles (known so far)

    def add(self, tokens: Sequence[str]) -> Scores:
        if not tokens:
            return self
        tokens = scored(tokens)
        pending = self.pending
        if not pending:
            return Scores(self.totals, self.runs, tokens)
        # A point with a whole phrase's length of words after it: no later word can make a phrase
        # straddle it. Where the new words start is the one tried first (the pending words then
        # are those of one message, whose scores the cache knows); only a long run of words with
        # no such point is cut elsewhere.
        reach = LONGEST_PHRASE - 1
        if len(tokens) >= reach and not _straddled_at(pending, tokens):
            return Scores(self.totals, (*self.runs, pending), tokens)
        pending += tokens
        if len(pending) > _LONG_RUN:
            stands_for = [_keyword_words(t) for t in pending]
            for cut in range(len(pending) - reach, 0, -1):
                if not _straddled(stands_for, cut):
                    return Scores(self.totals, (*self.runs, pending[:cut]), pending[cut:])
        return Scores(self.totals, self.runs, pending)

    def _settled(self) -> Mapping[int, float]:
        if self.runs:
            totals = self.totals
            for run in self.runs:
                totals = _plus(totals, _chunk_scores(run))
            self.totals, self.runs = totals, ()  # the same scores, added up once
        return self.totals

    def scores(self, then: Sequence[str] = ()) -> Mapping[int, float]:
        """The scores of all the words, and of `then` after them if given (the words end there:
        where no phrase straddles the point before `then`, its words are scored apart, so the
        pending ones are scored as they will be once more words follow)."""
        totals = self._settled()
        pending = self.pending
        if then:
            then = scored(then)
            if pending and not _straddled_at(pending, then, final=True):
                return _plus(_plus(totals, _chunk_scores(pending)), _chunk_scores(then))
            pending += then
        return _plus(totals, _chunk_scores(pending)) if pending else totals

    def suggestion(self, then: Sequence[str] = ()) -> Suggestion:
        """What `suggest` says of all the words (and `then`)."""
        return _suggestion(self.scores(then))

    def has(self, position: int) -> bool:
        """Whether the words have a keyword of the category at `position` (its score is not 0)."""
        return self.scores().get(position, 0.0) > 0


@lru_cache(maxsize=8192)
def _opens_phrase(token: str) -> bool:
    """Whether `token` may be the first word of a phrase of several words."""
    return any(word in _LONG_PHRASES_FROM for word in _keyword_words(token))


def _straddled_at(before: tuple[str, ...], after: tuple[str, ...], final: bool = False) -> bool:
    """Whether a phrase matches across the point between `before` and `after` (`final`: no word
    follows `after`; else `after` has a phrase's length of words but one)."""
    reach = LONGEST_PHRASE - 1
    return _straddled_between(before[-reach:], after[:reach], final)


@lru_cache(maxsize=8192)
def _straddled_between(before: tuple[str, ...], after: tuple[str, ...], final: bool) -> bool:
    """`_straddled_at` of the words that matter (cached: the ends and starts of messages recur)."""
    if not any(_opens_phrase(token) for token in before):
        return False  # no phrase that could straddle the point starts before it
    around = [_keyword_words(t) for t in (*before, *after)]
    if final:
        around += [frozenset()] * (LONGEST_PHRASE - 1)  # nothing matches past the end
    return _straddled(around, len(before))


def _plus(a: Mapping[int, float], b: Mapping[int, float]) -> Mapping[int, float]:
    if not b:
        return a
    if not a:
        return b
    total = dict(a)
    for position, score in b.items():
        total[position] = total.get(position, 0.0) + score
    return total
