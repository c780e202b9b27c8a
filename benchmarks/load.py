"""An open-loop HTTP load generator (asyncio and aiohttp's client, a third of httpx's CPU per request here:
on two cores the generator shares the machine with the server). Requests are sent on a fixed schedule
whether or not earlier ones have been answered, and each latency counts from the moment its request was *due*, so a slow
server cannot hide its queue (no coordinated omission). The generator's own lag — how late a request left
against its schedule — is reported beside the latencies: while it stays small, the generator is not what
is measured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np


@dataclass(frozen=True)
class LoadResult:
    offered_per_s: float
    sent: int
    answered_per_s: float
    statuses: dict[int, int]
    latencies_ms: np.ndarray
    lag_ms: np.ndarray

    def summary(self) -> dict[str, Any]:
        pct = lambda a, q: float(np.percentile(a, q)) if len(a) else float("nan")  # noqa: E731
        return {"offered_per_s": self.offered_per_s, "sent": self.sent, "answered_per_s": self.answered_per_s,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "p50_ms": pct(self.latencies_ms, 50), "p99_ms": pct(self.latencies_ms, 99),
                "max_ms": float(self.latencies_ms.max()) if len(self.latencies_ms) else float("nan"),
                "generator_lag_p99_ms": pct(self.lag_ms, 99)}  # fmt: skip


async def _one(client: aiohttp.ClientSession, request: Callable[[int], tuple[str, bytes]], i: int, due: float,
               out: list[tuple[float, float, int]]) -> None:  # fmt: skip
    lag = time.perf_counter() - due
    path, body = request(i)
    try:
        async with client.post(path, data=body) as answer:
            await answer.read()
            status = answer.status
    except aiohttp.ClientError:
        status = 0
    out.append((time.perf_counter() - due, lag, status))


async def offered_load(base_url: str, headers: dict[str, str], request: Callable[[int], tuple[str, bytes]],
                       rate: float, seconds: float) -> LoadResult:  # fmt: skip
    """Send ``rate`` requests a second for ``seconds``; ``request(i)`` gives the i-th path and body."""
    out: list[tuple[float, float, int]] = []
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, headers=headers, connector=connector, timeout=timeout) as client:
        total, tasks = int(rate * seconds), []
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(_one(client, request, i, due, out)))
        await asyncio.gather(*tasks)
        elapsed = max(time.perf_counter() - start, 1e-9)
    statuses: dict[int, int] = {}
    for _, _, status in out:
        statuses[status] = statuses.get(status, 0) + 1
    ok = np.array([lat for lat, _, status in out if status == 200]) * 1000
    return LoadResult(rate, total, statuses.get(200, 0) / elapsed, statuses, ok,
                      np.array([lag for _, lag, _ in out]) * 1000)  # fmt: skip


async def closed_loop(base_url: str, headers: dict[str, str], request: Callable[[int], tuple[str, bytes]],
                      calls: int, concurrency: int) -> tuple[float, dict[int, int]]:  # fmt: skip
    """``calls`` requests from ``concurrency`` callers that each wait for their answer: seconds and statuses."""
    statuses: dict[int, int] = {}
    counter = iter(range(calls))
    async with aiohttp.ClientSession(base_url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as client:

        async def caller() -> None:
            for i in counter:
                path, body = request(i)
                async with client.post(path, data=body) as answer:
                    await answer.read()
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses
