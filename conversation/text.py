"""Small text helpers shared by the parsers: folding, tokens and a bounded edit distance.

Citizens type on feature phones, in a hurry, with autocorrect fighting them: every parser compares
folded text (lower case, no accents, single spaces) and tolerates one slip in longer words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Lower-case, strip accents and collapse whitespace, so comparisons ignore how it was typed.

    Cached and with an ASCII fast path: every parser folds the same message again, and this sits on
    the webhook path.
    """
    if text.isascii():
        return _single_spaced(text.lower())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _single_spaced(stripped.casefold())


def _single_spaced(text: str) -> str:
    r"""Runs of whitespace as one space, none at the ends: what `re.sub(r"\s+", " ", text).strip()`
    gives (`\s` and `str.split()` agree on what whitespace is), without a regex."""
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """The folded alphanumeric words of `text` (punctuation and emoji dropped)."""
    return list(_words(text))


@functools.lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    """Cached (as a tuple, so no caller can change it): a step asks for the words of the same
    message in every recogniser."""
    return tuple(_WORD.findall(fold(text)))


def words_of(items: Iterable[str]) -> list[str]:
    """The words of each of `items` in turn (`words` of each, one list). An item of ASCII letters
    and digits alone is its one word lower-cased, found without a look-up: most items of a rest
    (the runs of non-space characters `places.RestItems` gives out) are."""
    found: list[str] = []
    for item in items:
        if item.isalnum() and item.isascii():
            found.append(item.lower())
        else:
            found.extend(_words(item))
    return found


def wordset(text: str) -> frozenset[str]:
    """A word list written as one readable string in the source."""
    return frozenset(text.split())


def has_letters(text: str) -> bool:
    """True when the text says something in words (not only emoji, punctuation or spaces)."""
    return any(ch.isalpha() for ch in text)


def distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts once), capped at `limit + 1`.

    Capping keeps it cheap: the callers only ask "is this within one or two slips".
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[len(b)], limit + 1)


def allowed_slips(word: str) -> int:
    """How many typos a word of this length may carry and still be recognised."""
    if len(word) >= 8:
        return 2
    if len(word) >= 4:
        return 1
    return 0


def close_to(word: str, target: str) -> bool:
    """`word` is `target` give or take the typos its length allows."""
    if word == target:
        return True
    slips = allowed_slips(target)
    return slips > 0 and distance(word, target, slips) <= slips


def shorten(text: str, limit: int) -> str:
    """Cut `text` at a word boundary to at most `limit` characters, marking the cut with '...'."""
    text = _single_spaced(text)
    if len(text) <= limit:
        return text
    if limit <= 3:
        return text[:limit]
    cut = text[: limit - 3]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "..."


def _deletions(word: str, depth: int) -> set[str]:
    """`word` with up to `depth` characters removed (itself included)."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))} - found
        found |= frontier
    return found


class FuzzyIndex:
    """Which vocabulary words a token may be a typo of, without comparing it to every word.

    A symmetric-deletion index: two words within k edits share a string reachable from both by at
    most k deletions, so looking up the token's deletions finds every candidate, and only those few
    are checked with `close_to`. It turns a scan of the whole vocabulary into a few dict look-ups.
    """

    def __init__(self, vocabulary: frozenset[str], depth: int = 2) -> None:
        self._depth = depth
        self._index: dict[str, set[str]] = {}
        for word in vocabulary:
            for variant in _deletions(word, depth):
                self._index.setdefault(variant, set()).add(word)

    def candidates(self, token: str) -> set[str]:
        hits: set[str] = set()
        for variant in _deletions(token, self._depth):
            hits |= self._index.get(variant, _NONE)
        return hits


_NONE: frozenset[str] = frozenset()
