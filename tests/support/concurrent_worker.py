"""One of several processes hammering one store: store, then recall what it stored, until time is up.

Usage: python -m tests.support.concurrent_worker WORKER_ID SECONDS RESULT_JSON
(HIVEMIND_DATA_DIR / HIVEMIND_CONFIG come from the environment, shared by all workers).
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback

from hivemind_app.hive import Hive


def main() -> None:
    worker, seconds, result_path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    stored: list[str] = []
    errors: list[str] = []
    recalls = 0
    with Hive() as hive:
        hive.embedder_for(hive.configured_model).embed(["warm up"])  # load the model before the clock starts
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            text = f"worker {worker} note {n}: rotated the {random.choice(['api', 'db', 'cache'])} credentials"
            try:
                result = hive.store_memory(text, tags=[f"w{worker}"], session_id=f"session-{worker}")
                stored.append(result.memory.id)
                probe = random.choice(stored)
                hits = hive.search_memory(
                    f"worker {worker} note",
                    limit=1000,
                    mode=random.choice(["hybrid", "keyword", "vector"]),
                    filters=hive.make_filters(tags=[f"w{worker}"]),
                )
                recalls += 1
                if probe not in {h.memory.id for h in hits.hits}:
                    errors.append(f"recall lost {probe[:12]} after storing it")
            except Exception:
                errors.append(traceback.format_exc())
            n += 1
    with open(result_path, "w") as fh:
        json.dump({"stored": stored, "recalls": recalls, "errors": errors}, fh)


if __name__ == "__main__":
    main()
