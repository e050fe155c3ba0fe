"""Every citizen status message fits one SMS segment, in both languages, with the longest fill-ins."""

from __future__ import annotations

import pytest

from conversation.gsm import fits_one_segment
from workflow.messages import CATALOGS, render

LONGEST = {
    "code": "LPR-WWWWWW",
    "due": "30/12/2026",
    "department": "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu Kota Semarang",
    "category": "KTP, KK, akta",
    "original": "LPR-WWWWWW",
    "note": "Petugas sudah menambal lubang dan memasang rambu sementara; pengaspalan ulang dijadwalkan " * 3,
}


def test_languages_have_the_same_keys() -> None:
    assert set(CATALOGS["id"]) == set(CATALOGS["en"])


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("key", sorted(k for k in CATALOGS["id"] if k.startswith("citizen.")))
def test_citizen_texts_fit_one_segment(lang: str, key: str) -> None:
    text = render(lang, key, **LONGEST)
    assert fits_one_segment(text), (len(text), text)
    assert "LPR-WWWWWW" in text, "the tracking code is never cut"
