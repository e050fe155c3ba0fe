"""The message catalog: every text the bot sends lives in `catalog/<lang>.toml`, not in code.

Texts are translated and reworded by people who do not read Python, and each must fit one SMS
segment (see tests/conversation/test_catalog.py). `render` fills the placeholders, makes the citizen's
own words GSM-7 safe, and shortens the quotable ones (`summary`, `place`, ...) so the whole reply still
fits 160 septets.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from conversation.gsm import SEGMENT, septets, to_gsm7
from conversation.text import shorten

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"

# Placeholders that quote free text and may be shortened to make a reply fit one segment.
SHRINKABLE = ("summary", "place", "department", "text", "note")

_DIR = Path(__file__).parent / "catalog"


def _flatten(table: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            raise TypeError(f"catalog entry {name!r} must be a string")
    return flat


def _load() -> Mapping[str, Mapping[str, str]]:
    catalogs: dict[str, Mapping[str, str]] = {}
    for lang in LANGUAGES:
        with (_DIR / f"{lang}.toml").open("rb") as handle:
            catalogs[lang] = MappingProxyType(_flatten(tomllib.load(handle)))
    return MappingProxyType(catalogs)


CATALOGS: Mapping[str, Mapping[str, str]] = _load()


def language_or_default(lang: object) -> str:
    """A supported language code; anything else falls back to Indonesian."""
    return lang if isinstance(lang, str) and lang in CATALOGS else DEFAULT_LANGUAGE


def has(lang: str, key: str) -> bool:
    return key in CATALOGS[language_or_default(lang)]


def template(lang: str, key: str) -> str:
    """The raw text for `key`, falling back to Indonesian when a translation is missing."""
    catalog = CATALOGS[language_or_default(lang)]
    if key in catalog:
        return catalog[key]
    return CATALOGS[DEFAULT_LANGUAGE][key]


def render(lang: str, key: str, /, **params: object) -> str:
    """The text for `key` in `lang` with `params` filled in, shortened to fit one SMS segment.

    Only the free-text placeholders in `SHRINKABLE` are shortened (longest first); codes, numbers
    and URLs are never cut. If the fixed part alone is too long the text comes back as is: the
    catalog test makes sure that never happens for a shipped entry.
    """
    text = template(lang, key)
    values = _values(text, params)
    rendered = text.format_map(values)
    if septets(rendered) <= SEGMENT:
        return rendered
    shrinkable = sorted((n for n in _shrinkable_in(text) if n in values), key=lambda n: septets(values[n]))
    if not shrinkable:
        return rendered
    # Share what the fixed text leaves over fairly: short fill-ins stay whole, long ones share the rest.
    budget = SEGMENT - septets(text.format_map({**values, **dict.fromkeys(shrinkable, "")}))
    for index, name in enumerate(shrinkable):
        share = max(budget // (len(shrinkable) - index), 0)
        values[name], size = _cut(values[name], share)
        budget -= size
    return text.format_map(values)


# A quoted value longer than this (a long description's summary) is made GSM-7 safe from its start
# only: see `_values`.
_LONG_VALUE = 4 * SEGMENT


def _values(text: str, params: Mapping[str, object]) -> dict[str, str]:
    """The params made GSM-7 safe (`to_gsm7`), but a long shrinkable one only as far as it can
    matter, so a reply quoting a 4,000-character text costs what one quoting a line does.

    `to_gsm7` of the start of a text is the start of `to_gsm7` of all of it, and the reply uses the
    longest shrinkable value only through its first characters (it is cut to share at most one
    segment), its length past a segment, and whether it has more septets than the others (the
    order values are cut in). So where more than two segments of it are left and it still has the
    most septets, the rest of it makes no difference; anywhere else all of it is taken.
    """
    values = {}
    long = []
    for name, value in params.items():
        raw = str(value)
        if len(raw) > _LONG_VALUE and name in SHRINKABLE:
            long.append(name)
            raw = raw[:_LONG_VALUE]
        values[name] = to_gsm7(raw)
    if long:
        first = long[0]
        others = [septets(values[n]) for n in _shrinkable_in(text) if n in values and n != first]
        start = values[first]
        if len(long) > 1 or len(start) <= 2 * SEGMENT or septets(start) <= max(others, default=0):
            for name in long:
                values[name] = to_gsm7(str(params[name]))
    return values


@lru_cache(maxsize=256)
def _shrinkable_in(text: str) -> tuple[str, ...]:
    """The `SHRINKABLE` placeholders a template has, in `SHRINKABLE` order (read once a template)."""
    return tuple(name for name in SHRINKABLE if f"{{{name}}}" in text)


def _cut(value: str, room: int) -> tuple[str, int]:
    """`value` within `room` septets, cut at a word with '...' (extension characters count double),
    and its length in septets."""
    limit = room
    cut = shorten(value, limit)
    size = septets(cut)
    while size > room and limit > 0:
        limit -= 1
        cut = shorten(value, limit)
        size = septets(cut)
    return (cut, size) if size <= room else ("", 0)
