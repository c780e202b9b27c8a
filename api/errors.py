"""How the API answers what it refuses: one JSON body with a ``detail`` line naming what was expected and what
arrived (and, for a listing, each field's problem); never a 500 for input from outside."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.guards import RateLimited
from api.keys import KeyRefused
from api.valuing import Refusal
from pricemyride.errors import PriceMyRideError

log = logging.getLogger(__name__)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(KeyRefused)
    async def refused_key(request: Request, exc: KeyRefused) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(RateLimited)
    async def limited(request: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429)  # its headers: api.observe adds them

    @app.exception_handler(Refusal)
    async def refused_listing(request: Request, exc: Refusal) -> JSONResponse:
        return JSONResponse(exc.answer.model_dump(), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e["loc"]),
                     "problem": f"{e['msg']}, got {str(e.get('input'))[:60]!r}"} for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": "request: expected the documented parameters", "problems": problems},
                            status_code=422)  # fmt: skip

    @app.exception_handler(PriceMyRideError)
    async def unavailable(request: Request, exc: PriceMyRideError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)
