"""GSM-7: what fits in one SMS segment, and how to make a citizen's words fit it.

An SMS of up to 160 septets costs one segment; one character outside the GSM 03.38 alphabet (an
emoji, a curly quote) switches the whole message to UCS-2 and 70 characters. Replies quote the
citizen's text, so that text is transliterated to GSM-7 before it is put into a reply.
"""

from __future__ import annotations

import re
import unicodedata

SEGMENT = 160

BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = frozenset("^{}\\[~]|€\f")

_REPLACEMENTS = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\t": " ",
    "`": "'",
    "\u00b4": "'",
}


CHARSET = BASIC | EXTENSION
_EXTENSION_CHAR = re.compile("[" + re.escape("".join(sorted(EXTENSION))) + "]")
_EXTENSION_BYTES = "".join(sorted(ch for ch in EXTENSION if ch.isascii())).encode("ascii")


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic set or its extension table."""
    return CHARSET.issuperset(text)


def plain_septets(text: str) -> int:
    """Length in septets: extension characters (`€`, `[`, `{`, ...) take an escape plus the char."""
    return len(text) + len(_EXTENSION_CHAR.findall(text))


def septets(text: str) -> int:
    """`plain_septets`, counted without a regex scan where it can be: every reply is measured,
    often several times while it is fitted. An ASCII text (most) is counted by deleting its
    extension characters from its bytes (one C loop, several times quicker than the scan)."""
    if text.isascii():
        encoded = text.encode("ascii")
        return 2 * len(encoded) - len(encoded.translate(None, _EXTENSION_BYTES))
    if _EXTENSION_CHAR.search(text) is None:
        return len(text)
    return len(text) + len(_EXTENSION_CHAR.findall(text))


def fits_one_segment(text: str) -> bool:
    """True when `text` goes out as a single GSM-7 SMS."""
    return is_gsm7(text) and septets(text) <= SEGMENT


def to_gsm7(text: str) -> str:
    """Transliterate to GSM-7: curly quotes and dashes to ASCII, accents dropped, the rest removed."""
    if text.isascii() and text.isprintable() and "`" not in text:
        # Printable ASCII but the backquote is all in the basic set or the extension table, and
        # its only space is " ": most texts, and often already tidy.
        if "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text
        return " ".join(text.split())
    if CHARSET.issuperset(text):
        # Nothing to transliterate (most texts): only the spaces to tidy.
        return " ".join(text.split())
    out: list[str] = []
    for ch in text:
        if ch in CHARSET:
            out.append(ch)
            continue
        if ch in _REPLACEMENTS:
            out.append(_REPLACEMENTS[ch])
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append("".join(c for c in base if c in CHARSET))
    return " ".join("".join(out).split())
