"""Storage helpers and the Settings object."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from pricemyride.settings import Settings
from pricemyride.storage import (
    MAX_STORED_KEY,
    MAX_STORED_PAYLOAD,
    PREDICTIONS,
    SHADOWS,
    DeadLetterRow,
    PredictionRow,
    ShadowRow,
    dead_letter_params,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(listing_id: str, version: int, minutes: int, price: float = 1.0, source: str = "site") -> PredictionRow:
    when = T0 + timedelta(minutes=minutes)
    return PredictionRow(source, listing_id, version, None, price, price, price, None, None, when, T0, "{}")


def test_one_upsert_touches_each_listing_of_a_site_and_version_once_keeping_the_newest() -> None:
    rows = [row("a", 1, 0, 10), row("a", 1, 5, 20), row("a", 2, 1, 30), row("b", 1, 0, 40), row("a", 1, 9, 50, "other")]
    staged = PREDICTIONS.staged(rows)
    kept = {(r[0], r[1], r[2]): r[4] for r in staged}
    assert kept == {("site", "a", 1): 20, ("site", "a", 2): 30, ("site", "b", 1): 40, ("other", "a", 1): 50}
    assert all(len(r) == len(PREDICTIONS.columns) == len(PREDICTIONS.types) for r in staged)


def test_the_staged_sql_names_each_tables_columns_and_key_once() -> None:
    shadow = ShadowRow("site", "a", 4, 3, 9_000.0, 8_000.0, 10_000.0, T0)
    assert SHADOWS.staged([shadow, shadow]) == [("site", "a", 4, 3, 9_000.0, 8_000.0, 10_000.0, T0)]
    assert "ON CONFLICT (shadow_version, source, listing_id) DO UPDATE" in SHADOWS.merge
    assert "shadow_version = EXCLUDED" not in SHADOWS.merge, "a key column is never updated"
    assert "listing = EXCLUDED.listing" in PREDICTIONS.merge
    assert "SELECT source, listing_id, model_version" in PREDICTIONS.merge
    assert "listing::jsonb" in PREDICTIONS.merge, "the listing is JSON text in the staging table, jsonb stored"


def test_database_url_and_mlflow_uri_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICEMYRIDE_DATABASE_URL", "postgresql://w:secret@db.example:6543/prm")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    settings = Settings()
    assert settings.database_url.get_secret_value().endswith("@db.example:6543/prm")
    assert "secret" not in repr(settings)
    assert settings.tracking_uri == "http://mlflow:5000"


def test_default_tracking_uri_is_a_sqlite_file_in_the_state_folder(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PRICEMYRIDE_STATE_DIR", str(tmp_path))
    settings = Settings()
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert settings.artifact_root == tmp_path / "mlflow" / "artifacts"


def test_placeholder_passwords_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICEMYRIDE_ENVIRONMENT", "production")
    assert Settings().environment == "production"  # a URL not given is not used: it is not checked
    monkeypatch.setenv("PRICEMYRIDE_DATABASE_URL", "postgresql://pricemyride:pricemyride-dev@db/prm")
    with pytest.raises(ValidationError, match="PRICEMYRIDE_DATABASE_URL: expected a real password in production"):
        Settings()
    monkeypatch.setenv("PRICEMYRIDE_DATABASE_URL", "postgresql://w:S3cure-long@db/prm")
    monkeypatch.setenv("PRICEMYRIDE_READER_DATABASE_URL", "postgresql://r:An0ther-long@db/prm")
    assert Settings().environment == "production"


def test_a_dead_letter_keeps_a_few_kib_of_what_arrived_and_its_size() -> None:
    huge = DeadLetterRow("listings", 0, 1, b"k" * 10_000, b"x" * 900_000, "listing: too big", T0)
    small = DeadLetterRow("listings", 0, 2, None, None, "listing: expected a JSON object, got an empty message", T0)
    params = dead_letter_params([huge, small])
    assert [len(k) if k else k for k in params[3]] == [MAX_STORED_KEY, None]
    assert [len(p) if p else p for p in params[4]] == [MAX_STORED_PAYLOAD, None]
    assert params[7] == [900_000, None]
    assert all(len(column) == 2 for column in params)
