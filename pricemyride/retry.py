"""One way to wait out a service that is down: retry with doubling back-off, never give up, say so in the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 10.0


async def retried(
    attempt: Callable[[], Awaitable[T]],
    retryable: type[BaseException] | tuple[type[BaseException], ...],
    what: str,
    on_failure: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """``await attempt()`` until it succeeds; a ``retryable`` error is logged ("<what> failed (…); retrying
    in N s"), ``on_failure`` runs (e.g. to drop a broken connection) and the back-off doubles up to 10 s."""
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            return await attempt()
        except retryable as exc:
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, backoff)
            if on_failure is not None:
                await on_failure()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
