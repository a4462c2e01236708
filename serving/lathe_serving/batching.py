"""Adaptive micro-batching: concurrent requests share one onnxruntime call.

Requests parsed in the same turn of the event loop queue up, and one call scores them
all when the loop has nothing else ready (``call_soon``): an idle server answers a lone
request at once, a busy one batches as many as arrived during the previous call, with
no thread hop and no timer. ``max_wait`` > 0 holds the first request that long for
company (worth it only for models whose call cost barely grows with rows); ``max_batch``
caps the rows per call.

The call runs on the event loop's thread: onnxruntime spreads one call over its own
intra-op threads, and while it runs new requests wait in the socket buffers and form
the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np


class Batcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 64,
        max_wait: float = 0.0,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self.observe = observe or (lambda rows: None)
        self.pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self.rows = 0
        self.scheduled = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._flush()

    def submit(self, rows: np.ndarray) -> asyncio.Future[np.ndarray]:
        loop = self.loop or asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self.pending.append((rows, future))
        self.rows += len(rows)
        if self.rows >= self.max_batch:
            self._flush()
        elif not self.scheduled:
            self.scheduled = True
            if self.max_wait > 0:
                loop.call_later(self.max_wait, self._flush)
            else:
                loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self.scheduled = False
        batch, self.pending, self.rows = self.pending, [], 0
        if not batch:
            return
        try:
            inputs = np.concatenate([rows for rows, _ in batch]) if len(batch) > 1 else batch[0][0]
            outputs = self.predict(inputs)
        except Exception as error:  # noqa: BLE001  (each caller gets the failure of the shared call)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        self.observe(len(inputs))
        start = 0
        for rows, future in batch:
            if not future.done():
                future.set_result(outputs[start : start + len(rows)])
            start += len(rows)
