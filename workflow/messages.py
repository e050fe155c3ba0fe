"""Status messages for citizens and notifications for staff, from `workflow/catalog/<lang>.toml`.

Texts live in TOML so translators never touch Python. Citizen texts go out on every channel,
including SMS, so each must fit one 160-septet GSM-7 segment: free-text fill-ins (the officer's note,
a department name) are shortened to make room, never the tracking code or the date.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from conversation.gsm import SEGMENT, septets, to_gsm7
from conversation.text import shorten
from workflow.calendar import JAKARTA

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
SHRINKABLE = ("note", "department", "category")
_DIR = Path(__file__).parent / "catalog"


def _load() -> Mapping[str, Mapping[str, str]]:
    catalogs: dict[str, Mapping[str, str]] = {}
    for lang in LANGUAGES:
        with (_DIR / f"{lang}.toml").open("rb") as handle:
            data = tomllib.load(handle)
        flat = {
            f"{section}.{key}": value
            for section, table in data.items()
            for key, value in table.items()
            if isinstance(value, str)
        }
        catalogs[lang] = MappingProxyType(flat)
    return MappingProxyType(catalogs)


CATALOGS = _load()


def template(lang: str, key: str) -> str:
    catalog = CATALOGS.get(lang, CATALOGS[DEFAULT_LANGUAGE])
    return catalog.get(key) or CATALOGS[DEFAULT_LANGUAGE][key]


def render(lang: str, key: str, /, **params: object) -> str:
    """`key` in `lang`, filled in and shortened to one SMS segment where free text allows."""
    text = template(lang, key)
    values = {name: to_gsm7(" ".join(str(value).split())) for name, value in params.items()}
    rendered = text.format_map(values)
    if septets(rendered) <= SEGMENT:
        return rendered
    shrinkable = sorted(
        (n for n in SHRINKABLE if n in values and f"{{{n}}}" in text), key=lambda n: septets(values[n])
    )
    budget = SEGMENT - septets(text.format_map({**values, **dict.fromkeys(shrinkable, "")}))
    for index, name in enumerate(shrinkable):
        share = max(budget // (len(shrinkable) - index), 0)
        values[name] = _cut(values[name], share)
        budget -= septets(values[name])
    return text.format_map(values)


def _cut(value: str, room: int) -> str:
    limit = room
    cut = shorten(value, limit)
    while septets(cut) > room and limit > 0:
        limit -= 1
        cut = shorten(value, limit)
    return cut if septets(cut) <= room else ""


def due_text(moment: datetime | None) -> str:
    """A deadline as citizens read it: the local date, e.g. 30/11/2026."""
    if moment is None:
        return "-"
    return moment.astimezone(JAKARTA).strftime("%d/%m/%Y")
