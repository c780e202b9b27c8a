"""One way to wait out a service that is down: retry with doubling back-off, never give up, say so in the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 10.0


@dataclass
class Backoff:
    """Waits that double from 0.5 s up to 10 s, each announced: "<what> failed (…); retrying in N s"."""

    what: str
    delay_s: float = FIRST_BACKOFF_S

    async def wait(self, exc: BaseException) -> None:
        log.warning("%s failed (%s); retrying in %.1f s", self.what, exc, self.delay_s)
        await asyncio.sleep(self.delay_s)
        self.delay_s = min(self.delay_s * 2, MAX_BACKOFF_S)


async def retried(
    attempt: Callable[[], Awaitable[T]],
    retryable: type[BaseException] | tuple[type[BaseException], ...],
    what: str,
    on_failure: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """``await attempt()`` until it succeeds; after a ``retryable`` error ``on_failure`` runs (e.g. to drop a
    broken connection) and the worker waits out a ``Backoff``."""
    backoff = Backoff(what)
    while True:
        try:
            return await attempt()
        except retryable as exc:
            if on_failure is not None:
                await on_failure()
            await backoff.wait(exc)


async def every(every_s: float, job: Callable[[], object], what: str) -> None:
    """Run the blocking ``job`` now and then ``every_s`` after each run, on a thread (off the event loop). A
    failure is logged and the next run tries again: housekeeping never stops a service."""
    while True:
        try:
            await asyncio.get_running_loop().run_in_executor(None, job)
        except Exception:
            log.exception("%s failed; the next run tries again", what)
        await asyncio.sleep(every_s)
