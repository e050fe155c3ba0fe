"""Commands a citizen can send at any point, in Indonesian or English, typos tolerated.

A command is a short message whose words match one of the phrases below, each word within the slips
its length allows (`BATAL`, `btal`, `CANCLE`). STATUS/CEK may carry a tracking code; BARU/NEW may
carry the new complaint. Anything longer is not a command: "baru tadi pagi lampunya mati" is a
complaint that happens to start with "baru".
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

from conversation.codes import code_candidates
from conversation.text import FuzzyIndex, close_to, distance, fold, words, wordset


class CommandName(enum.StrEnum):
    CANCEL = "cancel"
    SKIP = "skip"
    HELP = "help"
    STATUS = "status"
    NEW = "new"
    ANONYMOUS = "anonymous"
    ENGLISH = "english"
    INDONESIAN = "indonesian"


@dataclass(frozen=True, slots=True)
class Command:
    """A recognised command; `argument` is the text after it (a code, or a new complaint)."""

    name: CommandName
    argument: str = ""
    codes: tuple[str, ...] = ()


_PHRASES: dict[CommandName, tuple[str, ...]] = {
    CommandName.CANCEL: ("batal", "batalkan", "batalin", "cancel", "gak jadi", "nggak jadi", "tidak jadi",
                         "ga jadi", "stop", "hapus", "cancel report"),
    CommandName.SKIP: ("lewati", "lewat", "lewatin", "skip", "tidak ada foto", "gak ada foto",
                       "nggak ada foto", "tanpa foto", "no photo", "skip photo", "lewati foto"),
    CommandName.HELP: ("bantuan", "bantu", "tolong bantu", "help", "menu", "info", "cara lapor", "caranya",
                       "bagaimana caranya", "how"),
    CommandName.STATUS: ("status", "cek", "cek status", "cek aduan", "lacak", "track", "check",
                         "check status", "status aduan", "status laporan", "cek laporan"),
    CommandName.NEW: ("baru", "aduan baru", "lapor baru", "laporan baru", "new", "new report",
                      "new complaint", "lagi", "lapor lagi"),
    CommandName.ANONYMOUS: ("anonim", "anonymous", "anon", "rahasiakan", "tanpa nama", "sembunyikan nama",
                            "anonimus", "anonym"),
    CommandName.ENGLISH: ("english", "inggris", "bahasa inggris", "in english", "eng"),
    CommandName.INDONESIAN: ("indonesia", "bahasa indonesia", "bahasa", "indo", "indonesian"),
}
# Longest phrases first, split once: `_match` runs on every message.
_SPLIT_PHRASES: dict[CommandName, tuple[tuple[str, ...], ...]] = {
    name: tuple(sorted((tuple(p.split()) for p in phrases), key=lambda words: -len(words)))
    for name, phrases in _PHRASES.items()
}
# Every phrase in the order a match is tried (command by command, longest first): where two
# phrases match, the one earlier here wins.
_ORDER: tuple[tuple[CommandName, tuple[str, ...]], ...] = tuple(
    (name, phrase) for name, phrases in _SPLIT_PHRASES.items() for phrase in phrases
)
# Look-ups that replace trying every phrase on every message: a phrase's place in `_ORDER`, the
# phrase lengths there are, and the phrases that start with each word.
_POSITION: dict[tuple[str, ...], int] = {phrase: i for i, (_name, phrase) in enumerate(_ORDER)}
_LENGTHS: tuple[int, ...] = tuple(sorted({len(phrase) for _name, phrase in _ORDER}))
_STARTING_WITH: dict[str, tuple[int, ...]] = {}
for _i, (_name, _phrase) in enumerate(_ORDER):
    _STARTING_WITH[_phrase[0]] = (*_STARTING_WITH.get(_phrase[0], ()), _i)
_PHRASE_WORDS = FuzzyIndex(frozenset(word for _name, phrase in _ORDER for word in phrase), depth=1)
# Commands that take an argument after the command words.
_WITH_ARGUMENT = (CommandName.STATUS, CommandName.NEW)
_PREFIX_WORDS = frozenset(("tolong", "mohon", "saya", "mau", "ingin", "please", "i", "want", "to"))
_SUFFIX_WORDS = frozenset(("saja", "aja", "deh", "dong", "ya", "please", "pls", "min"))
_HEAD = re.compile(r"\s*(\w+)\s*([:\-])?")
_ARGUMENT_WORD = re.compile(r"[A-Za-z0-9\u00c0-\uffff]+")


@lru_cache(maxsize=16384)
def _one_slip(word: str, target: str) -> bool:
    """Commands are short words: one typo is tolerated (from four letters on), never two."""
    return word == target or (len(target) >= 4 and distance(word, target, 1) <= 1)


@lru_cache(maxsize=16384)
def _slips_of(token: str) -> frozenset[str]:
    """The phrase words `token` is, give or take `_one_slip` (the one-deletion index finds every
    word within one edit, so only those few are compared)."""
    return frozenset(word for word in _PHRASE_WORDS.candidates(token) if _one_slip(token, word))


def _strip_politeness(tokens: list[str]) -> list[str]:
    while len(tokens) > 1 and tokens[0] in _PREFIX_WORDS:
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in _SUFFIX_WORDS:
        tokens = tokens[:-1]
    return tokens


def _explicit_new(text: str, phrase: tuple[str, ...]) -> bool:
    """BARU with a complaint after it only when it is clearly a command: "BARU ...", "baru: ...",
    "aduan baru ...". Lower-case "baru tadi pagi..." is just the word "just" in a sentence."""
    if len(phrase) > 1:
        return True
    head = _HEAD.match(text)
    return bool(head) and (head is not None and (head.group(1).isupper() or head.group(2) is not None))


def _argument_after(text: str, count: int) -> str:
    """The original text after the first `count` words (keeps case for a new complaint)."""
    matches = list(_ARGUMENT_WORD.finditer(text))
    if len(matches) <= count:
        return ""
    return text[matches[count - 1].end() :].strip(" :,.-\t\n")


@lru_cache(maxsize=4096)
def parse_command(text: str) -> Command | None:
    """The command in `text`, or None when it is not one.

    Exact words win over typo matches, so "indo" is INDONESIA and not a slip of "info".
    """
    tokens = words(text)
    if not tokens or len(tokens) > 12:
        return None
    core = _strip_politeness(tokens)
    if not _slips_of(core[0]):
        # Every phrase tried starts with a word within a slip of the first (an exact one too: a
        # word is within a slip of itself), so none can match: most complaints stop here.
        return None
    return _match(text, tokens, core, _exact_phrases(core)) or _match(text, tokens, core, _near_phrases(core))


def _exact_phrases(core: list[str]) -> list[int]:
    """Positions in `_ORDER` of the phrases `core` starts with, word for word."""
    found = [_POSITION.get(tuple(core[:size]), -1) for size in _LENGTHS if size <= len(core)]
    return sorted(i for i in found if i >= 0)


def _near_phrases(core: list[str]) -> list[int]:
    """Positions in `_ORDER` of the phrases `core` starts with, each word within one slip."""
    found = []
    for first in _slips_of(core[0]):
        for i in _STARTING_WITH.get(first, ()):
            phrase = _ORDER[i][1]
            if len(core) >= len(phrase) and all(word in _slips_of(core[j]) for j, word in enumerate(phrase)):
                found.append(i)
    return sorted(found)


def _match(text: str, tokens: list[str], core: list[str], positions: list[int]) -> Command | None:
    """The first of the phrases at `positions` (in `_ORDER`) that makes a command of the text."""
    for i in positions:
        name, phrase = _ORDER[i]
        extra = core[len(phrase) :]
        if not extra:
            return Command(name)
        if name not in _WITH_ARGUMENT:
            continue
        skipped = len(tokens) - len(core)
        argument = _argument_after(text, skipped + len(phrase))
        if name is CommandName.STATUS:
            codes = code_candidates(argument)
            # "cek jalan rusak depan rumah" is a complaint, "cek lpr 7k3m9q" a status query.
            if codes or len(extra) <= 2:
                return Command(name, argument, codes)
        elif name is CommandName.NEW and len(extra) >= 2 and _explicit_new(text, phrase):
            return Command(name, argument)
    return None


_YES = ("ya", "iya", "iyaa", "y", "yes", "yep", "yup", "ok", "oke", "okay", "okey", "okee", "ok kirim",
        "betul", "benar", "bener", "setuju", "kirim", "kirimkan", "sudah", "sip", "siap", "boleh", "lanjut",
        "sama", "ya sama", "iya sama", "ya benar", "ya betul", "yes send", "send", "correct", "same",
        "confirm", "submit", "go", "yoi", "nggih", "inggih", "enggih")
_NO = ("tidak", "tdk", "tak", "gak", "ga", "gk", "nggak", "ngga", "enggak", "engga", "no", "nope", "bukan",
       "bkn", "salah", "beda", "berbeda", "lain", "tidak sama", "bukan itu", "different", "not same",
       "mboten", "ora", "belum")
_EMOJI_YES_CHARS = frozenset("\U0001f44d\u2705\U0001f44c\U0001f64f\ufe0f\U0001f3fb\U0001f3fc\U0001f3fd ")


class _Answers:
    """A yes or a no vocabulary, read the way `_answer` needs it: phrases to look up, and the longer
    single words that may carry a typo."""

    def __init__(self, phrases: tuple[str, ...]) -> None:
        self.phrases = frozenset(phrases)
        self._typo_targets = tuple(word for word in phrases if len(word) >= 5 and " " not in word)
        self.typo_of = lru_cache(maxsize=4096)(self._typo_of)

    def _typo_of(self, token: str) -> bool:
        """`token` is one of the longer words give or take a typo (cached: answers repeat)."""
        return any(close_to(token, word) for word in self._typo_targets)


_YES_ANSWERS = _Answers(_YES)
_NO_ANSWERS = _Answers(_NO)


def _answer(text: str, vocabulary: _Answers) -> bool:
    tokens = words(text)
    if not tokens or len(tokens) > 4:
        return False
    tokens = _strip_politeness(tokens)
    joined = " ".join(tokens)
    if joined in vocabulary.phrases:
        return True
    first = tokens[0]
    return vocabulary.typo_of(first) or (first in vocabulary.phrases and len(tokens) <= 2)


@lru_cache(maxsize=4096)
def is_yes(text: str) -> bool:
    """A yes to a yes/no question (YA, iya, ok, betul, 👍, ...). Cached: a step may ask twice."""
    stripped = text.strip()
    if stripped and all(ch in _EMOJI_YES_CHARS for ch in stripped):
        return True
    return _answer(text, _YES_ANSWERS) and not _answer(text, _NO_ANSWERS)


@lru_cache(maxsize=4096)
def is_no(text: str) -> bool:
    """A no to a yes/no question (TIDAK, gak, bukan, no, ...)."""
    return _answer(text, _NO_ANSWERS)


_GREETINGS = ("halo", "hallo", "hai", "hi", "hello", "hey", "pagi", "siang", "sore", "malam", "selamat",
              "assalamualaikum", "assalamu", "alaikum", "salam", "permisi", "min", "admin", "pak", "bu",
              "mas", "mbak", "kak", "good", "morning", "afternoon", "evening", "wr", "wb", "p", "test", "tes")
_THANKS = ("terima", "kasih", "makasih", "trims", "trimakasih", "terimakasih", "thanks", "thank", "you",
           "tq", "thx", "ok", "oke", "sip", "siap", "mantap", "baik", "matur", "nuwun", "suwun", "noted")


_GREETING_WORDS = frozenset(_GREETINGS)
_THANKS_WORDS = frozenset(_THANKS)
_POLITE_WORDS = _THANKS_WORDS | _GREETING_WORDS | wordset("banyak ya yaa sekali very much a lot")


def is_greeting(text: str) -> bool:
    """Only a greeting ("halo min", "selamat pagi", "P"): nothing to file yet."""
    tokens = words(text)
    return bool(tokens) and len(tokens) <= 5 and _GREETING_WORDS.issuperset(tokens)


def is_thanks(text: str) -> bool:
    """Only thanks or an acknowledgement ("makasih min", "ok siap"): nothing to file."""
    tokens = words(text)
    return (
        bool(tokens)
        and len(tokens) <= 6
        and _POLITE_WORDS.issuperset(tokens)
        and not _THANKS_WORDS.isdisjoint(tokens)
    )


def looks_english(text: str) -> bool:
    """A first message clearly in English (used once, to pick the reply language for a newcomer)."""
    tokens = words(text)
    # Counted by mapped look-ups (no generator frame).
    english = sum(map(_ENGLISH_MARKERS.__contains__, tokens))
    indonesian = sum(map(_INDONESIAN_MARKERS.__contains__, tokens))
    return english >= 2 and english > indonesian * 2


_ENGLISH_MARKERS = wordset(
    "the is are there a an of on in at near broken not working out street road my please since for "
    "with has have been it this that and light lights garbage flood flooded tree fallen hole"
)
_INDONESIAN_MARKERS = wordset(
    "di yang dan tidak ada sudah mohon tolong jalan lampu mati rusak ini itu dari saya ke dengan sejak "
    "banjir sampah pohon depan dekat pak bu min"
)


def plain_fold_text(text: str) -> str:
    """Folded text for comparing two messages (the same message sent twice)."""
    return " ".join(words(fold(text)))


@lru_cache(maxsize=4096)
def fold_text(text: str) -> str:
    """`plain_fold_text`, cached: a turn asks for its fingerprint more than once. Folding an ASCII
    text again changes nothing, so its words are those of the text, which the recognisers have
    read already (no second fold and word scan of a new text)."""
    if text.isascii():
        return " ".join(words(text))
    return plain_fold_text(text)
