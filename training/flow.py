"""The Prefect 3 flow ``retrain``: load → clean → train → evaluate → gate → promote.

Runs in-process with no server (Prefect starts a temporary one) or as a deployment on a Prefect server.
The gate promotes the challenger only if it beats the champion on the same recent labelled listings —
the later-in-time, car-separated test part of the new data — by ``margin`` on MAE. Either way the
decision and its reason are recorded: MLflow tags on the version and a row in Postgres ``model_events``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from mlflow import MlflowClient
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from psycopg.types.json import Jsonb

from pricemyride.datafile import CRAIGSLIST_COLUMNS, read_listings_file
from pricemyride.errors import IncompatibleModel, ModelLoadFailed, ModelNotFound
from pricemyride.settings import Settings
from training.cleaning import CleaningReport, clean
from training.evaluate import point_metrics
from training.model import TrainParams
from training.registry import champion_version, configure, load_version
from training.train import (
    Splits,
    fit_model,
    frame_sha256,
    holdout_metrics,
    log_and_register,
    make_splits,
    model_input,
    prices,
)

log = logging.getLogger(__name__)
DEFAULT_MARGIN = 0.02
RECENT = "recent"  # marks listings stored since the champion was trained: the gate is judged on them

STORED_LABELS = """
SELECT DISTINCT ON (listing_id) listing
FROM predictions WHERE stored_at >= %s AND asking_price IS NOT NULL
ORDER BY listing_id, event_time DESC
"""


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger replaces the champion, and why."""

    promote: bool
    challenger: int
    champion: int | None
    reason: str
    challenger_mae: float
    champion_mae: float | None


def stored_labels(settings: Settings, since: datetime) -> pd.DataFrame:
    """Listings stored since ``since`` with their asking price, as Craigslist-format rows."""
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        rows = [r[0] for r in conn.execute(STORED_LABELS, [since]).fetchall()]
    return pd.DataFrame(rows, columns=list(CRAIGSLIST_COLUMNS)) if rows else pd.DataFrame(columns=CRAIGSLIST_COLUMNS)


@task(cache_policy=NO_CACHE)
def load(files: list[Path], since: datetime | None) -> pd.DataFrame:
    parts = [read_listings_file(path).assign(**{RECENT: False}) for path in files]
    if since is not None:
        parts.append(stored_labels(Settings(), since).assign(**{RECENT: True}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CRAIGSLIST_COLUMNS)
    log.info("loaded %d listings (%d files, stored since %s)", len(frame), len(files), since)
    return frame


@task(cache_policy=NO_CACHE)
def clean_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    usable, report = clean(frame)
    if len(usable) < 500:
        raise ValueError(f"retrain: expected at least 500 usable labelled listings, got {len(usable)}")
    return usable, report


@task(cache_policy=NO_CACHE)
def train_challenger(
    raw: pd.DataFrame,
    usable: pd.DataFrame,
    report: CleaningReport,
    params: TrainParams,
    source: str,
    files: list[Path],
) -> tuple[int, Splits]:
    settings = Settings()
    splits = make_splits(usable, params.seed)
    model = fit_model(splits, params)
    metrics = holdout_metrics(model, splits.test) | {"best_iteration": float(model.best_iteration_)}
    result = log_and_register(
        settings, model, splits, metrics, report, raw, frame_sha256(usable), source, params, promote=False, files=files
    )
    return result.version, splits


@task(cache_policy=NO_CACHE)
def evaluate_both(challenger: int, splits: Splits) -> tuple[float, int | None, float | None]:
    """MAE of the challenger and of the current champion on the same held-out rows: the recent ones
    (stored since the champion was trained, which it never saw) when there are any."""
    settings = Settings()
    client = configure(settings)
    recent = splits.test[splits.test[RECENT].astype(bool)] if RECENT in splits.test else splits.test.iloc[0:0]
    test = recent if len(recent) else splits.test
    log.info("gate compares on %d held-out listings (%s)", len(test), "recent" if len(recent) else "all")
    test_input, test_price = model_input(test), prices(test).to_numpy()

    def mae(version: int) -> float:
        predicted = load_version(client, settings, version).model.predict(test_input)
        return point_metrics(test_price, predicted)["mae"]

    try:
        champion = champion_version(client, settings)
    except ModelNotFound:
        return mae(challenger), None, None
    try:
        return mae(challenger), champion, mae(champion)
    except (IncompatibleModel, ModelLoadFailed) as exc:
        log.warning("the champion cannot be evaluated by this code: %s", exc)
        return mae(challenger), None, None


@task(cache_policy=NO_CACHE)
def gate(
    challenger: int, challenger_mae: float, champion: int | None, champion_mae: float | None, margin: float
) -> GateDecision:
    if champion is None or champion_mae is None:
        return GateDecision(True, challenger, None, "no champion this code can run", challenger_mae, None)
    needed = champion_mae * (1 - margin)
    if challenger_mae <= needed:
        reason = f"MAE {challenger_mae:,.0f} beats the champion's {champion_mae:,.0f} by more than {margin:.0%}"
        return GateDecision(True, challenger, champion, reason, challenger_mae, champion_mae)
    reason = (
        f"MAE {challenger_mae:,.0f} does not beat the champion's {champion_mae:,.0f} by {margin:.0%} "
        f"(needs ≤ {needed:,.0f})"
    )
    return GateDecision(False, challenger, champion, reason, challenger_mae, champion_mae)


@task(cache_policy=NO_CACHE)
def record(decision: GateDecision, request_id: str | None) -> GateDecision:
    """Apply the decision to the registry aliases and record it in MLflow and Postgres."""
    settings = Settings()
    client: MlflowClient = configure(settings)
    version = str(decision.challenger)
    if decision.promote:
        client.set_registered_model_alias(settings.model_name, settings.champion_alias, version)
        client.delete_registered_model_alias(settings.model_name, settings.challenger_alias)
    client.set_model_version_tag(settings.model_name, version, "gate", "promoted" if decision.promote else "rejected")
    client.set_model_version_tag(settings.model_name, version, "gate_reason", decision.reason)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        conn.execute(
            "INSERT INTO model_events (kind, version, champion, reason, metrics) VALUES (%s, %s, %s, %s, %s)",
            ["promoted" if decision.promote else "rejected", decision.challenger, decision.champion, decision.reason,
             Jsonb(asdict(decision) | {"request_id": request_id})],
        )  # fmt: skip
    log.info("version %s %s: %s", version, "promoted" if decision.promote else "rejected", decision.reason)
    return decision


@flow(name="retrain")
def retrain(
    data: list[str] | None = None,
    since: datetime | None = None,
    margin: float = DEFAULT_MARGIN,
    max_rounds: int = TrainParams.max_rounds,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Train a challenger on files and/or labelled listings stored since ``since``; promote it if it wins.

    ``request_id`` (the retrain request being answered) is recorded with the decision in ``model_events``."""
    files = [Path(p) for p in data or []]
    frame = load(files, since)
    usable, report = clean_rows(frame)
    source = ", ".join([*(str(f) for f in files), *([f"stored since {since.isoformat()}"] if since else [])])
    challenger, splits = train_challenger(frame, usable, report, TrainParams(max_rounds=max_rounds), source, files)
    challenger_mae, champion, champion_mae = evaluate_both(challenger, splits)
    decision = record(gate(challenger, challenger_mae, champion, champion_mae, margin), request_id)
    return asdict(decision)
