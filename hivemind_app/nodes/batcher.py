"""Micro-batching for the embed worker: requests that arrive within a few milliseconds share one forward pass.

On a CPU the per-call overhead of a transformer dominates short texts, so eight concurrent callers served
as one batch of eight cost little more than one caller. Each caller still gets exactly its own vectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio.to_thread
import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[Vectors]


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    texts: int = 0
    largest_batch: int = 0
    busy_seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)


class MicroBatcher:
    """Collects `embed` calls for up to `window_s` (or `max_texts`) and encodes them together in a thread."""

    def __init__(
        self, encode: Callable[[Sequence[str]], Vectors], window_s: float = 0.005, max_texts: int = 128
    ) -> None:
        self.encode = encode
        self.window_s = window_s
        self.max_texts = max_texts
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return self._queue.qsize() if self._queue else 0

    async def embed(self, texts: list[str]) -> Vectors:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[Vectors] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(texts, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self._queue = None

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].texts)
            deadline = time.monotonic() + self.window_s
            while size < self.max_texts:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
                batch.append(item)
                size += len(item.texts)
            await self._encode(batch)

    async def _encode(self, batch: list[_Pending]) -> None:
        texts = [t for item in batch for t in item.texts]
        started = time.perf_counter()
        try:
            vectors = await anyio.to_thread.run_sync(self.encode, texts)
        except Exception as exc:  # every caller of this batch gets the same error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self.stats.busy_seconds += time.perf_counter() - started
        self.stats.requests += len(batch)
        self.stats.batches += 1
        self.stats.texts += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        offset = 0
        for item in batch:
            count = len(item.texts)
            if not item.future.done():
                item.future.set_result(vectors[offset : offset + count])
            offset += count
