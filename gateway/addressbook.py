"""How channel identities are stored: encrypted at rest, found by a keyed hash.

`channel_identities.address` holds an HMAC of (kind, address) — unique, searchable, useless to
someone who copies the database without the key — and `address_enc` the address itself, encrypted
(workflow.privacy.ContactVault). Without a vault (tests of the bare pipeline) addresses are stored as
they are, and rows written that way keep working after a vault is configured.

Outbox rows store their recipient the same way (`to_address` the hash, `to_address_enc` the
ciphertext), and reporters their profile name (`display_name_enc`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow.privacy import (
    ContactVault,
    decrypt_contact,
    open_name,
    open_recipient,
    seal_name,
    seal_recipient,
)

SEAL_CACHE_SIZE = 4096
"""Addresses whose ciphertext is kept for reuse (about a megabyte at most)."""


@dataclass(frozen=True)
class AddressBook:
    vault: ContactVault | None = None
    _ciphertexts: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    """address -> its ciphertext. A Fernet encryption costs ~20 µs and the intake seals the same
    citizen's address for every reply it owes; reusing a ciphertext reveals nothing that the row's
    lookup hash does not already reveal (that two rows have the same address)."""
    _hashes: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False, compare=False)
    """(kind, address) -> its lookup hash: asked for every message (the identity) and every reply."""

    def key(self, kind: str, address: str) -> str:
        """The value of `channel_identities.address` for this address."""
        if self.vault is None:
            return address
        lookup = self._hashes.get((kind, address))
        if lookup is None:
            if len(self._hashes) >= SEAL_CACHE_SIZE:
                self._hashes.clear()
            lookup = self._hashes[(kind, address)] = self.vault.lookup_hash(kind, address)
        return lookup

    def seal(self, address: str) -> str | None:
        """The value of `channel_identities.address_enc`."""
        if self.vault is None:
            return None
        sealed = self._ciphertexts.get(address)
        if sealed is None:
            if len(self._ciphertexts) >= SEAL_CACHE_SIZE:
                self._ciphertexts.clear()
            sealed = self._ciphertexts[address] = self.vault.encrypt(address)
        return sealed

    def open(self, stored: str, sealed: str | None) -> str:
        """The real address of a stored identity row."""
        return decrypt_contact(self.vault, stored, sealed)

    def recipient_columns(self, kind: str, address: str) -> dict[str, str | None]:
        """`to_address` and `to_address_enc` of an outbox row to `address` (as
        workflow.privacy.seal_recipient writes them)."""
        if self.vault is None:
            return seal_recipient(None, kind, address)
        return {"to_address": self.key(kind, address), "to_address_enc": self.seal(address)}

    def recipient(self, row: Mapping[Any, Any]) -> str:
        """The real address of an outbox row (workflow.privacy.open_recipient)."""
        return open_recipient(self.vault, row)

    def name_columns(self, name: str | None) -> dict[str, str | None]:
        """`display_name` and `display_name_enc` of a reporters row."""
        return seal_name(self.vault, name)

    def name(self, plain: str | None, sealed: str | None) -> str | None:
        return open_name(self.vault, plain, sealed)


PLAIN = AddressBook()
