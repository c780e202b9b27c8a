"""Prepare a running stack for PriceMyRide: topics, database schema, MLflow folders (idempotent)."""

from __future__ import annotations

import psycopg

from pricemyride.settings import Settings
from pricemyride.storage import create_schema
from pricemyride.topics import ensure_topics


def prepare(settings: Settings) -> None:
    """Create the Kafka topics, the Postgres schema and the local MLflow folder when missing."""
    created = ensure_topics(settings)
    if created:
        print(f"[prepare] created topics: {', '.join(created)}", flush=True)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        create_schema(conn)
    if settings.mlflow_tracking_uri is None:
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
