"""The valuation API's routes: each reads its input, calls the service, and answers. Nothing else is here.

    POST /v1/valuations[?publish=true]   one listing → price, range, rating, factors, what-ifs, comparables
    POST /v1/valuations/batch            up to ``api_batch_max`` listings → one answer each (bad ones: why)
    GET  /v1/listings/{source}/{id}      a published listing's stored valuations, across model versions
    GET  /readyz, /livez                 readiness (a champion loaded, the database answering), liveness

Every /v1 route needs ``Authorization: Bearer <key>``; the key names the site.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from api import comparables
from api.answers import BatchAnswer, BatchItem, ListingHistory, Refused, StoredValuation, Valuation
from api.errors import install_handlers
from api.guards import BodyLimit, RateLimited
from api.keys import Caller
from api.metrics import COMPARABLES_SECONDS, LISTINGS_VALUED, PUBLISHED
from api.observe import Observed
from api.service import Service
from api.valuing import Refusal, as_priced, explained, listing_of, priced, read_listing
from pricemyride.listing import Listing
from pricemyride.parsing import MAX_NESTING, nested_deeper
from pricemyride.settings import Settings

HISTORY = ("SELECT model_version, predicted_price, price_low, price_high, deal_rating, asking_price, scored_at "
           "FROM predictions WHERE source = %s AND listing_id = %s ORDER BY model_version")  # fmt: skip
LISTING_REF = {"$ref": "#/components/schemas/Listing"}
LISTING_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": LISTING_REF}}}}


def create_api(settings: Settings) -> FastAPI:
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    development = settings.environment == "development"
    app = FastAPI(title="PriceMyRide valuation API", version="1", lifespan=lifespan,
                  docs_url="/docs" if development else None, redoc_url=None,
                  openapi_url="/openapi.json" if development else None)  # fmt: skip
    app.state.service = service
    install_handlers(app)
    routes(app, service)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(Observed)  # outermost: a 413 is counted too
    app.openapi = lambda: openapi_of(app)  # type: ignore[method-assign]
    return app


def openapi_of(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the ``Listing`` event the valuation routes read (the stream's contract)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes, description=__doc__)
        listing = Listing.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
        schema.setdefault("components", {}).setdefault("schemas", {})["Listing"] = listing
        app.openapi_schema = schema
    return app.openapi_schema


async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The key's site, once the key is live and within its rate; its ``RateLimit-*`` headers on the answer."""
    service: Service = request.app.state.service
    found = await service.keys.caller(authorization)
    request.state.key_id = found.key_id
    allowance = service.limits.take(found.key_id)
    request.state.rate_headers = allowance.headers()  # on every answer, whatever the route returns (api.observe)
    if not allowance.allowed:
        raise RateLimited(allowance)
    return found


Key = Annotated[Caller, Depends(caller)]


def routes(app: FastAPI, service: Service) -> None:
    @app.post("/v1/valuations", response_model=Valuation, openapi_extra=LISTING_BODY,
              responses={422: {"model": Refused}})  # fmt: skip
    async def value_one(request: Request, caller: Key, publish: bool = False) -> Valuation:
        """One listing in the event contract (``id`` optional unless published; ``source`` is the key's)."""
        listing = read_listing(await request.body(), caller.site, need_id=publish)
        model = await service.model()
        started = time.perf_counter()
        similar = await comparables.find(service.pool, listing, caller.site, service.settings.api_comparables)
        COMPARABLES_SECONDS.observe(time.perf_counter() - started)
        answer = await service.run(explained, model, listing, similar)
        if publish:
            await service.publisher.publish(listing)
            answer.published = True
            PUBLISHED.inc()
        LISTINGS_VALUED.inc()
        return answer

    @app.post("/v1/valuations/batch", response_model=BatchAnswer, responses={422: {"model": Refused}})
    async def value_batch(request: Request, caller: Key) -> BatchAnswer:
        """A JSON array of listings; each answered in order: its valuation, or its problems."""
        items = batch_items(await request.body(), service.settings.api_batch_max)
        return await batch_answer(service, items, caller.site)

    @app.get("/v1/listings/{source}/{listing_id}", response_model=ListingHistory)
    async def history(source: str, listing_id: str, caller: Key) -> ListingHistory | JSONResponse:
        """Every stored valuation of one of this site's published listings, by model version."""
        if source != caller.site:
            return JSONResponse({"detail": f"listing: expected a listing of this key's site {caller.site!r}, "
                                           f"got source {source[:60]!r}"}, status_code=403)  # fmt: skip
        async with service.pool.connection() as conn:
            rows = await (await conn.execute(HISTORY, [source, listing_id])).fetchall()
        if not rows:
            return JSONResponse({"detail": f"listing: expected a stored listing {listing_id[:80]!r}, got none"},
                                status_code=404)  # fmt: skip
        names = StoredValuation.model_fields
        stored = [StoredValuation(**dict(zip(names, row, strict=True))) for row in rows]
        return ListingHistory(source=source, id=listing_id, valuations=stored)

    health(app, service)


def health(app: FastAPI, service: Service) -> None:
    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        failing = await service.failing()
        version = service.champion.model.version if service.champion.model else None
        return JSONResponse({"ready": not failing, "failing": failing, "model_version": version},
                            status_code=503 if failing else 200)  # fmt: skip

    @app.get("/livez", include_in_schema=False)
    async def livez() -> JSONResponse:
        return JSONResponse({"alive": True})


def batch_items(raw: bytes, most: int) -> list[Any]:
    """A batch body as its items: a JSON array of at most ``most`` objects (nesting and size checked)."""
    text = raw.decode("utf-8", errors="replace")
    if nested_deeper(text, MAX_NESTING):
        raise Refusal(f"batch: expected an array of flat listings, got nesting deeper than {MAX_NESTING} levels")
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Refusal(f"batch: expected a JSON array of listings, got text that is not JSON ({exc})") from None
    if not isinstance(items, list):
        raise Refusal(f"batch: expected a JSON array of listings, got {type(items).__name__}")
    if not 1 <= len(items) <= most:
        raise Refusal(f"batch: expected 1 to {most:,} listings, got {len(items):,}")
    return items


async def batch_answer(service: Service, items: list[Any], site: str) -> BatchAnswer:
    """One vectorised pricing call for the listings that keep the contract; the others say why not."""
    results: list[BatchItem] = [BatchItem(index=i) for i in range(len(items))]
    good: list[tuple[int, Listing]] = []
    for i, item in enumerate(items):
        try:
            good.append((i, listing_of(item, site, need_id=False)))
        except Refusal as refusal:
            results[i].error = refusal.answer
    model = await service.model()
    rows = await service.run(priced, model, [listing for _, listing in good])
    for (i, _), row in zip(good, rows, strict=True):
        if isinstance(row, str):
            results[i].error = Refused(detail=row)
        else:
            results[i].valuation = as_priced(row)
    valued = sum(r.valuation is not None for r in results)
    LISTINGS_VALUED.inc(valued)
    return BatchAnswer(model_version=model.version, valued=valued, refused=len(results) - valued, results=results)
