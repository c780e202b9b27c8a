"""What stands in front of every route: the body's size (before anything reads it) and each key's rate.

- ``BodyLimit``, a pure ASGI middleware: a ``Content-Length`` over the limit is answered 413 at once; a body
  sent in chunks is counted as it arrives and refused (413) the moment it passes the limit, so no route
  ever holds more than the limit in memory.
- ``RateLimits``: a moving window per key (the ``limits`` library, in this process's memory), answered
  with ``RateLimit-*`` headers on every request and 429 with ``Retry-After`` past the limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

Scope = dict[str, Any]
Message = dict[str, Any]


def plain_answer(status: int, detail: str) -> tuple[Message, Message]:
    body = orjson.dumps({"detail": detail})
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}  # fmt: skip


class TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse (413) a request body over ``limit`` bytes before a route parses it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self.refuse(send, f"{declared.decode(errors='replace')[:20]} bytes declared")
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message: Message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge:
            if not started:
                await self.refuse(send, f"more than {self.limit:,} bytes sent")

    async def refuse(self, send: Any, got: str) -> None:
        for message in plain_answer(413, f"request body: expected at most {self.limit:,} bytes, got {got}"):
            await send(message)


@dataclass(frozen=True)
class Allowance:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
               "RateLimit-Reset": str(self.reset_s), "RateLimit-Policy": f"{self.limit};w=60"}  # fmt: skip
        if not self.allowed:
            out["Retry-After"] = str(max(self.reset_s, 1))
        return out


class RateLimits:
    """``per_minute`` requests per key in any 60 s (a moving window), in this process."""

    def __init__(self, per_minute: int) -> None:
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def take(self, key_id: str) -> Allowance:
        allowed = self.limiter.hit(self.item, key_id)
        stats = self.limiter.get_window_stats(self.item, key_id)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Allowance(allowed, self.item.amount, stats.remaining, reset)


class RateLimited(Exception):
    """Answered 429 with the allowance's headers (``Retry-After`` among them)."""

    def __init__(self, allowance: Allowance) -> None:
        super().__init__(f"rate limit: expected at most {allowance.limit} requests a minute per key, got more; "
                         f"retry in {max(allowance.reset_s, 1)} s")  # fmt: skip
        self.allowance = allowance
