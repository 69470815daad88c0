"""Context-aware scoring (`search.session_context`): a memory stored in a sequence (a conversation's turns, a
document's chunks: one session, stored one after another) is scored with its neighbourhood as well as its own
text: score + weight x the mean fused score of the memories stored just before and after it in the same
session (`search.context_window` each side; a neighbour that is not a candidate counts 0).

Invariants: results are still the memories themselves, one per hit, none added or dropped; a memory without a
session has no neighbours (its score is unchanged); neighbours are found by storage order (rowid), so turns
of two sessions stored interleaved are each other's neighbours only if they share the session.
"""

from __future__ import annotations

from hivemind_app.retrieval.candidates import Fused
from hivemind_app.store.memory_store import MemoryStore


class SessionContext:
    def __init__(self, store: MemoryStore, weight: float, window: int) -> None:
        self.store = store
        self.weight = weight
        self.window = window

    def rescore(self, fused: list[Fused]) -> list[Fused]:
        if not fused or self.weight == 0:
            return fused
        sessions = {rowid: m.session_id for rowid, m in self.store.get_many(f.rowid for f in fused).items()}
        score = {f.rowid: f.score for f in fused}
        slots = 2 * self.window
        rescored = []
        for f in fused:
            session = sessions.get(f.rowid)
            near = 0.0
            if session is not None:
                for step in range(1, self.window + 1):
                    for other in (f.rowid - step, f.rowid + step):
                        if other in score and sessions.get(other) == session:
                            near += score[other]
            rescored.append(Fused(f.rowid, f.score + self.weight * near / slots, f.ranks))
        return sorted(rescored, key=lambda f: (-f.score, f.rowid))
