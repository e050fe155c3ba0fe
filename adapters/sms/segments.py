"""SMS segment arithmetic: GSM-7 vs UCS-2, and fitting a text into a segment budget.

Every segment is billed and long concatenated SMS arrive out of order or partly on cheap handsets,
so outbound SMS are kept to a small budget (two segments by default). One non-GSM character (an
emoji, a curly quote) switches the whole message to UCS-2 and cuts the capacity from 160 to 70, which
is why the encoding is decided over the whole text, suffix included.

Counting follows GSM 03.38 / 3GPP TS 23.040: a single GSM-7 segment holds 160 septets, concatenated
ones 153 (the user data header takes the rest); extension-table characters take two septets and are
never split across segments. UCS-2 holds 70 UTF-16 code units, 67 when concatenated; characters outside
the BMP (most emoji) take two units and their surrogate pair is never split.
"""

from __future__ import annotations

GSM7 = "gsm7"
UCS2 = "ucs2"

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet (the escape code 0x1B itself is not a character)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""Reached through the escape code: two septets each."""

SINGLE = {GSM7: 160, UCS2: 70}
CONCAT = {GSM7: 153, UCS2: 67}

GSM7_ELLIPSIS = "..."
UCS2_ELLIPSIS = "…"
"""`…` is not in GSM-7: using it would turn a whole GSM-7 message into UCS-2."""


GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    return GSM7_ALL.issuperset(text)


def encoding(text: str) -> str:
    """`"gsm7"` when every character is in the GSM 03.38 alphabet, else `"ucs2"`."""
    return GSM7 if is_gsm7(text) else UCS2


def char_units(ch: str, enc: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) one character takes."""
    if enc == GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def units(text: str, enc: str | None = None) -> int:
    """Length of `text` in its encoding's units (what `char_units` adds up, counted in C: every SMS
    sent is measured several times while it is fitted)."""
    enc = enc or encoding(text)
    if enc == GSM7:
        return len(text) + sum(map(text.count, GSM7_EXTENSION))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split(text: str) -> list[str]:
    """The segments a handset would receive, packed greedily without splitting a character."""
    enc = encoding(text)
    if units(text, enc) <= SINGLE[enc]:
        return [text]
    return _pack(text, enc)


def segment_count(text: str) -> int:
    """How many SMS `text` costs. An empty text still costs one SMS if sent."""
    enc = encoding(text)
    total = units(text, enc)
    if total <= SINGLE[enc]:
        return 1
    return len(_pack(text, enc))


def fits(text: str, max_segments: int) -> bool:
    return segment_count(text) <= max_segments


def fit(text: str, max_segments: int = 2, suffix: str | None = None) -> str:
    """`text` (plus `suffix`) shortened to at most `max_segments` SMS.

    The suffix (a tracking link, say) is always kept whole: it is what lets the citizen read the rest.
    It is joined with one space unless it starts with whitespace. When the text has to be cut, it is
    cut at a word boundary and marked with an ellipsis (`...` in GSM-7, `…` when the message is UCS-2
    anyway). Raises ValueError if the suffix alone does not fit: that is a caller bug, not input.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    tail = _joined_suffix(text, suffix)
    if fits(text + tail, max_segments):
        return text + tail

    def candidate(kept: int) -> str:
        head = text[:kept].rstrip()
        return head + _ellipsis(head + tail) + _joined_suffix(head, suffix)

    if not fits(candidate(0), max_segments):
        raise ValueError("the suffix alone does not fit in the SMS budget")
    # The cost of candidate(k) grows with k, so binary search the longest prefix that fits.
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(candidate(mid), max_segments):
            low = mid
        else:
            high = mid - 1
    kept = _word_boundary(text, low)
    result = candidate(kept)
    while not fits(result, max_segments) and kept > 0:  # pragma: no cover - defensive
        kept -= 1
        result = candidate(kept)
    return result


def _joined_suffix(text: str, suffix: str | None) -> str:
    if not suffix:
        return ""
    if not text or suffix[0].isspace():
        return suffix
    return " " + suffix


def _ellipsis(message: str) -> str:
    return GSM7_ELLIPSIS if is_gsm7(message) else UCS2_ELLIPSIS


_TRAILING_PUNCTUATION = ",;:-–—(\"'"


def _word_boundary(text: str, kept: int) -> int:
    """Move a cut back to the last word boundary, unless that would throw away most of the text."""
    if kept >= len(text) or kept == 0:
        return kept
    if text[kept].isspace():
        cut = kept
    else:
        space = max(text.rfind(ch, 0, kept) for ch in (" ", "\n", "\t"))
        # One enormous "word" (a URL, a run without spaces) is cut hard rather than dropped.
        cut = space if space > kept // 2 else kept
    while cut > 0 and (text[cut - 1].isspace() or text[cut - 1] in _TRAILING_PUNCTUATION):
        cut -= 1
    return cut


def _pack(text: str, enc: str) -> list[str]:
    """Greedy packing into concatenated segments; a character never straddles two of them."""
    per_segment = CONCAT[enc]
    segments: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        size = char_units(ch, enc)
        if used + size > per_segment:
            segments.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    if current:
        segments.append("".join(current))
    return segments
