"""Tracking codes (`LPR-7K3M9Q`) and how to read them back when a citizen types one sloppily.

Codes use an alphabet without 0/O and 1/I/L so they survive being read aloud, handwritten or typed
on a keypad. Citizens still type `lpr 7k3m9q`, `LPR7K3M9Q`, `7K3M9Q`, or an O where they misread a
character: `normalize_code` turns all of these into the canonical form, and `code_candidates` lists
every code a look-alike slip could stand for (the status lookup asks for all of them).
"""

from __future__ import annotations

import itertools
import re
import secrets

PREFIX = "LPR-"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6

# Characters that never occur in a code, mapped to the code characters they are misread from.
LOOKALIKES: dict[str, tuple[str, ...]] = {
    "0": ("Q", "D"),
    "O": ("Q", "D"),
    "1": ("7", "J", "T"),
    "I": ("7", "J", "T"),
    "L": ("7", "J", "T"),
}

_CODE_RE = re.compile(r"^[A-Z0-9]{6}$")
_PREFIXED = re.compile(r"(?<![A-Z0-9])(?:LPR|1PR|IPR)[\s\-_.:/]*([A-Z0-9][\s\-]?(?:[A-Z0-9][\s\-]?){5})")
_BARE = re.compile(r"(?<![A-Z0-9])([A-Z0-9]{6})(?![A-Z0-9])")
_CANONICAL = re.compile(r"^LPR-[" + ALPHABET + r"]{6}$")


_CODES = len(ALPHABET) ** LENGTH


def new_code() -> str:
    """A fresh random code (the pipeline checks uniqueness in the store).

    One `secrets.randbelow` over all codes (uniform, from the system's secure source), written in
    base 31: the pipeline asks for a code at every step, used or not, and six `secrets.choice`
    calls cost six draws.
    """
    number = secrets.randbelow(_CODES)
    characters = []
    for _ in range(LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        characters.append(ALPHABET[digit])
    return PREFIX + "".join(characters)


def is_code(value: str) -> bool:
    """True for a canonical code: `LPR-` and six alphabet characters, upper case."""
    return bool(_CANONICAL.match(value))


def _body(text: str) -> str | None:
    """The six raw characters of the first code-like token in `text`, upper-cased, or None."""
    upper = text.upper()
    prefixed = _PREFIXED.search(upper)
    if prefixed:
        body = re.sub(r"[\s\-]", "", prefixed.group(1))
        return body if _CODE_RE.match(body) else None
    squeezed = re.sub(r"[\s\-_.]", "", upper)
    if _CODE_RE.match(squeezed) and _mixed(squeezed) and not squeezed.startswith("LPR"):
        return squeezed
    for bare in _BARE.finditer(upper):
        token = bare.group(1)
        # A bare six-character word is a code only if it looks like one: letters alone ("JALAN1")
        # or digits alone (a phone fragment) are far more likely to be something else.
        if _mixed(token):
            return token
    return None


def _mixed(token: str) -> bool:
    return any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)


def code_candidates(text: str) -> tuple[str, ...]:
    """Every canonical code the citizen may have meant, most likely first; () when none is there."""
    body = _body(text)
    if body is None:
        return ()
    choices = [LOOKALIKES.get(ch, (ch,)) for ch in body]
    if any(ch not in ALPHABET for choice in choices for ch in choice):
        return ()
    combos = itertools.islice(itertools.product(*choices), 9)
    return tuple(PREFIX + "".join(combo) for combo in combos)


def normalize_code(text: str) -> str | None:
    """The canonical `LPR-XXXXXX` for a sloppily typed code, or None when `text` holds no code.

    Accepts lower case, a missing or spaced dash, spaces inside, a missing `LPR` prefix, and
    look-alikes (O/0 for Q, I/L/1 for 7) that never occur in real codes.
    """
    candidates = code_candidates(text)
    return candidates[0] if candidates else None
