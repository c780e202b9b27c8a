"""Prepare a running stack for PriceMyRide: topics, database schema, MLflow folders (idempotent)."""

from __future__ import annotations

import psycopg

from pricemyride.settings import Settings
from pricemyride.storage import create_schema
from pricemyride.topics import ensure_topics


def prepare(settings: Settings) -> None:
    """Create the Kafka topics (and the service principals, given their passwords), the Postgres schema and
    the local MLflow folder when missing."""
    created = ensure_topics(settings)
    if created:
        print(f"[prepare] created topics: {', '.join(created)}", flush=True)
    if settings.kafka_logins_dir is not None:
        from pricemyride.access import ensure_roles

        roles = ensure_roles(settings, settings.kafka_logins_dir)
        print(f"[prepare] Kafka logins and ACLs: {', '.join(roles) or 'none (no password files)'}", flush=True)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        create_schema(conn)
    if settings.mlflow_tracking_uri is None:
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
