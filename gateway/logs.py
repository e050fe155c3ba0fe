"""Logging that cannot leak: configured secrets and phone numbers are masked in every line, tracebacks
included, and each line carries the request id of the webhook or page that caused it."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from typing import Any, ClassVar

PHONE = re.compile(r"(?<![\w])\+?(?:62|0)8\d{6,11}(?!\d)")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def mask_phone(text: str) -> str:
    """Keep the first four and last two digits: enough to tell numbers apart, not enough to call."""
    return PHONE.sub(lambda m: m.group(0)[:4] + "*" * (len(m.group(0)) - 6) + m.group(0)[-2:], text)


class Redactor:
    """The registered secrets; `redact` masks them and phone numbers in any text."""

    secrets: ClassVar[set[str]] = set()

    @classmethod
    def redact(cls, text: str) -> str:
        text = mask_phone(text)
        for secret in cls.secrets:
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text


class RedactingFilter(logging.Filter):
    """Masks the rendered message (for handlers we do not format ourselves) and adds `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        message = record.getMessage()
        redacted = Redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return Redactor.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "message": Redactor.redact(record.getMessage()),
        }
        if record.exc_info:
            payload["exc"] = Redactor.redact(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


class ProtocolNoise(logging.Filter):
    """aiohttp logs a malformed request line at ERROR with a traceback while rightly answering 400:
    anyone could fill the logs that way. Such records become one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and type(error).__module__ == "aiohttp.http_exceptions":
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed HTTP request refused: %s", (type(error).__name__,)
            record.exc_info, record.exc_text = None, None
        return True


def register_secret(value: str) -> None:
    if value:
        Redactor.secrets.add(value)


def setup_logging(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if as_json else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # APScheduler logs every run of every job at INFO: one line a minute that says nothing.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(ProtocolNoise())
