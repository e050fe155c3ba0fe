"""Conversation steps per second: the pure machine in process, and the same turns through the store.

Run: `.venv/bin/python bench/conversation.py [--steps N] [--runs R] [--no-store]`. Prints medians of
several runs (`--ingest`: only the ingest mix; `--instructions`: the ingest mix's instructions a step
under valgrind, a figure without the machine's noise):
- `bench_pure(n)`: the machine alone (state JSON-encoded between steps, as the store keeps it), and
  `bench_machine(n)`, the same without the JSON round trip (the difference is what the encoding of
  the state costs a step: the bench's one reporter soon has ten filed complaints in it);
- `bench_store(n, concurrency)`: the same citizen turns as InboundMessages through the real intake
  pipeline (dedup, identity, conversation state load/save, complaints, outbox rows) on a temporary
  SQLite database, one message per `ingest()` call, `concurrency` calls in flight (1 = each turn
  committed alone; 64 = a burst, where concurrent turns share commits);
and the ratio of each store figure to the pure machine.

Figures (December 2026, the shared 2-core dev machine, the tree before the conversation speed-up
and after it in alternating runs): `bench_pure` about 4,100-4,700 steps/s before and 6,800-8,700
after (x1.7-1.8 by the clock, which other work on the machine blurs; x2.0 in instructions counted by
valgrind, 1.26 M -> 0.62 M a step). The machine alone went from 0.99 M to 0.33 M instructions a
step (x3.0); the JSON round trip of this state is about 0.28 M of the 0.62 M, whatever the machine.
The ingest mix (`--instructions`, 1,200 texts, seed 1): 632 k -> 501 k instructions a step (573 k ->
457 k at 3,000 texts), 142-148 -> 107-114 us a step by the clock in alternating runs (December 2026);
then 501 k -> 496 k (the stored state read in fewer calls, `strip_keyword` cached). The figure moves
by about 300 a step from run to run (string hashes are seeded per process): a change worth less
than that is not told apart from none.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import starmap
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# `conversation` package: look in the project root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from conversation import api  # noqa: E402
from conversation.machine import step  # noqa: E402

WIB = timezone(timedelta(hours=7))
START = datetime(2025, 3, 10, 8, 0, tzinfo=WIB)

# A realistic mix: a multi-turn WhatsApp complaint with a photo, a one-message SMS complaint, a
# status query, and an idle draft that is reminded and expires.
SCRIPT: tuple[tuple[str, str | None, bool], ...] = (
    ("whatsapp", "LaporHendi jalan rusak berlubang parah sejak {n} hari", False),
    ("whatsapp", "Jl. Majapahit No. {n} depan SPBU Pedurungan", False),
    ("whatsapp", None, True),
    ("whatsapp", "ya", False),
    ("sms", "Lampu PJU mati di Jl. Pemuda No. {n} depan Balai Kota, sudah 3 hari gelap", False),
    ("sms", "YA", False),
    ("sms", "cek lpr 7k3m9q", False),
    ("sms", "sampah numpuk {n} karung bau banget", False),
)


def _events() -> Iterator[api.Event]:
    """An endless realistic event stream, with the pipeline's answers where it would give them."""
    at = START
    rounds = 0
    while True:
        rounds += 1  # vary the words so no cache sees the same message twice
        for medium, template, photo in SCRIPT:
            text = template.replace("{n}", str(rounds)) if template else None
            at += timedelta(seconds=30)
            attachments = (api.Attachment("media/1.jpg", "image/jpeg"),) if photo else ()
            yield api.Turn(medium=medium, at=at, text=text, attachments=attachments)
        at += timedelta(minutes=31)
        yield api.Tick(at=at)
        at += timedelta(hours=24)
        yield api.Tick(at=at)


def bench_pure(n: int) -> float:
    """Steps per second for `n` steps of the machine alone, state JSON-encoded between steps as the
    store would keep it (answers to lookups are fed back like the pipeline does)."""
    return _steps_per_second(n, json_round_trip=True)


def bench_machine(n: int) -> float:
    """`bench_pure` without the JSON round trip: each step gets the state the last one returned."""
    return _steps_per_second(n, json_round_trip=False)


def _steps_per_second(n: int, json_round_trip: bool) -> float:
    state: dict[str, Any] | None = None
    events = _events()
    steps = 0
    started = time.perf_counter()
    while steps < n:
        event = next(events)
        pending: list[api.Event] = [event]
        while pending and steps < n:
            current = pending.pop()
            ctx = api.Context(now=current.at, new_tracking_code="LPR-7K3M9Q")
            result = step(state, current, ctx)
            steps += 1
            state = json.loads(json.dumps(result.state)) if json_round_trip else dict(result.state)
            for effect in result.effects:
                if isinstance(effect, api.FindDuplicates):
                    pending.append(api.DuplicateAnswer(at=current.at, candidates=()))
                elif isinstance(effect, api.LookupStatus):
                    pending.append(api.StatusAnswer(at=current.at, requested_codes=effect.codes, found=()))
    return steps / (time.perf_counter() - started)


def bench_store(n: int, concurrency: int) -> float:
    """Turns per second through the intake pipeline and SQLite (see the module docstring)."""
    import asyncio
    import tempfile
    import uuid

    from adapters.base import Address, AddressKind, InboundMessage, MediaRef, Medium
    from gateway.effects import Stepper
    from gateway.pipeline import Ingestor
    from store.db import Database
    from store.migrate import upgrade

    turns = [e for e in _take_turns(n)]
    people = [f"+62812{i:07d}" for i in range(max(1, n // len(SCRIPT)))]
    messages = [
        InboundMessage(
            channel="bench",
            medium=Medium(turn.medium),
            provider_message_id=uuid.uuid4().hex,
            sender=Address(AddressKind.PHONE, people[i // len(SCRIPT) % len(people)]),
            received_at=turn.at,
            text=turn.text,
            media=tuple(MediaRef(a.ref, a.content_type) for a in turn.attachments),
        )
        for i, turn in enumerate(turns)
    ]

    async def run(folder: str) -> float:
        db = Database(f"sqlite+aiosqlite:///{folder}/bench.db")
        await upgrade(db.engine)
        ingestor = Ingestor(db, Stepper(step, api.Settings()), clock=lambda: datetime.now(WIB))
        await ingestor.start()
        gate = asyncio.Semaphore(concurrency)
        by_person: dict[str, asyncio.Lock] = {}

        async def one(message: InboundMessage) -> None:
            # One person's turns stay in order (as a phone sends them); different people overlap.
            async with by_person.setdefault(message.sender.value, asyncio.Lock()), gate:
                await ingestor.ingest([message])

        started = time.perf_counter()
        await asyncio.gather(*(one(m) for m in messages))
        elapsed = time.perf_counter() - started
        await ingestor.stop()
        await db.dispose()
        return len(messages) / elapsed

    with tempfile.TemporaryDirectory(prefix="lapor-conv-bench-") as folder:
        return asyncio.run(run(folder))


def _take_turns(n: int) -> list[api.Turn]:
    turns: list[api.Turn] = []
    for event in _events():
        if isinstance(event, api.Turn):
            turns.append(event)
            if len(turns) == n:
                return turns
    return turns


def _ingest_bodies() -> list[str]:
    """The texts `bench/ingest.py` sends (its `BODIES`, `{n}` still to fill)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_ingest", _HERE / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.BODIES)


MIX_STEPS_SHOWN = 6
"""Steps 1..6 of a sender are shown apart, the later ones together (`7+`)."""


def bench_ingest_mix(count: int, seed: int) -> tuple[list[float], list[int], float]:
    """The conversation step on the traffic `bench/ingest.py` sends, in this (fresh) process.

    After a warm-up (`_warm_up`), `count` SMS texts drawn as `signed_requests` draws them (a
    random body of `BODIES` with `{n}` filled, from a pool of `count // 4` senders), each stepped
    with its sender's state, the state JSON round-tripped between steps as the store keeps it
    (that round trip is not timed). No
    pipeline answers are fed back (a YA only asks for duplicates), so a sender's draft keeps
    growing while it waits at the confirmation, as it does when a sender sends one complaint after
    another. Returns the mean microseconds of a step by the sender's step number (1..6, then
    7+ together), how many steps each of those had, and the mean over all steps.
    """
    bodies = _ingest_bodies()
    rng = random.Random(seed)
    senders = [f"+628{rng.randrange(10**9, 10**10)}" for _ in range(max(1, count // 4))]
    traffic = [
        (rng.choice(senders), rng.choice(bodies).format(n=rng.randrange(1, 500))) for _ in range(count)
    ]
    now = datetime.now(UTC)
    _warm_up(bodies, now)
    states: dict[str, dict[str, Any] | None] = {}
    steps_of: dict[str, int] = {}
    spent = [0.0] * (MIX_STEPS_SHOWN + 1)
    seen = [0] * (MIX_STEPS_SHOWN + 1)
    clock = time.perf_counter
    for sender, body in traffic:
        number = steps_of.get(sender, 0)
        steps_of[sender] = number + 1
        turn = api.Turn(medium="sms", at=now, text=body)
        ctx = api.Context(now=now, new_tracking_code="LPR-7K3M9Q")
        state = states.get(sender)
        started = clock()
        # Through `starmap` so that valgrind can count the step alone (`--toggle-collect=starmap_next`,
        # see `_ingest_mix_instructions`); the same one call either way.
        result = next(starmap(step, ((state, turn, ctx),)))
        elapsed = clock() - started
        states[sender] = json.loads(json.dumps(result.state))
        slot = min(number, MIX_STEPS_SHOWN)
        spent[slot] += elapsed
        seen[slot] += 1
    means = [total / max(n, 1) * 1e6 for total, n in zip(spent, seen, strict=True)]
    return means, seen, sum(spent) / count * 1e6


def _warm_up(bodies: list[str], now: datetime) -> None:
    """A few turns of texts the mix never sends (`{n}` past its range) by a sender it never has,
    so what a running writer does once (compiling patterns, reading the catalog) is not counted
    as the mix's: its words are in the caches, as they are in a writer that has been running; then
    the garbage collector is set as the running server sets it."""
    state: dict[str, Any] | None = None
    for round_ in range(3):
        for body in bodies:
            turn = api.Turn(medium="sms", at=now, text=body.format(n=1000 + round_))
            state = json.loads(json.dumps(step(state, turn, api.Context(now, "LPR-7K3M9Q")).state))
    # As `lapor serve` settles once started (gateway/cli.py): the heap so far is left out of garbage
    # collection, and collections come on a clock (gateway/collector.py), not within a step.
    gc.collect()
    gc.freeze()
    gc.disable()


def _ingest_mix_runs(count: int, runs: int) -> tuple[list[float], list[int], float]:
    """`bench_ingest_mix` in `runs` fresh processes (seeds 1..runs): medians per step number and of
    the means. Fresh, so no run finds the texts of the one before in the caches."""
    import subprocess

    results = []
    for seed in range(1, runs + 1):
        command = [sys.executable, __file__, "--ingest-once", str(seed), "--count", str(count)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out))
    means = [statistics.median(r[0][i] for r in results) for i in range(MIX_STEPS_SHOWN + 1)]
    return means, results[0][1], statistics.median(r[2] for r in results)


def _ingest_mix_instructions(count: int, seed: int) -> float:
    """Instructions per step of `bench_ingest_mix` under valgrind's callgrind: collection is on only
    inside the `starmap` call that runs a step, so neither start-up, the traffic nor the state's
    JSON round trip is counted. The same figure every run (no noise), unlike the clock."""
    import re
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lapor-conv-cg-") as folder:
        out = Path(folder) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=starmap_next",
            f"--callgrind-out-file={out}", sys.executable, __file__, "--ingest-once", str(seed),
            "--count", str(count),
        ]
        subprocess.run(command, check=True, capture_output=True, text=True)
        found = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(errors="replace"), re.M)
        assert found is not None, "no instruction count in callgrind's output"
        return int(found.group(1)) / count


def _print_ingest_mix(count: int, runs: int) -> None:
    means, seen, mean = _ingest_mix_runs(count, runs)
    labels = [str(i + 1) for i in range(MIX_STEPS_SHOWN)] + [f"{MIX_STEPS_SHOWN + 1}+"]
    by_step = ", ".join(f"{label}: {us:.0f}" for label, us in zip(labels, means, strict=True))
    print(f"ingest mix ({count} texts, {count // 4} senders; median of {runs} fresh processes):")
    print(f"  us a step by the sender's step number: {by_step}")
    print(f"  (steps of each number in seed 1: {', '.join(map(str, seen))}); mean {mean:.0f} us a step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-store", action="store_true", help="only the pure machine figures")
    parser.add_argument("--count", type=int, default=1200, help="texts in the ingest mix")
    parser.add_argument("--ingest", action="store_true", help="only the ingest mix")
    parser.add_argument(
        "--instructions", action="store_true", help="only the ingest mix's instructions a step (valgrind)"
    )
    parser.add_argument("--ingest-once", type=int, metavar="SEED", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest_once is not None:
        # One run in this process (for `_ingest_mix_runs` and `_ingest_mix_instructions`).
        print(json.dumps(bench_ingest_mix(args.count, args.ingest_once)))
        return
    if args.instructions:
        figure = _ingest_mix_instructions(args.count, 1)
        print(f"ingest mix ({args.count} texts, seed 1): {figure:,.0f} instructions a step (callgrind)")
        return
    _print_ingest_mix(args.count, args.runs)
    if args.ingest:
        return
    bench_pure(200)  # warm the caches (compiled patterns, catalog) before measuring
    pure = statistics.median(bench_pure(args.steps) for _ in range(args.runs))
    alone = statistics.median(bench_machine(args.steps) for _ in range(args.runs))
    print(f"pure machine:            {pure:8,.0f} steps/s (median of {args.runs} runs of {args.steps} steps)")
    print(
        f"  without the JSON trip: {alone:8,.0f} steps/s "
        f"(the round trip of the state is {1e6 / pure - 1e6 / alone:.0f} us of {1e6 / pure:.0f} us a step)"
    )
    if args.no_store:
        return
    for concurrency in (1, 64):
        runs = max(1, args.runs // 2)
        store = statistics.median(bench_store(args.steps // 2, concurrency) for _ in range(runs))
        print(
            f"with the store, {concurrency:2d} in flight: {store:8,.0f} turns/s "
            f"(median of {runs} runs of {args.steps // 2}; {store / pure:.0%} of the pure machine)"
        )


if __name__ == "__main__":
    main()
