"""Reporter privacy: contacts encrypted at rest, found by a keyed hash, shown masked or pseudonymous.

Semarang's reporters fear being identified by the department they complain about, and an unreadable
phone number in a database dump protects them even when a backup leaks. So:

* a contact address is stored encrypted (`encrypt_contact`, Fernet: AES-128-CBC + HMAC-SHA256) and
  found again by `contact_lookup_hash`, an HMAC-SHA256 of the normalised address under a separate key,
  which is deterministic (a unique index still works) but useless without the key;
* both keys are derived (HKDF) from one secret, `[privacy] key` or `LAPOR_PRIVACY__KEY`, or a key file
  created at first start for the embedded setup;
* departments see `pseudonym(...)` ("Warga-7K3M9Q", stable per reporter so two reports by the same
  person can be told apart) and `mask(...)`; a city admin may reveal the real contact with a reason,
  and `workflow.views.reveal_identity` records every reveal in `identity_reveals`;
* an ANONIM complaint gets a per-complaint pseudonym and no contact at all, for everyone but the system.

Nothing here logs; callers must not log what these functions return.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PSEUDONYM_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s.\-]?\d){7,}")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")
_EIGHT_DIGITS = re.compile(r"\d(?:[\s.\-]?\d){7}")
"""Found exactly where `_PHONE_LIKE` is (its match less the `+` and the digits past the eighth), and
faster to look for: it starts with a digit, so the scan skips to digits."""


class PrivacyError(Exception):
    """A contact could not be decrypted (wrong key) or no key is available."""


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lapor-gateway", info=purpose).derive(
        secret.encode("utf-8")
    )


class ContactVault:
    """The keys for one deployment. `previous` secrets still decrypt (key rotation), never encrypt."""

    __slots__ = ("_fernet", "_lookup_key", "_pseudonym_key")

    def __init__(self, secret: str, previous: tuple[str, ...] = ()) -> None:
        if not secret:
            raise PrivacyError("an empty privacy key would protect nothing")
        keys = [
            Fernet(base64.urlsafe_b64encode(_derive(s, b"contact-encryption"))) for s in (secret, *previous)
        ]
        self._fernet = MultiFernet(keys)
        self._lookup_key = _derive(secret, b"contact-lookup")
        self._pseudonym_key = _derive(secret, b"reporter-pseudonym")

    def __repr__(self) -> str:
        return "ContactVault(***)"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise PrivacyError("contact cannot be decrypted with the configured privacy key") from None

    def lookup_hash(self, kind: str, address: str) -> str:
        message = f"{kind}:{normalise(kind, address)}".encode()
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()

    def pseudonym(self, seed: str) -> str:
        digest = hmac.new(self._pseudonym_key, seed.encode("utf-8"), hashlib.sha256).digest()
        number = int.from_bytes(digest[:8], "big")
        chars = []
        for _ in range(6):
            number, index = divmod(number, len(PSEUDONYM_ALPHABET))
            chars.append(PSEUDONYM_ALPHABET[index])
        return "Warga-" + "".join(chars)


def normalise(kind: str, address: str) -> str:
    """One spelling per address, so the lookup hash finds it: X handles are case-insensitive."""
    address = address.strip()
    if kind == "twitter":
        return address.lstrip("@").lower()
    return address


# ---- the functions the pipeline and dashboard call ---------------------------------------------


def encrypt_contact(vault: ContactVault, address: str) -> str:
    """The value for `channel_identities.address_enc`."""
    return vault.encrypt(address)


def decrypt_contact(vault: ContactVault | None, stored_address: str, address_enc: str | None) -> str:
    """The real address of an identity row: decrypted when encrypted, else the legacy plaintext column."""
    if address_enc is None:
        return stored_address
    if vault is None:
        raise PrivacyError("contact is encrypted but no privacy key is configured")
    return vault.decrypt(address_enc)


def seal_recipient(vault: ContactVault | None, kind: str, address: str) -> dict[str, str | None]:
    """`to_address` and `to_address_enc` of an outbox row: stored like a channel identity (the keyed
    hash and the ciphertext), or the address in clear without a vault."""
    if vault is None:
        return {"to_address": address, "to_address_enc": None}
    return {"to_address": vault.lookup_hash(kind, address), "to_address_enc": vault.encrypt(address)}


def open_recipient(vault: ContactVault | None, row: Mapping[Any, Any]) -> str:
    """The real recipient of an outbox row (sealed, or in clear from before sealing or without a
    vault). The one way to read `outbox.to_address`: callers must not log what it returns."""
    return decrypt_contact(vault, row["to_address"], row.get("to_address_enc"))


def seal_name(vault: ContactVault | None, name: str | None) -> dict[str, str | None]:
    """`display_name` and `display_name_enc` of a reporters row: the profile name encrypted, or in
    clear without a vault."""
    if vault is None or name is None:
        return {"display_name": name, "display_name_enc": None}
    return {"display_name": None, "display_name_enc": vault.encrypt(name)}


def open_name(vault: ContactVault | None, plain: str | None, sealed: str | None) -> str | None:
    """A reporter's profile name from `display_name` / `display_name_enc`, whichever holds it."""
    if sealed is None:
        return plain
    if vault is None:
        raise PrivacyError("name is encrypted but no privacy key is configured")
    return vault.decrypt(sealed)


def contact_lookup_hash(vault: ContactVault, kind: str, address: str) -> str:
    """The value for `channel_identities.address` (64 hex characters), unique per (kind, address)."""
    return vault.lookup_hash(kind, address)


def pseudonym(vault: ContactVault, reporter_ref: str, *, anonymous_in: str | None = None) -> str:
    """What departments call a reporter. For an ANONIM complaint pass its tracking code: the pseudonym
    is then per complaint, so nobody can link two anonymous reports to one person."""
    return vault.pseudonym(f"{reporter_ref}|{anonymous_in}" if anonymous_in else reporter_ref)


def mask(kind: str, address: str) -> str:
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


def redact(text: str, *, names: tuple[str, ...] = (), placeholder: str = "[…]") -> str:
    """Free text for department and public views: phone numbers, e-mail addresses and the reporter's
    own name (when they typed it) removed."""
    # The patterns are only tried where they can match: most texts have no "@" and no run of eight
    # digits, and public lists redact thousands of texts per request (an Open311 list, 3,000).
    cleaned = _EMAIL.sub(placeholder, text) if "@" in text else text
    if _EIGHT_DIGITS.search(cleaned):
        cleaned = _PHONE_LIKE.sub(placeholder, cleaned)
    for name in names:
        if name and len(name.strip()) >= 3:
            cleaned = re.sub(re.escape(name.strip()), placeholder, cleaned, flags=re.IGNORECASE)
    return cleaned


def load_vault(secret: str, key_file: str, previous: tuple[str, ...] = ()) -> ContactVault:
    """The configured key, or for the embedded setup a random key kept in `key_file` (0600), created
    once: losing it makes stored contacts unreadable, so it is never silently regenerated."""
    if secret:
        return ContactVault(secret, previous)
    path = Path(key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.urlsafe_b64encode(os.urandom(32)).decode("ascii") + "\n")
    stored = path.read_text().strip()
    if not stored:
        raise PrivacyError(f"privacy key file {key_file} is empty")
    return ContactVault(stored, previous)
