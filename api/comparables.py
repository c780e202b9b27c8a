"""Comparables: the stored listings most like the one being valued, and what they say about its price.

How similarity is chosen:
1. candidates: the same make and model family (the model's first word: "f-150 xlt" → "f-150"), the
   ``PER_YEAR`` latest of each model year within ``YEARS`` of the listing's; without a year, the ``POOL``
   latest of the newest model years. Each is read in the order of one index and stops at its limit, so the
   query does not grow with the table. Without a make and a model there are no comparables (a second index
   by make alone would cost every stored row again);
2. among them, those in the same state first, then the nearest by ``|Δyear| + |Δmiles| / 20,000`` (a year
   of age counts like 20,000 miles), then the most recent;
3. one row per listing (its latest valuation), asking prices only (a comparable without one says nothing
   about the market), ``count`` of them.

Another site's listing is shown without its id or site: its price and car, never a way to find it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pricemyride.listing import Listing
from pricemyride.storage import FAMILY, MAKE, YEAR

YEARS: Final = 2
PER_YEAR: Final = 30  # the latest of each model year: at most 150 candidates over five years
POOL: Final = 150
MILES_PER_YEAR: Final = 20_000.0
_COLUMNS: Final = ("source, listing_id, predicted_price, price_low, price_high, deal_rating, asking_price, "
                   "event_time, scored_at, listing")  # fmt: skip
# Each candidate set is read in an index's own order and stops at its LIMIT (predictions_comparables,
# predictions_make): the rows read do not grow with the table.
_ONE_YEAR: Final = (f"(SELECT {_COLUMNS} FROM predictions WHERE {MAKE} = %(make)s AND {FAMILY} = %(family)s "  # noqa: S608
                    f"AND {YEAR} = %(year{{i}})s ORDER BY scored_at DESC LIMIT {PER_YEAR})")  # fmt: skip
_FAMILY: Final = (f"SELECT {_COLUMNS} FROM predictions WHERE {MAKE} = %(make)s AND {FAMILY} = %(family)s "  # noqa: S608
                  f"ORDER BY {YEAR} DESC, scored_at DESC LIMIT {POOL}")  # fmt: skip
_RANKED: Final = f"""
    SELECT * FROM ({{candidates}}) AS candidates
    WHERE asking_price IS NOT NULL
    ORDER BY (listing->>'state' IS NOT DISTINCT FROM %(state)s) DESC,
             coalesce(abs({YEAR} - %(year)s), 0) + coalesce(abs((listing->>'odometer')::float8 - %(odometer)s)
                                                            / %(per_year)s, 0),
             scored_at DESC
    LIMIT %(fetch)s"""  # noqa: S608 - built from constants only


def candidates(year: int | None) -> str:
    """The candidate rows' SQL: the family's latest by model year around ``year``, or its newest years."""
    if year:
        return " UNION ALL ".join(_ONE_YEAR.format(i=i) for i in range(2 * YEARS + 1))
    return _FAMILY


@dataclass(frozen=True)
class Comparable:
    source: str | None  # None: another site's listing
    listing_id: str | None
    fair_price: float
    price_low: float
    price_high: float
    deal_rating: str | None
    asking_price: float
    posted: datetime
    listing: dict[str, Any]

    def shown(self) -> dict[str, Any]:
        """What a site sees of it: the car and its prices (ids only of its own listings)."""
        car = {k: self.listing.get(k) for k in ("year", "manufacturer", "model", "odometer", "state", "condition")}
        return {"source": self.source, "id": self.listing_id, "asking_price": self.asking_price,
                "fair_price": self.fair_price, "price_low": self.price_low, "price_high": self.price_high,
                "deal_rating": self.deal_rating, "posted": self.posted, **car}  # fmt: skip


def query(listing: Listing, count: int) -> tuple[str, dict[str, Any]] | None:
    """The SQL and its parameters for ``listing``'s comparables; None without a make and model to match on."""
    family, year = (listing.model or "").split(" ")[0].lower(), listing.year
    if not listing.manufacturer or not family:
        return None
    params = {"make": listing.manufacturer.lower(), "family": family, "state": listing.state, "year": year,
              "odometer": listing.odometer, "per_year": MILES_PER_YEAR, "fetch": 4 * count}  # fmt: skip
    params |= {f"year{i}": (year or 0) - YEARS + i for i in range(2 * YEARS + 1)}
    return _RANKED.format(candidates=candidates(year)), params


def to_comparable(row: tuple[Any, ...], site: str) -> Comparable:
    source, listing_id, fair, low, high, rating, asking, event_time, _, stored = row
    listing = stored if isinstance(stored, dict) else orjson.loads(stored)
    posted = datetime.fromisoformat(listing["posting_date"]) if listing.get("posting_date") else event_time
    own = source == site
    return Comparable(source if own else None, listing_id if own else None, fair, low, high, rating, asking, posted,
                      listing)  # fmt: skip


async def find(pool: AsyncConnectionPool, listing: Listing, site: str, count: int) -> list[Comparable]:
    """Up to ``count`` comparables of ``listing``, one per stored listing, ranked as the module says."""
    built = query(listing, count) if count else None
    if built is None:
        return []
    async with pool.connection() as conn:
        rows = await (await conn.execute(built[0], built[1])).fetchall()
    return picked(rows, listing, site, count)


def find_blocking(pool: ConnectionPool, listing: Listing, site: str, count: int) -> list[Comparable]:
    """``find`` on a blocking pool (the dashboard's look-up, on its read-only pool)."""
    built = query(listing, count) if count else None
    if built is None:
        return []
    with pool.connection() as conn:
        rows = conn.execute(built[0], built[1]).fetchall()
    return picked(rows, listing, site, count)


def picked(rows: list[tuple[Any, ...]], listing: Listing, site: str, count: int) -> list[Comparable]:
    """The first ``count`` of the ranked rows, one per stored listing, the listing itself left out."""
    found: dict[tuple[str, str], Comparable] = {}
    for row in rows:
        if (row[0], row[1]) not in found and (site, listing.id) != (row[0], row[1]):
            found[(row[0], row[1])] = to_comparable(row, site)
        if len(found) == count:
            break
    return list(found.values())


def summary(found: list[Comparable]) -> Mapping[str, Any]:
    """How many, their median asking price, and their median asking ÷ fair (the market against our model)."""
    if not found:
        return {"count": 0, "median_asking": None, "median_asking_to_fair": None}
    ratio = statistics.median(c.asking_price / c.fair_price for c in found)
    return {"count": len(found), "median_asking": statistics.median(c.asking_price for c in found),
            "median_asking_to_fair": round(ratio, 4)}  # fmt: skip
