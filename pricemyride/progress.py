"""Progress for long work: a live bar on a terminal, a log line every few seconds in a log file."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("pricemyride.progress")


def progress(items: Iterable[T], what: str, total: int | None = None, every_s: float = 10.0) -> Iterator[T]:
    """Yield ``items``, showing how many went by (tqdm on a TTY, periodic log lines otherwise)."""
    if sys.stderr.isatty():
        yield from tqdm(items, total=total, unit=what, mininterval=0.5)
        return
    started = last = time.monotonic()
    count = 0
    for count, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            of = f"/{total}" if total else ""
            log.info("%s: %d%s (%.1f/s)", what, count, of, count / (now - started))
    log.info("%s: %d done in %.1f s", what, count, time.monotonic() - started)
