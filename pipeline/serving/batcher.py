"""The service's micro-batching: requests that arrive together are labeled together, in turns."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pipeline.serving.failures import log_failure

TRIM_EVERY_S = 1.0  # how often a busy server returns freed memory to the OS

log = logging.getLogger(__name__)


class LabelingFailed(Exception):
    """Labeling a request's texts failed even on their own (logged with its id)."""


@dataclass(eq=False)  # compared (and hashed) by identity
class Job:
    """One request: its texts, its id (for the log), the future its results go to, and how far
    its texts have got."""

    texts: list[str]
    request_id: str
    future: asyncio.Future
    rows: list = field(init=False)  # each text's result, once its batch is labeled
    taken: int = 0  # texts handed to a batch so far
    left: int = field(init=False)  # texts not labeled yet

    def __post_init__(self) -> None:
        self.rows, self.left = [None] * len(self.texts), len(self.texts)


class MicroBatcher:
    """Labels the texts of the requests waiting in turns, in batches of at most `budget`.

    A batch opens with the first request and closes once `window_s` passes with no new one, or
    once the waiting texts fill its budget: a lone request waits one window, and under load the
    requests that come in while others are still arriving share their batch. A batch takes the
    waiting requests' texts round-robin, one text of each in turn, until the next would bring its
    `cost` (one a text by default) over `budget`; so a big request is labeled over several
    batches, and a small one sent meanwhile waits for the batch being labeled and rides in the
    next. A request is answered once all its texts are. Each batch is labeled in one call on
    `model_thread` (asyncio's default executor if None). If the call fails, the batch is split
    until only the requests whose texts fail it are left: those get `LabelingFailed` (and their
    texts still waiting are dropped), their neighbours results.
    """

    def __init__(
        self,
        label: Callable[[list[str]], list[dict]],
        window_s: float,
        budget: int,
        model_thread: ThreadPoolExecutor | None = None,
        cost: Callable[[str], int] = lambda text: 1,
    ) -> None:
        self.label, self.window_s, self.budget, self.cost = label, window_s, budget, cost
        self.model_thread = model_thread
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.turns: deque[Job] = deque()  # the requests with texts not yet in a batch, in turn
        self.batches = self.texts = 0
        self.trimmed_at = time.monotonic()

    async def submit(self, texts: list[str], request_id: str = "-") -> list[dict]:
        """The results for `texts`, once the batches they joined are done; `LabelingFailed` if
        labeling them failed on their own."""
        if not texts:
            return []
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(Job(texts, request_id, future))
        return await future

    async def run(self) -> None:
        """Take batches from the waiting texts and label them, one at a time, until cancelled."""
        while True:
            if not self.turns:
                self.turns.append(await self.queue.get())
            self._admit()
            while self._waiting() < self.budget:
                await asyncio.sleep(self.window_s)
                if self.queue.empty():
                    break
                self._admit()
            await self._label(self._next_batch())

    def _admit(self) -> None:
        """The queued requests take their turns after those already waiting."""
        while not self.queue.empty():
            self.turns.append(self.queue.get_nowait())

    def _waiting(self) -> int:
        """The cost of the texts not yet in a batch (counted up to the budget only)."""
        total = 0
        for job in self.turns:
            for text in job.texts[job.taken :]:
                total += self.cost(text)
                if total >= self.budget:
                    return total
        return total

    def _next_batch(self) -> list[tuple[Job, int]]:
        """(request, text index) pairs: the next text of each waiting request in turn, until the
        next would bring the batch over budget (a batch has at least one text)."""
        batch: list[tuple[Job, int]] = []
        spent = 0
        while self.turns:
            job = self.turns.popleft()
            if job.future.done():  # failed, or its client went away: cancelled
                continue
            cost = self.cost(job.texts[job.taken])
            if batch and spent + cost > self.budget:
                self.turns.appendleft(job)  # it goes first next time
                break
            batch.append((job, job.taken))
            job.taken, spent = job.taken + 1, spent + cost
            if job.taken < len(job.texts):
                self.turns.append(job)
        return batch

    async def _label(self, batch: list[tuple[Job, int]]) -> None:
        """Label the batch's texts in one call and hand each request the results of its texts,
        answering those that have all theirs; if the call fails, split the batch."""
        batch = [(job, i) for job, i in batch if not job.future.done()]
        if not batch:
            return
        texts, loop = [job.texts[i] for job, i in batch], asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.model_thread, self.label, texts)
            if len(results) != len(texts):
                raise RuntimeError(f"{len(results)} results for {len(texts)} texts")
        except Exception as err:
            await self._split(batch, err)
            return
        self.batches, self.texts = self.batches + 1, self.texts + len(texts)
        for (job, i), row in zip(batch, results, strict=True):
            job.rows[i], job.left = row, job.left - 1
            if not job.left and not job.future.done():
                job.future.set_result(job.rows)
        if time.monotonic() - self.trimmed_at >= TRIM_EVERY_S:  # once answered: off their clock
            await loop.run_in_executor(self.model_thread, release_freed_memory)
            self.trimmed_at = time.monotonic()

    async def _split(self, batch: list[tuple[Job, int]], err: Exception) -> None:
        """After labeling `batch` failed with `err`: fail its request if it holds one request's
        texts only, or label the texts of each half of its requests on their own, so the
        requests whose texts do not fail get their results."""
        jobs = list(dict.fromkeys(job for job, _ in batch))
        if len(jobs) == 1:
            log_failure(f"request {jobs[0].request_id}", err)
            if not jobs[0].future.done():
                jobs[0].future.set_exception(LabelingFailed(jobs[0].request_id))
            return
        ids = ", ".join(job.request_id for job in jobs)
        log.warning(
            "requests %s failed together (%s); labeling them in halves", ids, type(err).__name__
        )
        first = set(jobs[: len(jobs) // 2])
        await self._label([item for item in batch if item[0] in first])
        await self._label([item for item in batch if item[0] not in first])


def release_freed_memory() -> None:
    """Return the heap's free pages to the OS (glibc's malloc_trim; nothing elsewhere).

    Batches of ever new shapes leave freed blocks scattered over glibc's heap, which it does not
    return by itself, so the server's memory would grow (docs/serving.md, "Why the code is as
    it is").
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
