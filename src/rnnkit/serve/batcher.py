"""Batching concurrent ``/generate`` requests: one queue, one worker, one model batch for compatible requests.

A request becomes a ``Job`` (its constraint, prefix, rows, sampling options and seed).  The worker takes
the first job waiting, then collects more for up to ``max_wait_ms`` or until ``max_batch`` rows are
waiting, groups the jobs that can share a batch (same prefix, same number of steps, same sampling
options: ``Job.key``) and runs each group as one call of ``decoding.sample``, in a thread so that the
event loop keeps accepting requests.  Each row keeps its own constraint (``BatchedForm``: one acrostic
per request) and each request its own generator, so a seeded request gets the texts it would get alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..decoding import FreeText, PoemForm, SamplingOptions, sample


class BatchedForm:
    """Rows of several constraints of the same length, in one batch: ``parts`` is a list of
    (form, rows); the rows of each form follow those of the one before.

    Example:
        >>> from rnnkit.tasks.poetry import load_model
        >>> vocab = load_model().vocab
        >>> both = BatchedForm([(PoemForm(vocab, 5, heads="春花秋月"), 2), (PoemForm(vocab, 5, heads="江山如画"), 1)])
        >>> both.allowed(0).shape == (3, len(vocab)), both.length
        (True, 24)
        >>> [vocab.itos[i] for i in both.allowed(6).int().argmax(-1).tolist()]  # line 2 starts with its head
        ['花', '花', '山']
    """

    def __init__(self, parts: list[tuple[PoemForm | FreeText, int]]):
        lengths = {form.length for form, _ in parts}
        if len(lengths) != 1:
            raise ValueError(f"Expected forms of one length to share a batch. Received: lengths {sorted(lengths)}")
        self.parts = parts
        self.length = lengths.pop()
        self.rows = sum(rows for _, rows in parts)

    def allowed(self, t: int, history: Tensor | None = None) -> Tensor:
        """(B, V): each row's own mask at step t (``history`` (B, t) as in ``PoemForm.allowed``)."""
        masks, start = [], 0
        for form, rows in self.parts:
            mask = form.allowed(t, None if history is None else history[start : start + rows])
            masks.append(mask.expand(rows, -1) if mask.dim() == 1 else mask)
            start += rows
        return torch.cat(masks)

    def render(self, vocab, ids: Tensor) -> list[list[str]]:
        """ids (B, length) -> the texts of each part, in order."""
        texts, start = [], 0
        for form, rows in self.parts:
            texts.append([form.render(vocab, row) for row in ids[start : start + rows]])
            start += rows
        return texts


@dataclass
class Job:
    """One /generate request: ``num`` rows of ``form`` after ``prefix``."""

    form: PoemForm | FreeText
    prefix: list[int]
    num: int
    options: SamplingOptions
    seed: int | None = None
    future: asyncio.Future | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple:
        """Jobs with equal keys can run in one batch."""
        o = self.options
        return (tuple(self.prefix), self.form.length, o.temperature, o.top_k, o.top_p, o.repetition_penalty)


def run_jobs(model, vocab, jobs: list[Job]) -> list[list[str]]:
    """Run compatible jobs as one batch of ``decoding.sample``; the texts of each job, in order.

    Each job draws from its own generator (seeded, or from torch's global one), so a seeded job's texts
    do not depend on the jobs beside it.
    """
    form = BatchedForm([(job.form, job.num) for job in jobs])
    generators = []
    for job in jobs:
        generator = torch.Generator().manual_seed(job.seed) if job.seed is not None else None
        generators += [generator] * job.num
    ids = sample(model, jobs[0].prefix, form, num=form.rows, options=jobs[0].options, generator=generators)
    return form.render(vocab, ids)


class Batcher:
    """The queue and worker of /generate; ``await batcher.submit(job)`` -> the job's texts.

    The worker starts with the first job (in the running event loop) and stops with ``close``.
    ``stats()`` counts the batches run and how many requests each held.
    """

    def __init__(self, model, vocab, max_batch: int = 16, max_wait_ms: float = 10):
        if max_batch < 1:
            raise ValueError(f"Expected max_batch >= 1. Received: max_batch={max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"Expected max_wait_ms >= 0. Received: max_wait_ms={max_wait_ms}")
        self.model, self.vocab = model, vocab
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batch_sizes: Counter[int] = Counter()  # requests per batch -> batches
        self.rows = 0

    async def submit(self, job: Job) -> list[str]:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work())
        job.future = loop.create_future()
        await self._queue.put(job)
        return await job.future

    async def close(self) -> None:
        if self._worker is not None and self._loop is asyncio.get_running_loop():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None

    def stats(self) -> dict:
        return {
            "batches": sum(self.batch_sizes.values()),
            "requests": sum(size * count for size, count in self.batch_sizes.items()),
            "rows": self.rows,
            "requests_per_batch": {str(size): count for size, count in sorted(self.batch_sizes.items())},
            "max_requests_per_batch": max(self.batch_sizes, default=0),
        }

    async def _collect(self) -> list[Job]:
        """The first job waiting, and those arriving within max_wait of it, up to max_batch rows."""
        jobs = [await self._queue.get()]
        rows = jobs[0].num
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while rows < self.max_batch:
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                job = self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            jobs.append(job)
            rows += job.num
        return jobs

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            groups: dict[tuple, list[list[Job]]] = {}
            for job in await self._collect():
                chunks = groups.setdefault(job.key, [[]])
                if sum(j.num for j in chunks[-1]) + job.num > self.max_batch:
                    chunks.append([])
                chunks[-1].append(job)
            for chunk in (chunk for chunks in groups.values() for chunk in chunks):
                chunk = [job for job in chunk if not job.future.done()]  # a client gone: skip its rows
                if not chunk:
                    continue
                try:
                    texts = await loop.run_in_executor(None, run_jobs, self.model, self.vocab, chunk)
                except Exception as error:  # noqa: BLE001 — handed to the requests waiting, which raise it
                    for job in chunk:
                        if not job.future.done():
                            job.future.set_exception(error)
                    continue
                self.batch_sizes[len(chunk)] += 1
                self.rows += sum(job.num for job in chunk)
                for job, result in zip(chunk, texts):
                    if not job.future.done():
                        job.future.set_result(result)
