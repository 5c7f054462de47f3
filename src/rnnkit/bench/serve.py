"""Load test of ``rnnkit serve`` on loopback: requests per second and p50/p99 latency of batch-1 poem requests
at rising concurrency, and the batch sizes the service formed from them.

    rnnkit bench serve                         # concurrency 1, 4, 16, 32; 128 requests per level
    rnnkit bench serve --compare-at 16         # and once more with batching off (--max-batch 1)

The service runs in a child process (``rnnkit serve --port P`` on 127.0.0.1, the shipped poetry model unless
``run`` names another); the client keeps ``concurrency`` requests in flight with ``httpx.AsyncClient``. Each
request asks for one acrostic quatrain (``num=1``) with its index as the seed. A level stops after ``requests``
requests or ``max_seconds``, whichever comes first (the requests in flight then finish). The service batches
concurrent requests (up to ``--max-batch``, waiting up to ``--max-wait-ms``), so requests per second grow with
the concurrency while one request at a time measures the latency of a lone poem.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

HEADS = ("春花秋月", "江山如画", "风月无边", "白云深处", "明月清风", "山高水长", "花好月圆", "青山绿水")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Level:
    concurrency: int  # requests kept in flight
    max_batch: int | None  # the service's batching limit (None: the service's default)
    requests: int  # requests sent (answered or failed)
    errors: int  # answers other than 200, and transport failures
    seconds: float  # wall time of the level
    requests_per_s: float  # answered requests / seconds
    p50_ms: float  # latency of the answered requests, nearest rank
    p99_ms: float
    mean_batch: float | None  # requests per model batch in this level, from the service's counters (None: unknown)
    largest_batch: int | None  # the most requests in one batch in this level (None: unknown)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``: one of the values, never interpolated.

    Example:
        >>> percentile([4.0, 1.0, 3.0, 2.0], 50), percentile([4.0, 1.0, 3.0, 2.0], 99)
        (2.0, 4.0)
    """
    if not values:
        raise ValueError("Expected at least one value. Received: []")
    if not 0 < q <= 100:
        raise ValueError(f"Expected 0 < q <= 100. Received: q={q}")
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def request_body(index: int, form: int = 7) -> dict:
    """The ``index``-th request of a level: one acrostic quatrain, seeded by its index.

    Example:
        >>> request_body(1)
        {'acrostic': '江山如画', 'form': 7, 'num': 1, 'seed': 1}
    """
    return {"acrostic": HEADS[index % len(HEADS)], "form": form, "num": 1, "seed": index}


def batch_counters(health: dict) -> dict[int, int] | None:
    """{requests per batch: batches} the service has run so far, from its /health answer; None without one.

    Example:
        >>> batch_counters({"status": "ok", "batching": {"batches": 3, "requests_per_batch": {"1": 2, "4": 1}}})
        {1: 2, 4: 1}
        >>> batch_counters({"status": "ok"}) is None
        True
    """
    stats = health.get("batching")
    if isinstance(stats, dict) and isinstance(stats.get("requests_per_batch"), dict):
        return {int(size): int(count) for size, count in stats["requests_per_batch"].items()}
    return None


def batches_between(before: dict[int, int] | None, after: dict[int, int] | None) -> tuple[float | None, int | None]:
    """(mean, largest) requests per batch of the batches run between two ``batch_counters``; None when unknown.

    Example:
        >>> batches_between({1: 2}, {1: 3, 4: 2, 3: 1})  # one batch of 1, two of 4, one of 3
        (3.0, 4)
    """
    if before is None or after is None:
        return None, None
    new = {size: count - before.get(size, 0) for size, count in after.items() if count > before.get(size, 0)}
    if not new:
        return None, None
    return sum(size * count for size, count in new.items()) / sum(new.values()), max(new)


async def _load(client, concurrency: int, requests: int, max_seconds: float, form: int) -> tuple[list[float], int, int]:
    """Keep ``concurrency`` requests in flight until ``requests`` were sent or ``max_seconds`` passed."""
    import httpx

    latencies: list[float] = []
    errors = 0
    next_index = 0
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal next_index, errors
        while next_index < requests and time.perf_counter() < deadline:
            index, next_index = next_index, next_index + 1
            start = time.perf_counter()
            try:
                answer = await client.post("/generate", json=request_body(index, form))
                ok = answer.status_code == 200 and len(answer.json().get("texts", [])) == 1
            except (httpx.HTTPError, ValueError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, next_index


async def _measure(url: str, concurrency: int, requests: int, max_seconds: float, form: int,
                   max_batch: int | None) -> Level:  # fmt: skip
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=max_seconds + 30, limits=limits, trust_env=False) as client:
        before = batch_counters((await client.get("/health")).json())
        start = time.perf_counter()
        latencies, errors, sent = await _load(client, concurrency, requests, max_seconds, form)
        seconds = time.perf_counter() - start
        after = batch_counters((await client.get("/health")).json())
    p50, p99 = (1000 * percentile(latencies, q) if latencies else math.nan for q in (50, 99))
    return Level(concurrency, max_batch, sent, errors, seconds, len(latencies) / seconds, p50, p99,
                 *batches_between(before, after))  # fmt: skip


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """``rnnkit serve`` in a child process on a free loopback port; a context manager that waits for /health."""

    def __init__(self, run: str | None = None, max_batch: int | None = None, threads: int = 0,
                 startup_seconds: float = 120.0):  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "rnnkit", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.command += ["--run", str(run)] if run else []
        self.command += ["--max-batch", str(max_batch)] if max_batch else []
        self.env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
        self.startup_seconds = startup_seconds

    def __enter__(self) -> Service:
        import httpx

        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.startup_seconds
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2, trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self._output()
                self.__exit__(None, None, None)
                raise RuntimeError(f"`{' '.join(self.command[2:])}` did not answer /health within "
                                   f"{self.startup_seconds:.0f} s; its output ends:\n{output[-2000:]}")  # fmt: skip
            time.sleep(0.1)

    def _output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def run(
    levels: tuple[int, ...] = (1, 4, 16, 32),
    requests: int = 128,
    max_seconds: float = 60.0,
    form: int = 7,
    compare_at: int | None = 16,
    run_dir: str | Path | None = None,
    url: str | None = None,
    threads: int = 0,
    warmup: int = 2,
    progress=None,
) -> list[Level]:
    """One ``Level`` per concurrency in ``levels`` against the service with its batching on, then (``compare_at``)
    one more at that concurrency against a second service started with ``--max-batch 1`` (batching off).

    ``url``: load a service already running on loopback instead (then there is no comparison). ``threads``:
    OMP_NUM_THREADS of the service (0: inherited). ``warmup`` requests run before the first level.

    Example:
        >>> rows = run(levels=(1, 2), requests=2, compare_at=None)  # doctest: +SKIP
        >>> [(r.concurrency, r.errors) for r in rows]  # doctest: +SKIP
        [(1, 0), (2, 0)]
    """
    if not levels or any(c < 1 for c in levels):
        raise ValueError(f"Expected concurrency levels >= 1. Received: levels={levels!r}")
    if requests < 1 or max_seconds <= 0:
        raise ValueError(f"Expected requests >= 1 and max_seconds > 0. Received: requests={requests}, "
                         f"max_seconds={max_seconds}")  # fmt: skip
    if form not in (5, 7):
        raise ValueError(f"Expected form to be one of [5, 7]. Received: form={form!r}")
    if url is not None and urlsplit(url).hostname not in LOOPBACK:
        raise ValueError(f"Expected a loopback URL (host one of {list(LOOPBACK)}). Received: url={url!r}")

    def measure(target: str, concurrency: int, max_batch: int | None) -> Level:
        level = asyncio.run(_measure(target, concurrency, requests, max_seconds, form, max_batch))
        if progress is not None:
            progress(level)
        return level

    def warm(target: str) -> None:
        if warmup:
            asyncio.run(_measure(target, 1, warmup, max_seconds, form, None))

    if url is not None:
        warm(url.rstrip("/"))
        return [measure(url.rstrip("/"), c, None) for c in levels]
    with Service(run_dir, threads=threads) as service:
        warm(service.url)
        rows = [measure(service.url, c, None) for c in levels]
    if compare_at:
        with Service(run_dir, max_batch=1, threads=threads) as service:
            warm(service.url)
            rows.append(measure(service.url, compare_at, 1))
    return rows


def machine(threads: int = 0) -> str:
    """The machine in words, without importing torch: CPU, cores, the service's threads, torch's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "?"
    service_threads = threads or os.environ.get("OMP_NUM_THREADS") or "default"
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores, service OMP_NUM_THREADS={service_threads}, "
            f"torch {torch_version}")  # fmt: skip


def as_json(rows: list[Level], threads: int = 0) -> dict:
    return {"machine": machine(threads), "levels": [asdict(r) for r in rows]}
