"""The SMS keyword format (`LaporHendi <aduan>`) and its hashtag cousins, as people really type them.

Since 2017 Semarang has told residents to text `LaporHendi <aduan>` to 1708. People write it in every
shape: any case, `Lapor Hendi`, `#LaporHendi`, `LAPORHENDI:`, glued to the text
(`LaporHendijalan rusak`), or tweet the hashtag at the end. The keyword says "this is a complaint", the
rest is the complaint. The X/Twitter adapter reuses `strip_keyword` for hashtags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from conversation.text import close_to, fold

_CAMEL_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SEPARATOR = r"[\s_\-.]*"
_AFTER = r"[\s:;,.\-–—!]*"
_FIRST_WORD = re.compile(r"\s*[#@]?([A-Za-z]+)[\s:;,.\-]*")
_BLANKS = re.compile(r"[ \t]+")


def _parts(keyword: str) -> list[str]:
    """`LaporHendi` -> ['lapor', 'hendi']: each part may be typed apart from the next."""
    found = _CAMEL_PARTS.findall(keyword)
    return [p.lower() for p in found] if found else [keyword.lower()]


@dataclass(frozen=True, slots=True)
class _Keywords:
    """One configured keyword list, compiled once (`strip_keyword` runs on every message)."""

    # (keyword, hashtag-anywhere pattern), longest keyword first: the order keywords are tried in.
    hashtags: tuple[tuple[str, re.Pattern[str]], ...]
    # Every keyword's leading pattern in that order, as one alternation: at the start of the text
    # the first alternative that matches wins, as trying them one by one would. Each alternative
    # is a named group; `by_group` says whose it is.
    leading: re.Pattern[str] | None
    by_group: dict[str, str]
    # (keyword, folded) for the compound keywords long enough to tolerate a typo.
    fuzzy: tuple[tuple[str, str], ...]


@lru_cache(maxsize=64)
def _compile(keywords: tuple[str, ...]) -> _Keywords:
    hashtags: list[tuple[str, re.Pattern[str]]] = []
    alternatives: list[str] = []
    by_group: dict[str, str] = {}
    for keyword in sorted({k for k in keywords if k.strip()}, key=lambda k: (-len(k), k)):
        parts = _parts(keyword.strip())
        body = _SEPARATOR.join(re.escape(p) for p in parts)
        # A compound keyword may be glued to the text ("LaporHendijalan"); a single word like
        # "Lapor" must end at a word boundary, or "Laporan saya..." would lose its first letters.
        tail = "" if len(parts) > 1 else r"(?![a-z0-9])"
        group = f"k{len(alternatives)}"
        by_group[group] = keyword
        alternatives.append(f"(?P<{group}>" + r"^\s*[#@]?\s*" + body + tail + _AFTER + ")")
        hashtag = re.compile(r"(?<![\w#])#" + body + r"(?![a-z0-9])" + _AFTER, re.IGNORECASE)
        hashtags.append((keyword, hashtag))
    leading = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
    fuzzy = tuple((k, fold(k)) for k in keywords if len(fold(k)) >= 8)
    return _Keywords(tuple(hashtags), leading, by_group, fuzzy)


def _fuzzy_leading(text: str, compiled: _Keywords) -> tuple[str, str] | None:
    """`LaporHendy aspal rusak`: a first word within a typo or two of a compound keyword."""
    match = _FIRST_WORD.match(text)
    if not match:
        return None
    keyword = _typo_of(fold(match.group(1)), compiled.fuzzy)
    return None if keyword is None else (keyword, text[match.end() :])


@lru_cache(maxsize=4096)
def _typo_of(first: str, fuzzy: tuple[tuple[str, str], ...]) -> str | None:
    """The first keyword in `fuzzy` that `first` is a typo of (cached: first words repeat)."""
    for keyword, target in fuzzy:
        if close_to(first, target):
            return keyword
    return None


def strip_keyword(text: str, keywords: Iterable[str]) -> tuple[str | None, str]:
    """`plain_strip_keyword`, cached by the text and the keywords (a reply like YA or LEWATI, and
    many a complaint, is sent again and again; the answer depends on nothing else)."""
    return _stripped(text, tuple(keywords))


def plain_strip_keyword(text: str, keywords: Iterable[str]) -> tuple[str | None, str]:
    """Split a message into (the keyword it was sent with, or None; the remaining text).

    Matches at the start in any case and spacing, with an optional `#`/`@` and trailing `:`; a
    hashtag form is also removed from anywhere in the text (tweets put it last). Free text without a
    keyword comes back unchanged (stripped) with None: it is a complaint too.
    """
    compiled = _compile(tuple(keywords))
    match = compiled.leading.match(text) if compiled.leading is not None else None
    if match:
        keyword = compiled.by_group[match.lastgroup or ""]
        return keyword, _tidy(_remove_hashtags(text[match.end() :], compiled))
    if "#" in text:  # every hashtag form starts with one
        for keyword, hashtag in compiled.hashtags:
            if hashtag.search(text):
                return keyword, _tidy(_remove_hashtags(text, compiled))
    fuzzy = _fuzzy_leading(text, compiled)
    if fuzzy is not None:
        return fuzzy[0], _tidy(fuzzy[1])
    return None, text.strip()


def _remove_hashtags(text: str, compiled: _Keywords) -> str:
    if "#" not in text:
        return text
    for _keyword, hashtag in compiled.hashtags:
        text = hashtag.sub(" ", text)
    return text


def _tidy(text: str) -> str:
    if "  " not in text and "\t" not in text:
        return text.strip()  # no run of blanks for `_BLANKS` to make one space (most texts)
    return _BLANKS.sub(" ", text).strip()


_stripped = lru_cache(maxsize=4096)(plain_strip_keyword)
"""`plain_strip_keyword` cached (the keywords as a tuple, so hashable)."""
