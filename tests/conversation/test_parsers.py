"""Table-driven tests of the parsers other packages reuse: keywords, codes, places, categories."""

from __future__ import annotations

import pytest

from conversation.categories import SLUGS, suggest
from conversation.codes import ALPHABET, code_candidates, is_code, new_code, normalize_code
from conversation.commands import CommandName, is_no, is_yes, parse_command
from conversation.keywords import strip_keyword
from conversation.places import find_place, kecamatan_of

KEYWORDS = ("LaporHendi", "LaporSemar", "Lapor")


@pytest.mark.parametrize(
    ("text", "keyword", "rest"),
    [
        ("LaporHendi jalan rusak", "LaporHendi", "jalan rusak"),
        ("laporhendi jalan rusak", "LaporHendi", "jalan rusak"),
        ("LAPORHENDI jalan rusak", "LaporHendi", "jalan rusak"),
        ("Lapor Hendi jalan rusak", "LaporHendi", "jalan rusak"),
        ("#LaporHendi jalan rusak", "LaporHendi", "jalan rusak"),
        ("LAPORHENDI: jalan rusak", "LaporHendi", "jalan rusak"),
        ("LAPORHENDI:jalan rusak", "LaporHendi", "jalan rusak"),
        ("LaporHendijalan rusak", "LaporHendi", "jalan rusak"),
        ("lapor_hendi - jalan rusak", "LaporHendi", "jalan rusak"),
        ("LaporHendy jalan rusak", "LaporHendi", "jalan rusak"),
        ("  laporhendi  ", "LaporHendi", ""),
        ("Lampu mati di Jl Pemuda #LaporHendi", "LaporHendi", "Lampu mati di Jl Pemuda"),
        ("@LaporHendi sampah", "LaporHendi", "sampah"),
        ("LaporSemar banjir", "LaporSemar", "banjir"),
        ("#laporsemar #laporhendi pohon tumbang", "LaporSemar", "pohon tumbang"),
        ("Lapor pak, lampu mati", "Lapor", "pak, lampu mati"),
        ("Laporan saya belum ditanggapi", None, "Laporan saya belum ditanggapi"),
        ("jalan rusak", None, "jalan rusak"),
        ("", None, ""),
    ],
)
def test_strip_keyword(text: str, keyword: str | None, rest: str) -> None:
    assert strip_keyword(text, KEYWORDS) == (keyword, rest)


def test_strip_keyword_uses_the_configured_keywords_only() -> None:
    assert strip_keyword("SapaMbakIta jalan rusak", ("SapaMbakIta",)) == ("SapaMbakIta", "jalan rusak")
    assert strip_keyword("LaporHendi jalan rusak", ("SapaMbakIta",)) == (None, "LaporHendi jalan rusak")


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("LPR-7K3M9Q", "LPR-7K3M9Q"),
        ("lpr-7k3m9q", "LPR-7K3M9Q"),
        ("LPR7K3M9Q", "LPR-7K3M9Q"),
        ("lpr 7k3 m9q", "LPR-7K3M9Q"),
        ("7K3M9Q", "LPR-7K3M9Q"),
        ("7k3m9q", "LPR-7K3M9Q"),
        ("kode saya LPR - 7K3M9Q ya", "LPR-7K3M9Q"),
        ("LPR-7K3M9O", "LPR-7K3M9Q"),
        ("LPR-7K3M90", "LPR-7K3M9Q"),
        ("LPR-1K3M9Q", "LPR-7K3M9Q"),
        ("hallo", None),
        ("jalan rusak", None),
        ("LPR-7K3", None),
        ("123456", None),
        ("", None),
    ],
)
def test_normalize_code(typed: str, code: str | None) -> None:
    assert normalize_code(typed) == code


def test_candidates_cover_every_lookalike() -> None:
    assert code_candidates("LPR-7K3M9O") == ("LPR-7K3M9Q", "LPR-7K3M9D")
    assert code_candidates("LPR-7K3M9Q") == ("LPR-7K3M9Q",)


def test_alphabet_and_new_codes() -> None:
    assert not set("0O1IL") & set(ALPHABET)
    for _ in range(50):
        code = new_code()
        assert is_code(code)
        assert normalize_code(code.lower().replace("-", " ")) == code
    assert not is_code("LPR-7K3M9O")


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Lampu PJU mati di Jl. Pemuda depan Balai Kota, tolong segera", "Jl. Pemuda depan Balai Kota"),
        ("jalan rusak berlubang di jalan Majapahit dekat lampu merah", "jalan Majapahit dekat lampu merah"),
        ("banjir di pedurangan sudah 3 hari", "pedurangan"),
        ("sampah menumpuk depan pasar johar bau banget", "depan pasar johar"),
        ("got mampet RT 04/RW 02 kel. Tlogosari Kulon", "RT 04/RW 02 kel. Tlogosari Kulon"),
        ("lampu mati gang 3 sampangan", "gang 3 sampangan"),
        ("jalan di depan rumah saya rusak", "depan rumah saya"),
        ("pohon tumbang di banyu manik", "banyu manik"),
        ("Lampu mati di Simpang Lima", "Simpang Lima"),
        ("lampu jalan mati depan SD N 2 Ngaliyan", "depan SD N 2 Ngaliyan"),
        ("jalan raya kaligawe rusak", "jalan raya kaligawe"),
        ("Street light out on Pemuda Street near the city hall", "Pemuda Street near the city hall"),
        ("rob di Tanjung Mas", "Tanjung Mas"),
        ("genangan di gajah mungkur", "gajah mungkur"),
        ("KTP saya belum jadi", None),
        ("jalan raya rusak", None),
        ("lampu jalan mati", None),
    ],
)
def test_find_place(text: str, place: str | None) -> None:
    found = find_place(text)
    assert (found.text if found else None) == place


def test_find_place_leaves_the_problem_in_the_rest() -> None:
    found = find_place("Lampu PJU mati di Jl. Pemuda, tolong segera")
    assert found is not None
    assert found.rest == "Lampu PJU mati, tolong segera"


@pytest.mark.parametrize(
    ("text", "kecamatan"),
    [("banjir di pedurangan", "Pedurungan"), ("smg utara rob", "Semarang Utara"),
     ("gajah mungkur", "Gajahmungkur"), ("di Ngalian", "Ngaliyan"), ("Jl. Pemuda", None)],
)
def test_kecamatan_misspellings(text: str, kecamatan: str | None) -> None:
    assert kecamatan_of(text) == kecamatan


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("jalan berlubang", "jalan_rusak"), ("aspalnya bolong", "jalan_rusak"),
        ("lampu PJU mati", "lampu_pju"), ("penerangan jalan padam", "lampu_pju"),
        ("banjir setinggi lutut", "banjir"), ("rob masuk rumah", "rob"),
        ("saluran mampet", "saluran"), ("got tersumbat", "saluran"),
        ("sampah menumpuk", "sampah"), ("pohon tumbang", "pohon_tumbang"),
        ("KTP belum jadi", "adminduk"), ("akta kelahiran anak saya", "adminduk"),
        ("antri lama di puskesmas", "kesehatan"), ("pungli PPDB di sekolah", "pendidikan"),
        ("izin usaha lama sekali", "perizinan"), ("tagihan PBB salah", "pajak"),
        ("PKL di trotoar", "pkl"), ("parkir liar", "parkir_liar"), ("jukir minta uang", "parkir_liar"),
        ("street light out", "lampu_pju"), ("pothole", "jalan_rusak"), ("fallen tree", "pohon_tumbang"),
        ("garbage not collected", "sampah"), ("flooding", "banjir"),
        ("saya mau tanya", "lainnya"), ("", "lainnya"),
    ],
)
def test_category_suggestion(text: str, slug: str) -> None:
    assert suggest(text).slug == slug


def test_category_confidence_reflects_the_evidence() -> None:
    assert suggest("saya mau tanya").confidence == 0.0
    weak = suggest("gelap").confidence
    strong = suggest("lampu PJU mati, penerangan jalan padam").confidence
    mixed = suggest("banjir karena saluran mampet").confidence
    assert 0.0 < weak < strong < 1.0
    assert mixed < strong
    assert set(SLUGS) >= {"jalan_rusak", "lampu_pju", "banjir", "rob", "saluran", "sampah", "pohon_tumbang",
                          "adminduk", "kesehatan", "pendidikan", "perizinan", "pajak", "pkl", "parkir_liar",
                          "lainnya"}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("BATAL", CommandName.CANCEL), ("btal", CommandName.CANCEL), ("Cancle", CommandName.CANCEL),
        ("tolong batalkan saja", CommandName.CANCEL),
        ("LEWATI", CommandName.SKIP), ("skip", CommandName.SKIP),
        ("bantuan", CommandName.HELP), ("HELP", CommandName.HELP), ("status", CommandName.STATUS),
        ("Cek LPR7K3M9Q", CommandName.STATUS), ("stauts", CommandName.STATUS), ("BARU", CommandName.NEW),
        ("new", CommandName.NEW), ("anonim", CommandName.ANONYMOUS), ("English", CommandName.ENGLISH),
        ("indo", CommandName.INDONESIAN), ("Bahasa Indonesia", CommandName.INDONESIAN),
        ("info", CommandName.HELP),
        ("cek jalan rusak depan rumah saya", None), ("baru tadi pagi lampunya mati", None),
        ("batalyon", None), ("jalan rusak", None),
    ],
)
def test_commands(text: str, name: CommandName | None) -> None:
    command = parse_command(text)
    assert (command.name if command else None) == name


def test_new_carries_the_new_complaint() -> None:
    command = parse_command("BARU: sampah di pasar Bulu")
    assert command is not None
    assert command.argument == "sampah di pasar Bulu"


@pytest.mark.parametrize("text", ["ya", "YA", "iya", "Iya betul", "ok", "yes", "👍", "betul", "kirim"])
def test_yes(text: str) -> None:
    assert is_yes(text)
    assert not is_no(text)


@pytest.mark.parametrize("text", ["tidak", "TIDAK", "gak", "bukan", "no", "tidak, beda", "tdk"])
def test_no(text: str) -> None:
    assert is_no(text)
    assert not is_yes(text)
