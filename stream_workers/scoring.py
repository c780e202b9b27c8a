"""Pure steps of scoring a micro-batch: validate, price (``pricing.path``), shape what is stored and published."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pricemyride.errors import InvalidListing
from pricemyride.events import Prediction
from pricemyride.listing import Listing
from pricemyride.parsing import capped, parse_listing
from pricemyride.storage import DeadLetterRow, PredictionRow
from pricemyride.topics import SiteTopics
from pricing.path import Model, price_listings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A consumed Kafka message, reduced to what scoring and dead-lettering need."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Published:
    """A prediction as it goes to Kafka: the listing's topic and partition, the key and the ``Prediction`` JSON."""

    partition: int
    key: bytes
    value: bytes
    topic: str = ""  # the listings topic it answers (its site's predictions topic takes it)


@dataclass(frozen=True)
class ScoredBatch:
    """The outcome of one micro-batch: rows to store and events to publish (``rows[i]`` is ``published[i]``, priced
    from ``listings[i]``, which a shadow prices too: ``training.champion.Shadow``)."""

    rows: list[PredictionRow]
    published: list[Published]
    dead_letters: list[DeadLetterRow]
    listings: list[Listing] = field(default_factory=list)

    @property
    def predictions(self) -> list[Prediction]:
        """The published events read back through the ``Prediction`` contract (for checks, not the hot path)."""
        return [Prediction.model_validate_json(p.value) for p in self.published]


def dead_letter(message: RawMessage, reason: str, now: datetime) -> DeadLetterRow:
    row = DeadLetterRow(
        message.topic, message.partition, message.offset, message.key, message.value, capped(reason), now
    )
    return row


def internal_error(exc: BaseException) -> str:
    """The reason for a failure nothing more specific names: the kind only (its text may echo the input)."""
    return f"internal error: {type(exc).__name__}"


def from_its_site(listing: Listing, topic: str, sites: SiteTopics | None) -> Listing:
    """A listing that came on a site's own topic is that site's: its ``source`` is the site (only the site's
    Kafka principal may write there), and a listing that names another source is refused."""
    site = sites.site_of(topic) if sites else None
    if site is None or listing.source == site:
        return listing
    if "source" in listing.model_fields_set:
        raise InvalidListing(f"source: expected {site!r} (the site that owns {topic}) or none, "
                             f"got {listing.source[:40]!r}")  # fmt: skip
    return listing.model_copy(update={"source": site})


def validate_one(message: RawMessage, now: datetime, sites: SiteTopics | None = None) -> Listing | DeadLetterRow:
    """The message as a listing, or its dead letter; never raises for anything the message's bytes hold."""
    try:
        return from_its_site(parse_listing(message.value), message.topic, sites)  # type: ignore[arg-type]
    except InvalidListing as exc:
        return dead_letter(message, str(exc), now)
    except Exception as exc:
        log.exception("%s[%d]@%d: validation failed unexpectedly", message.topic, message.partition, message.offset)
        return dead_letter(message, internal_error(exc), now)


def validate(
    messages: Sequence[RawMessage], now: datetime, sites: SiteTopics | None = None
) -> tuple[list[tuple[RawMessage, Listing]], list[DeadLetterRow]]:
    """Split a batch into valid listings and dead letters with their reasons; never raises."""
    valid: list[tuple[RawMessage, Listing]] = []
    invalid: list[DeadLetterRow] = []
    for message in messages:
        outcome = validate_one(message, now, sites)
        if isinstance(outcome, DeadLetterRow):
            invalid.append(outcome)
        else:
            valid.append((message, outcome))
    return valid, invalid


def price_isolated(model: Model, version: int, listings: Sequence[Listing], now: datetime) -> list[PredictionRow | str]:
    """``price_listings`` for the batch; if anything in it raises, listing by listing, so that only the
    listings that cause the failure are dead-lettered (``internal error: <kind>``) and the rest are priced."""
    try:
        return price_listings(model, version, listings, now)
    except Exception:
        log.exception("pricing a batch of %d failed; pricing its listings one by one", len(listings))
    priced: list[PredictionRow | str] = []
    for listing in listings:
        try:
            priced.extend(price_listings(model, version, [listing], now))
        except Exception as exc:  # noqa: BLE001 - see validate_one
            priced.append(internal_error(exc))
    return priced


def scored(message: RawMessage, outcome: PredictionRow, scored_at: str) -> Published:
    return Published(message.partition, outcome.listing_id.encode(), prediction_json(outcome, scored_at), message.topic)


def score_batch(
    model: Model, version: int, messages: Sequence[RawMessage], sites: SiteTopics | None = None
) -> ScoredBatch:
    """Validate and score one batch. Whatever a message holds, it ends as a stored prediction or a dead letter
    with its reason; nothing a message causes escapes (an exception no check names becomes the message's
    ``internal error: <kind>`` dead letter, and a model that raises on a batch is retried listing by listing).
    With ``sites``, a listing on a site's topic is that site's (``from_its_site``)."""
    now = datetime.now(UTC)
    valid, dead = validate(messages, now, sites)
    if not valid:
        return ScoredBatch([], [], dead)
    priced = price_isolated(model, version, [listing for _, listing in valid], now)
    rows, published, listings = [], [], []
    scored_at = now.isoformat().replace("+00:00", "Z")
    for (message, listing), outcome in zip(valid, priced, strict=True):
        if isinstance(outcome, str):
            dead.append(dead_letter(message, outcome, now))
            continue
        try:
            published.append(scored(message, outcome, scored_at))
        except Exception as exc:  # noqa: BLE001 - see validate_one
            dead.append(dead_letter(message, internal_error(exc), now))
            continue
        rows.append(outcome)
        listings.append(listing)
    return ScoredBatch(rows, published, dead, listings)


def prediction_json(row: PredictionRow, scored_at: str) -> bytes:
    """The ``Prediction`` event as JSON, built from the stored row (its listing JSON is reused, not re-encoded).
    Same document as ``Prediction.model_dump_json()``; a unit test holds the two together."""
    return orjson.dumps(
        {
            "source": row.source,
            "listing_id": row.listing_id,
            "model_version": row.model_version,
            "predicted_price": row.predicted_price,
            "price_low": row.price_low,
            "price_high": row.price_high,
            "deal_rating": row.deal_rating,
            "asking_price": row.asking_price,
            "event_time": row.event_time,
            "scored_at": scored_at,
            "listing": orjson.Fragment(row.listing),
        },
        option=orjson.OPT_UTC_Z,
    )


def dlq_headers(row: DeadLetterRow) -> list[tuple[str, bytes]]:
    """Kafka Connect's dead-letter convention: the original bytes as value, the why in headers."""
    fields: dict[str, Any] = {
        "reason": row.reason,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "failed_at": row.failed_at.isoformat(),
    }
    return [(f"dlq.{k}", str(v).encode()) for k, v in fields.items()]
