"""Sync under chaos: the model of tests/hub/test_sync_model.py run for minutes instead of a minute's examples.

    python bench/chaos.py --minutes 2 [--seed 0] [--steps 300] [--check-every 50] [--faults partition,...]

Episodes one after another until the time is up: each starts its own redis-server (loopback, free port, AOF
with `appendfsync always`, in a temp dir) and three nodes with the hashing embedder, then takes `--steps`
random steps (writes on a random node, syncs, anti-entropy passes, and the faults named by `--faults`,
all of them by default: see FAULTS in tests/support/sync_model.py), healing everything and checking every
invariant every `--check-every` steps and at the end. One JSON object per episode and one for the whole
run: operations done, faults injected by kind, invariant violations by invariant (which must be 0; the
first few are quoted) and seconds. Exits 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import emit_line
from tests.support.sync_model import (
    FAULTS,
    FILES,
    NODES,
    POISONS,
    SESSIONS,
    SOURCES,
    TAGS,
    TASKS,
    TEXTS,
    Violation,
    World,
)

QUOTED = 5


def steps(world: World, rng: random.Random) -> list[tuple[int, str | None, Callable[[], object]]]:
    """(weight, the fault it injects or None, what it does) for every kind of step, arguments drawn now."""
    node = rng.choice(NODES)
    pair = tuple(rng.sample(NODES, 2))
    k = rng.randrange(len(TEXTS))
    session = rng.choice(SESSIONS)
    tags = tuple(rng.sample(TAGS, rng.randint(0, 2)))
    alive = world.redis_alive
    planted = world.injected["poison"]
    table: list[tuple[int, str | None, Callable[[], object]]] = [
        (20, None, lambda: world.store(node, k, tags, rng.choice(SOURCES))),
        (8, None, lambda: world.delete(node, k)),
        (12, None, lambda: world.edit_session(node, session, rng.choice(TASKS), rng.choice(FILES), rng.randint(0, 3))),
        (3, None, lambda: world.clear_session(node, session)),
        (15, None, lambda: world.sync(node)),
        (2, None, lambda: world.anti_entropy(node)),
        (4, "concurrent", lambda: world.concurrent_store(pair[0], pair[1], k, (*tags, "ops", "db")[:2], False)),
        (4, "concurrent", lambda: world.concurrent_session_edit(pair[0], pair[1], session, ("deploy", "review"))),
        (1, "tied-versions", lambda: world.concurrent_store(pair[0], pair[1], k, ("ops", "db"), True)),
        (6, "partition", lambda: world.partition(node) if node not in world.partitioned else world.heal(node)),
        (2, "clock-jump", lambda: world.clock_jump(node, rng.choice([1.0, 60.0, 3600.0]))),
        (1, "no-hub-write", lambda: world.write_without_hub(node, k, rng.choice(TAGS))),
        (1, "node-restart", lambda: world.restart_node(node)),
    ]
    if alive:
        table += [
            (1, "kill-redis", world.kill_redis),
            (1, "flushall", world.flushall),
            (1, "trim-feed", lambda: world.trim_feed(rng.randint(0, 5))),
            (1, "poison", lambda: world.plant_poison(rng.choice(POISONS), planted)),
            (1, "damage", lambda: world.damage(k)),
        ]
        if node not in world.partitioned:
            table.append((1, "pusher-crash", lambda: world.pusher_crash(node)))
    else:
        table.append((8, None, world.restart_redis))
    return table


def episode(
    root: Path, rng: random.Random, faults: frozenset[str], n_steps: int, check_every: int
) -> tuple[World, list[Violation]]:
    world = World(root)
    violations: list[Violation] = []
    try:
        for n in range(1, n_steps + 1):
            table = [(w, f, do) for w, f, do in steps(world, rng) if f is None or f in faults]
            _, _, do = rng.choices(table, weights=[w for w, _, _ in table])[0]
            do()
            if n % check_every == 0 or n == n_steps:
                violations += world.heal_and_sync() + world.check()
    finally:
        world.close()
    return world, violations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300, help="steps per episode (a fresh Redis and nodes)")
    parser.add_argument("--check-every", type=int, default=50, help="steps between heals and checks")
    parser.add_argument("--faults", default=",".join(sorted(FAULTS)), help="comma-separated; '' for none")
    args = parser.parse_args()
    faults = frozenset(f for f in args.faults.split(",") if f)
    unknown = faults - FAULTS
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
    logging.getLogger("hivemind_app").setLevel(logging.ERROR)  # going offline is the point here, not news
    rng = random.Random(args.seed)
    started = time.monotonic()
    deadline = started + args.minutes * 60
    operations: Counter[str] = Counter()
    injected: Counter[str] = Counter()
    violated: Counter[str] = Counter()
    quoted: list[str] = []
    episodes = 0
    while time.monotonic() < deadline:
        episodes += 1
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            world, violations = episode(Path(tmp), rng, faults, args.steps, args.check_every)
        operations.update(world.operations)
        injected.update(world.injected)
        by_invariant = Counter(v.invariant for v in violations)
        violated.update(by_invariant)
        quoted += [str(v)[:400] for v in violations][: max(0, QUOTED - len(quoted))]
        emit_line(
            "chaos",
            "episode",
            episode=episodes,
            seed=args.seed,
            steps=args.steps,
            operations=dict(sorted(world.operations.items())),
            faults=dict(sorted(world.injected.items())),
            violations=sum(by_invariant.values()),
            violations_by_invariant=dict(sorted(by_invariant.items())),
            seconds=round(time.monotonic() - began, 2),
        )
    emit_line(
        "chaos",
        "total",
        minutes=args.minutes,
        seed=args.seed,
        episodes=episodes,
        steps=episodes * args.steps,
        operations=dict(sorted(operations.items())),
        faults=dict(sorted(injected.items())),
        violations=sum(violated.values()),
        violations_by_invariant=dict(sorted(violated.items())),
        first_violations=quoted,
        seconds=round(time.monotonic() - started, 1),
    )
    sys.exit(1 if violated else 0)


if __name__ == "__main__":
    main()
