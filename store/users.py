"""Dashboard users: argon2 password hashes, nothing reversible stored."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store import models

ROLES = ("admin", "officer", "head", "auditor")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def count_users(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(models.users))).scalar_one())


async def create_user(
    engine: AsyncEngine, username: str, password: str, *, role: str = "admin", department: str | None = None
) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    # argon2 takes a few hundred milliseconds on purpose: off the event loop, which serves webhooks.
    password_hash = await asyncio.to_thread(hash_password, password)
    async with engine.begin() as conn:
        await conn.execute(
            models.users.insert().values(
                username=username,
                password_hash=password_hash,
                role=role,
                department=department,
                active=True,
                failed_logins=0,
            )
        )


async def set_password(engine: AsyncEngine, username: str, password: str) -> bool:
    """Replace a user's password and clear failed sign-ins; False when there is no such user."""
    password_hash = await asyncio.to_thread(hash_password, password)
    async with engine.begin() as conn:
        result = await conn.execute(
            update(models.users)
            .where(models.users.c.username == username)
            .values(password_hash=password_hash, failed_logins=0, locked_until=None)
        )
    return bool(result.rowcount)
