"""Tweet text: X's weighted length, fitting into 280, and keeping personal data out of public tweets.

X does not count characters the way Python does. twitter-text (config v3) gives every code point a
weight of 2 except the Latin, Latin-extended, general punctuation and similar ranges (weight 1); an
emoji sequence (flags, skin tones, ZWJ families) counts 2 as a whole; and every URL counts 23 however
long it is, because X wraps it in t.co. A text that fits by `len()` can still be refused, and a
Javanese or Chinese name can take twice the room, so every tweet is measured with `weighted_length`.
"""

from __future__ import annotations

import re
import unicodedata

MAX_TWEET = 280
MAX_DM = 10_000
URL_WEIGHT = 23
ELLIPSIS = "…"

_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
"""Code point ranges weighing 1 (twitter-text v3 `ranges`); everything else weighs 2."""

_TLDS = r"(?:go\.id|co\.id|or\.id|ac\.id|web\.id|my\.id|id|com|org|net|info|io|co|me|ly|gov|edu|app|dev)"
URL_RE = re.compile(
    r"(?:https?://[^\s<>\"]+)"
    r"|(?<![@\w.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+" + _TLDS + r"(?![\w-])(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
"""URLs as X links them: with a scheme, or a bare domain with a known TLD (`semarangkota.go.id/x`)."""

_EMOJI_BASE = (
    r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF\u3030\u303D\u3297\u3299"
    r"\U0001F1E6-\U0001F1FF]"
)
EMOJI_RE = re.compile(
    r"(?:[\U0001F1E6-\U0001F1FF]{2})"  # a flag: two regional indicators
    r"|(?:[0-9#*]\uFE0F?\u20E3)"  # keycaps
    r"|(?:" + _EMOJI_BASE + r"[\uFE0F\U0001F3FB-\U0001F3FF]*"
    r"(?:\u200D" + _EMOJI_BASE + r"[\uFE0F\U0001F3FB-\U0001F3FF]*)*)"
)
"""An emoji sequence (with variation selectors, skin tones and ZWJ joins) weighs 2 in total."""

PHONE_RE = re.compile(
    r"(?<!\w)(?:\+?62|0)[\s.-]?8(?:[\s.-]?\d){7,11}(?!\w)|(?<!\w)\+?\d(?:[\s.-]?\d){8,14}(?!\w)"
)
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
NIK_RE = re.compile(r"(?<!\d)\d{16}(?!\d)")
"""Indonesian phone numbers (08…, +62 8…, 62 8…), any long digit run, e-mail addresses and the
16-digit NIK: the personal data people put in complaints, never to be echoed in public."""

TRACKING_CODE_RE = re.compile(r"\bLPR-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}\b")


def _char_weight(char: str) -> int:
    point = ord(char)
    return 1 if any(low <= point <= high for low, high in _LIGHT_RANGES) else 2


def weighted_length(text: str) -> int:
    """The length X counts for `text` (NFC, URLs 23, emoji sequences 2, heavy scripts 2 per char)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    position = 0
    for match in _tokens(text):
        total += sum(_char_weight(ch) for ch in text[position : match.start()])
        total += URL_WEIGHT if match.lastgroup == "url" else 2
        position = match.end()
    total += sum(_char_weight(ch) for ch in text[position:])
    return total


_TOKEN_RE = re.compile(f"(?P<url>{URL_RE.pattern})|(?P<emoji>{EMOJI_RE.pattern})", re.IGNORECASE)


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN_RE.finditer(text))


def fit(text: str, limit: int = MAX_TWEET) -> str:
    """`text` cut at a word so that it weighs at most `limit`, with an ellipsis when cut.

    URLs and emoji are never split: the cut happens before them. Cutting keeps whole words because a
    half tracking code or half a link is worse than a shorter sentence.
    """
    text = unicodedata.normalize("NFC", text.strip())
    if weighted_length(text) <= limit:
        return text
    budget = limit - weighted_length(ELLIPSIS)
    pieces: list[tuple[str, int]] = []
    position = 0
    for match in _tokens(text):
        pieces.extend((ch, _char_weight(ch)) for ch in text[position : match.start()])
        pieces.append((match.group(0), URL_WEIGHT if match.lastgroup == "url" else 2))
        position = match.end()
    pieces.extend((ch, _char_weight(ch)) for ch in text[position:])
    kept: list[str] = []
    used = 0
    for piece, weight in pieces:
        if used + weight > budget:
            break
        kept.append(piece)
        used += weight
    cut = "".join(kept)
    if " " in cut and not text[len(cut) : len(cut) + 1].isspace():
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:-") + ELLIPSIS


def scrub(text: str) -> str:
    """Phone numbers, e-mail addresses and NIKs replaced by `***` (defence in depth for public text)."""
    parts: list[str] = []
    position = 0
    for match in URL_RE.finditer(text):  # our own tracking links are left whole
        parts.append(_scrub_plain(text[position : match.start()]))
        parts.append(match.group(0))
        position = match.end()
    parts.append(_scrub_plain(text[position:]))
    return "".join(parts)


def _scrub_plain(text: str) -> str:
    text = EMAIL_RE.sub("***", text)
    text = NIK_RE.sub("***", text)
    return PHONE_RE.sub("***", text)


def tracking_codes(text: str) -> list[str]:
    return TRACKING_CODE_RE.findall(text)
