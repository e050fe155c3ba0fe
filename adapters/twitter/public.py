"""What may be said in public: fixed texts for tweets, never the conversation's own words.

A reply tweet is public forever and is read next to the citizen's name. The conversation's messages
quote the citizen ("Kami catat: <their words>, lokasi <their street>"), and people put phone numbers,
NIKs and home addresses in complaints. So nothing the conversation wrote is ever tweeted: a public
tweet is one of the fixed texts below, filled only with a tracking code and its public tracking link,
then scrubbed once more (phone numbers, e-mail addresses, NIKs) as defence in depth. The full
conversational text goes by DM, where only the citizen reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.twitter.text import MAX_TWEET, fit, scrub, tracking_codes

__all__ = ["FILING_KINDS", "dm_closed_text", "public_text", "tracking_codes", "tracking_link"]

RECEIPT = "Terima kasih, aduan Anda tercatat: {code}. Pantau di {url}"
JOINED = "Terima kasih, aduan Anda digabung dengan {code}. Pantau di {url}"
EVIDENCE = "Terima kasih, bukti tambahan tercatat untuk aduan {code}. Pantau di {url}"
UPDATE = "Ada kabar terbaru untuk aduan {code}. Pantau di {url}"
DUPLICATE_QUESTION = "Sudah ada aduan serupa: {code} ({url}). Apakah sama? Balas YA atau TIDAK."
DM_CLOSED = (
    "Kami perlu beberapa detail untuk aduan Anda. Mohon izinkan DM dari akun ini, atau balas tweet ini."
)
DM_CLOSED_WITH_CODE = "Aduan Anda: {code}. Pantau di {url}"
CONFIRM_QUESTION = (
    "Aduan Anda siap dikirim. Balas YA untuk kirim, BATAL untuk batal, atau tulis perbaikannya."
)
GENERIC_QUESTION = "Terima kasih atas laporan Anda. Balas tweet ini untuk melanjutkan, tanpa data pribadi."

CODE_TEMPLATES: Mapping[str, str] = {
    "submitted": RECEIPT,
    "submitted_url": RECEIPT,
    "expired_submitted": RECEIPT,
    "already_filed": RECEIPT,
    "new_after_submit": RECEIPT,
    "joined": JOINED,
    "evidence_added": EVIDENCE,
    "evidence_place_added": EVIDENCE,
    "ask_duplicate": DUPLICATE_QUESTION,
    "ask_duplicate_again": DUPLICATE_QUESTION,
    "remind_duplicate": DUPLICATE_QUESTION,
}
"""Outbox kinds (the conversation's message keys) that carry a code; any other kind with a code in
its text (status updates, STATUS answers) is announced with UPDATE."""

FILING_KINDS = frozenset({"submitted", "submitted_url", "expired_submitted", "joined"})
"""A complaint was just filed: the thread must get its public receipt even if the talk moved to DM."""

QUESTIONS: Mapping[str, str] = {
    "welcome": "Halo! Balas tweet ini dengan masalah dan lokasinya, mis: lampu PJU mati di Jl. Pemuda.",
    "help": "Balas tweet ini dengan masalah dan lokasinya. Perintah: STATUS <kode>, BARU, BATAL, LEWATI.",
    "ask_description": "Apa masalahnya? Balas tweet ini dengan cerita singkat, tanpa data pribadi.",
    "ask_description_after_photo": "Foto diterima. Apa masalahnya dan di mana? Balas tweet ini.",
    "ask_description_after_location": "Lokasi diterima. Apa masalahnya? Balas tweet ini, tanpa data pribadi.",
    "ask_description_again": "Maaf, kami belum tahu masalahnya. Balas dengan cerita singkat, atau BATAL.",
    "remind_description": "Kami masih menunggu cerita singkat masalahnya. Balas tweet ini, atau BATAL.",
    "ask_location": "Di mana lokasinya? Balas dengan nama jalan atau kelurahan (bukan alamat rumah Anda).",
    "ask_location_again": "Maaf, kami perlu lokasinya. Balas dengan nama jalan atau kelurahan, atau BATAL.",
    "remind_location": "Kami masih menunggu lokasinya. Balas dengan nama jalan atau kelurahan, atau BATAL.",
    "cannot_skip_location": "Lokasi tidak bisa dilewati. Balas dengan nama jalan atau kelurahan, atau BATAL.",
    "ask_photo": "Ada foto masalahnya? Balas dengan fotonya, atau balas LEWATI.",
    "send_photo_now": "Silakan balas dengan fotonya, atau LEWATI jika tidak jadi.",
    "remind_photo": "Masih ada foto? Balas dengan fotonya, atau LEWATI agar aduan bisa dikirim.",
    "confirm": CONFIRM_QUESTION,
    "confirm_plain": CONFIRM_QUESTION,
    "confirm_no_place": CONFIRM_QUESTION,
    "photo_added": "Foto diterima. Balas YA untuk mengirim aduan, atau BATAL jika tidak jadi.",
    "remind_confirmation": "Aduan Anda belum terkirim. Balas YA untuk mengirim, atau BATAL jika tidak jadi.",
    "confirm_correction": "Baik. Balas dengan keterangan atau lokasi yang benar, lalu balas YA.",
    "cancelled": "Aduan dibatalkan. Mention kami kapan saja jika ingin melapor lagi.",
    "thanks": "Sama-sama! Mention kami kapan saja jika ada masalah lain.",
}  # fmt: skip
"""Public versions of the conversation's questions (reply_mode = "reply"): same meaning, no slots."""


def tracking_link(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/lacak/{code}"


def _finish(text: str) -> str:
    return fit(scrub(text), MAX_TWEET)


def public_text(kind: str, text: str, public_url: str) -> str:
    """The public tweet for an outbox message of `kind` whose private wording is `text`."""
    codes = tracking_codes(text)
    if codes:
        code = codes[0]
        template = CODE_TEMPLATES.get(kind, UPDATE)
        return _finish(template.format(code=code, url=tracking_link(public_url, code)))
    return _finish(QUESTIONS.get(kind, GENERIC_QUESTION))


def dm_closed_text(text: str, public_url: str) -> str:
    """The public fallback when the citizen's DMs are closed: the code and link only, or a request."""
    codes = tracking_codes(text)
    if codes:
        return _finish(DM_CLOSED_WITH_CODE.format(code=codes[0], url=tracking_link(public_url, codes[0])))
    return _finish(DM_CLOSED)
