"""`server.cpu_affinity`: a SQLite gateway keeps its threads on one CPU; the operator can say otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.affinity import choose_cpu, current_cpu
from gateway.config import ConfigError, load_config
from tests.harness import GatewayProcess, bound_socket
from tests.test_cli import lapor


@pytest.mark.parametrize(
    ("setting", "sqlite", "allowed", "current", "expected"),
    [
        ("auto", True, {0, 1}, 1, 1),  # where it runs now
        ("auto", True, {2, 3}, 0, 2),  # ... unless that is not one it may use
        ("auto", True, {0, 1}, None, 0),  # no /proc: the first it may use
        ("auto", True, {5}, 5, None),  # one CPU already: nothing to do
        ("auto", False, {0, 1}, 1, None),  # PostgreSQL: the writer is on the event loop
        ("off", True, {0, 1}, 1, None),
        ("1", False, {0, 1}, 0, 1),  # the operator's number, on any database
        ("0", True, {0, 1}, 1, 0),
    ],
)
def test_which_cpu(
    setting: str, sqlite: bool, allowed: set[int], current: int | None, expected: int | None
) -> None:
    assert choose_cpu(setting, sqlite=sqlite, allowed=allowed, current=current) == expected


def test_a_cpu_the_process_may_not_use_is_refused() -> None:
    with pytest.raises(ValueError, match=r"CPU 7 is not one this process may use \[0, 1\]"):
        choose_cpu("7", sqlite=True, allowed={0, 1}, current=0)


@pytest.mark.parametrize("value", ["fast", "-1", "1,2", ""])
def test_a_setting_that_is_not_auto_off_or_a_number_stops_the_start(value: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.cpu_affinity must be"):
        load_config(environ={"LAPOR_SERVER__CPU_AFFINITY": value})


def test_current_cpu_is_one_the_process_may_use() -> None:
    assert current_cpu() in os.sched_getaffinity(0)


def _thread_cpus(pid: int) -> set[frozenset[int]]:
    """Each thread's allowed CPUs, as the kernel reports them."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        listed = next(line for line in status.splitlines() if line.startswith("Cpus_allowed_list:"))
        cpus: set[int] = set()
        for part in listed.split(":", 1)[1].strip().split(","):
            low, _, high = part.partition("-")
            cpus.update(range(int(low), int(high or low) + 1))
        found.add(frozenset(cpus))
    return found


@pytest.mark.parametrize("setting", ["auto", "off"])
async def test_serve_on_sqlite_keeps_every_thread_on_one_cpu_unless_told_not_to(
    setting: str, tmp_path: Path
) -> None:
    with bound_socket() as sock:
        port = sock.getsockname()[1]
    env = {
        "LAPOR_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/a.db",
        "LAPOR_SERVER__CPU_AFFINITY": setting,
        "LAPOR_LOGGING__LEVEL": "INFO",
        "LAPOR_WORKER__ENABLED": "false",
    }
    process = GatewayProcess(env, port, str(tmp_path))
    await process.start()
    try:
        assert process.proc is not None
        threads = _thread_cpus(process.proc.pid)
    finally:
        await process.terminate()
    mine = frozenset(os.sched_getaffinity(0))
    if setting == "off" or len(mine) == 1:
        assert threads == {mine}
        assert not any("kept on CPU" in line for line in process.output)
    else:
        assert len(threads) == 1 and len(next(iter(threads))) == 1  # every thread, the same one CPU
        (cpu,) = next(iter(threads))
        assert any(f"threads kept on CPU {cpu}" in line for line in process.output)


def test_serve_refuses_a_cpu_it_may_not_use(tmp_path: Path) -> None:
    result = lapor("serve", env={"LAPOR_SERVER__CPU_AFFINITY": "4096"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "server.cpu_affinity: CPU 4096 is not one this process may use" in result.stderr
