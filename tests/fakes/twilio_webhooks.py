"""Building and signing Twilio webhooks the way Twilio does, for tests and the ingest benchmark."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from twilio.request_validator import RequestValidator

DEFAULT_TO = "+14155550123"


def random_sid(prefix: str) -> str:
    """A Twilio-shaped sid: two letters and 32 hex digits (`SM...`, `MM...`, `AC...`)."""
    return prefix + secrets.token_hex(16)


def random_account_sid() -> str:
    return random_sid("AC")


def sign(url: str, params: Mapping[str, str] | Sequence[tuple[str, str]], auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    if not isinstance(params, Mapping):
        grouped: dict[str, list[str]] = {}
        for key, value in params:
            grouped.setdefault(key, []).append(value)
        return str(RequestValidator(auth_token).compute_signature(url, _MultiView(grouped)))
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


class _MultiView(dict[str, list[str]]):
    """Lets RequestValidator see repeated keys (it calls `getall` on multidicts)."""

    def getall(self, key: str) -> list[str]:
        return self[key]


def sms_params(
    From: str = "+6281234567890",
    Body: str = "LaporHendi jalan rusak di Jl. Pemuda",
    MessageSid: str | None = None,
    *,
    To: str = DEFAULT_TO,
    AccountSid: str | None = None,
    media: Sequence[tuple[str, str] | str] = (),
    **extra: str,
) -> dict[str, str]:
    """An inbound SMS webhook form as Twilio posts it (parameter set from Twilio's docs).

    `media` items are URLs or (url, content_type) pairs; a None MessageSid gets a fresh `SM...` id
    (`MM...` when there is media, as Twilio does).
    """
    sid = MessageSid or random_sid("MM" if media else "SM")
    account = AccountSid or random_account_sid()
    params = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": str(len(media)),
        "ToCity": "SAN FRANCISCO",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": Body,
        "FromCountry": "ID",
        "To": To,
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account,
        "From": From,
        "ApiVersion": "2010-04-01",
    }
    for index, item in enumerate(media):
        url, content_type = (item, "image/jpeg") if isinstance(item, str) else item
        params[f"MediaUrl{index}"] = url
        params[f"MediaContentType{index}"] = content_type
    params.update(extra)
    return params


def status_params(
    MessageSid: str,
    MessageStatus: str,
    *,
    To: str = "+6281234567890",
    From: str = DEFAULT_TO,
    AccountSid: str | None = None,
    ErrorCode: str | None = None,
    ErrorMessage: str | None = None,
) -> dict[str, str]:
    """A message status callback form as Twilio posts it."""
    params = {
        "AccountSid": AccountSid or random_account_sid(),
        "ApiVersion": "2010-04-01",
        "From": From,
        "MessageSid": MessageSid,
        "MessageStatus": MessageStatus,
        "SmsSid": MessageSid,
        "SmsStatus": MessageStatus,
        "To": To,
    }
    if ErrorCode is not None:
        params["ErrorCode"] = ErrorCode
    if ErrorMessage is not None:
        params["ErrorMessage"] = ErrorMessage
    return params
