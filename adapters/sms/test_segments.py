"""GSM-7 / UCS-2 detection, segment counting and fitting, table-driven plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sms.segments import (
    CONCAT,
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    SINGLE,
    UCS2,
    encoding,
    fit,
    segment_count,
    split,
    units,
)

LINK = "https://lapor.semarangkota.go.id/lacak/LPR-7K3M9Q"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", GSM7),
        ("Laporan Anda LPR-7K3M9Q sudah diterima.", GSM7),
        ("Harga: €5 {promo} [baru] ~ ^ | \\", GSM7),
        ("Ñandu, Ærø, ßüÖ, @£$¥ èéùìò", GSM7),
        ("Ñandú", UCS2),  # ú is not GSM-7 (ù is)
        ("Terima kasih 🙏", UCS2),
        ("Tunggu…", UCS2),  # the ellipsis character is not GSM-7
        ("it’s", UCS2),  # curly apostrophe
        ("ça", UCS2),  # only the capital Ç is in GSM-7
        ("ꦱꦼꦩꦫꦁ", UCS2),  # Javanese script
        ("Жалоба", UCS2),
        ("\x1b", UCS2),  # the escape code itself is not a character
        ("`", UCS2),  # backtick is not GSM-7
    ],
)
def test_encoding(text: str, expected: str) -> None:
    assert encoding(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 459, 3),
        ("a" * 460, 4),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),  # 161 septets
        # 306 septets would be two segments, but the € after 152 a's cannot be split: three.
        ("a" * 152 + "€" * 77, 3),
        ("Ж" * 70, 1),
        ("Ж" * 71, 2),
        ("Ж" * 134, 2),
        ("Ж" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 units
        ("😀" * 36, 2),
        ("😀" * 34 + "a", 1),
        # 134 units would fit two segments of 67, but a surrogate pair never straddles them: three.
        ("😀" * 67, 3),
        ("a" * 159 + "é", 1),  # é is GSM-7
        ("a" * 69 + "ç", 1),  # ç forces UCS-2: 70 units
        ("a" * 70 + "ç", 2),
    ],
)
def test_segment_count(text: str, expected: int) -> None:
    assert segment_count(text) == expected
    assert len(split(text)) == expected


@pytest.mark.parametrize(
    ("text", "first_segment"),
    [
        ("a" * 152 + "€" + "a" * 10, "a" * 152),  # the two-septet € moves to segment two
        ("a" * 66 + "😀" + "a" * 4, "a" * 66),  # the surrogate pair moves to segment two
        ("a" * 200, "a" * 153),
        ("Ж" * 100, "Ж" * 67),
    ],
)
def test_split_never_breaks_a_character(text: str, first_segment: str) -> None:
    segments = split(text)
    assert segments[0] == first_segment
    assert "".join(segments) == text


@pytest.mark.parametrize(
    ("text", "enc", "expected"),
    [("[]", GSM7, 4), ("abc", GSM7, 3), ("😀a", UCS2, 3), ("€", UCS2, 1), ("€", GSM7, 2)],
)
def test_units(text: str, enc: str, expected: int) -> None:
    assert units(text, enc) == expected


def test_alphabet_tables_are_the_gsm_0338_sizes() -> None:
    # 128 code points minus the escape code; the extension table we support has 10 characters.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


LONG_NOTE = (
    "Petugas Dinas Pekerjaan Umum sudah meninjau lokasi saluran di Jl. Majapahit dan menjadwalkan "
    "pengerukan pada hari Senin. Mohon warga tidak membuang sampah ke saluran selama pekerjaan "
    "berlangsung, dan melapor kembali bila air masih menggenang setelah hujan deras. Terima kasih."
)


@pytest.mark.parametrize(
    ("text", "max_segments", "suffix", "ending"),
    [
        (LONG_NOTE, 1, None, "..."),
        (LONG_NOTE, 1, LINK, "... " + LINK),
        (LONG_NOTE * 2, 2, LINK, "... " + LINK),
        ("🙏 " + LONG_NOTE, 1, None, "…"),
        (LONG_NOTE, 1, "Lacak: " + LINK + " 🙏", "… Lacak: " + LINK + " 🙏"),  # a UCS-2 suffix
        (LONG_NOTE, 1, "\n" + LINK, "...\n" + LINK),  # a suffix starting with whitespace is not padded
    ],
)
def test_fit_shortens_at_a_word_boundary(
    text: str, max_segments: int, suffix: str | None, ending: str
) -> None:
    result = fit(text, max_segments, suffix)
    assert segment_count(result) <= max_segments
    assert result.endswith(ending)
    kept = result[: -len(ending)]
    assert text.startswith(kept) and kept
    assert text[len(kept)].isspace() or text[len(kept)] in ",;:"
    assert not kept.endswith((" ", ","))


@pytest.mark.parametrize(
    ("text", "max_segments", "suffix", "expected"),
    [
        ("Laporan diterima.", 2, None, "Laporan diterima."),
        ("Laporan diterima.", 1, LINK, "Laporan diterima. " + LINK),
        ("", 1, LINK, LINK),
        ("a" * 160, 1, None, "a" * 160),
        ("Terima kasih 🙏", 1, None, "Terima kasih 🙏"),
    ],
)
def test_fit_leaves_what_fits_alone(text: str, max_segments: int, suffix: str | None, expected: str) -> None:
    assert fit(text, max_segments, suffix) == expected


def test_fit_uses_the_whole_budget() -> None:
    result = fit("kata " * 100, 2)
    assert segment_count(result) == 2
    assert len(result) >= 2 * 153 - 8  # at most one word and the ellipsis short of full


def test_fit_cuts_one_enormous_word_hard() -> None:
    text = "x" * 500
    result = fit(text, 1)
    assert result == "x" * 157 + "..."


def test_fit_cutting_the_emoji_may_return_to_gsm7() -> None:
    text = "a" * 150 + " " + "b" * 30 + " 🙏"
    result = fit(text, 1)
    assert segment_count(result) == 1
    assert text.startswith(result.rstrip(".…"))


@pytest.mark.parametrize(
    ("max_segments", "suffix"), [(0, None), (1, "L" * 161), (2, "€" * 154)]
)
def test_fit_rejects_impossible_budgets(max_segments: int, suffix: str | None) -> None:
    with pytest.raises(ValueError):
        fit("Laporan diterima", max_segments, suffix)


SMS_ALPHABET = st.sampled_from([*sorted(GSM7_BASIC | GSM7_EXTENSION), "😀", "…", "ç", "Ж", " ", " "])


@settings(max_examples=300, deadline=None)
@given(text=st.text(SMS_ALPHABET, max_size=700), max_segments=st.integers(1, 4))
def test_fit_properties(text: str, max_segments: int) -> None:
    result = fit(text, max_segments)
    assert segment_count(result) <= max_segments
    if segment_count(text) <= max_segments:
        assert result == text
    else:
        assert result.endswith(("...", "…"))


@settings(max_examples=300, deadline=None)
@given(text=st.text(SMS_ALPHABET, max_size=700))
def test_split_properties(text: str) -> None:
    segments = split(text)
    enc = encoding(text)
    assert "".join(segments) == text
    assert len(segments) == segment_count(text)
    limit = SINGLE[enc] if len(segments) == 1 else CONCAT[enc]
    assert all(units(s, enc) <= limit for s in segments)
