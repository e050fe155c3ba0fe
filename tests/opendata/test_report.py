"""The monthly report against a hand-counted month, through the module and through `lapor report`."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import cli
from store.db import Database
from store.migrate import upgrade
from tests.opendata.seed import EXPECTED, NAMES, PHONES, PRIVATE_PLACES, SECRET_TEXT, seed_august
from workflow.calendar import WorkingCalendar
from workflow.report import Month, monthly_report, summarize, working_days_taken

NOW = datetime(2026, 9, 10, 3, 0, tzinfo=UTC)


@pytest.fixture
async def seeded(database_url: str) -> AsyncIterator[tuple[Database, dict[str, str]]]:
    db = Database(database_url, sqlite_synchronous="NORMAL")
    await upgrade(db.engine)
    codes = await seed_august(db)
    yield db, codes
    await db.dispose()


def assert_no_personal_data(output: str, codes: dict[str, str]) -> None:
    for secret in (*NAMES, *PHONES, SECRET_TEXT, *PRIVATE_PLACES, *codes.values()):
        assert secret not in output
    for phone in PHONES:
        assert phone[1:] not in output and "0" + phone[3:] not in output


def expected_part(document: dict[str, Any]) -> dict[str, Any]:
    return {key: document[key] for key in EXPECTED}


async def test_report_matches_the_hand_count(seeded: tuple[Database, dict[str, str]]) -> None:
    db, codes = seeded
    async with db.engine.connect() as conn:
        report = await conn.run_sync(
            functools.partial(monthly_report, month=Month(2026, 8), calendar=WorkingCalendar(), now=NOW)
        )
    document = report.to_dict()
    assert expected_part(document) == EXPECTED
    assert document["complete"] is True
    assert document["names"]["department"]["dpu"] == "Dinas Pekerjaan Umum"
    assert_no_personal_data(json.dumps(document), codes)

    async with db.engine.connect() as conn:
        july = await conn.run_sync(
            functools.partial(monthly_report, month=Month(2026, 7), calendar=WorkingCalendar(), now=NOW)
        )
        september = await conn.run_sync(
            functools.partial(monthly_report, month=Month(2026, 9), calendar=WorkingCalendar(), now=NOW)
        )
    assert (july.received, july.by_kecamatan) == (1, {"Genuk": 1})
    assert (september.received, september.complete) == (1, False)
    assert september.resolution_rate == 0 and september.resolution_time.median is None


def test_months_are_jakarta_months() -> None:
    august = Month.parse("2026-08")
    assert august.start() == datetime(2026, 7, 31, 17, 0, tzinfo=UTC)
    assert august.end() == datetime(2026, 8, 31, 17, 0, tzinfo=UTC)
    assert Month.of(datetime(2026, 12, 31, 17, 0, tzinfo=UTC)) == Month(2027, 1)
    assert (str(Month(2026, 12).next()), str(Month(2026, 1).previous())) == ("2027-01", "2025-12")
    for bad in ("2026-13", "2026-8", "26-08", "2026/08", "2026-00", "abcd-ef"):
        with pytest.raises(ValueError):
            Month.parse(bad)


def test_working_days_and_percentiles_by_hand() -> None:
    calendar = WorkingCalendar()
    d = datetime(2026, 8, 1).date
    days = working_days_taken(
        [(d().replace(day=14), d().replace(day=18), 2), (d().replace(day=20), d().replace(day=26), 1)],
        calendar,
    )
    assert days == [(1, 2), (3, 1)]  # the 17th and the 25th are holidays, weekends never count
    assert summarize([(1, 2), (3, 1)]).median == 1.0
    spread = summarize([(value, 1) for value in range(1, 11)])  # 1..10
    assert (spread.median, spread.p90) == (5.5, 9)
    assert summarize([(4, 19), (30, 1)]).p90 == 4  # 18th of 20 is 4: one slow case is not the p90
    assert summarize([]).count == 0


async def run_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, *argv: str
) -> tuple[int, str, str]:
    """`lapor report monthly ...` in-process (in a thread: the CLI runs its own event loop)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAPOR_DATABASE__URL", database_url)
    monkeypatch.delenv("LAPOR_CONFIG", raising=False)
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        import contextlib

        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return cli.main(["report", "monthly", *argv])

    code = await asyncio.to_thread(call)
    return code, out.getvalue(), err.getvalue()


async def test_cli_formats(
    seeded: tuple[Database, dict[str, str]],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _, codes = seeded
    code, out, _ = await run_cli(
        monkeypatch, tmp_path, database_url, "--month", "2026-08", "--format", "json"
    )
    assert code == 0
    assert expected_part(json.loads(out)) == EXPECTED
    assert_no_personal_data(out, codes)

    code, out, _ = await run_cli(monkeypatch, tmp_path, database_url, "--month", "2026-08", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["month", "section", "key", "value"]
    figures = {(section, key): value for _, section, key, value in rows[1:]}
    assert figures[("total", "received")] == "11"
    assert figures[("kecamatan", "Semarang Tengah")] == "2"
    assert figures[("deadline", "compliance")] == "0.75"
    assert figures[("resolution_working_days", "median")] == "2"
    assert figures[("resolution_working_days", "p90")] == "7"
    assert {key for section, key in figures if section == "status"} == set(EXPECTED["by_status"])
    assert_no_personal_data(out, codes)

    code, out, _ = await run_cli(monkeypatch, tmp_path, database_url, "--month", "2026-08")
    assert code == 0
    assert "received              11" in out
    assert "deadline compliance   75.0% (3 of 4 within the deadline)" in out
    assert "median 2 working days, p90 7" in out
    assert_no_personal_data(out, codes)

    code, _, err = await run_cli(monkeypatch, tmp_path, database_url, "--month", "August")
    assert code == 2 and "YYYY-MM" in err
    assert os.environ["LAPOR_DATABASE__URL"] == database_url


PLACE_TEXTS = (
    "Jl. Pemuda, Semarang Tengah",
    "Semarang,Tengah",  # a comma between the words: not the kecamatan
    "smg tgh",
    "semarang tgh.",
    "gajah  mungkir",
    "Gg. Tembalang-3",
    "Tembalang/Banyumanik",
    "kec. tugu",
    "KECAMATAN TUGU dekat Tugu Muda",
    "Jl. Ngalian no 4",
    "Pedurangan'",
    "banyu manik RT 04/RW 02",
    "jl. mijen semarang 5",
    "Kalibanteng Kulon, Semarang Barat",
    "dekat masjid",
    "Séмarang tengah, Genuk",  # not ASCII: handed to kecamatan_of
    "Pasar Genuksari",
    "",
)


@pytest.mark.parametrize("text", PLACE_TEXTS)
def test_fast_kecamatan_agrees_with_the_canonical_recogniser(text: str) -> None:
    """Migration 0006 backfills with the fast one, intake stores the canonical one's answer."""
    from conversation.places import kecamatan_of
    from workflow.report import kecamatan

    assert kecamatan(text) == kecamatan_of(text)


def _name_words() -> list[str]:
    from conversation.places import KNOWN_NAMES

    return sorted({word for key in KNOWN_NAMES for word in key})


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_name_words()).map(lambda w: w.title() if len(w) % 2 else w.upper()),
            st.sampled_from([",", ".", "-", "'", "/", "  ", "no 4", "kec.", "Jl.", "RT 03/RW 02", "é"]),
            st.text(alphabet="abcgkmnstu .,-'/", max_size=8),
        ),
        max_size=12,
    ).map(" ".join)
)
def test_fast_kecamatan_agrees_on_any_mix_of_place_words(text: str) -> None:
    from conversation.places import kecamatan_of
    from workflow.report import kecamatan

    assert kecamatan(text) == kecamatan_of(text)
