"""Engine, sessions, and `Database.run`: one transaction as one plain function.

Why `run`: on SQLite through aiosqlite every statement is a round trip to a driver thread, and on a
small VM each round trip costs about half a millisecond of wake-ups; a dozen statements per batch
made the intake spend most of its time waiting for threads. `Database.run(fn)` executes a whole
transaction as a synchronous function in one hop: on SQLite in a single dedicated thread with its
own connection (which also serialises our writers in FIFO order, instead of SQLite's busy handler
sleeping and retrying), on PostgreSQL through `AsyncConnection.run_sync`, where asyncpg stays
natively async. The async engine remains for readers (dashboard, simulator, metrics).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import QueuePool

T = TypeVar("T")


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_setup(sync_engine: Engine, synchronous: str) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for every transaction.

    We emit BEGIN ourselves: the driver's implicit deferred BEGIN lets two writers both read, then one
    fail to upgrade its lock with "database is locked".
    """
    synchronous = synchronous.upper()

    @event.listens_for(sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        dbapi_connection.isolation_level = None

    @event.listens_for(sync_engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _prepare_sqlite_path(url: URL) -> None:
    database = url.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> AsyncEngine:
    """The async engine; for a file SQLite database also create its folder (./var by default)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_path(parsed)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _sqlite_setup(engine.sync_engine, sqlite_synchronous)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "asyncpg":
        # No JIT: the gateway's statements are short, and a text search's capped count scans
        # enough rows to pass jit_above_cost on a large or bloated table, where compiling took
        # longer than the query (69 ms instead of 32 at 1M complaints before VACUUM FULL).
        # Custom plans always: asyncpg prepares every statement, and after five runs PostgreSQL may
        # keep a generic plan that ignores the values. For the intake's look-ups by (channel,
        # message id) and (kind, address) that plan scanned every row of the channel instead of
        # using the unique index's second column: 6-12 ms a batch and growing with the table,
        # against 0.1-0.3 ms planned with the values. Planning is a few dozen µs a statement, and
        # the intake runs about twelve per batch of up to 256 messages.
        connect_args["server_settings"] = {"jit": "off", "plan_cache_mode": "force_custom_plan"}
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Database:
    """The async engine for readers plus `run(fn)` for transactions (see the module docstring)."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous=sqlite_synchronous, pool_size=pool_size)
        self.sqlite = is_sqlite(url)
        self._executor: ThreadPoolExecutor | None = None
        self._sync_engine: Engine | None = None
        if self.sqlite:
            sync_url = make_url(url).set(drivername="sqlite")
            self._sync_engine = create_engine(
                sync_url,
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=0,
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            _sqlite_setup(self._sync_engine, sqlite_synchronous)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    @property
    def dialect(self) -> str:
        return "sqlite" if self.sqlite else self.engine.dialect.name

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` in one transaction: committed if it returns, rolled back if it raises."""
        if self._sync_engine is not None and self._executor is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._run_sync, work)
        async with self.engine.begin() as conn:
            return await conn.run_sync(work)

    def _run_sync(self, work: Callable[[Connection], T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as conn:
            return work(conn)

    async def dispose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        await self.engine.dispose()
