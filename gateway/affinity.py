"""Which CPUs `lapor serve` runs on: one, when its threads would otherwise pass the GIL between cores.

On SQLite the intake's writer is a thread beside the event loop, and the two take turns holding the
GIL thousands of times a second under load. When the turns cross cores, each one wakes a thread on
the other core and moves the interpreter's hottest memory there (the reference counts of shared
objects, the type caches), and only one core works at a time anyway. Kept on one core, a turn is a
cheap switch between threads that share one cache. Measured with bench/ingest.py's traffic on two
cores (alternating rounds, medians): 1,880 -> 2,159 webhooks/s, CPU per webhook 0.547 -> 0.441 ms,
and at 1,000 webhooks/s p50 6.6 -> 3.4 ms, p99 23.8 -> 10.6 ms.

On PostgreSQL the writer's transactions run on the event loop itself (asyncpg), so there is no such
traffic and nothing is pinned unless the operator asks. Several processes on one machine should each
be given their own CPU (`server.cpu_affinity = "0"`, `"1"`, ...): "auto" only knows its own process.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTO = "auto"
OFF = "off"


def check_setting(value: str) -> str | None:
    """Why `value` is not a valid `server.cpu_affinity`, or None when it is."""
    if value in (AUTO, OFF) or value.isdigit():
        return None
    return f'server.cpu_affinity must be "auto", "off" or a CPU number such as "0", got {value!r}'


def choose_cpu(setting: str, *, sqlite: bool, allowed: set[int], current: int | None) -> int | None:
    """The one CPU to run on, or None to leave the process where the system puts it.

    "auto" pins only a SQLite gateway that may use more than one CPU, to the CPU it is running on
    (another process placed by the system elsewhere stays out of its way); a number is taken as it
    is, and must be one this process may use."""
    if setting == OFF:
        return None
    if setting != AUTO:
        cpu = int(setting)
        if cpu not in allowed:
            usable = sorted(allowed)
            raise ValueError(f"server.cpu_affinity: CPU {cpu} is not one this process may use {usable}")
        return cpu
    if not sqlite or len(allowed) < 2:
        return None
    return current if current in allowed else min(allowed)


def current_cpu() -> int | None:
    """The CPU this thread last ran on (field 39 of /proc/self/stat), or None where there is none."""
    try:
        fields = Path("/proc/thread-self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[36])


def pin_process(setting: str, *, sqlite: bool) -> int | None:
    """Apply `server.cpu_affinity` to every thread of the process (threads started later inherit
    it); the CPU, or None. Does nothing where the system has no CPU affinity (macOS, Windows)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = choose_cpu(setting, sqlite=sqlite, allowed=os.sched_getaffinity(0), current=current_cpu())
    if cpu is not None:
        for thread in _thread_ids():
            try:
                os.sched_setaffinity(thread, {cpu})
            except ProcessLookupError:  # a thread that ended meanwhile
                continue
    return cpu


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]  # the calling thread
