"""AddressBook: contacts sealed for the store; a citizen's ciphertext is made once, not per reply."""

from __future__ import annotations

from adapters.base import AddressKind
from gateway import addressbook
from gateway.addressbook import PLAIN, AddressBook
from workflow.privacy import ContactVault, open_recipient

SITI = "+6281234567801"
BUDI = "+6281234567802"


def test_sealed_recipients_open_to_the_address_and_are_reused() -> None:
    vault = ContactVault("address-book-test-key")
    book = AddressBook(vault)
    first = book.recipient_columns(AddressKind.PHONE.value, SITI)
    again = book.recipient_columns(AddressKind.PHONE.value, SITI)
    other = book.recipient_columns(AddressKind.PHONE.value, BUDI)
    assert first == again, "one ciphertext per address, however many replies are owed"
    assert first["to_address"] == vault.lookup_hash("phone", SITI) and SITI not in str(first)
    assert open_recipient(vault, first) == SITI and open_recipient(vault, other) == BUDI
    assert book.seal(SITI) == first["to_address_enc"]
    assert other["to_address_enc"] != first["to_address_enc"]


def test_the_cache_is_bounded_and_every_entry_still_opens() -> None:
    vault = ContactVault("address-book-test-key")
    book = AddressBook(vault)
    size = addressbook.SEAL_CACHE_SIZE
    numbers = [f"+62812{n:07d}" for n in range(size + 10)]
    sealed = [book.seal(number) for number in numbers]
    hashes = [book.key("phone", number) for number in numbers]
    assert len(book._ciphertexts) <= size and len(book._hashes) <= size
    assert [vault.decrypt(token or "") for token in sealed] == numbers
    assert hashes == [vault.lookup_hash("phone", number) for number in numbers]
    assert (
        book.key("twitter", "@Warga") == vault.lookup_hash("twitter", "@Warga") != book.key("phone", "@Warga")
    )


def test_without_a_vault_addresses_stay_as_they_are() -> None:
    assert PLAIN.recipient_columns("phone", SITI) == {"to_address": SITI, "to_address_enc": None}
    assert PLAIN.seal(SITI) is None and PLAIN.key("phone", SITI) == SITI
