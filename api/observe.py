"""Every answer counted and timed (``api.metrics``), by route class, status and key, and given the key's
``RateLimit-*`` headers: a pure ASGI middleware, so refusals before any route (413, 401) are counted too."""

from __future__ import annotations

import time
from typing import Any

from api.metrics import ANSWERS, REQUEST_SECONDS


def route_class(path: str) -> str:
    if path.startswith("/v1/valuations/batch"):
        return "batch"
    if path.startswith("/v1/valuations"):
        return "valuation"
    if path.startswith("/v1/listings/"):
        return "listing"
    return "health" if path in ("/readyz", "/livez") else "other"


class Observed:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def watched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                extra = scope.get("state", {}).get("rate_headers", {})
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.encode(), v.encode()) for k, v in extra.items()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = route_class(scope["path"])
            key = scope.get("state", {}).get("key_id", "none")
            ANSWERS.labels(route, str(status[0]), key).inc()
            REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
