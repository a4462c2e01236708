"""Adaptive micro-batching: concurrent requests share one onnxruntime call.

A request that finds nobody else waiting runs at once; while a batch is running, new
requests queue and go together in the next call, up to ``max_batch`` rows or until the
oldest has waited ``max_wait`` seconds. Under load, batches grow; when idle, latency is a
single call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class Batcher:
    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int = 64, max_wait: float = 0.002,
                 observe: Callable[[int], None] | None = None) -> None:
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self.observe = observe or (lambda rows: None)
        self.queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = asyncio.Queue()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="onnxruntime")  # ort uses its own intra-op threads
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        self.pool.shutdown(wait=False)

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self.queue.put((rows, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            if not self.queue.empty():  # others came while the last call ran: gather, waiting briefly for more
                deadline = loop.time() + self.max_wait
                while size < self.max_batch and (remaining := deadline - loop.time()) > 0:
                    try:
                        item = self.queue.get_nowait() if not self.queue.empty() else \
                            await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                    batch.append(item)
                    size += len(item[0])
            inputs = np.concatenate([rows for rows, _ in batch]) if len(batch) > 1 else batch[0][0]
            try:
                outputs = await loop.run_in_executor(self.pool, self.predict, inputs)
            except Exception as error:  # each caller gets the failure of the shared call
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.observe(len(inputs))
            start = 0
            for rows, future in batch:
                if not future.done():
                    future.set_result(outputs[start:start + len(rows)])
                start += len(rows)
