"""Category suggestion: which of the city's complaint categories a citizen's words point to.

The categories live in `categories.toml` (slug, names, keywords) because the workflow routes each
slug to a department and officers rename things; this module only reads them. The suggestion is a
hint with a confidence, never a question to the citizen: an officer confirms it at verification.
"""

from __future__ import annotations

import re
import tomllib
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
    evidence = _evidence(words(text))
    # Only a category with a possible phrase can score (every other one scores 0): ranked by score
    # and, of equal scores, the category listed first (the larger -position).
    possible = _possible_phrases(evidence.present)
    ranked = sorted(
        ((_score(evidence, phrases), -position) for position, phrases in possible.items()), reverse=True
    )
    best, position = ranked[0] if ranked else (0.0, 0)
    if best <= 0:
        return Suggestion(FALLBACK, 0.0)
    runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
    confidence = best / (best + runner_up + 0.6)
    return Suggestion(CATEGORIES[-position].slug, round(min(confidence, 0.95), 2))


_CLAUSE_END = re.compile(
    r"(?<!\bjl)(?<!\bjln)(?<!\bgg)(?<!\bno)(?<!\bkel)(?<!\bkec)(?<!\brt)(?<!\brw)[.!?;,\n]+",
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
