"""The SMS keyword format (`LaporHendi <aduan>`) and its hashtag cousins, as people really type them.

Since 2017 Semarang has told residents to text `LaporHendi <aduan>` to 1708. People write it in every
shape: any case, `Lapor Hendi`, `#LaporHendi`, `LAPORHENDI:`, glued to the text
(`LaporHendijalan rusak`), or tweet the hashtag at the end. The keyword says "this is a complaint", the
rest is the complaint. The X/Twitter adapter reuses `strip_keyword` for hashtags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from conversation.text import close_to, fold

_CAMEL_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SEPARATOR = r"[\s_\-.]*"
_AFTER = r"[\s:;,.\-–—!]*"


def _parts(keyword: str) -> list[str]:
    """`LaporHendi` -> ['lapor', 'hendi']: each part may be typed apart from the next."""
    found = _CAMEL_PARTS.findall(keyword)
    return [p.lower() for p in found] if found else [keyword.lower()]


@lru_cache(maxsize=64)
def _compile(keywords: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...]:
    """One (keyword, leading pattern, hashtag-anywhere pattern) per keyword, longest first."""
    compiled = []
    for keyword in sorted({k for k in keywords if k.strip()}, key=lambda k: (-len(k), k)):
        parts = _parts(keyword.strip())
        body = _SEPARATOR.join(re.escape(p) for p in parts)
        # A compound keyword may be glued to the text ("LaporHendijalan"); a single word like
        # "Lapor" must end at a word boundary, or "Laporan saya..." would lose its first letters.
        tail = "" if len(parts) > 1 else r"(?![a-z0-9])"
        leading = re.compile(r"^\s*[#@]?\s*" + body + tail + _AFTER, re.IGNORECASE)
        hashtag = re.compile(r"(?<![\w#])#" + body + r"(?![a-z0-9])" + _AFTER, re.IGNORECASE)
        compiled.append((keyword, leading, hashtag))
    return tuple(compiled)


def _fuzzy_leading(text: str, keywords: Iterable[str]) -> tuple[str, str] | None:
    """`LaporHendy aspal rusak`: a first word within a typo or two of a compound keyword."""
    match = re.match(r"\s*[#@]?([A-Za-z]+)[\s:;,.\-]*", text)
    if not match:
        return None
    first = fold(match.group(1))
    for keyword in keywords:
        target = fold(keyword)
        if len(target) >= 8 and close_to(first, target):
            return keyword, text[match.end() :]
    return None


def strip_keyword(text: str, keywords: Iterable[str]) -> tuple[str | None, str]:
    """Split a message into (the keyword it was sent with, or None; the remaining text).

    Matches at the start in any case and spacing, with an optional `#`/`@` and trailing `:`; a
    hashtag form is also removed from anywhere in the text (tweets put it last). Free text without a
    keyword comes back unchanged (stripped) with None: it is a complaint too.
    """
    keyword_tuple = tuple(keywords)
    for keyword, leading, _hashtag in _compile(keyword_tuple):
        match = leading.match(text)
        if match:
            rest = text[match.end() :]
            return keyword, _tidy(_remove_hashtags(rest, keyword_tuple))
    for keyword, _leading, hashtag in _compile(keyword_tuple):
        if hashtag.search(text):
            return keyword, _tidy(_remove_hashtags(text, keyword_tuple))
    fuzzy = _fuzzy_leading(text, keyword_tuple)
    if fuzzy is not None:
        return fuzzy[0], _tidy(fuzzy[1])
    return None, text.strip()


def _remove_hashtags(text: str, keywords: tuple[str, ...]) -> str:
    for _keyword, _leading, hashtag in _compile(keywords):
        text = hashtag.sub(" ", text)
    return text


def _tidy(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text).strip()
