"""Micro-batching: concurrent requests share one model call.

Each request puts its texts on an asyncio queue and awaits a future. One worker task takes the first waiting
request, keeps collecting until the batch holds ``max_batch`` texts or ``max_wait_ms`` has passed since it took
the first one, then runs ``guard.check_batch`` in a worker thread (the event loop stays free to accept and parse
more requests meanwhile) and hands each request its own verdicts. While the model runs, new requests queue up,
so under load batches fill without waiting.

A request whose texts alone exceed ``max_batch`` is run as its own call (the guard batches internally).
If a merged call raises, every request in it is retried alone, so one bad input fails only its own request.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from crestguard.errors import CrestGuardError


class GuardLike(Protocol):
    """What the server needs from a guard: a name and ``check_batch`` (see :func:`crestguard.load_guard`)."""

    name: str

    def check_batch(self, texts: Sequence[str]) -> list[Any]: ...


class ShuttingDown(CrestGuardError):
    """The server is draining its queue and takes no new requests."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Merge concurrent ``submit`` calls into batched ``guard.check_batch`` calls.

    Args:
        guard: anything with ``check_batch(texts) -> list[Verdict]``.
        max_batch: most texts per model call (a single larger request runs alone).
        max_wait_ms: longest wait for more requests once the first one is taken.
        metrics: a :class:`~crestguard.server.metrics.Metrics` (batch sizes, model time, queue depth, errors).

    Example:
        >>> batcher = MicroBatcher(guard, max_batch=32, max_wait_ms=5, metrics=Metrics())
        >>> await batcher.start(); verdicts = await batcher.submit(["hello"]); await batcher.stop()
    """

    def __init__(self, guard: GuardLike, max_batch: int, max_wait_ms: float, metrics) -> None:
        self.guard = guard
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.metrics = metrics
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._carry: _Job | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.closing = False

    async def start(self) -> None:
        """Start the worker task (call from the running event loop)."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crestguard-model")
        self._worker = asyncio.create_task(self._run(), name="crestguard-batcher")

    async def stop(self) -> None:
        """Refuse new requests, finish every queued one, then stop the worker and its thread."""
        if self._worker is None:
            return
        self.closing = True
        await self._queue.put(None)  # FIFO: everything queued before this is still judged
        await self._worker
        self._executor.shutdown(wait=True)
        self._worker = None

    @property
    def depth(self) -> int:
        """Requests waiting for the model."""
        return (self._queue.qsize() if self._queue else 0) + (self._carry is not None)

    async def submit(self, texts: list[str]) -> list[Any]:
        """Judge ``texts`` in the next batch; returns their verdicts or raises what the guard raised for them."""
        if self.closing or self._worker is None:
            raise ShuttingDown("The server is shutting down and takes no new requests.")
        if not texts:
            return []
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(list(texts), future))
        self.metrics.queue_depth.set(self.depth)
        return await future

    async def _next(self, timeout: float | None) -> _Job | None:
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            return self._queue.get_nowait()
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            if first is None:
                return
            jobs, size, deadline, stop = [first], len(first.texts), loop.time() + self.max_wait, False
            while size < self.max_batch:
                try:
                    job = await self._next(deadline - loop.time())
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                if job is None:
                    stop = True
                    break
                if size + len(job.texts) > self.max_batch:
                    self._carry = job
                    break
                jobs.append(job)
                size += len(job.texts)
            self.metrics.queue_depth.set(self.depth)
            await self._process(jobs)
            if stop:
                await self._drain_carry()
                return

    async def _drain_carry(self) -> None:
        while self._carry is not None:
            job, self._carry = self._carry, None
            await self._process([job])

    async def _process(self, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]  # a client that went away cancelled its future
        if not jobs:
            return
        texts = [t for j in jobs for t in j.texts]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            verdicts = await loop.run_in_executor(self._executor, self.guard.check_batch, texts)
            if len(verdicts) != len(texts):
                raise RuntimeError(f"guard.check_batch returned {len(verdicts)} verdicts for {len(texts)} texts")
        except Exception as exc:  # noqa: BLE001 - handed to the request(s) it belongs to
            self.metrics.model_errors.inc()
            if len(jobs) == 1:
                if not jobs[0].future.done():
                    jobs[0].future.set_exception(exc)
                return
            for job in jobs:  # isolate the request that caused it
                await self._process([job])
            return
        self.metrics.model_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_texts.observe(len(texts))
        self.metrics.batch_requests.observe(len(jobs))
        offset = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(verdicts[offset:offset + len(job.texts)])
            offset += len(job.texts)
