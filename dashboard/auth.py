"""Dashboard sign-in: signed session cookies, CSRF tokens and a lockout against password guessing.

The session is a stateless cookie (`payload.signature`, HMAC-SHA256) so any number of gateway
processes accept it without a shared session table. With no configured secret each process makes a
random one: sessions then end at restart, which is the safe default for a demo.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store import models
from store.users import hash_password, verify_password

SESSION_COOKIE = "lapor_session"
CSRF_COOKIE = "lapor_csrf"
SESSION_TTL = timedelta(hours=12)
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)

SECRET = web.AppKey("dashboard_secret", bytes)

# Verifying against a real hash for unknown usernames keeps the response time the same, so the
# login form does not tell an attacker which usernames exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    username: str
    role: str
    department: str | None
    csrf: str
    expires: datetime


def app_secret(configured: str) -> bytes:
    return configured.encode() if configured else secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, data: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}:{data}".encode(), hashlib.sha256).digest())


def sign_session(secret: bytes, session: Session) -> str:
    payload = _b64(
        json.dumps(
            {
                "uid": session.user_id,
                "u": session.username,
                "r": session.role,
                "d": session.department,
                "c": session.csrf,
                "exp": int(session.expires.timestamp()),
            },
            separators=(",", ":"),
        ).encode()
    )
    return f"{payload}.{_mac(secret, 'session', payload)}"


def read_session(secret: bytes, cookie: str | None, now: datetime) -> Session | None:
    """The session in a cookie, or None when it is missing, forged, malformed or expired."""
    if not cookie or "." not in cookie:
        return None
    payload, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _mac(secret, "session", payload)):
        return None
    try:
        data: Any = json.loads(_unb64(payload))
        expires = datetime.fromtimestamp(int(data["exp"]), tz=now.tzinfo)
        session = Session(
            int(data["uid"]), str(data["u"]), str(data["r"]), data.get("d"), str(data["c"]), expires
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return session if session.expires > now else None


def csrf_token(secret: bytes, nonce: str) -> str:
    """The form token for a browser's CSRF nonce (kept in its own cookie): only we can derive it."""
    return _mac(secret, "csrf", nonce)


def check_csrf(secret: bytes, nonce: str | None, token: object) -> bool:
    if not nonce or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(token, csrf_token(secret, nonce))


@dataclass(frozen=True, slots=True)
class LoginResult:
    session: Session | None
    locked: bool = False


async def attempt_login(
    engine: AsyncEngine, username: str, password: str, *, now: datetime, csrf_nonce: str
) -> LoginResult:
    """Check a password; count failures and lock the account for `LOCKOUT` after `MAX_FAILED_LOGINS`.

    A locked account refuses even the right password until the lock expires, otherwise the lock would
    only slow a guesser down instead of stopping them. Hashing runs in a thread (argon2 is slow on
    purpose and would otherwise stall every other request).
    """
    table = models.users
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(table).where(table.c.username == username.strip())))
            .mappings()
            .first()
        )
    if row is None or not row["active"]:
        await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
        return LoginResult(None)
    locked_until = row["locked_until"]
    if locked_until is not None and locked_until > now:
        return LoginResult(None, locked=True)
    ok = await asyncio.to_thread(verify_password, row["password_hash"], password)
    async with engine.begin() as conn:
        if ok:
            await conn.execute(
                update(table).where(table.c.id == row["id"]).values(failed_logins=0, locked_until=None)
            )
        else:
            failures = (row["failed_logins"] or 0) + 1
            if locked_until is not None:  # an expired lock: start counting afresh
                failures = 1
            lock = now + LOCKOUT if failures >= MAX_FAILED_LOGINS else None
            await conn.execute(
                update(table)
                .where(table.c.id == row["id"])
                .values(failed_logins=failures, locked_until=lock)
            )
            return LoginResult(None, locked=lock is not None)
    session = Session(
        row["id"], row["username"], row["role"], row["department"], csrf_nonce, now + SESSION_TTL
    )
    return LoginResult(session)
