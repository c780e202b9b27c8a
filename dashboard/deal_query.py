"""The deal finder's one query, shared by its page and its exports: listings (their latest valuation, from
the market rollups' ``market_listings``) filtered by what the analyst chose, the best discount to the fair
price first. Only the chosen filters enter the SQL, each value bound by psycopg, never formatted in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from psycopg import sql

from dashboard.inputs import choices_value, number_value, text_value

RATINGS: Final = ("great", "good", "fair", "high", "overpriced", "not enough information")
PAGE_SIZE: Final = 25
COUNT_CAP: Final = 10_000  # matches are counted up to here ("10,000+"): a count never scans the whole table
SHOWN: Final = (
    "source", "listing_id", "year", "make", "model", "odometer", "state", "asking_price", "predicted_price",
    "price_low", "price_high", "discount", "deal_rating", "posted_on", "arrived_on", "model_version",
)  # fmt: skip


@dataclass(frozen=True)
class DealFilters:
    """What the analyst chose; None is "any"."""

    make: str | None = None
    family: str | None = None  # the model's first word ("f-150"), as the market segments read it
    year_from: int | None = None
    year_to: int | None = None
    price_from: float | None = None
    price_to: float | None = None
    state: str | None = None
    ratings: tuple[str, ...] = ()
    source: str | None = None
    since: date | None = None  # reached the stream on or after this day

    @classmethod
    def of(cls, values: dict[str, Any]) -> DealFilters:
        """From form values: blanks are "any", text is lower-cased and trimmed, ratings a tuple."""
        kept: dict[str, Any] = {}
        for f in fields(cls):
            value = values.get(f.name)
            if isinstance(value, str):
                value = value.strip().lower() or None
            if f.name == "ratings":
                value = tuple(value or ())
            kept[f.name] = value
        return cls(**kept)

    @classmethod
    def parsed(cls, values: Mapping[str, Any]) -> DealFilters:
        """From the page's form or an export's query string, every value checked first (``InputError`` names
        the first bad one); ``since``: arrived within that many days."""
        number = {"year_from": (int, 1900, 2100), "year_to": (int, 1900, 2100), "price_from": (float, 0, 1e9),
                  "price_to": (float, 0, 1e9), "since": (int, 0, 36_500)}  # fmt: skip
        checked = {name: number_value(name, values.get(name), *rule) for name, rule in number.items()}
        checked |= {name: text_value(name, values.get(name)) for name in ("make", "family", "state", "source")}
        checked["ratings"] = choices_value("ratings", values.get("ratings"), RATINGS)
        return cls.of(checked | {"since": since_day(checked["since"])})

    def described(self) -> str:
        """The filters in words, for a file's name or first line: "make=ford year_from=2015" or "all"."""
        chosen = {
            k: (",".join(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v not in (None, ())
        }
        return " ".join(f"{k}={v}" for k, v in chosen.items()) or "all"


def since_day(days: int | None) -> date | None:
    """ "Arrived within the last ``days`` days" as the first such day (UTC); None: any time."""
    return None if days is None else (datetime.now(UTC) - timedelta(days=days)).date()


# (filter, condition): each applies only when its value is given.
CONDITIONS: Final = (
    ("make", "make = {}"), ("family", "family = {}"), ("year_from", "year >= {}"), ("year_to", "year <= {}"),
    ("price_from", "asking_price >= {}"), ("price_to", "asking_price <= {}"), ("state", "state = {}"),
    ("ratings", "deal_rating = ANY({})"), ("source", "source = {}"), ("since", "arrived_on >= {}"),
)  # fmt: skip


def where(filters: DealFilters) -> tuple[sql.Composable, list[Any]]:
    """The WHERE clause of the chosen filters and its parameters (listings with a usable asking price only)."""
    parts: list[sql.Composable] = [sql.SQL("discount IS NOT NULL")]
    params: list[Any] = []
    for name, condition in CONDITIONS:
        value = getattr(filters, name)
        if value not in (None, ()):
            parts.append(sql.SQL(condition).format(sql.Placeholder()))
            params.append(list(value) if isinstance(value, tuple) else value)
    return sql.SQL(" AND ").join(parts), params


def page_query(filters: DealFilters, limit: int, offset: int) -> tuple[sql.Composed, list[Any]]:
    condition, params = where(filters)
    query = sql.SQL("SELECT {} FROM market_listings WHERE {} ORDER BY discount DESC, source, listing_id "
                    "LIMIT {} OFFSET {}").format(sql.SQL(", ").join(map(sql.Identifier, SHOWN)), condition,
                                                  sql.Placeholder(), sql.Placeholder())  # fmt: skip
    return query, [*params, limit, offset]


def count_query(filters: DealFilters) -> tuple[sql.Composed, list[Any]]:
    """How many match, counted up to COUNT_CAP + 1."""
    condition, params = where(filters)
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM market_listings WHERE {} LIMIT {}) AS capped").format(
        condition, sql.Placeholder()
    )
    return query, [*params, COUNT_CAP + 1]
