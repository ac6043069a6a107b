"""The service's micro-batching: requests that arrive together are labeled in one call."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline.serving.failures import log_failure

TRIM_EVERY_S = 1.0  # how often a busy server returns freed memory to the OS

log = logging.getLogger(__name__)


class LabelingFailed(Exception):
    """Labeling a request's texts failed even on their own (logged with its id)."""


@dataclass
class Job:
    """One request: its texts, its id (for the log) and the future its results go to."""

    texts: list[str]
    request_id: str
    future: asyncio.Future


class MicroBatcher:
    """Gathers the texts of requests that arrive together into one call of `label`.

    A batch opens with the first request and closes once `window_s` passes with no new one (or
    once it has `max_texts` texts or more): a lone request waits one window, and under load the
    requests that come in while others are still arriving share their batch. The batch is labeled
    in one call on `model_thread` (asyncio's default executor if None), while the requests that
    arrive meanwhile queue for the next. If the call fails, the batch is split until only the
    requests whose texts fail it are left: those get `LabelingFailed`, their neighbours results.
    """

    def __init__(
        self,
        label: Callable[[list[str]], list[dict]],
        window_s: float,
        max_texts: int,
        model_thread: ThreadPoolExecutor | None = None,
    ) -> None:
        self.label, self.window_s, self.max_texts = label, window_s, max_texts
        self.model_thread = model_thread
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.batches = self.texts = 0
        self.trimmed_at = time.monotonic()

    async def submit(self, texts: list[str], request_id: str = "-") -> list[dict]:
        """The results for `texts`, once the batch they joined is done; `LabelingFailed` if
        labeling them failed on their own."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(Job(texts, request_id, future))
        return await future

    async def run(self) -> None:
        """Take batches from the queue and label them, one at a time, until cancelled."""
        while True:
            jobs = [await self.queue.get()]
            size = len(jobs[0].texts)
            while size < self.max_texts:
                await asyncio.sleep(self.window_s)
                if self.queue.empty():
                    break
                while not self.queue.empty() and size < self.max_texts:
                    jobs.append(self.queue.get_nowait())
                    size += len(jobs[-1].texts)
            await self._label(jobs)

    def _label_and_trim(self, texts: list[str]) -> list[dict]:
        """`label` the texts, then hand the memory freed since the last trim back to the OS.

        Batches of ever new shapes leave freed blocks scattered over glibc's heap, which it does
        not return by itself, so the server's memory would grow (docs/serving.md, "Why the code
        is as it is").
        """
        results = self.label(texts)
        if time.monotonic() - self.trimmed_at >= TRIM_EVERY_S:
            release_freed_memory()
            self.trimmed_at = time.monotonic()
        return results

    async def _label(self, jobs: list[Job]) -> None:
        """Label every job's texts in one call and hand each job its share of the results; if the
        call fails, label each half of the jobs the same way, down to single jobs."""
        jobs = [job for job in jobs if not job.future.done()]  # a client that went away: cancelled
        if not jobs:
            return
        texts = [text for job in jobs for text in job.texts]
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self.model_thread, self._label_and_trim, texts
            )
            if len(results) != len(texts):
                raise RuntimeError(f"{len(results)} results for {len(texts)} texts")
        except Exception as err:
            await self._split(jobs, err)
            return
        self.batches, self.texts = self.batches + 1, self.texts + len(texts)
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(results[start : start + len(job.texts)])
            start += len(job.texts)

    async def _split(self, jobs: list[Job], err: Exception) -> None:
        """After labeling `jobs` together failed with `err`: fail a single job, or label each half
        of them on its own, so the jobs whose texts do not fail get their results."""
        if len(jobs) == 1:
            log_failure(f"request {jobs[0].request_id}", err)
            if not jobs[0].future.done():
                jobs[0].future.set_exception(LabelingFailed(jobs[0].request_id))
            return
        ids = ", ".join(job.request_id for job in jobs)
        log.warning(
            "requests %s failed together (%s); labeling them in halves", ids, type(err).__name__
        )
        half = len(jobs) // 2
        await self._label(jobs[:half])
        await self._label(jobs[half:])


def release_freed_memory() -> None:
    """Return the heap's free pages to the OS (glibc's malloc_trim; nothing elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
