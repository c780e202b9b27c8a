"""`pricemyride rescore --since TIME [--version N]`: score stored listings again with another model.

Reads the listings stored since ``TIME`` (one per listing id, its latest event), scores them in batches
with the champion (or ``--version``), and upserts rows keyed by (listing id, model version): running it
twice adds nothing. The rows are marked with the model version that produced them, as live rows are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import psycopg

from pricemyride.events import Listing
from pricemyride.progress import progress
from pricemyride.settings import Settings
from pricemyride.storage import write_predictions
from stream_workers.scoring import Model, ScoredBatch, predict_prices, to_prediction
from training.deal import deal_ratings
from training.registry import champion_version, configure, load_version

log = logging.getLogger(__name__)
BATCH = 2_000

STORED_LISTINGS = """
SELECT DISTINCT ON (listing_id) listing FROM predictions
WHERE stored_at >= %s ORDER BY listing_id, event_time DESC
"""


def rescore(settings: Settings, since: datetime, version: int | None = None) -> int:
    """Score every listing stored since ``since`` with ``version`` (default: the champion); return rows."""
    client = configure(settings)
    model = load_version(client, settings, version or champion_version(client, settings))
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        listings = [Listing.model_validate(r[0]) for r in conn.execute(STORED_LISTINGS, [since]).fetchall()]
        log.info("rescoring %d listings stored since %s with version %d", len(listings), since, model.version)
        batches = [listings[i : i + BATCH] for i in range(0, len(listings), BATCH)]
        for batch in progress(batches, "rescore batches", total=len(batches)):
            rows = score_listings(model.model, model.version, batch)
            write_predictions(conn, rows.prediction_rows())
    return len(listings)


def score_listings(model: Model, version: int, listings: list[Listing]) -> ScoredBatch:
    """The same steps as the stream worker, minus validation (stored listings were valid)."""
    prices = predict_prices(model, listings)
    asking = np.array([np.nan if x.price is None else x.price for x in listings], dtype="float64")
    ratings = deal_ratings(asking, prices[:, 0], prices[:, 1], prices[:, 2])
    now = datetime.now(UTC)
    predictions = [
        to_prediction(listing, (fair, low, high), rating, version, now)
        for listing, (fair, low, high), rating in zip(listings, prices.tolist(), ratings, strict=True)
    ]
    return ScoredBatch(predictions, [])
