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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from conversation.text import distance, fold, wordset

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
# The words a known name can start with: most tokens are not one, and need no longer look-up.
_NAME_STARTS = frozenset(k[0] for k in KNOWN_NAMES)
_HARD_STOPS = frozenset(",;!?\n()")
# Words that begin a place phrase by themselves or with what follows (see `_span_start`).
_MARKERS = STREET_WORDS | RELATIVE_WORDS | ENGLISH_INTRO | _NAME_STARTS | {"di", "rt", "rw"}


def _tokens(text: str) -> tuple[list[_Tok], list[tuple[int, int]]]:
    """The tokens of `text`, and where each one is in it (start, end)."""
    toks = []
    where = []
    for match in _TOKEN.finditer(text):
        toks.append(_read_token(match.group()))
        where.append(match.span())
    return toks, where


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


def _known_name_at(toks: list[_Tok], i: int) -> int:
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
    return len(word) >= 6 and any(distance(word, name, 1) <= 1 for name in _SINGLE_NAMES)


def _is_rt_rw(toks: list[_Tok], i: int) -> bool:
    norm = toks[i].norm
    if _RT_RW.match(norm):
        return True
    return norm in ("rt", "rw") and i + 1 < len(toks) and bool(_DIGIT_AFTER_RT.match(toks[i + 1].norm))


def _usable_after(toks: list[_Tok], i: int) -> bool:
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


def _names_a_thing(toks: list[_Tok], i: int) -> bool:
    """'lampu jalan', 'penerangan jalan': here 'jalan' is part of what is broken, not a street."""
    return toks[i].norm == "jalan" and i > 0 and toks[i - 1].norm in {"lampu", "penerangan", "lampunya"}


def _span_start(toks: list[_Tok], i: int) -> tuple[int, int] | None:
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


def _span_end(toks: list[_Tok], start: int, covered: int) -> int:
    """Index after the last token of the place phrase that starts at `start`."""
    end = start + covered
    if toks[end - 1].ends_sentence if covered else False:
        return end
    while end < len(toks) and end - start < MAX_SPAN:
        tok = toks[end]
        if tok.hard_stop or not tok.norm:
            break
        if tok.norm == "lampu" and end + 1 < len(toks) and toks[end + 1].norm == "merah":
            end += 2
            continue
        if tok.norm in STOP_WORDS and not _is_rt_rw(toks, end):
            break
        if tok.norm == "jalan" and not _usable_after(toks, end + 1):
            break
        end += 1
        if tok.ends_sentence:
            break
    return end


@lru_cache(maxsize=4096)
def find_place(text: str) -> PlaceMatch | None:
    """The place phrases in `text`, or None when it does not say where."""
    toks, where = _tokens(text)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(toks):
        start = _span_start(toks, i) if toks[i].may_start else None
        if start is None:
            i += 1
            continue
        first, covered = start
        end = _span_end(toks, first, covered)
        while end > first + covered and toks[end - 1].norm in _DANGLING:
            end -= 1
        if end > first:
            spans.append((first, end))
        i = max(end, i + 1)
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
        rest_parts.append(_INTRO_BEFORE_PLACE.sub("", before))
        cursor = where[end - 1][1]
    rest_parts.append(text[cursor:])
    rest = " ".join(" ".join(rest_parts).split())
    rest = _DANGLING_INTRO.sub("", rest)
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
