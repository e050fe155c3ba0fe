"""Every catalog text fits one GSM-7 SMS segment when filled with the longest realistic values."""

from __future__ import annotations

import re
import string

import pytest

from conversation.catalog import CATALOGS, LANGUAGES, render, template
from conversation.categories import CATEGORIES
from conversation.gsm import EXTENSION, fits_one_segment, is_gsm7, septets, to_gsm7

# The longest value each placeholder realistically takes. Free text is far longer than any SMS on
# purpose (the renderer must shorten it); the rest cannot be shortened and must simply fit.
LONGEST: dict[str, str] = {
    "code": "LPR-WWWWWW",
    "summary": "Saluran air di depan rumah kami sudah mampet lebih dari satu bulan, " * 6,
    "place": "Jl. Pamularsih Raya RT 05 RW 03 Kelurahan Bojongsalaman Kecamatan Semarang Barat " * 3,
    "department": "Dinas Kependudukan dan Pencatatan Sipil Kota Semarang " * 2,
    "text": "ini bukan kode tapi kalimat panjang yang diketik warga " * 4,
    "updated": "31/12 23:59",
    "count": "99",
    "url": "https://lapor.semarangkota.go.id/lacak/LPR-WWWWWW",
}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _longest_params(lang: str, text: str) -> dict[str, str]:
    params = {name: LONGEST[name] for name in _placeholders(text) if name in LONGEST}
    if "category" in _placeholders(text):
        params["category"] = max((c.name(lang) for c in CATEGORIES), key=len)
    if "status" in _placeholders(text):
        labels = [v for k, v in CATALOGS[lang].items() if k.startswith("status.")]
        params["status"] = max(labels, key=len)
    return params


ENTRIES = [(lang, key) for lang in LANGUAGES for key in CATALOGS[lang]]


@pytest.mark.parametrize(("lang", "key"), ENTRIES, ids=[f"{lang}:{key}" for lang, key in ENTRIES])
def test_entry_fits_one_sms_with_longest_values(lang: str, key: str) -> None:
    text = template(lang, key)
    unknown = _placeholders(text) - set(LONGEST) - {"category", "status"}
    assert not unknown, f"no realistic maximum known for {unknown}"
    rendered = render(lang, key, **_longest_params(lang, text))
    assert is_gsm7(rendered), f"not GSM-7: {[ch for ch in rendered if not is_gsm7(ch)]}"
    assert septets(rendered) <= 160, f"{septets(rendered)} septets: {rendered}"
    # Shortening must leave the codes and numbers whole.
    for name in ("code", "count", "updated", "url"):
        if name in _placeholders(text):
            assert LONGEST[name] in rendered


def test_both_languages_have_the_same_keys() -> None:
    assert set(CATALOGS["id"]) == set(CATALOGS["en"])


def test_extension_characters_count_double() -> None:
    assert septets("€") == 2
    assert septets("[x]") == 5
    assert fits_one_segment("a" * 160)
    assert not fits_one_segment("a" * 159 + "€")
    assert not fits_one_segment("emoji 😀")
    assert all(septets(ch) == 2 for ch in EXTENSION)


def test_citizen_words_are_made_gsm7_before_quoting() -> None:
    assert to_gsm7("lampu “mati” – sudah 3 hari 😡") == "lampu \"mati\" - sudah 3 hari"
    rendered = render("id", "remind_location", summary="jalan rusak 😡😡 ‘parah’")
    assert is_gsm7(rendered)
    assert "jalan rusak 'parah'" in rendered


def test_shortening_cuts_at_a_word_and_marks_the_cut() -> None:
    rendered = render("id", "remind_confirmation", summary=LONGEST["summary"])
    quoted = re.search(r'"([^"]*)"', rendered)
    assert quoted is not None
    assert quoted.group(1).endswith("...")
    assert LONGEST["summary"].startswith(quoted.group(1)[:-3])


def test_short_values_are_not_touched() -> None:
    rendered = render("en", "confirm", summary="pothole", place="Jl. Pemuda", category="Damaged road")
    assert rendered.startswith("We noted: pothole (Damaged road), location Jl. Pemuda.")
