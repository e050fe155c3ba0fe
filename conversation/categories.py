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


@lru_cache(maxsize=8192)
def _keyword_words(token: str) -> frozenset[str]:
    """The keyword words `token` stands for (itself, or what it is a typo of). Cached: citizens
    use a small vocabulary, and this is the hot path of every suggestion."""
    if token in VOCABULARY:
        return frozenset({token})
    return frozenset(k for k in _FUZZY.candidates(token) if _token_matches(token, k))


# Per category, once: its phrases longest first, and every word in them (a text that shares no
# word with a category scores nothing there, without trying its phrases).
_LONGEST_FIRST: dict[str, tuple[tuple[str, ...], ...]] = {c.slug: c.by_length for c in CATEGORIES}
_WORDS_OF: dict[str, frozenset[str]] = {
    c.slug: frozenset(word for phrase in c.keywords for word in phrase) for c in CATEGORIES
}


def _evidence(tokens: list[str]) -> tuple[list[frozenset[str]], frozenset[str]]:
    """The keyword words each token stands for, and all of them together (read once per text, for
    every category)."""
    stands_for = [_keyword_words(t) for t in tokens]
    return stands_for, frozenset().union(*stands_for)


def _score(stands_for: list[frozenset[str]], present: frozenset[str], category: Category) -> float:
    """Sum of keyword weights found; each position counts once, for the longest phrase there.

    `present` (the keyword words the text contains) skips phrases that cannot match.
    """
    if present.isdisjoint(_WORDS_OF[category.slug]):
        return 0.0
    used = [False] * len(stands_for)
    score = 0.0
    for phrase in _LONGEST_FIRST[category.slug]:
        if not present.issuperset(phrase):
            continue
        size = len(phrase)
        for start in range(len(stands_for) - size + 1):
            if any(used[start : start + size]) or not all(
                part in stands_for[start + i] for i, part in enumerate(phrase)
            ):
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
    stands_for, present = _evidence(words(text))
    scores = sorted(
        ((_score(stands_for, present, c), c.slug) for c in CATEGORIES if c.keywords),
        key=lambda pair: -pair[0],
    )
    best, slug = scores[0] if scores else (0.0, FALLBACK)
    if best <= 0:
        return Suggestion(FALLBACK, 0.0)
    runner_up = scores[1][0] if len(scores) > 1 else 0.0
    confidence = best / (best + runner_up + 0.6)
    return Suggestion(slug, round(min(confidence, 0.95), 2))


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
            if _score(*_evidence(words(part)), category) > 0:
                return part
    return parts[0] if parts else text.strip()


def needs_location(slug: str | None) -> bool:
    """Whether a complaint of this category needs a place before it can be filed."""
    category = BY_SLUG.get(slug or FALLBACK)
    return True if category is None else category.needs_location


def display_name(slug: str | None, lang: str) -> str:
    category = BY_SLUG.get(slug or FALLBACK) or BY_SLUG[FALLBACK]
    return category.name(lang)
