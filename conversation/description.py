"""A draft's description read as it grows: the category it suggests and the line that sums it up.

A description is the citizen's messages joined by line breaks, and a sender who keeps writing
makes it longer at every turn. The machine needs two things of it at every turn, both defined on
all of it (`plain_suggestion` and `plain_summary` below say how, in a few lines):
- the category suggested by its words without its place phrases (`find_place`'s rest), and
- the summary quoted back in the confirmation: the clause that names the problem in the whole
  description on one line (`key_clause`), without its place phrases.
Reading all of it again at every turn made a turn cost more the more was written. A `Description`
is the same reading kept where it stood, and `extend` reads one more line: each line's place
phrases are its own (a line break is a hard stop) and only its first and last items meet the
neighbours' in the rest (`LineRest`); the category scores add up the words as they come
(`Scores`); and the summary's clause is all of the description as long as it has no clause mark
and reads on one line as it does on its lines (`reads_on`), else the clauses are followed, the
open one scanned from where its scan stopped (`PlaceStream`). `describe` keeps the readings of
recent descriptions, so the next turn, which adds a line, reads only that line; a description of
one line is read by the plain functions (the turn that wrote it read that text already).
Each reading gives what the plain definitions give; tests/conversation/test_description.py holds
them to that on any text, and the machine with them to the machine with the plain functions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from conversation.categories import (
    _CLAUSE_END,
    BY_SLUG,
    FALLBACK,
    POSITION,
    Scores,
    Suggestion,
    key_clause,
    suggest,
)
from conversation.places import LineRest, PlaceStream, Scan, find_place, read, reads_on
from conversation.text import words, words_of

# Longer descriptions are summarised by their key clause.
LONG_SUMMARY = 80


def plain_suggestion(description: str) -> Suggestion:
    """The category of a description, read all at once: that of its words without the place."""
    match = find_place(description)
    return suggest(match.rest if match is not None and match.rest else description)


def plain_summary(description: str, category: str | None) -> str:
    """The complaint in a line, read all at once: its words without the place phrases (the place
    is shown apart). A long message is summarised by the clause that names the problem, so a rant
    that opens with greetings and history still reads "Saluran air sudah mampet"."""
    flat = " ".join(description.split())
    if len(flat) > LONG_SUMMARY:
        flat = key_clause(flat, category)
    return _without_place(flat)


def _without_place(clause: str) -> str:
    match = find_place(clause)
    if match is not None and len(words(match.rest)) >= 2:
        return match.rest
    return clause


class _Clauses:
    """The clauses of the description on one line (`key_clause` cuts it at `_CLAUSE_END`), kept as
    what `plain_summary` needs of them: the summary of the first clause, the summary of the first
    clause with a keyword of each category, and the clause still open at the end, read as it grows.
    Line breaks are spaces there, so a clause goes on from one line into the next."""

    __slots__ = ("first", "first_with", "open_place", "open_rest_words", "open_scores", "open_text")

    def __init__(self) -> None:
        self.first: str | None = None
        self.first_with: dict[int, str] = {}
        self.open_text: str | None = None  # the open clause's text, unstripped (None: no clause yet)
        self.open_place = PlaceStream()
        self.open_scores = Scores()
        self.open_rest_words = 0  # words of its rest so far, counted up to 2

    def _copy(self) -> _Clauses:
        other = _Clauses.__new__(_Clauses)
        other.first, other.first_with, other.open_text = self.first, self.first_with, self.open_text
        other.open_place, other.open_scores = self.open_place, self.open_scores
        other.open_rest_words = self.open_rest_words
        return other

    def extend(self, flat_line: str) -> _Clauses:
        """The clauses once `flat_line` (a line of the description, spaces tidied, not empty)
        follows, after a space."""
        pieces = _pieces(flat_line)
        new = self._copy()
        new._join(pieces[0])
        if len(pieces) > 1:
            new._settle_open()
            for piece in pieces[1:-1]:
                new._settled_piece(piece.strip())
            new._join(pieces[-1])
        return new

    def _settled_piece(self, clause: str) -> None:
        """A clause that starts and ends in the same line."""
        if clause:
            self._settled(clause, Scores().add(words(clause)), lambda: _without_place(clause))

    def _join(self, piece: str) -> None:
        emitted: list[str] = []
        if self.open_text is None:
            self.open_text = piece
            self.open_place = PlaceStream().extend(piece, " ", emitted)
        else:
            self.open_text += " " + piece
            self.open_place = self.open_place.extend(piece, " ", emitted)
        self.open_scores = self.open_scores.add(words(piece))
        if self.open_rest_words < 2:
            self.open_rest_words = min(2, self.open_rest_words + len(words_of(emitted)))

    def _settle_open(self) -> None:
        if self.open_text is not None:
            clause = self.open_text.strip()
            if clause:
                self._settled(clause, self.open_scores, self._open_summary)
        self.open_text = None
        self.open_place = PlaceStream()
        self.open_scores = Scores()
        self.open_rest_words = 0

    def _settled(self, clause: str, scores: Scores, summary: Callable[[], str]) -> None:
        """A clause followed by a clause boundary: it stays what it is. `summary` gives its
        `_without_place` (asked only if it is the first clause or the first with a category)."""
        found = scores.scores()
        new = [position for position, score in found.items() if score > 0 and position not in self.first_with]
        if self.first is None or new:
            text = summary()
            if self.first is None:
                self.first = text
            if new:
                self.first_with = {**self.first_with, **dict.fromkeys(new, text)}

    def _open_summary(self) -> str:
        """`_without_place` of the open clause."""
        assert self.open_text is not None
        emitted: list[str] = []
        has_place, rest = self.open_place.close(emitted)
        if has_place and self.open_rest_words + len(words_of(emitted)) >= 2:
            return rest
        return self.open_text.strip()

    def summary(self, category: str | None) -> str | None:
        """`_without_place(key_clause(flat, category))`; None when there is no clause at all
        (then `key_clause` gives the whole text, which the caller has)."""
        found = BY_SLUG.get(category or FALLBACK)
        open_clause = self.open_text is not None and bool(self.open_text.strip())
        if found is not None and found.keywords:
            position = POSITION[found.slug]
            if position in self.first_with:
                return self.first_with[position]
            if open_clause and self.open_scores.has(position):
                return self._open_summary()
        if self.first is not None:
            return self.first
        return self._open_summary() if open_clause else None


def _pieces(flat_line: str) -> tuple[str, ...]:
    return tuple(_CLAUSE_END.split(flat_line))


@lru_cache(maxsize=8192)
def _has_clause_end(flat_line: str) -> bool:
    return _CLAUSE_END.search(flat_line) is not None


class Description:
    """The reading of a description (see the module docstring); immutable: `extend` gives a new one.

    `place` reads the lines for `find_place` of all of it, `rest` scores the words of the rest it
    leaves (`rest_words` counts them up to 2), `words` scores those of all of it. `flat` is all of
    it on one line: its summary comes from its clauses (`clauses`), but while it is one clause that
    reads as the lines do (`alike`: no clause boundary, and each line cut into the same spans after
    a space as after a line break, `last` being the scan of the last line with tokens), the clause
    is all of it and its rest is the one `place` has: nothing more to follow.
    """

    __slots__ = (
        "alike", "clauses", "closed", "flat", "flat_lines", "last", "place", "rest", "rest_words",
        "summaries", "words",
    )

    def __init__(self) -> None:
        self.place = LineRest()
        self.rest = Scores()
        self.rest_words = 0
        self.words = Scores()
        self.flat = ""
        self.flat_lines: tuple[str, ...] = ()  # its lines, spaces tidied, the empty ones left out
        self.alike = True
        self.last: Scan | None = None
        self.clauses: _Clauses | None = None  # followed once not `alike` and longer than a summary
        self.closed: tuple[bool, str, list[str]] | None = None
        self.summaries: dict[str | None, str] = {}

    def extend(self, line: str) -> Description:
        """The reading of this description with `line` after a line break (the first line if
        nothing was read yet)."""
        new = Description.__new__(Description)
        rest_words: list[str] = []
        new.place = self.place.extend(line, rest_words)
        new.rest = self.rest.add(rest_words)
        new.rest_words = min(2, self.rest_words + len(rest_words))
        new.words = self.words.add(words(line))
        flat_line = " ".join(line.split())
        new.flat = f"{self.flat} {flat_line}" if self.flat and flat_line else self.flat or flat_line
        new.flat_lines = (*self.flat_lines, flat_line) if flat_line else self.flat_lines
        scan = read(line)
        new.last = scan if scan.toks else self.last
        new.alike = self.alike and not (
            flat_line
            and (
                _has_clause_end(flat_line)
                or (self.last is not None and bool(scan.toks) and not reads_on(self.last, scan))
            )
        )
        new.clauses = self.clauses
        if not new.alike and len(new.flat) > LONG_SUMMARY:
            if new.clauses is None:
                # Once, when it stops being alike: from its lines, each read already.
                new.clauses = _Clauses()
                for flat in new.flat_lines:
                    new.clauses = new.clauses.extend(flat)
            elif flat_line:
                new.clauses = new.clauses.extend(flat_line)
        new.closed = None
        new.summaries = {}
        return new

    def _close(self) -> tuple[bool, str, list[str]]:
        """(whether `find_place` finds a place in the description, the rest it leaves, the words of
        the rest not yet in `rest`)."""
        if self.closed is None:
            more: list[str] = []
            has_place, rest = self.place.close(more)
            self.closed = has_place, rest, more
        return self.closed

    def suggestion(self) -> Suggestion:
        """`plain_suggestion` of the description."""
        has_place, rest, more = self._close()
        if has_place and rest:
            return self.rest.suggestion(more)
        return self.words.suggestion()

    def summary(self, description: str, category: str | None) -> str:
        """`plain_summary(description, category)`, `description` being the text read."""
        found = self.summaries.get(category)
        if found is None:
            if self.alike:
                has_place, rest, more = self._close()
                found = rest if has_place and self.rest_words + len(more) >= 2 else self.flat
            elif self.clauses is None:
                found = plain_summary(description, category)  # a line: nothing to gain
            else:
                found = self.clauses.summary(category)
                if found is None:
                    found = _without_place(self.flat)
            self.summaries[category] = found
        return found


class _OneLine:
    """The reading of a description of one line: the plain functions, whose readings of that text
    the turn that wrote it has made already (`find_place` and `suggest` cache them)."""

    __slots__ = ("summaries", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.summaries: dict[str | None, str] = {}

    def suggestion(self) -> Suggestion:
        return plain_suggestion(self.text)

    def summary(self, description: str, category: str | None) -> str:
        found = self.summaries.get(category)
        if found is None:
            found = self.summaries[category] = plain_summary(description, category)
        return found


_READINGS: dict[str, Description | _OneLine] = {}
_KEPT = 2048


def describe(description: str, previous: str | None = None) -> Description | _OneLine:
    """The reading of `description`. Kept for the next turns: one that adds a line to it (or to
    `previous`, the description before this turn's words) reads only what was added."""
    found = _READINGS.get(description)
    if found is not None:
        return found
    if "\n" not in description:
        reading: Description | _OneLine = _OneLine(description)
    else:
        start, lines = Description(), description.split("\n")
        cut = description.rfind("\n")
        for before in (previous, description[:cut]):
            if not before:
                continue
            kept = _READINGS.get(before)
            if isinstance(kept, Description) and description.startswith(before + "\n"):
                start, lines = kept, description[len(before) + 1 :].split("\n")
                break
        for line in lines:
            start = start.extend(line)
        reading = start
    if len(_READINGS) >= _KEPT:
        _READINGS.pop(next(iter(_READINGS)), None)
    _READINGS[description] = reading
    return reading
