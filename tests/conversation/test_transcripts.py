"""Transcript tests: readable conversations in `transcripts/*.txt`, replayed through the machine.

Syntax, one line each (blank lines and `#` comments are ignored):

  ! medium sms|whatsapp|telegram|twitter|web     channel of the next turns (a channel switch)
  ! settings key=value ...                       keywords=A,B  reminder=30m  expire=24h  url=...  lang=en
  ! complaint LPR-XXXXXX slug status "summary" [place "text"] [dept "name"] [mine]
                                                 a complaint already in the store
  ! code LPR-XXXXXX                              the tracking code the pipeline hands out next
  ! state {json}                                 start from this stored state (garbage welcome)
  > text                                         the citizen writes
  > [photo] caption                              ... sends a photo (with an optional caption)
  > [location -6.99,110.42 "Jl. Pemuda"] text    ... shares a location (label and text optional)
  @ +31m | +2h | +1d                             the clock moves on; due timers fire as Ticks
  < words                                        the next reply contains these words (any case)
  + words                                        ... and the same reply also contains these
  = submitted LPR-XXXXXX [category=slug] [place~words] [photos=N] [anonymous] [lang=xx] [medium=m]
  = joined LPR-XXXXXX | = evidence LPR-XXXXXX | = lookup LPR-XXXXXX | = lookup mine
  = stage <stage> | = silent | = category <slug>

Every reply and every filing effect must be expected by a `<` or `=` line: an unexpected message
to a citizen fails the test just like a missing one. A small fake pipeline answers LookupStatus
and FindDuplicates from the complaints the transcript seeded or filed, like the store would.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conversation import api
from conversation.gsm import fits_one_segment, septets
from conversation.machine import step
from conversation.state import problems
from conversation.text import words

TRANSCRIPTS = sorted((Path(__file__).parent / "transcripts").glob("*.txt"))
WIB = timezone(timedelta(hours=7))
START = datetime(2025, 3, 10, 8, 0, tzinfo=WIB)
CODES = ["LPR-7K3M9Q", "LPR-4HX2PT", "LPR-9WRC6B", "LPR-M3N8ZA", "LPR-P5Q2RS", "LPR-X6Y7Z8"]
OPEN = {"submitted", "verified", "forwarded", "in_progress", "reopened"}
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass
class StoredComplaint:
    code: str
    category: str | None
    status: str
    summary: str
    place: str = ""
    department: str | None = None
    mine: bool = False


@dataclass
class Outcome:
    """What one input produced, consumed by the `<` and `=` lines that follow it."""

    line: int
    replies: list[api.Reply] = field(default_factory=list)
    filings: list[api.Effect] = field(default_factory=list)
    lookups: list[api.LookupStatus] = field(default_factory=list)


class Transcript:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, Any] | None = None
        self.now = START
        self.medium = "sms"
        self.settings = api.Settings()
        self.store: dict[str, StoredComplaint] = {}
        self.codes = list(CODES)
        self.timer: datetime | None = None
        self.outcome: Outcome | None = None
        self.last_reply: str | None = None

    # ---- running the machine like the pipeline does -------------------------------------

    def fail(self, line: int, message: str) -> None:
        pytest.fail(f"{self.path.name}:{line}: {message}")

    def run(self, event: api.Event, outcome: Outcome) -> None:
        line = outcome.line
        pending: list[api.Event] = [event]
        while pending:
            current = pending.pop(0)
            ctx = api.Context(now=current.at, new_tracking_code=self.codes[0], settings=self.settings)
            result = step(self.state, current, ctx)
            # What the store keeps is JSON: every state must survive the round trip and be valid.
            stored = json.loads(json.dumps(result.state))
            assert stored == result.state
            found = problems(stored)
            if found:
                self.fail(line, f"invalid state {found}: {stored}")
            self.state = stored
            self.timer = result.timer_at
            for effect in result.effects:
                pending.extend(self.pipeline(effect, outcome, current.at, line))

    def pipeline(self, effect: api.Effect, outcome: Outcome, at: datetime, line: int) -> list[api.Event]:
        """The fake pipeline: do what the effect asks and return the answer event, if any."""
        if isinstance(effect, api.Reply):
            if not fits_one_segment(effect.text):
                self.fail(line, f"reply is not one GSM-7 segment ({septets(effect.text)}): {effect.text!r}")
            outcome.replies.append(effect)
        elif isinstance(effect, api.SubmitComplaint):
            draft = effect.draft
            if draft.tracking_code != self.codes[0]:
                self.fail(line, f"submitted {draft.tracking_code}, not the context's code {self.codes[0]}")
            self.codes.pop(0)
            place = draft.place.text if draft.place and draft.place.text else ""
            self.store[draft.tracking_code] = StoredComplaint(
                draft.tracking_code, draft.category, "submitted", draft.description, place, mine=True
            )
            outcome.filings.append(effect)
        elif isinstance(effect, api.JoinComplaint):
            self.store[effect.code].mine = True
            outcome.filings.append(effect)
        elif isinstance(effect, api.AddEvidence):
            outcome.filings.append(effect)
        elif isinstance(effect, api.LookupStatus):
            outcome.lookups.append(effect)
            if effect.codes:
                found = [self.store[c] for c in effect.codes if c in self.store]
            else:
                found = [c for c in self.store.values() if c.mine and c.status in OPEN]
            infos = tuple(
                api.ComplaintInfo(c.code, c.status, c.category, c.summary, c.department,
                                  self.now if c.department else None)
                for c in found
            )
            return [api.StatusAnswer(at=at, requested_codes=effect.codes, found=infos)]
        elif isinstance(effect, api.FindDuplicates):
            near = words(effect.place.text or "") if effect.place else []
            candidates = tuple(
                api.ComplaintInfo(c.code, c.status, c.category, c.summary)
                for c in self.store.values()
                if c.category == effect.category and c.status in OPEN and set(near) & set(words(c.place))
            )
            return [api.DuplicateAnswer(at=at, candidates=candidates)]
        return []

    def tick_due(self, outcome: Outcome) -> None:
        """The scheduler: a Tick at each timer that fell due while the clock moved."""
        for _ in range(5):
            if self.timer is None or self.timer > self.now:
                return
            self.run(api.Tick(at=self.timer), outcome)

    # ---- checking ---------------------------------------------------------------------------

    def settle(self) -> None:
        """Nothing the previous input produced may go unexpected."""
        outcome = self.outcome
        if outcome is None:
            return
        if outcome.replies:
            texts = "\n  ".join(r.text for r in outcome.replies)
            self.fail(outcome.line, f"unexpected replies:\n  {texts}")
        if outcome.filings:
            self.fail(outcome.line, f"unexpected effects: {outcome.filings}")
        self.outcome = None

    def expect_reply(self, words_expected: str, line: int) -> None:
        if self.outcome is None or not self.outcome.replies:
            self.fail(line, f"expected a reply containing {words_expected!r}, got none")
            return
        reply = self.outcome.replies.pop(0)
        self.last_reply = reply.text
        self.expect_more(words_expected, line)

    def expect_more(self, words_expected: str, line: int) -> None:
        if self.last_reply is None:
            self.fail(line, "'+' must follow a '<' line")
            return
        if words_expected.casefold() not in self.last_reply.casefold():
            self.fail(line, f"expected {words_expected!r} in reply:\n  {self.last_reply}")

    def expect_effect(self, spec: str, line: int) -> None:
        kind, _, rest = spec.partition(" ")
        args = shlex.split(rest)
        if kind == "stage":
            stage = (self.state or {}).get("stage")
            if stage != args[0]:
                self.fail(line, f"stage is {stage!r}, expected {args[0]!r}")
            return
        outcome = self.outcome
        if outcome is None:
            self.fail(line, f"nothing happened to check {spec!r}")
            return
        if kind == "silent":
            if outcome.replies:
                self.fail(line, f"expected no reply, got {[r.text for r in outcome.replies]}")
            return
        if kind == "lookup":
            if not outcome.lookups:
                self.fail(line, "expected a status lookup")
            codes = outcome.lookups.pop(0).codes
            wanted = () if args[0] == "mine" else tuple(args)
            if (wanted and wanted[0] not in codes) or (not wanted and codes):
                self.fail(line, f"lookup asked for {codes}, expected {wanted or 'my complaints'}")
            return
        if kind == "category":
            draft = (self.state or {}).get("draft") or {}
            if draft.get("category") != args[0]:
                self.fail(line, f"draft category is {draft.get('category')!r}, expected {args[0]!r}")
            return
        wanted_type = {"submitted": api.SubmitComplaint, "joined": api.JoinComplaint,
                       "evidence": api.AddEvidence}[kind]
        if not outcome.filings or not isinstance(outcome.filings[0], wanted_type):
            self.fail(line, f"expected {kind}, got {outcome.filings}")
        effect = outcome.filings.pop(0)
        self.check_filing(effect, args, line)

    def check_filing(self, effect: api.Effect, args: list[str], line: int) -> None:
        code = getattr(effect, "code", None)
        draft = getattr(effect, "draft", None)
        if isinstance(effect, api.SubmitComplaint):
            code = effect.draft.tracking_code
        if args and args[0] != code:
            self.fail(line, f"code is {code}, expected {args[0]}")
        for arg in args[1:]:
            parts = re.split(r"(=|~)", arg, maxsplit=1)
            key, sep, value = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (arg, "", "")
            if draft is None and isinstance(effect, api.AddEvidence):
                actual: object = {"photos": str(len(effect.attachments))}.get(key)
            elif key == "anonymous":
                actual = draft.anonymous
                value, sep = "True", "="
            elif key == "photos":
                actual = str(len(draft.attachments))
            elif key == "place":
                actual = draft.place.text if draft.place else None
            elif key == "coords":
                actual = f"{draft.place.latitude},{draft.place.longitude}" if draft.place else None
            elif key == "lang":
                actual = draft.language
            else:
                actual = getattr(draft, key)
            if sep == "~":
                ok = actual is not None and value.casefold() in str(actual).casefold()
            else:
                ok = str(actual) == value
            if not ok:
                self.fail(line, f"{key} is {actual!r}, expected {sep}{value!r}")

    # ---- reading the file --------------------------------------------------------------------

    def play(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        turns = 0
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            marker, _, body = line.partition(" ")
            if marker == ">":
                self.settle()
                turns += 1
                self.now += timedelta(seconds=20)
                self.outcome = Outcome(number)
                self.run(self.turn(body), self.outcome)
            elif marker == "@":
                self.settle()
                self.now += self.duration(body, number)
                self.outcome = Outcome(number)
                self.tick_due(self.outcome)
            elif marker == "<":
                self.expect_reply(body.strip(), number)
            elif marker == "+":
                self.expect_more(body.strip(), number)
            elif marker == "=":
                self.expect_effect(body.strip(), number)
            elif marker == "!":
                self.directive(body, number)
            else:
                self.fail(number, f"unknown line {line!r}")
        self.settle()
        assert turns > 0, f"{self.path.name} has no turns"

    def duration(self, body: str, line: int) -> timedelta:
        match = re.fullmatch(r"\+(\d+)([smhd])", body.strip())
        if not match:
            self.fail(line, f"bad clock line {body!r}")
            raise AssertionError
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})

    def turn(self, body: str) -> api.Turn:
        attachments: tuple[api.Attachment, ...] = ()
        place = None
        text = body
        photo = re.match(r"\[photo\]\s*", text)
        if photo:
            attachments = (api.Attachment(ref=f"media/{len(text)}.jpg", content_type="image/jpeg"),)
            text = text[photo.end() :]
        shared = re.match(r'\[location (-?[\d.]+),(-?[\d.]+)(?: "([^"]*)")?\]\s*', text)
        if shared:
            place = api.Place(float(shared.group(1)), float(shared.group(2)), shared.group(3))
            text = text[shared.end() :]
        return api.Turn(medium=self.medium, at=self.now, text=text or None, attachments=attachments,
                        place=place)

    def directive(self, body: str, line: int) -> None:
        kind, _, rest = body.partition(" ")
        if kind == "medium":
            self.medium = rest.strip()
        elif kind == "code":
            self.codes.insert(0, rest.strip())
        elif kind == "state":
            self.state = json.loads(rest)
        elif kind == "settings":
            values: dict[str, Any] = {}
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                if key == "keywords":
                    values["keywords"] = tuple(value.split(","))
                elif key == "reminder":
                    values["reminder_after"] = self.duration("+" + value, line)
                elif key == "expire":
                    values["expire_after"] = self.duration("+" + value, line)
                elif key == "url":
                    values["tracking_url"] = value
                elif key == "lang":
                    values["default_language"] = value
            self.settings = api.Settings(**values)
        elif kind == "complaint":
            args = shlex.split(rest)
            code, category, status, summary = args[:4]
            extra = dict(zip(args[4::2], args[5::2], strict=False))
            self.store[code] = StoredComplaint(code, category, status, summary, extra.get("place", ""),
                                               extra.get("dept"), mine="mine" in args)
        else:
            self.fail(line, f"unknown directive {kind!r}")


def test_there_are_enough_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 40


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
def test_transcript(path: Path) -> None:
    Transcript(path).play()
