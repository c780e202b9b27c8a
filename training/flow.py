"""The Prefect 3 flow ``retrain``: load → clean → train → evaluate → gate → promote.

Runs in-process with no server (Prefect starts a temporary one) or as a deployment on a Prefect server.
The gate promotes the challenger only if it beats the champion on the same recent labelled listings —
the later-in-time, car-separated test part of the new data — by ``margin`` on MAE. Either way the
decision and its reason are recorded: MLflow tags on the version and a row in Postgres ``model_events``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pricemyride.datafile import CRAIGSLIST_COLUMNS, read_listings_file
from pricemyride.settings import Settings, load_settings
from training.cleaning import CleaningReport, clean
from training.data import Splits, frame_sha256, make_splits, prices
from training.gate import Comparison, GateDecision, apply, check_margin, compare, decide_on
from training.model import TrainParams
from training.registry import configure, load_version, log_sources
from training.sources import FAIR, SOURCE, SourceReport, guard_sources
from training.train import fit_model, holdout_metrics, log_and_register, require_parts, require_rows

log = logging.getLogger(__name__)
RECENT = "recent"  # marks listings stored since the champion was trained: the gate is judged on them
MIN_RECENT_ROWS = 200  # fewer recent held-out rows: the gate judges on the whole held-out part

STORED_LABELS = """
SELECT DISTINCT ON (source, listing_id) listing, predicted_price
FROM predictions WHERE stored_at >= %s AND asking_price IS NOT NULL
ORDER BY source, listing_id, event_time DESC, scored_at DESC  -- the latest champion's price of the latest event
"""


def stored_labels(settings: Settings, since: datetime) -> pd.DataFrame:
    """Listings stored since ``since`` with their asking price, as Craigslist-format rows with the ``source``
    that sent each and the champion's ``fair_price`` for it (``training.sources`` reads both)."""
    columns = [*CRAIGSLIST_COLUMNS, SOURCE, FAIR]
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        rows = [{**listing, FAIR: fair} for listing, fair in conn.execute(STORED_LABELS, [since]).fetchall()]
    return pd.DataFrame(rows).reindex(columns=columns) if rows else pd.DataFrame(columns=columns)


@task(cache_policy=NO_CACHE)
def load(settings: Settings, files: list[Path], since: datetime | None) -> pd.DataFrame:
    parts = [
        read_listings_file(path).assign(**{RECENT: False}).assign(**{SOURCE: f"file:{path.name}"}) for path in files
    ]
    if since is not None:
        parts.append(stored_labels(settings, since).assign(**{RECENT: True}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CRAIGSLIST_COLUMNS)
    log.info("loaded %d listings (%d files, stored since %s)", len(frame), len(files), since)
    return frame


@task(cache_policy=NO_CACHE)
def guard(settings: Settings, frame: pd.DataFrame) -> tuple[pd.DataFrame, SourceReport]:
    """What no one source may contribute, removed before cleaning (``training.sources``)."""
    kept, report = guard_sources(frame, settings.sources)
    log.info("per source, rows in %s, kept %s, set aside %s", report.rows, report.kept, report.set_aside or "none")
    return kept, report


@task(cache_policy=NO_CACHE)
def clean_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    usable, report = clean(frame)
    require_rows(usable, report)
    return usable, report


@task(cache_policy=NO_CACHE)
def train_challenger(
    settings: Settings,
    raw: pd.DataFrame,
    usable: pd.DataFrame,
    report: CleaningReport,
    params: TrainParams,
    source: str,
    files: list[Path],
) -> tuple[int, Splits]:
    splits = make_splits(usable, params.seed)
    require_parts(splits, source)
    model = fit_model(splits, params)
    metrics = holdout_metrics(model, splits.test) | {"best_iteration": float(model.best_iteration_)}
    result = log_and_register(
        settings, model, splits, metrics, report, raw, frame_sha256(usable), source, params, files=files
    )
    return result.version, splits


@task(cache_policy=NO_CACHE)
def evaluate_both(settings: Settings, challenger: int, splits: Splits) -> Comparison:
    """MAE of the challenger, the current champion and the median price, and the challenger's range coverage,
    on the same held-out rows: the recent ones (stored since the champion was trained, which it never saw)
    when there are at least ``MIN_RECENT_ROWS`` — fewer would judge the coverage by chance."""
    recent = splits.test[splits.test[RECENT].astype(bool)] if RECENT in splits.test else splits.test.iloc[0:0]
    test = recent if len(recent) >= MIN_RECENT_ROWS else splits.test
    log.info("gate compares on %d held-out listings (%s)", len(test), "recent" if test is recent else "all")
    model = load_version(configure(settings), settings, challenger).model
    return compare(settings, model, test, prices(splits.train))


@task(cache_policy=NO_CACHE)
def gate(settings: Settings, comparison: Comparison, challenger: int, margin: float) -> GateDecision:
    return decide_on(comparison, challenger, margin, settings.sources)


@task(cache_policy=NO_CACHE)
def record(settings: Settings, decision: GateDecision, request_id: str | None, sources: SourceReport) -> GateDecision:
    """Apply the decision (promote, or record the rejection) in MLflow, Postgres and on Kafka; the per-source
    counts go with it (``model_events.metrics``, and the version's run as ``sources.json``: written after the
    decision is applied, and a failure to write it only logged, so it never leaves a challenger undecided)."""
    applied = apply(settings, decision, {"request_id": request_id, "sources": sources.as_dict()})
    try:
        log_sources(settings, decision.challenger, sources.as_dict() | {"gate": decision.by_source or {}})
    except Exception as exc:  # noqa: BLE001 - the decision stands; the artifact copies what model_events holds
        log.error("could not attach sources.json to version %s (%s): model_events has the counts",
                  decision.challenger, type(exc).__name__)  # fmt: skip
    return applied


@flow(name="retrain")
def retrain(
    data: list[str] | None = None,
    since: datetime | None = None,
    margin: float | None = None,
    max_rounds: int = TrainParams.max_rounds,
    request_id: str | None = None,
) -> GateDecision:
    """Train a challenger on files and/or labelled listings stored since ``since``; promote it if it wins.

    ``request_id`` (the retrain request being answered) is recorded with the decision in ``model_events``.
    The settings are read once, here, from the environment of the process that runs the flow."""
    settings = load_settings()
    margin = check_margin(settings.promotion_margin if margin is None else margin)
    files = [Path(p) for p in data or []]
    frame, sources = guard(settings, load(settings, files, since))
    usable, report = clean_rows(frame)
    source = ", ".join([*(str(f) for f in files), *([f"stored since {since.isoformat()}"] if since else [])])
    params = TrainParams(max_rounds=max_rounds)
    challenger, splits = train_challenger(settings, frame, usable, report, params, source, files)
    decision = gate(settings, evaluate_both(settings, challenger, splits), challenger, margin)
    return record(settings, decision, request_id, sources)
