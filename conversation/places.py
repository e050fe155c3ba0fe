"""Finding where the problem is in what a citizen wrote.

People say where in many ways: `di Jl. Pemuda`, `depan SD 2`, `dekat masjid`, `gang 3`, `RT 04/RW 02`,
a kelurahan or one of the 16 kecamatan (often misspelt: "pedurangan", "banyu manik"), a landmark
("Simpang Lima"), and in English `near ...`, `on Pemuda Street`. `find_place` returns the phrases that
say where, in the citizen's own words, plus the rest of the text (so the category is suggested from
the problem, not from "depan sekolah").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, cast

from conversation.text import FuzzyIndex, distance, fold, words_of, wordset

_TOKEN = re.compile(r"[\w/.\-']+|[,;!?\n()]")

STREET_WORDS = frozenset(
    {"jl", "jln", "jalan", "jaln", "gg", "gang", "gng", "lorong", "komplek", "kompleks", "komp", "perum",
     "perumahan", "kampung", "kp", "kelurahan", "kel", "kec", "kecamatan", "kel/kec", "blok", "dusun"}
)
RELATIVE_WORDS = frozenset(
    {"depan", "dpn", "dekat", "deket", "dkt", "samping", "sebelah", "sblh", "belakang", "blkg", "seberang",
     "sebrang", "sekitar", "sekitaran", "ujung", "pojok", "pinggir", "perempatan", "prapatan", "pertigaan",
     "bundaran", "simpang", "kawasan", "wilayah", "near", "opposite", "behind", "outside", "beside"}
)
PLACE_NOUNS = frozenset(
    {"pasar", "sekolah", "sd", "smp", "sma", "smk", "masjid", "mushola", "musholla", "gereja", "puskesmas",
     "rs", "rsud", "kantor", "balai", "taman", "terminal", "stasiun", "halte", "jembatan", "sungai", "kali",
     "perumahan", "perum", "komplek", "kompleks", "kampung", "lapangan", "alun-alun", "tol", "underpass",
     "flyover", "rumah", "toko", "indomaret", "alfamart", "spbu", "pom", "gedung", "hotel", "mall"}
)
ENGLISH_INTRO = frozenset({"on", "at", "in"})
STREET_SUFFIX = frozenset({"street", "st", "road", "rd", "avenue", "ave", "lane", "alley"})
# Words that end a place phrase: what comes next is the problem, the time or a plea.
STOP_WORDS = wordset(
    """sudah sdh udah udh dah sejak dari mohon tolong tlg segera pak bu bapak ibu mas mbak min admin karena
    krn karna soalnya yang yg dan tapi tp namun sehingga jadi jd sampai sampe hingga selama sering setiap
    tiap kalau klo kalo jika ketika saat waktu mati rusak berlubang berlobang bolong banjir tergenang
    menumpuk numpuk mampet mampat tumbang roboh bau gelap padam meluap ambles amblas retak kotor macet bocor
    jebol putus patah hilang ada ini itu sangat banyak masih belum blm tidak tdk gak ga nggak ngga enggak
    bikin membuat minta harap terima kasih makasih lagi kok sekali bgt banget parah hari minggu bulan jam
    tahun kemarin kmrn tadi pagi siang sore malam sampah lampu pju pohon air please is are has have was
    been since and but because not broken flooded dark out blocked for fallen garbage trash light lamp
    tree pothole potholes there it its"""
)
_ABBREVIATIONS = frozenset({"jl", "jln", "gg", "kel", "kec", "no", "rt", "rw", "kp", "komp", "st", "rd", "sd",
                            "smp", "sma", "dr", "h", "kh", "ir", "prof"})
_RT_RW = re.compile(r"^(rt|rw)[.\-:]?\d{1,3}(/(rw)?[.\-:]?\d{1,3})?$")
_NUMBER = re.compile(r"^(no\.?)?\d{1,4}[a-z]?(/\d{1,4})?$")
MAX_SPAN = 14
# Tidying the text left once the place phrases are cut out.
_INTRO_BEFORE_PLACE = re.compile(r"\b(di|at|on|in)\s*$", re.IGNORECASE)
_DANGLING_INTRO = re.compile(r"\b(di|at|on|in|near)\b(?=\s*([,.;!?]|$))", re.IGNORECASE)
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[,.;!?])")  # a literal replacement: no template
_DIGIT_AFTER_RT = re.compile(r"^[.:]?\d")
_INTRO_ENDS = ("di", "at", "on", "in")
_DANGLING_ENDS = (*_INTRO_ENDS, "near")


def _without_intro_before(text: str) -> str:
    """`_INTRO_BEFORE_PLACE.sub("", text)`. It matches only where the text, trailing whitespace
    aside, ends with an intro word, so an ASCII ending that is none is left as it is without the
    scan (IGNORECASE takes a few non-ASCII letters for an "i": those endings go to the regex)."""
    tail = text.rstrip()[-2:]
    if tail.isascii() and tail.lower() not in _INTRO_ENDS:
        return text
    return _INTRO_BEFORE_PLACE.sub("", text)


def _without_dangling(text: str, punctuated: bool) -> str:
    """`_DANGLING_INTRO.sub("", text)`, `punctuated` saying whether the text has any of ",.;!?".
    Without them an intro word can only dangle at the end, so an ASCII ending that is none is
    left as it is without the scan (as in `_without_intro_before`)."""
    if not punctuated:
        tail = text.rstrip()[-4:]
        if tail.isascii() and not tail.lower().endswith(_DANGLING_ENDS):
            return text
    return _DANGLING_INTRO.sub("", text)


def _punctuated(text: str) -> bool:
    """Whether `text` has a mark `_DANGLING_INTRO` and `_SPACE_BEFORE_PUNCTUATION` look for."""
    return "," in text or "." in text or ";" in text or "!" in text or "?" in text
_DANGLING = RELATIVE_WORDS | {"di", "ke", "the", "of", "dan"}


class _Tok(NamedTuple):
    """A token and what it says whatever text it is in: one per distinct token text, made once by
    `_read_token` (the same words recur in every message); where it stands is kept apart."""

    raw: str
    norm: str
    hard_stop: bool
    ends_sentence: bool
    may_start: bool  # the word could begin a place phrase (`_span_start` decides)


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    """The place phrases found (joined by ', ') and the text left once they are cut out."""

    text: str
    rest: str


def _load_names() -> tuple[dict[tuple[str, ...], str], tuple[str, ...]]:
    with (Path(__file__).parent / "places.toml").open("rb") as handle:
        data = tomllib.load(handle)
    names: dict[tuple[str, ...], str] = {}
    for canonical, variants in data["kecamatan"].items():
        for variant in [canonical, *variants]:
            names[tuple(fold(variant).split())] = canonical
    for section in ("kelurahan", "landmark"):
        for name in data[section]["names"]:
            names[tuple(fold(name).split())] = name
    kecamatan = tuple(data["kecamatan"])
    return names, kecamatan


KNOWN_NAMES, KECAMATAN = _load_names()
_LONGEST_NAME = max(len(k) for k in KNOWN_NAMES)
_SINGLE_NAMES = tuple(k[0] for k in KNOWN_NAMES if len(k) == 1 and len(k[0]) >= 6)
# Two words one slip apart share a string one deletion from each, so these are the only names a
# word can be a slip of (the distance decides among those few).
_SINGLE_NAME_INDEX = FuzzyIndex(frozenset(_SINGLE_NAMES), depth=1)
# The words a known name can start with: most tokens are not one, and need no longer look-up.
_NAME_STARTS = frozenset(k[0] for k in KNOWN_NAMES)
_HARD_STOPS = frozenset(",;!?\n()")
# Words that begin a place phrase by themselves or with what follows (see `_span_start`).
_MARKERS = STREET_WORDS | RELATIVE_WORDS | ENGLISH_INTRO | _NAME_STARTS | {"di", "rt", "rw"}


def _tokens(text: str) -> tuple[list[_Tok], list[tuple[int, int]]]:
    """The tokens of `text`, and where each one is in it (start, end). Mapped, not looped: the
    matches' texts go to the token cache without a Python frame a token; an ASCII text is cut by
    `_ASCII_TOKEN`, which matches there what `_TOKEN` does with a bitmap for `\\w`."""
    matches = list((_ASCII_TOKEN if text.isascii() else _TOKEN).finditer(text))
    return list(map(_read_token, map(_MATCHED, matches))), list(map(_SPAN, matches))


_MATCHED = re.Match.group
_SPAN = re.Match.span
# `_TOKEN` on ASCII characters: there `\w` is [A-Za-z0-9_] (tests hold the two to the same cuts).
_ASCII_TOKEN = re.compile(r"[A-Za-z0-9_/.\-']+|[,;!?\n()]")


@lru_cache(maxsize=8192)
def _read_token(raw: str) -> _Tok:
    """What a token says whatever text it is in. Cached: the same words recur in every message.

    `may_start` holds for every word some branch of `_span_start` accepts before looking at the
    next words, so a word without it is passed over at once (most words of a message).
    """
    norm = fold(raw).strip(".-'")
    hard = raw in _HARD_STOPS
    may_start = (
        bool(norm)
        and not hard
        and (norm in _MARKERS or raw[:1].isupper() or bool(_RT_RW.match(norm)) or _near_single_name(norm))
    )
    return _Tok(raw, norm, hard, raw.endswith(".") and norm not in _ABBREVIATIONS, may_start)


def _known_name_at(toks: Sequence[_Tok], i: int) -> int:
    """Length in tokens of a known Semarang place name starting at token i (0 if none)."""
    if toks[i].norm not in _NAME_STARTS:
        return 1 if _near_single_name(toks[i].norm) else 0
    for size in range(min(_LONGEST_NAME, len(toks) - i), 0, -1):
        key = tuple(t.norm for t in toks[i : i + size])
        if key in KNOWN_NAMES:
            return size
    return 1 if _near_single_name(toks[i].norm) else 0


@lru_cache(maxsize=8192)
def _near_single_name(word: str) -> bool:
    """A one-word place name with one typo ("Ngalian", "Tembalan"); cached, it runs for every word."""
    if len(word) < 6:
        return False
    return any(distance(word, name, 1) <= 1 for name in _SINGLE_NAME_INDEX.candidates(word))


def _is_rt_rw(toks: Sequence[_Tok], i: int) -> bool:
    norm = toks[i].norm
    if norm[:2] not in _RT_RW_STARTS:
        return False  # what `_RT_RW` and the words "rt", "rw" all start with (no regex a word)
    if _RT_RW.match(norm):
        return True
    return norm in ("rt", "rw") and i + 1 < len(toks) and bool(_DIGIT_AFTER_RT.match(toks[i + 1].norm))


_RT_RW_STARTS = ("rt", "rw")


def _usable_after(toks: Sequence[_Tok], i: int) -> bool:
    """A marker needs a real word after it: 'depan' alone, or 'jalan rusak', says nowhere."""
    if i >= len(toks) or toks[i].hard_stop or not toks[i].norm:
        return False
    norm = toks[i].norm
    if norm == "lampu":
        return i + 1 < len(toks) and toks[i + 1].norm == "merah"
    if norm == "raya" or norm in STREET_WORDS:
        # "pinggir jalan" says nowhere; "pinggir jalan Pemuda" does.
        return _usable_after(toks, i + 1)
    return norm not in STOP_WORDS and norm not in {"di", "ke", "nya"}


def _names_a_thing(toks: Sequence[_Tok], i: int) -> bool:
    """'lampu jalan', 'penerangan jalan': here 'jalan' is part of what is broken, not a street."""
    return toks[i].norm == "jalan" and i > 0 and toks[i - 1].norm in {"lampu", "penerangan", "lampunya"}


def _span_start(toks: Sequence[_Tok], i: int) -> tuple[int, int] | None:
    """(first token, tokens the marker itself covers) when a place phrase starts at token i."""
    tok = toks[i]
    norm = tok.norm
    if not tok.may_start:  # also a hard stop or an empty word (the caller skips these already)
        return None
    if _is_rt_rw(toks, i):
        return i, 1
    if norm in STREET_WORDS and _usable_after(toks, i + 1) and not _names_a_thing(toks, i):
        return i, 1
    if norm in RELATIVE_WORDS and _usable_after(toks, i + 1):
        return i, 1
    if norm == "in" and i + 2 < len(toks) and toks[i + 1].norm == "front" and toks[i + 2].norm == "of":
        return (i, 3) if _usable_after(toks, i + 3) else None
    if norm == "di" and i + 1 < len(toks) and toks[i + 1].norm in PLACE_NOUNS and _usable_after(toks, i + 2):
        return i + 1, 1
    if norm in ENGLISH_INTRO and i + 1 < len(toks) and toks[i + 1].raw[:1].isupper():
        return i + 1, 0
    capitalised_name = tok.raw[:1].isupper() and norm not in {"the", "a", "my", "this", "that", "our"}
    if capitalised_name and i + 1 < len(toks) and toks[i + 1].norm in STREET_SUFFIX:
        return i, 0
    size = _known_name_at(toks, i)
    if size:
        return i, size
    return None


def _span_end(toks: Sequence[_Tok], start: int, covered: int) -> int:
    """Index after the last token of the place phrase that starts at `start`."""
    end = start + covered
    if toks[end - 1].ends_sentence if covered else False:
        return end
    count = len(toks)
    while end < count and end - start < MAX_SPAN:
        tok = toks[end]
        norm = tok.norm
        if tok.hard_stop or not norm:
            break
        if norm == "lampu" and end + 1 < count and toks[end + 1].norm == "merah":
            end += 2
            continue
        if norm in STOP_WORDS:  # and not `_is_rt_rw`, which no stop word is (checked below)
            break
        if norm == "jalan" and not _usable_after(toks, end + 1):
            break
        end += 1
        if tok.ends_sentence:
            break
    return end


assert not any(_RT_RW.match(word) or word in ("rt", "rw") for word in STOP_WORDS)


class _End:
    """What stands after the tokens read so far: a hard stop, which every decision reads the way
    it reads the end of a text (a line break inside a text is one: see `LineRest`). Reading it is
    counted, so a decision that looked past the tokens read so far is known: it may go otherwise
    once more text follows."""

    __slots__ = ()
    reads = 0

    @property
    def raw(self) -> str:
        _End.reads += 1
        return "\n"

    @property
    def norm(self) -> str:
        _End.reads += 1
        return ""

    @property
    def hard_stop(self) -> bool:
        _End.reads += 1
        return True

    @property
    def ends_sentence(self) -> bool:
        _End.reads += 1
        return False

    @property
    def may_start(self) -> bool:
        _End.reads += 1
        return False


# A decision checks at most two tokens ahead of the last one it has read before reading the next
# (`i + 2 < len(toks)`), so after four of these it always reads one before it could run past them.
_ENDS: tuple[_Tok, ...] = cast(tuple[_Tok, ...], (_End(),) * 4)


def _scan(
    toks: Sequence[_Tok], i: int, stop: int, sync: tuple[int, Scan] | None = None, settled_only: bool = False
) -> tuple[list[tuple[int, int, int]], int, bool]:
    """The place spans `find_place` finds from token `i` on, as (decision, first, end), the tokens
    read (`stop` of them) being followed by `_ENDS`; the index of the first decision that read
    past them (`stop` if none); and whether the scan stopped early at `sync`.

    `settled_only`: stop at that first decision (what follows the tokens may change it and all
    after it). `sync` = (offset, scan): the tokens from `offset` on are those `scan` read alone;
    the scan stops at the first of their decisions `scan` took too (none before it having read
    past the end): from there on both read the same tokens the same way, so `scan` has the rest.
    """
    spans: list[tuple[int, int, int]] = []
    unsettled = stop
    offset, alone = sync if sync is not None else (stop, None)
    while i < stop:
        if alone is not None and i >= offset and alone.took(i - offset, toks[i - 1] if i else None):
            return spans, i, True
        if not toks[i].may_start:
            i += 1
            continue
        reads = _End.reads
        start = _span_start(toks, i)
        if start is not None:
            first, covered = start
            end = _span_end(toks, first, covered)
        if _End.reads != reads and unsettled == stop:
            unsettled, alone = i, None
            if settled_only:
                return spans, i, False
        if start is None:
            i += 1
            continue
        while end > first + covered and toks[end - 1].norm in _DANGLING:
            end -= 1
        if end > first:
            spans.append((i, first, end))
        i = max(end, i + 1)
    return spans, unsettled, False


class Scan(NamedTuple):
    """A text read for place phrases once (`read` caches it): its tokens, where they are, and the
    spans `find_place` cuts out; and how the scan stood where the text ends, so that a text that
    goes on (a description that grows) picks the scan up there instead of reading it all again.
    A named tuple: made for every new text, and a frozen dataclass set each field by a call.
    """

    toks: tuple[_Tok, ...]
    where: tuple[tuple[int, int], ...]
    spans: tuple[tuple[int, int], ...]
    decisions: tuple[int, ...]  # the token at which the scan found each span
    # The first `settled` spans stand whatever follows the text; decisions from token `resume` on
    # read past its end. `decided`: (decision, next) for the settled spans: the scan jumped from
    # each decision to `next`, over the tokens between.
    settled: int
    resume: int
    decided: tuple[tuple[int, int], ...]

    def took(self, index: int, before: _Tok | None) -> bool:
        """Whether the scan of this text alone took a decision at token `index`, one that does not
        depend on what follows the text, with `before` the token read before it (the only one a
        decision looks back at: "lampu jalan" is a thing, not a street)."""
        if index >= self.resume or any(d < index < n for d, n in self.decided):
            return False
        return not (index == 0 and before is not None and _names_a_thing((before, self.toks[0]), 1))


@lru_cache(maxsize=8192)
def read(text: str) -> Scan:
    """`text` read for place phrases (cached: a message is read for its own place, as a line of
    the description and as a clause of the summary)."""
    toks, where = _tokens(text)
    spans, resume, _synced = _scan((*toks, *_ENDS), 0, len(toks))
    # The spans taken apart in one loop in this frame (no comprehension a field).
    cuts, decisions, decided = [], [], []
    for i, first, end in spans:
        cuts.append((first, end))
        decisions.append(i)
        if i < resume:
            decided.append((i, max(end, i + 1)))
    return Scan(
        toks=tuple(toks),
        where=tuple(where),
        spans=tuple(cuts),
        decisions=tuple(decisions),
        settled=len(decided),
        resume=resume,
        decided=tuple(decided),
    )


def reads_on(before: Scan, after: Scan) -> bool:
    """Whether the text of `after`, following that of `before` after a space, is cut into the
    spans it would be after a line break (a hard stop): the decisions of `before` that read past
    its end take the same spans, and `after` reads from its first token as it does alone."""
    keep = max(before.resume - 1, 0)
    window = before.toks[keep:]
    resume = before.resume - keep
    if resume >= len(window):
        return after.took(0, window[-1] if window else None)
    toks = (*window, *after.toks, *_ENDS)
    sync = (len(window), after)
    spans, stop, synced = _scan(toks, resume, len(window) + len(after.toks), sync, settled_only=True)
    if not synced or stop != len(window):
        return False
    closing = zip(before.decisions[before.settled :], before.spans[before.settled :], strict=True)
    return spans == [(d - keep, first - keep, end - keep) for d, (first, end) in closing]


@lru_cache(maxsize=4096)
def find_place(text: str) -> PlaceMatch | None:
    """The place phrases in `text`, or None when it does not say where."""
    scan = read(text)
    where = scan.where
    spans = scan.spans
    if not spans:
        return None
    pieces: list[str] = []
    for first, end in spans:
        piece = text[where[first][0] : where[end - 1][1]].strip(" .,-")
        if piece and not any(piece.lower() in p.lower() for p in pieces):
            pieces.append(piece)
    if not pieces:
        return None
    rest_parts = []
    cursor = 0
    for first, end in spans:
        before = text[cursor : where[first][0]]
        rest_parts.append(_without_intro_before(before))
        cursor = where[end - 1][1]
    rest_parts.append(text[cursor:])
    rest = " ".join(" ".join(rest_parts).split())
    punctuated = _punctuated(rest)
    rest = _without_dangling(rest, punctuated)
    if punctuated:  # else no space stands before a mark
        rest = _SPACE_BEFORE_PUNCTUATION.sub("", rest)
    rest = " ".join(rest.split()).strip(" ,.")
    return PlaceMatch(text=", ".join(pieces), rest=rest)


def kecamatan_of(text: str) -> str | None:
    """The canonical kecamatan named in `text`, if any (for the dashboard's area filter)."""
    toks, _where = _tokens(text)
    for i in range(len(toks)):
        if toks[i].norm not in _NAME_STARTS:
            continue
        for size in range(min(_LONGEST_NAME, len(toks) - i), 0, -1):
            key = tuple(t.norm for t in toks[i : i + size])
            name = KNOWN_NAMES.get(key)
            if name in KECAMATAN:
                return name
    return None


# ---- a rest that grows: find_place's rest of a text read fragment by fragment -------------------
#
# `find_place` cuts the place phrases out of a text and tidies what is left with regexes over all of
# it. A description grows a line at a time, and reading it all again at every turn costs more the
# longer it gets. The same rest can be built one item (a run of non-space characters) at a time:
# once the spans are cut, the rest is the items of the text between them joined by one space, and
# each regex changes one item looking at no more than the first character of the next:
# - `_INTRO_BEFORE_PLACE` cuts an intro word ("di") at the end of the last item before a span;
# - `_DANGLING_INTRO` drops an intro word inside an item when punctuation follows it, in the item or
#   as the next item's first character, or when the rest ends there;
# - `_SPACE_BEFORE_PUNCTUATION` drops the space before an item that starts with punctuation.
# `RestItems` applies them so; `PlaceStream` feeds it the text between the spans as it reads.

_PUNCTUATION = frozenset(",.;!?")


def _dangling_cut(item: str, following: str | None) -> str:
    """`_DANGLING_INTRO` on one item of the rest, `following` being the first character of the next
    item (None: the rest ends here)."""
    if following is None:
        return _without_dangling(item, _punctuated(item))
    if following not in _PUNCTUATION and item.isalnum():
        return item  # no punctuation after any word of it
    return _DANGLING_INTRO.sub("", f"{item} {following}")[:-2]


class RestItems:
    """The rest of a text built an item at a time (see above). Fed the text between the place
    spans in order: `feed` the text of a segment, `cut` where a span starts, `finish` at the end.

    `held` is the last final item, waiting for the first character of the next one; `last` the
    last item of the open segment (a span after it cuts its intro word), `joined` whether `last`
    may still grow (no space after it yet). Copied, never shared, as a stream goes on.
    """

    __slots__ = ("held", "joined", "last", "out")

    def __init__(self) -> None:
        self.out = ""
        self.held: str | None = None
        self.last: str | None = None
        self.joined = False

    def copy(self) -> RestItems:
        other = RestItems.__new__(RestItems)
        other.out, other.held, other.last, other.joined = self.out, self.held, self.last, self.joined
        return other

    def feed(self, text: str, emitted: list[str]) -> None:
        """More text of the open segment; the items that became final go to `emitted`."""
        if not text:
            return
        parts = text.split()
        if not parts:
            self.joined = False
            return
        if self.last is not None:
            if self.joined and not text[0].isspace():
                parts[0] = self.last + parts[0]
            else:
                self._final(self.last, emitted)
        for part in parts[:-1]:
            self._final(part, emitted)
        self.last = parts[-1]
        self.joined = not text[-1].isspace()

    def cut(self, emitted: list[str]) -> None:
        """A place phrase starts: the open segment ends (`_INTRO_BEFORE_PLACE` on its last item)."""
        if self.last is not None:
            last = _without_intro_before(self.last)
            if last:
                self._final(last, emitted)
            self.last = None
        self.joined = False

    def finish(self, emitted: list[str]) -> str:
        """The text ends: the rest, as `find_place` gives it."""
        if self.last is not None:
            self._final(self.last, emitted)
            self.last = None
        if self.held is not None:
            self._emit(_dangling_cut(self.held, None), emitted)
            self.held = None
        return self.out.strip(" ,.")

    def append(self, part: Part, emitted: list[str]) -> None:
        """What `part` (a text read into an empty `RestItems`) does after this, the text here
        ending with a space: its items become final and are emitted as they were there (its
        `emitted`, which the caller takes), but for the meeting of this open item and held item
        with its first ones (those go to `emitted`)."""
        if part.lead is None:
            return  # only spaces
        if self.last is not None:
            item = self.last if part.lead == "feed" else _without_intro_before(self.last)
            self.last = None
            if item:
                self._final(item, emitted)
        if part.first is None:
            self.last, self.joined = part.last, part.joined
            return
        if self.held is not None:
            self._emit(_dangling_cut(self.held, part.first[0]), emitted)
        if part.out:
            if not self.out:
                self.out = part.out
            elif part.out[0] in _PUNCTUATION:
                self.out += part.out
            else:
                self.out += " " + part.out
        self.held, self.last, self.joined = part.held, part.last, part.joined

    def _final(self, item: str, emitted: list[str]) -> None:
        held = self.held
        if held is not None:
            # `_dangling_cut(held, item[0])`, its common case read in place (a call an item).
            following = item[0]
            if following not in _PUNCTUATION and held.isalnum():
                self._emit(held, emitted)
            else:
                self._emit(_dangling_cut(held, following), emitted)
        self.held = item

    def _emit(self, item: str, emitted: list[str]) -> None:
        if not item:
            return
        emitted.append(item)
        if not self.out:
            self.out = item
        elif item[0] in _PUNCTUATION:
            self.out += item
        else:
            self.out += " " + item



class _Recorder(RestItems):
    """A `RestItems` that notes the first item made final and what first met its open item."""

    __slots__ = ("first", "lead")

    def __init__(self) -> None:
        super().__init__()
        self.first: str | None = None
        self.lead: str | None = None

    # The base class's methods called by name, not through `super()` (a call an item saved).

    def feed(self, text: str, emitted: list[str]) -> None:
        if self.lead is None and text and not text.isspace():
            self.lead = "feed"
        RestItems.feed(self, text, emitted)

    def cut(self, emitted: list[str]) -> None:
        if self.lead is None:
            self.lead = "cut"
        RestItems.cut(self, emitted)

    def _final(self, item: str, emitted: list[str]) -> None:
        if self.first is None:
            self.first = item
        RestItems._final(self, item, emitted)


class Part(NamedTuple):
    """A text's share of a rest, worked out once from an empty `RestItems` (`RestItems.append`
    adds it to any other): what first met the open item ("feed": text; "cut": a place phrase;
    None: only spaces), the first item made final, the items emitted and the state left. A named
    tuple, as `Scan` is: two are made for every new line."""

    lead: str | None
    first: str | None
    out: str
    emitted: tuple[str, ...]
    held: str | None
    last: str | None
    joined: bool
    has_piece: bool
    fed: int  # how much of the text went in


def _snapshot(items: _Recorder, emitted: list[str], has_piece: bool, fed: int) -> Part:
    return Part(
        items.lead, items.first, items.out, tuple(emitted), items.held, items.last, items.joined,
        has_piece, fed,
    )


@lru_cache(maxsize=8192)
def _parts(text: str) -> tuple[Part, Part]:
    """`text`'s share of the rest of a text it starts a part of, up to where a span may start that
    depends on what follows (`PlaceStream`); and its share as a line of one (`LineRest`: its
    spans stop at the line break). One reading: the first is where the second passes through."""
    scan = read(text)
    where = scan.where
    items = _Recorder()
    emitted: list[str] = []
    fed = 0
    has_piece = False
    upto = where[scan.resume][0] if scan.resume < len(scan.toks) else len(text)
    opened = None
    for index, (first, end) in enumerate(scan.spans):
        if index == scan.settled:
            items.feed(text[fed:upto], emitted)
            opened, fed = _snapshot(items, emitted, has_piece, upto), upto
        begin, finish = where[first][0], where[end - 1][1]
        items.feed(text[fed:begin], emitted)
        items.cut(emitted)
        has_piece = has_piece or bool(text[begin:finish].strip(" .,-"))
        fed = finish
    if opened is None:
        items.feed(text[fed:upto], emitted)
        opened, fed = _snapshot(items, emitted, has_piece, upto), upto
    items.feed(text[fed:], emitted)
    return opened, _snapshot(items, emitted, has_piece, len(text))


def line_part(text: str) -> Part:
    """`text`'s share of the rest of a text it is a line of."""
    return _parts(text)[1]


class LineRest:
    """`find_place` of lines joined by line breaks, given a line at a time: a line break is a
    hard stop, so each line's spans are its own (`line_part`) and only its items meet the
    neighbours'. Immutable to its users."""

    __slots__ = ("has_piece", "items", "started")

    def __init__(self) -> None:
        self.items = RestItems()
        self.has_piece = False
        self.started = False

    def extend(self, line: str, found: list[str]) -> LineRest:
        """These lines and `line`; the words of the rest that became final go to `found`."""
        new = LineRest.__new__(LineRest)
        new.items = self.items.copy()
        part = line_part(line)
        emitted: list[str] = []
        if self.started:
            new.items.feed("\n", emitted)
        new.items.append(part, emitted)
        found += words_of(emitted)
        found += words_of(part.emitted)
        new.has_piece = self.has_piece or part.has_piece
        new.started = True
        return new

    def close(self, found: list[str]) -> tuple[bool, str]:
        """The text ends here: (whether `find_place` finds a place, the rest it leaves); the
        words of the rest not given out before go to `found`."""
        emitted: list[str] = []
        rest = self.items.copy().finish(emitted)
        found += words_of(emitted)
        return self.has_piece, rest


_NEWLINE = _read_token("\n")


class PlaceStream:
    """`find_place` of a text given fragment by fragment (joined by a separator: " " between the
    parts of a clause), each read once.

    The scan of the spans resumes where it stood (`Scan.resume`: the first decision that needed
    what follows); it runs into the new fragment only until it meets a decision the fragment's own
    scan (`read`, shared with `find_place` of that text) took, and takes that scan's spans from
    there. The text between the spans goes to a `RestItems` as soon as no span can start in it;
    when the scan meets the fragment's own at its first token, the fragment's share of the rest is
    the one worked out for it once (`_parts`). Immutable to its users.
    """

    __slots__ = ("fed", "has_piece", "items", "length", "resume", "start", "text", "toks", "where")

    def __init__(self) -> None:
        self.toks: list[_Tok] = []  # from the token before `resume` on (a decision looks back one)
        self.where: list[tuple[int, int]] = []  # where those tokens are, from the text's start
        self.resume = 0  # the next decision, an index into `toks`
        self.text = ""  # the text from `start` on
        self.start = 0
        self.length = -1  # the text's length (-1: nothing read yet)
        self.fed = 0  # how far the text went to `items`
        self.items = RestItems()
        self.has_piece = False  # a span with a place phrase in it (find_place gives a match)

    def _copy(self) -> PlaceStream:
        other = PlaceStream.__new__(PlaceStream)
        other.toks, other.where = self.toks, self.where  # replaced, never changed in place
        other.resume, other.text, other.start, other.length = self.resume, self.text, self.start, self.length
        other.fed, other.has_piece, other.items = self.fed, self.has_piece, self.items.copy()
        return other

    def extend(self, fragment: str, separator: str, emitted: list[str]) -> PlaceStream:
        """This text followed by `separator` (spaces) and `fragment` (just `fragment` if nothing
        was read yet); the rest's items that became final go to `emitted`."""
        new = self._copy()
        scan = read(fragment)
        if new.length < 0:
            new._open(fragment, scan, 0, emitted)
            return new
        offset = new.length + len(separator)
        toks = [*new.toks, *scan.toks]
        joined_at = len(new.toks)
        padded = (*toks, *_ENDS)
        spans, stop, synced = _scan(padded, new.resume, len(toks), (joined_at, scan), settled_only=True)
        if synced and stop == joined_at:
            # The spans left to decide all end before the fragment, which reads as it does alone.
            new._take(new.toks, new.where, spans, joined_at, emitted)
            new.items.feed(new.text[new.fed - new.start :] + separator, emitted)
            new._open(fragment, scan, offset, emitted)
            return new
        where = [*new.where, *[(a + offset, b + offset) for a, b in scan.where]]
        if synced:
            index = stop - joined_at
            spans += [
                (d + joined_at, first + joined_at, end + joined_at)
                for (d, _next), (first, end) in zip(scan.decided, scan.spans, strict=False)
                if d >= index
            ]
            stop = joined_at + scan.resume
        new.text += separator + fragment
        new.length = offset + len(fragment)
        new._take(toks, where, spans, stop, emitted)
        return new

    def _open(self, fragment: str, scan: Scan, offset: int, emitted: list[str]) -> None:
        """Go on with `fragment` (at `offset`, all read before fed) as its own scan left it."""
        part = _parts(fragment)[0]
        self.items.append(part, emitted)
        emitted.extend(part.emitted)
        self.has_piece = self.has_piece or part.has_piece
        keep = max(scan.resume - 1, 0)
        self.toks = list(scan.toks[keep:])
        self.where = [(a + offset, b + offset) for a, b in scan.where[keep:]]
        self.resume = scan.resume - keep
        self.text = fragment[part.fed :]
        self.start = self.fed = offset + part.fed
        self.length = offset + len(fragment)

    def close(self, emitted: list[str]) -> tuple[bool, str]:
        """The text ends here: (whether `find_place` finds a place, the rest it leaves)."""
        new = self._copy()
        spans, _unsettled, _synced = _scan((*new.toks, *_ENDS), new.resume, len(new.toks))
        new._take(new.toks, new.where, spans, len(new.toks), emitted)
        return new.has_piece, new.items.finish(emitted)

    def _take(
        self,
        toks: list[_Tok],
        where: list[tuple[int, int]],
        spans: list[tuple[int, int, int]],
        stop: int,
        emitted: list[str],
    ) -> None:
        """Cut the settled spans out, feed the text no span can start in, keep what may still."""
        text, start, items = self.text, self.start, self.items
        fed = self.fed
        for _decision, first, end in spans:
            begin, finish = where[first][0], where[end - 1][1]
            items.feed(text[fed - start : begin - start], emitted)
            items.cut(emitted)
            if not self.has_piece and text[begin - start : finish - start].strip(" .,-"):
                self.has_piece = True
            fed = finish
        limit = where[stop][0] if stop < len(toks) else self.length
        if limit > fed:
            items.feed(text[fed - start : limit - start], emitted)
            fed = limit
        keep = max(stop - 1, 0)
        self.toks, self.where = toks[keep:], where[keep:]
        self.resume = stop - keep
        self.text, self.start, self.fed = text[fed - start :], fed, fed
