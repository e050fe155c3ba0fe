"""Reporter privacy on screen: who may see a number, and what everyone else sees instead.

Reporters in Semarang have been wary of complaining by name; a phone number shown to every officer
of every department would make that worse. Only admins (who verify and may need to call back) see
the identity; everyone else sees enough of it to tell two reporters apart in a list.
"""

from __future__ import annotations

import re

REVEALING_ROLES = frozenset({"admin"})

# Runs of 8+ digits (optionally with spaces, dots or dashes, an optional +) look like phone numbers.
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s.\-]?\d){7,}")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")


def may_see_identity(role: str) -> bool:
    return role in REVEALING_ROLES


def mask_address(kind: str, address: str) -> str:
    """`+6281234567801` -> `+62812****01`; a Telegram id or X handle keeps its ends only."""
    if kind == "phone" and address.startswith("+") and len(address) > 8:
        return address[:6] + "****" + address[-2:]
    if kind == "twitter":
        return "@" + address[:2] + "****" if len(address) > 2 else "@****"
    if kind == "shortcode":
        return address
    if len(address) > 4:
        return address[:2] + "****" + address[-2:]
    return "****"


def shown_address(kind: str, address: str, role: str) -> str:
    """What `role` may see of a reporter's address."""
    if may_see_identity(role):
        return "@" + address if kind == "twitter" else address
    return mask_address(kind, address)


def redact_text(text: str, placeholder: str = "[…]") -> str:
    """Free text for the public: phone numbers and e-mail addresses the citizen typed are removed."""
    return _PHONE_LIKE.sub(placeholder, _EMAIL.sub(placeholder, text))
