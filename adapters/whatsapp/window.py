"""WhatsApp's 24-hour customer service window, and the templates that reach people outside it.

WhatsApp delivers free-form messages only within 24 hours of the citizen's last message; anything
later must be an approved template. Both providers report a free-form message sent too late
*asynchronously* (Twilio 63016, Cloud API 131047 in a failed status callback), so waiting for the
error is too late. The rule here:

- conversation replies are free-form: they answer a message that just arrived;
- a kind of message with a configured template (status updates, days later) goes out as that template
  unless this process has seen the citizen write within the window, in which case the richer
  free-form text is used. After a restart nothing is known, so templates are used: always delivered,
  at worst a little plainer.

The window is remembered per process and per address, bounded in size; the gateway's database stays
the source of truth for everything else. A `*` template is the last resort when a provider refuses
free-form text synchronously.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from adapters.base import Address, OutboundMessage

WINDOW = timedelta(hours=24)
SAFETY_MARGIN = timedelta(minutes=30)
"""A reply still queued at 23h59 would arrive after the window closed."""

ANY_KIND = "*"


class SessionWindows:
    """When each address last wrote to us on this channel (most recent `capacity` addresses)."""

    def __init__(self, clock: Callable[[], datetime], capacity: int = 100_000) -> None:
        self._clock = clock
        self._capacity = capacity
        self._last: OrderedDict[Address, datetime] = OrderedDict()

    def saw(self, address: Address, at: datetime | None = None) -> None:
        self._last[address] = at or self._clock()
        self._last.move_to_end(address)
        while len(self._last) > self._capacity:
            self._last.popitem(last=False)

    def is_open(self, address: Address) -> bool:
        last = self._last.get(address)
        return last is not None and self._clock() - last < WINDOW - SAFETY_MARGIN


WINDOW_CLOSED = "window_closed"
"""Outbox metadata set by the gateway when a later receipt said the window had closed (63016/131047)."""


def parse_templates(entries: Iterable[str], key: str) -> dict[str, str]:
    """`["status_update=HX...", "*=HX..."]` -> `{"status_update": "HX...", "*": "HX..."}`.

    Raises ValueError naming the config key, so a typo stops the gateway at start.
    """
    table: dict[str, str] = {}
    for entry in entries:
        kind, sep, template = (part.strip() for part in entry.partition("="))
        if not sep or not kind or not template:
            raise ValueError(f"{key}: {entry!r} is not kind=template")
        table[kind] = template
    return table


def template_for(
    message: OutboundMessage, templates: Mapping[str, str], *, fallback: bool = False
) -> str | None:
    """The template for a message: the row's own, else its kind's; `*` only as a `fallback` after the
    provider refused free-form text on the spot (a conversation reply must not become a template just
    because no specific one was configured)."""
    if message.template:
        return message.template
    if message.kind in templates:
        return templates[message.kind]
    return templates.get(ANY_KIND) if fallback or message.metadata.get(WINDOW_CLOSED) else None


def needs_template(message: OutboundMessage, templates: Mapping[str, str], windows: SessionWindows) -> bool:
    """Send as a template now: the row names one, or its kind has one and the window is not known open."""
    if message.template or message.metadata.get(WINDOW_CLOSED):
        return True
    return message.kind in templates and not windows.is_open(message.to)


_WHITESPACE = re.compile(r"\s+")


def template_text(text: str, limit: int = 1024) -> str:
    """Template variables may not contain newlines, tabs or runs of spaces (Meta error 132018)."""
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def template_variables(message: OutboundMessage) -> dict[str, str]:
    """`{"1": ..., "2": ...}`: the row's template_vars when it has them, else the text as `{{1}}`."""
    if message.template_vars:
        return {str(k): template_text(str(v)) for k, v in message.template_vars.items()}
    return {"1": template_text(message.text)}
