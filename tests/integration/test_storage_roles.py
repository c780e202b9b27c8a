"""Postgres: the schema is idempotent and the dashboard's role can read but never write."""

from __future__ import annotations

import psycopg
import pytest

from pricemyride.settings import Settings
from pricemyride.storage import ModelEventKind, create_schema

pytestmark = pytest.mark.integration


def test_schema_creation_is_idempotent(settings: Settings) -> None:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        create_schema(conn)
        create_schema(conn)
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"predictions", "dead_letters"} <= tables


def test_reader_role_can_select_but_not_write(settings: Settings) -> None:
    with psycopg.connect(settings.reader_database_url.get_secret_value()) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() is not None
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(
                'INSERT INTO dead_letters (topic, partition, "offset", reason, failed_at) '
                "VALUES ('x', 0, 0, 'x', now())"
            )
        conn.rollback()
        conn.execute("SET default_transaction_read_only = off")
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM predictions")


@pytest.mark.parametrize("kind", ["registered", "deleted"])
def test_model_events_take_only_the_kinds_the_code_writes(settings: Settings, kind: str) -> None:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO model_events (kind, version, reason) VALUES (%s, 1, 'x')", [kind])
        conn.rollback()
        for good in ModelEventKind:
            with conn.transaction(force_rollback=True):
                conn.execute("INSERT INTO model_events (kind, version, reason) VALUES (%s, 1, 'x')", [good.value])
