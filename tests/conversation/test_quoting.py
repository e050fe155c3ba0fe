"""Quoting a citizen's words in a reply: the fast paths give what the plain rules give.

`to_gsm7` passes printable ASCII through without looking at each character, `septets` counts the
extension characters only when there is one, and `render` makes GSM-7 safe only the start of a
very long quoted value (a 4,000-character description's summary): each is held here to the plain
computation it stands in for, on short, long and awkward texts.
"""

from __future__ import annotations

import string
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation import catalog
from conversation.catalog import SHRINKABLE, _cut, _shrinkable_in, render, template
from conversation.gsm import _REPLACEMENTS, CHARSET, EXTENSION, SEGMENT, septets, to_gsm7


def _plain_to_gsm7(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in CHARSET:
            out.append(ch)
        elif ch in _REPLACEMENTS:
            out.append(_REPLACEMENTS[ch])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append("".join(c for c in base if c in CHARSET))
    return " ".join("".join(out).split())


def _plain_septets(text: str) -> int:
    return len(text) + sum(ch in EXTENSION for ch in text)


def _plain_render(lang: str, key: str, /, **params: object) -> str:
    """`render` as it was: every value made GSM-7 safe in full."""
    text = template(lang, key)
    values = {name: _plain_to_gsm7(str(value)) for name, value in params.items()}
    rendered = text.format_map(values)
    if _plain_septets(rendered) <= SEGMENT:
        return rendered
    names = [n for n in _shrinkable_in(text) if n in values]
    shrinkable = sorted(names, key=lambda n: _plain_septets(values[n]))
    if not shrinkable:
        return rendered
    budget = SEGMENT - _plain_septets(text.format_map({**values, **dict.fromkeys(shrinkable, "")}))
    for index, name in enumerate(shrinkable):
        share = max(budget // (len(shrinkable) - index), 0)
        values[name], size = _cut(values[name], share)
        budget -= size
    return text.format_map(values)


AWKWARD = [
    *string.printable, "`", "€", "[", "é", "ü", "ß", "😡", "\u2019", "\u2026", "\u00a0", "\u3000", "\u0301"
]
texts = st.text(alphabet=st.sampled_from(AWKWARD), max_size=40) | st.text(max_size=20)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_gsm7_fast_paths_are_the_plain_rules(text: str) -> None:
    assert to_gsm7(text) == _plain_to_gsm7(text)
    assert septets(text) == _plain_septets(text)


long_texts = st.builds(
    lambda unit, times, tail: unit * times + tail, texts, st.integers(0, 300), texts
)
KEYS = [
    "confirm", "confirm_plain", "confirm_no_place", "ask_photo", "remind_confirmation", "status_item_dept",
    "expired_submitted", "new_discarded", "status_bad_code",
]


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(KEYS), st.sampled_from(["id", "en"]), long_texts, long_texts, texts)
def test_a_long_quote_is_fitted_as_all_of_it_would_be(
    key: str, lang: str, summary: str, place: str, other: str
) -> None:
    params = {
        "summary": summary, "place": place, "category": "Lampu PJU", "code": "LPR-7K3M9Q",
        "department": other, "status": "Diterima", "updated": "01/02 03:04", "text": summary, "note": other,
    }
    assert render(lang, key, **params) == _plain_render(lang, key, **params)


def test_a_long_summary_is_read_only_from_its_start() -> None:
    seen: list[int] = []
    original = catalog.to_gsm7

    def counting(text: str) -> str:
        seen.append(len(text))
        return original(text)

    catalog.to_gsm7 = counting  # type: ignore[assignment]
    try:
        long = "Saluran air sudah mampet, air meluap ke jalan " * 100
        text = render("id", "confirm", summary=long, place="Jl. Pemuda", category="Saluran air")
    finally:
        catalog.to_gsm7 = original  # type: ignore[assignment]
    assert text == _plain_render("id", "confirm", summary=long, place="Jl. Pemuda", category="Saluran air")
    assert max(seen) <= 4 * SEGMENT
    assert "summary" in SHRINKABLE
