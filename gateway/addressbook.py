"""How channel identities are stored: encrypted at rest, found by a keyed hash.

`channel_identities.address` holds an HMAC of (kind, address) — unique, searchable, useless to
someone who copies the database without the key — and `address_enc` the address itself, encrypted
(workflow.privacy.ContactVault). Without a vault (tests of the bare pipeline) addresses are stored as
they are, and rows written that way keep working after a vault is configured.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflow.privacy import ContactVault, decrypt_contact


@dataclass(frozen=True)
class AddressBook:
    vault: ContactVault | None = None

    def key(self, kind: str, address: str) -> str:
        """The value of `channel_identities.address` for this address."""
        return self.vault.lookup_hash(kind, address) if self.vault is not None else address

    def seal(self, address: str) -> str | None:
        """The value of `channel_identities.address_enc`."""
        return self.vault.encrypt(address) if self.vault is not None else None

    def open(self, stored: str, sealed: str | None) -> str:
        """The real address of a stored identity row."""
        return decrypt_contact(self.vault, stored, sealed)


PLAIN = AddressBook()
