"""Storing and deleting memories through the Hive: content ids, merged tags and sources, tombstones, prefix
ids, all-or-nothing validation and redaction (services/memories.py)."""

from __future__ import annotations

import time

import pytest

from hivemind_app.content import text_hash
from hivemind_app.errors import (
    AmbiguousIdError,
    BinaryContentError,
    EmptyTextError,
    InvalidInputError,
    NotFoundError,
    TextTooLargeError,
)
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.records.status import MemoryCounts


def test_storing_the_same_text_twice_is_one_memory_with_merged_tags_and_sources(hive: Hive) -> None:
    first = hive.store_memory("Staging Postgres listens on 5433", tags=["infra"], source="notes")
    second = hive.store_memory("Staging Postgres listens on 5433  \n", tags=["Postgres"], source="slack")
    assert first.created and not second.created
    assert first.memory.id == second.memory.id
    assert second.memory.tags == ("infra", "postgres")
    assert second.memory.sources == ("notes", "slack")
    assert second.memory.version > first.memory.version
    assert hive.status().memories.live == 1


def test_a_memory_carries_its_fields(hive: Hive) -> None:
    stored = hive.store_memory("Use ruff format, not black", tags=["python"], source="review", session_id="s1")
    memory = stored.memory
    assert stored.embedded
    assert len(memory.id) == 64
    assert memory.session_id == "s1"
    assert memory.origin_node == "test-node"
    assert memory.created_at <= memory.updated_at <= time.time()
    assert not memory.deleted


def test_a_deleted_memory_leaves_every_search_mode_but_stays_as_a_tombstone(hive: Hive) -> None:
    stored = hive.store_memory("The deploy key for prod rotates every 90 days", tags=["ops"])
    hive.store_memory("Nightly backups run at 02:00 on the NAS", tags=["ops"])
    for mode in ("hybrid", "vector", "keyword"):
        assert any(h.memory.id == stored.memory.id for h in hive.search_memory("deploy key rotation", mode=mode).hits)

    hive.delete_memory(stored.memory.id[:10])

    for mode in ("hybrid", "vector", "keyword"):
        hits = hive.search_memory("deploy key rotation", mode=mode).hits
        assert all(h.memory.id != stored.memory.id for h in hits), mode
    tombstone = hive.get_memory(stored.memory.id)
    assert tombstone.deleted and tombstone.text == "" and tombstone.tags == ()
    assert tombstone.version > stored.memory.version
    assert hive.status().memories == MemoryCounts(live=1, deleted=1, embedded=1, pending_embeddings=0, tags=1)
    with pytest.raises(NotFoundError, match="already deleted"):
        hive.delete_memory(stored.memory.id)


def test_storing_a_deleted_text_again_brings_it_back(hive: Hive) -> None:
    stored = hive.store_memory("Feature flags live in flags.yaml")
    hive.delete_memory(stored.memory.id)
    again = hive.store_memory("Feature flags live in flags.yaml", tags=["config"])
    assert again.created and again.embedded
    assert hive.search_memory("flags.yaml", mode="keyword").hits[0].memory.id == stored.memory.id


def test_ids_resolve_by_unique_prefix_only(hive: Hive) -> None:
    stored = hive.store_memory("Alpha note")
    assert hive.get_memory(stored.memory.id[:6]).id == stored.memory.id
    with pytest.raises(NotFoundError, match="at least 4 hex"):
        hive.get_memory("zz")
    with pytest.raises(NotFoundError, match="No memory"):
        hive.get_memory("ffffffff" if not stored.memory.id.startswith("ffff") else "00000000")
    # two texts whose ids share their first four hex characters
    seen: dict[str, str] = {}
    n = 0
    while True:
        text = f"note number {n}"
        prefix = text_hash(text)[:4]
        if prefix in seen:
            break
        seen[prefix] = text
        n += 1
    hive.store_memory(text)
    hive.store_memory(seen[prefix])
    with pytest.raises(AmbiguousIdError, match="more characters"):
        hive.get_memory(prefix)


@pytest.mark.parametrize(
    ("text", "error"),
    [("", EmptyTextError), ("   \n ", EmptyTextError), ("a\x00b", BinaryContentError), (b"bytes", InvalidInputError)],
)
def test_bad_text_is_refused_and_nothing_is_written(hive: Hive, text: object, error: type[Exception]) -> None:
    hive.store_memory("an existing memory")
    with pytest.raises(error):
        hive.store_memory(text)  # type: ignore[arg-type]
    assert hive.status().memories.live == 1


def test_text_over_the_configured_limit_is_refused(hive: Hive) -> None:
    with pytest.raises(TextTooLargeError, match=r"store\.max_text_bytes"):
        hive.store_memory("x" * (hive.settings.store.max_text_bytes + 1))
    assert hive.status().memories.live == 0


def test_one_bad_draft_in_a_batch_writes_none_of_the_batch(hive: Hive) -> None:
    drafts = [MemoryDraft("good one"), MemoryDraft("good two"), MemoryDraft("\x00\x01 bad")]
    with pytest.raises(BinaryContentError):
        hive.store_memories(drafts)
    assert hive.status().memories.live == 0


def test_a_tag_given_as_a_bare_string_is_refused(hive: Hive) -> None:
    with pytest.raises(InvalidInputError, match="list of strings"):
        hive.store_memory("note", tags="infra")  # type: ignore[arg-type]


def test_secrets_are_redacted_before_a_memory_is_stored(hive: Hive) -> None:
    stored = hive.store_memory("CI pushes with token ghp_abcdefghijklmnopqrstuvwxyz0123456789AB to GitHub")
    assert stored.redacted
    assert "ghp_" not in stored.memory.text and "[REDACTED:github-token]" in stored.memory.text
    assert not hive.search_memory("ghp_abcdefghijklmnopqrstuvwxyz0123456789AB", mode="keyword").hits
    assert not hive.store_memory("nothing secret here").redacted


def test_a_memory_carries_the_time_it_describes_given_as_a_date_a_duration_or_seconds(hive: Hive) -> None:
    from datetime import datetime

    may = datetime(2025, 5, 14).astimezone().timestamp()  # a date without a zone is local midnight
    assert hive.store_memory("the May retro", occurred_at="2025-05-14").memory.occurred_at == may
    assert hive.store_memory("the planning call", occurred_at=1747180800).memory.occurred_at == 1747180800.0
    three_days = hive.store_memory("the outage three days ago", occurred_at="3d").memory.occurred_at
    assert three_days is not None and abs(three_days - (time.time() - 3 * 86400)) < 60
    plain = hive.store_memory("stored now, about now").memory
    assert plain.occurred_at is None and plain.when == plain.created_at
    assert hive.get_memory(plain.id).to_dict()["occurred_at"] is None
    assert hive.get_memory(text_hash("the May retro")).to_dict()["occurred_at"] == may


def test_storing_again_keeps_the_time_a_memory_describes_unless_a_new_one_is_given(hive: Hive) -> None:
    first = hive.store_memory("the incident review", occurred_at="2025-05-14").memory
    again = hive.store_memory("the incident review", tags=["ops"]).memory
    assert again.occurred_at == first.occurred_at
    moved = hive.store_memory("the incident review", occurred_at="2025-06-02").memory
    assert moved.occurred_at is not None and moved.occurred_at > (first.occurred_at or 0)


@pytest.mark.parametrize("bad", ["next blue moon", "1e300", "-5", float("nan"), float("inf"), "10000-01-01"])
def test_a_time_that_is_not_one_is_refused_naming_it_and_nothing_is_written(hive: Hive, bad: object) -> None:
    with pytest.raises(InvalidInputError, match=r"ISO date|unix seconds"):
        hive.store_memories([MemoryDraft("good one"), MemoryDraft("dated", occurred_at=bad)])  # type: ignore[arg-type]
    assert hive.status().memories.live == 0


class _CrashBeforeTheDelete(Exception):
    pass


def test_an_update_is_one_transaction_a_crash_before_the_old_ones_delete_leaves_only_the_old(
    hive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hivemind_app.store.memory_rows import MemoryRows

    old = hive.store_memory("Staging Postgres listens on 5433", tags=["infra"]).memory

    def crash(*args: object) -> None:
        raise _CrashBeforeTheDelete  # the process dies between writing the new memory and deleting the old

    monkeypatch.setattr(MemoryRows, "tombstone", crash)
    with pytest.raises(_CrashBeforeTheDelete):
        hive.update_memory(old.id, "Staging Postgres listens on 6543")
    monkeypatch.undo()
    assert [m.text for m in hive.recent_memories(10)] == ["Staging Postgres listens on 5433"]
    assert not hive.search_memory("6543", mode="keyword").hits
    new, _ = hive.update_memory(old.id, "Staging Postgres listens on 6543")  # and it can be done again
    assert [m.id for m in hive.recent_memories(10)] == [new.memory.id] and hive.get_memory(old.id).deleted


def test_an_update_of_a_memory_another_process_deleted_meanwhile_writes_nothing(
    hive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = hive.store_memory("The deploy key rotates every 90 days").memory
    service = hive.parts.memories
    read_before_the_delete = service.store.get(old.id)
    hive.delete_memory(old.id)  # another process, between the update's read and its write
    monkeypatch.setattr(service.store, "get", lambda memory_id: read_before_the_delete)
    with pytest.raises(NotFoundError, match="already deleted"):
        hive.update_memory(old.id, "The deploy key rotates every 30 days")
    assert hive.recent_memories(10) == [] and not hive.search_memory("rotates", mode="keyword").hits
