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
from conversation.text import close_to, distance, fold, words, wordset


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
# Commands that take an argument after the command words.
_WITH_ARGUMENT = (CommandName.STATUS, CommandName.NEW)
_PREFIX_WORDS = ("tolong", "mohon", "saya", "mau", "ingin", "please", "i", "want", "to")


def _phrase_matches(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    return len(tokens) >= len(phrase) and all(
        _one_slip(tokens[i], word) for i, word in enumerate(phrase)
    )


@lru_cache(maxsize=16384)
def _one_slip(word: str, target: str) -> bool:
    """Commands are short words: one typo is tolerated (from four letters on), never two."""
    return word == target or (len(target) >= 4 and distance(word, target, 1) <= 1)


def _strip_politeness(tokens: list[str]) -> list[str]:
    while len(tokens) > 1 and tokens[0] in _PREFIX_WORDS:
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in ("saja", "aja", "deh", "dong", "ya", "please", "pls", "min"):
        tokens = tokens[:-1]
    return tokens


def _explicit_new(text: str, phrase: tuple[str, ...]) -> bool:
    """BARU with a complaint after it only when it is clearly a command: "BARU ...", "baru: ...",
    "aduan baru ...". Lower-case "baru tadi pagi..." is just the word "just" in a sentence."""
    if len(phrase) > 1:
        return True
    head = re.match(r"\s*(\w+)\s*([:\-])?", text)
    return bool(head) and (head is not None and (head.group(1).isupper() or head.group(2) is not None))


def _argument_after(text: str, count: int) -> str:
    """The original text after the first `count` words (keeps case for a new complaint)."""
    matches = list(re.finditer(r"[A-Za-z0-9\u00c0-\uffff]+", text))
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
    return _match(text, tokens, core, fuzzy=False) or _match(text, tokens, core, fuzzy=True)


def _match(text: str, tokens: list[str], core: list[str], fuzzy: bool) -> Command | None:
    for name, phrases in _SPLIT_PHRASES.items():
        for phrase in phrases:
            exact = len(core) >= len(phrase) and tuple(core[: len(phrase)]) == phrase
            if not (exact or (fuzzy and _phrase_matches(core, phrase))):
                continue
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


def _answer(text: str, vocabulary: tuple[str, ...]) -> bool:
    tokens = words(text)
    if not tokens or len(tokens) > 4:
        return False
    tokens = _strip_politeness(tokens)
    joined = " ".join(tokens)
    if joined in vocabulary:
        return True
    first = tokens[0]
    return any(close_to(first, word) for word in vocabulary if len(word) >= 5 and " " not in word) or (
        first in vocabulary and len(tokens) <= 2
    )


def is_yes(text: str) -> bool:
    """A yes to a yes/no question (YA, iya, ok, betul, 👍, ...)."""
    stripped = text.strip()
    if stripped and all(ch in _EMOJI_YES_CHARS for ch in stripped):
        return True
    return _answer(text, _YES) and not _answer(text, _NO)


def is_no(text: str) -> bool:
    """A no to a yes/no question (TIDAK, gak, bukan, no, ...)."""
    return _answer(text, _NO)


_GREETINGS = ("halo", "hallo", "hai", "hi", "hello", "hey", "pagi", "siang", "sore", "malam", "selamat",
              "assalamualaikum", "assalamu", "alaikum", "salam", "permisi", "min", "admin", "pak", "bu",
              "mas", "mbak", "kak", "good", "morning", "afternoon", "evening", "wr", "wb", "p", "test", "tes")
_THANKS = ("terima", "kasih", "makasih", "trims", "trimakasih", "terimakasih", "thanks", "thank", "you",
           "tq", "thx", "ok", "oke", "sip", "siap", "mantap", "baik", "matur", "nuwun", "suwun", "noted")


def is_greeting(text: str) -> bool:
    """Only a greeting ("halo min", "selamat pagi", "P"): nothing to file yet."""
    tokens = words(text)
    return bool(tokens) and len(tokens) <= 5 and all(t in _GREETINGS for t in tokens)


def is_thanks(text: str) -> bool:
    """Only thanks or an acknowledgement ("makasih min", "ok siap"): nothing to file."""
    tokens = words(text)
    allowed = _THANKS + _GREETINGS + ("banyak", "ya", "yaa", "sekali", "very", "much", "a", "lot")
    return bool(tokens) and len(tokens) <= 6 and all(t in allowed for t in tokens) and any(
        t in _THANKS for t in tokens
    )


def looks_english(text: str) -> bool:
    """A first message clearly in English (used once, to pick the reply language for a newcomer)."""
    tokens = words(text)
    english = sum(t in _ENGLISH_MARKERS for t in tokens)
    indonesian = sum(t in _INDONESIAN_MARKERS for t in tokens)
    return english >= 2 and english > indonesian * 2


_ENGLISH_MARKERS = wordset(
    "the is are there a an of on in at near broken not working out street road my please since for "
    "with has have been it this that and light lights garbage flood flooded tree fallen hole"
)
_INDONESIAN_MARKERS = wordset(
    "di yang dan tidak ada sudah mohon tolong jalan lampu mati rusak ini itu dari saya ke dengan sejak "
    "banjir sampah pohon depan dekat pak bu min"
)


def fold_text(text: str) -> str:
    """Folded text for comparing two messages (the same message sent twice)."""
    return " ".join(words(fold(text)))
