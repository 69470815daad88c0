"""Searches through the Hive: filters applied inside every generator, keyword edge cases."""

from __future__ import annotations

import pytest

from hivemind_app.errors import InvalidInputError
from hivemind_app.hive import Hive, MemoryDraft


def test_filters_by_session_source_tag_and_time(hive: Hive) -> None:
    hive.store_memory("Redis maxmemory is 8gb on the NAS", tags=["redis", "nas"], source="notes/nas.md", session_id="a")
    hive.store_memory("Redis AOF fsync is everysec", tags=["redis"], source="notes/redis.md", session_id="b")
    hive.store_memory("Postgres shared_buffers is 4GB", tags=["postgres"], source="chat", session_id="a")

    def texts(**kw: object) -> set[str]:
        filters = hive.make_filters(**kw)  # type: ignore[arg-type]
        return {h.memory.text for h in hive.search_memory("redis memory settings", limit=10, filters=filters).hits}

    assert texts(session_id="a") == {"Redis maxmemory is 8gb on the NAS", "Postgres shared_buffers is 4GB"}
    assert texts(tags=["redis"]) == {"Redis maxmemory is 8gb on the NAS", "Redis AOF fsync is everysec"}
    assert texts(tags=["redis", "nas"]) == {"Redis maxmemory is 8gb on the NAS"}
    assert texts(source="notes/*") == {"Redis maxmemory is 8gb on the NAS", "Redis AOF fsync is everysec"}
    assert texts(source="chat") == {"Postgres shared_buffers is 4GB"}
    assert texts(since="1h") == texts()
    assert texts(until="1h") == set()
    with pytest.raises(InvalidInputError, match="not a time"):
        hive.make_filters(since="last tuesday")


@pytest.mark.ranking  # the premise (the tagged memory is far from the query) is MiniLM's similarity
def test_filtered_vector_search_finds_a_rare_match_outside_the_global_top_k(hive: Hive) -> None:
    # 60 near-duplicates crowd the query's neighbourhood; the one tagged memory is less similar.
    hive.store_memories([MemoryDraft(f"Benchmark run {n}: torch.compile speedup on the 4090") for n in range(60)])
    hive.store_memory("Gardening: tomatoes need more sun", tags=["rare"])
    hits = hive.search_memory(
        "torch.compile benchmark", limit=3, mode="vector", filters=hive.make_filters(tags=["rare"])
    )
    assert [h.memory.text for h in hits.hits] == ["Gardening: tomatoes need more sun"]


def test_a_query_with_no_words_finds_nothing_by_keyword_without_error(hive: Hive) -> None:
    hive.store_memory("something")
    assert hive.search_memory("?!?", mode="keyword").hits == []
