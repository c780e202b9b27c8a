"""`pricemyride rescore --since TIME [--version N]`: score stored listings again with another model.

Reads the listings stored since ``TIME`` (one per source and listing id, its latest event), scores them in batches
with the champion (or ``--version``), and upserts rows keyed by (source, listing id, model version): running it
twice adds nothing. The rows are marked with the model version that produced them, as live rows are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import ValidationError

from pricemyride.listing import Listing
from pricemyride.parsing import capped
from pricemyride.progress import progress
from pricemyride.settings import Settings
from pricemyride.storage import write_predictions
from pricing.path import price_listings
from training.registry import champion_version, configure, load_version

log = logging.getLogger(__name__)

STORED_LISTINGS = """
SELECT DISTINCT ON (source, listing_id) listing FROM predictions
WHERE stored_at >= %s ORDER BY source, listing_id, event_time DESC
"""


def stored_listings(rows: list[tuple[Any, ...]]) -> list[Listing]:
    """The stored listings that still meet the contract (one stored under older rules is skipped, logged)."""
    out = []
    for (stored,) in rows:
        try:
            out.append(Listing.model_validate(stored))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
            log.warning("not rescored: listing %s breaks the contract now (%s)", stored.get("id"), capped(problems))
    return out


def rescore(settings: Settings, since: datetime, version: int | None = None) -> int:
    """Score every listing stored since ``since`` with ``version`` (default: the champion); return rows."""
    client = configure(settings)
    model = load_version(client, settings, version or champion_version(client, settings))
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        listings = stored_listings(conn.execute(STORED_LISTINGS, [since]).fetchall())
        log.info("rescoring %d listings stored since %s with version %d", len(listings), since, model.version)
        size = settings.batch_size
        batches = [listings[i : i + size] for i in range(0, len(listings), size)]
        for batch in progress(batches, "rescore batches", total=len(batches)):
            priced = price_listings(model.model, model.version, batch, datetime.now(UTC))
            write_predictions(conn, [row for row in priced if not isinstance(row, str)])
            for reason in (r for r in priced if isinstance(r, str)):
                log.warning("not rescored: %s", reason)
    return len(listings)
