"""`/open-data/`: the monthly report for everyone, as a page, JSON, CSV and SVG charts.

98% of Semarang's residents doubted that complaints are followed up; publishing what happened to them,
month by month, is the answer that does not need trust. The figures are workflow.report's (the same as
`lapor report monthly`), aggregates only: no names, numbers, texts, places below kecamatan or codes.

The pages are public and unauthenticated, so a report is computed at most once per month and
`CACHE_SECONDS`, one at a time (a burst of visitors waits for the first computation instead of
starting its own), with the SQL on the async engine and the arithmetic in a worker thread so the
event loop keeps serving webhooks meanwhile. Plain server-rendered HTML with inline SVG: one request,
no script, fine on a cheap phone.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from markupsafe import Markup

from dashboard import common, i18n
from dashboard.charts import bar_chart
from dashboard.render import category_label, render
from workflow.calendar import WorkingCalendar
from workflow.report import (
    DIMENSIONS,
    NO_CATEGORY,
    NO_DEPARTMENT,
    NO_PLACE,
    Month,
    MonthlyReport,
    build_report,
    fetch_month,
    first_month,
    months_between,
    to_csv,
)

CACHE_SECONDS = 300
MONTH = r"{month:[0-9]{4}-[0-9]{2}}"
DIMENSION = r"{dimension:[a-z]+}"
OPEN_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": f"public, max-age={CACHE_SECONDS}",
    "X-Content-Type-Options": "nosniff",
}

MONTH_NAMES: Mapping[str, tuple[str, ...]] = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
           "Oktober", "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
}  # fmt: skip

TEXT: Mapping[str, Mapping[str, str]] = {
    "id": {
        "title": "Data terbuka aduan",
        "intro": "Berapa aduan warga yang masuk setiap bulan, lewat kanal apa, ke OPD mana, dan berapa "
        "yang sudah diperbaiki. Hanya angka: tanpa nama, nomor telepon, isi aduan, atau kode aduan.",
        "provisional": "Bulan ini belum selesai; angka masih bisa berubah.",
        "as_of": "Keadaan per",
        "received": "Aduan masuk",
        "fixed": "Sudah diperbaiki",
        "closed_without_fix": "Ditutup tanpa perbaikan",
        "open": "Masih diproses",
        "resolution_rate": "Tingkat penyelesaian",
        "median": "Median waktu penyelesaian",
        "p90": "90% selesai dalam",
        "working_days": "hari kerja",
        "compliance": "Selesai sebelum tenggat",
        "compliance_of": "{met} dari {total} aduan yang diperbaiki",
        "by_channel": "Menurut kanal",
        "by_category": "Menurut kategori",
        "by_department": "Menurut OPD penanggung jawab",
        "by_kecamatan": "Menurut kecamatan",
        "by_status": "Menurut status saat ini",
        "count": "Jumlah",
        "download": "Unduh data bulan ini",
        "months": "Bulan lain",
        "definitions": "Cara menghitung",
        "def_month": "Aduan dihitung pada bulan diterimanya (waktu WIB). Status dan waktu penyelesaian "
        "adalah keadaan saat laporan dibuat.",
        "def_fixed": "Sudah diperbaiki: diselesaikan OPD dengan foto bukti (status selesai atau ditutup). "
        "Ditutup tanpa perbaikan: ditolak, duplikat, atau ditutup tanpa penyelesaian.",
        "def_days": "Waktu penyelesaian dihitung dalam hari kerja (tanpa Sabtu, Minggu, libur nasional dan "
        "cuti bersama) sejak hari aduan diterima sampai hari diselesaikan.",
        "def_deadline": "Tenggat: 5 hari kerja untuk satu OPD, 10 untuk koordinasi lintas OPD, 30 lintas "
        "instansi, sejak aduan diteruskan.",
        "def_place": "Kecamatan dikenali dari lokasi yang ditulis warga; lokasi aduan rahasia tidak dipakai.",
        NO_CATEGORY: "Belum dikategorikan",
        NO_DEPARTMENT: "Belum diteruskan ke OPD",
        NO_PLACE: "Tidak diketahui",
        "none": "—",
    },
    "en": {
        "title": "Complaints open data",
        "intro": "How many complaints residents sent each month, through which channel, to which "
        "department, and how many were fixed. Numbers only: no names, phone numbers, complaint texts "
        "or complaint codes.",
        "provisional": "This month is not over yet; the figures may still change.",
        "as_of": "As of",
        "received": "Complaints received",
        "fixed": "Fixed",
        "closed_without_fix": "Closed without a fix",
        "open": "Still being handled",
        "resolution_rate": "Resolution rate",
        "median": "Median time to fix",
        "p90": "90% fixed within",
        "working_days": "working days",
        "compliance": "Fixed before the deadline",
        "compliance_of": "{met} of {total} fixed complaints",
        "by_channel": "By channel",
        "by_category": "By category",
        "by_department": "By responsible department",
        "by_kecamatan": "By district (kecamatan)",
        "by_status": "By current status",
        "count": "Count",
        "download": "Download this month's data",
        "months": "Other months",
        "definitions": "How it is counted",
        "def_month": "Complaints count in the month they were received (Western Indonesia Time). Status "
        "and resolution times are as of when the report was made.",
        "def_fixed": "Fixed: resolved by the department with photo evidence (resolved or closed). Closed "
        "without a fix: rejected, duplicate, or closed without a resolution.",
        "def_days": "Time to fix counts working days (no weekends, national holidays or collective leave) "
        "from the day a complaint arrived to the day it was resolved.",
        "def_deadline": "Deadline: 5 working days for one department, 10 with cross-department "
        "coordination, 30 across agencies, from forwarding.",
        "def_place": "The district is recognised from the place residents wrote; confidential complaints' "
        "places are not used.",
        NO_CATEGORY: "Uncategorized",
        NO_DEPARTMENT: "Not forwarded to a department",
        NO_PLACE: "Unknown",
        "none": "—",
    },
}


def month_name(month: Month, lang: str) -> str:
    return f"{MONTH_NAMES[lang][month.month - 1]} {month.year}"


# ---- computing, once ---------------------------------------------------------------------------------


@dataclass
class ReportCache:
    """Reports and the month range, each kept `ttl` by the app clock; one computation at a time."""

    ttl: timedelta = timedelta(seconds=CACHE_SECONDS)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reports: dict[Month, tuple[datetime, MonthlyReport]] = field(default_factory=dict)
    first: tuple[datetime, Month | None] | None = None


CACHE: web.AppKey[ReportCache] = web.AppKey("open_data_cache", ReportCache)


def _calendar(app: web.Application) -> WorkingCalendar:
    from gateway.app import WORKFLOW

    return app[WORKFLOW].settings.calendar


async def first_available(request: web.Request) -> Month | None:
    cache, now = request.app[CACHE], common.now(request)
    async with cache.lock:
        if cache.first is None or cache.first[0] <= now:
            async with common.engine(request).connect() as conn:
                found = await conn.run_sync(first_month)
            cache.first = (now + cache.ttl, found)
        return cache.first[1]


async def report_for(request: web.Request, month: Month) -> MonthlyReport:
    cache, now = request.app[CACHE], common.now(request)
    async with cache.lock:
        kept = cache.reports.get(month)
        if kept is not None and kept[0] > now:
            return kept[1]
        async with common.engine(request).connect() as conn:
            rows = await conn.run_sync(functools.partial(fetch_month, month=month))
        report = await asyncio.to_thread(build_report, rows, _calendar(request.app), now)
        for stale in [m for m, (until, _) in cache.reports.items() if until <= now]:
            del cache.reports[stale]
        cache.reports[month] = (now + cache.ttl, report)
        return report


async def available_months(request: web.Request) -> list[Month]:
    """Newest first, from the first complaint's month to this month (empty months included: a
    month with no complaints is a figure too)."""
    current = Month.of(common.now(request))
    first = await first_available(request)
    return months_between(min(first, current) if first else current, current)


async def requested_month(request: web.Request) -> Month:
    try:
        month = Month.parse(request.match_info["month"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if month not in await available_months(request):
        raise web.HTTPNotFound()
    return month


# ---- labels ------------------------------------------------------------------------------------------


def labelled(report: MonthlyReport, dimension: str, lang: str) -> list[tuple[str, int]]:
    """(display label, count) for one dimension, in the report's order."""
    text = TEXT[lang]

    def label(key: str) -> str:
        if key in (NO_CATEGORY, NO_DEPARTMENT, NO_PLACE) and dimension != "channel":
            return text[key]
        if dimension == "channel":
            return i18n.MEDIUM_LABELS.get(key, key)
        if dimension == "status":
            return i18n.status_label(key, lang)
        if dimension == "department":
            return report.department_names.get(key, key)
        if dimension == "category":
            named = category_label(key, lang)
            return report.category_names.get(key, key) if named == key else named
        return key

    return [(label(key), count) for key, count in report.dimension(dimension).items()]


def chart(report: MonthlyReport, dimension: str, lang: str) -> str:
    title = f"{TEXT[lang]['by_' + dimension]} · {month_name(report.month, lang)}"
    return bar_chart(title, labelled(report, dimension, lang), element_id=f"chart-{dimension}")


# ---- handlers ----------------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    """The latest complete month (this month's provisional figures before the first month ends)."""
    months = await available_months(request)
    default = months[1] if len(months) > 1 else months[0]
    return await _page(request, default, months)


async def month_page(request: web.Request) -> web.StreamResponse:
    month = await requested_month(request)
    return await _page(request, month, await available_months(request))


async def _page(request: web.Request, month: Month, months: list[Month]) -> web.StreamResponse:
    lang, _ = i18n.request_language(request)
    report = await report_for(request, month)
    sections = [
        {
            "dimension": name,
            "title": TEXT[lang]["by_" + name],
            "rows": labelled(report, name, lang),
            "svg": Markup(chart(report, name, lang)),  # noqa: S704 - built from escaped parts (charts.py)
        }
        for name in DIMENSIONS
    ]
    context = {
        "o": TEXT[lang],
        "report": report,
        "month": str(month),
        "month_label": month_name(month, lang),
        "months": [(str(m), month_name(m, lang)) for m in months],
        "sections": sections,
        "percent": _percent,
        "days": _days,
    }
    return render(request, "opendata.html", context)


async def month_json(request: web.Request) -> web.StreamResponse:
    report = await report_for(request, await requested_month(request))
    body = json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
    return web.Response(text=body, content_type="application/json", charset="utf-8", headers=OPEN_HEADERS)


async def month_csv(request: web.Request) -> web.StreamResponse:
    month = await requested_month(request)
    report = await report_for(request, month)
    headers = {**OPEN_HEADERS, "Content-Disposition": f'inline; filename="lapor-{month}.csv"'}
    return web.Response(text=to_csv(report), content_type="text/csv", charset="utf-8", headers=headers)


async def month_chart(request: web.Request) -> web.StreamResponse:
    dimension = request.match_info["dimension"]
    if dimension not in DIMENSIONS:
        raise web.HTTPNotFound()
    report = await report_for(request, await requested_month(request))
    lang, _ = i18n.request_language(request)
    svg = '<?xml version="1.0" encoding="UTF-8"?>\n' + chart(report, dimension, lang)
    headers = {**OPEN_HEADERS, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8", headers=headers)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


async def to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/open-data/")


async def to_month_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"/open-data/{request.match_info['month']}/")


def add_open_data_routes(app: web.Application) -> None:
    app[CACHE] = ReportCache()
    router = app.router
    router.add_get("/open-data", to_index)
    router.add_get("/open-data/", index)
    router.add_get(f"/open-data/{MONTH}", to_month_page)
    router.add_get(f"/open-data/{MONTH}/", month_page)
    router.add_get(f"/open-data/{MONTH}.json", month_json)
    router.add_get(f"/open-data/{MONTH}.csv", month_csv)
    router.add_get(f"/open-data/{MONTH}/chart-{DIMENSION}.svg", month_chart)
