"""The promotion gate: one rule for the retrain flow and ``pricemyride train``.

A challenger is promoted only if, on the same held-out listings, (1) its MAE is below the naive baseline's
(the median training price for every car: a model no better than that is not a model), and (2) there is no
champion this code can run, or it beats the champion's MAE by at least ``margin``, and (3) its 80% range
is honest on those listings: it covers between 75% and 85% of their asking prices (``COVERAGE_BOUNDS``),
and (4) no listing site (``source``) with at least ``SourcePolicy.gate_min_rows`` held-out listings gets
worse than under the champion by more than ``SourcePolicy.gate_margin``: a challenger steered by one site's
prices pays for it on the others'. A range that covers far less overstates what the model knows; far more,
and it says too little.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from pricemyride.errors import IncompatibleModel, ModelLoadFailed, ModelNotFound, TrainingRefused, UsageError
from pricemyride.policy import SourcePolicy
from pricemyride.settings import Settings
from training.data import model_input, prices
from training.metrics import point_metrics, quality_metrics
from training.promotion import promote, reject
from training.registry import champion_version, configure, load_version
from training.shadow import Role, start_shadow

log = logging.getLogger(__name__)
COVERAGE_BOUNDS: Final = (0.75, 0.85)


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger replaces the champion, and why."""

    promote: bool
    challenger: int
    champion: int | None
    reason: str
    challenger_mae: float
    champion_mae: float | None
    baseline_mae: float | None = None
    challenger_coverage: float | None = None
    by_source: dict[str, dict[str, float]] | None = None
    shadowed: bool = False  # passed, and scores in shadow until the live gate decides (``training.live_gate``)

    @classmethod
    def from_record(cls, metrics: dict[str, Any]) -> GateDecision:
        """The decision as recorded in ``model_events.metrics`` (which holds a few more keys)."""
        values: dict[str, Any] = {f.name: metrics.get(f.name) for f in fields(cls)}
        return cls(**values)


def check_margin(margin: float) -> float:
    if not 0 <= margin < 1:
        raise UsageError(f"margin: expected a share of MAE 0 ≤ margin < 1 (0.02 = 2%), got {margin}")
    return margin


def baseline_mae(train_prices: pd.Series, test_prices: np.ndarray) -> float:
    """MAE of pricing every held-out car at the training rows' median price."""
    return float(np.abs(test_prices - float(train_prices.median())).mean())


def refusal(challenger_mae: float, naive_mae: float | None, coverage: float | None) -> str | None:
    """Why the challenger is refused whatever the champion does, or None."""
    if naive_mae is not None and not challenger_mae < naive_mae:
        return f"MAE {challenger_mae:,.0f} is no better than the median price's {naive_mae:,.0f}"
    low, high = COVERAGE_BOUNDS
    if coverage is not None and not low <= coverage <= high:
        return f"80% range covers {coverage:.1%} of held-out prices; expected {low:.0%} … {high:.0%}"
    return None


def worse_sources(by_source: dict[str, dict[str, float]] | None, policy: SourcePolicy) -> str | None:
    """Why the challenger is refused on some source (enough held-out rows, worse by more than the margin)."""
    worse = []
    for source, figures in sorted((by_source or {}).items()):
        champion, challenger = figures.get("champion_mae"), figures["challenger_mae"]
        if figures["rows"] >= policy.gate_min_rows and champion and challenger > champion * (1 + policy.gate_margin):
            worse.append(f"{source} {challenger:,.0f} vs {champion:,.0f} ({challenger / champion - 1:+.0%})")
    if not worse:
        return None
    return f"MAE worse than the champion's by more than {policy.gate_margin:.0%} on source " + "; ".join(worse)


def decide(
    challenger: int,
    challenger_mae: float,
    champion: int | None,
    champion_mae: float | None,
    margin: float,
    naive_mae: float | None = None,
    coverage: float | None = None,
    by_source: dict[str, dict[str, float]] | None = None,
    policy: SourcePolicy | None = None,
) -> GateDecision:
    margin = check_margin(margin)
    verdict = functools.partial(
        GateDecision, challenger=challenger, champion=champion, challenger_mae=challenger_mae,
        champion_mae=champion_mae, baseline_mae=naive_mae, challenger_coverage=coverage, by_source=by_source,
    )  # fmt: skip
    refused = refusal(challenger_mae, naive_mae, coverage) or worse_sources(by_source, policy or SourcePolicy())
    if refused is not None:
        return verdict(promote=False, reason=refused)
    if champion is None or champion_mae is None:
        return verdict(promote=True, champion=None, champion_mae=None, reason="no champion this code can run")
    needed = champion_mae * (1 - margin)
    if challenger_mae <= needed:
        reason = f"MAE {challenger_mae:,.0f} beats the champion's {champion_mae:,.0f} by more than {margin:.0%}"
        return verdict(promote=True, reason=reason)
    reason = (
        f"MAE {challenger_mae:,.0f} does not beat the champion's {champion_mae:,.0f} by {margin:.0%} "
        f"(needs ≤ {needed:,.0f})"
    )
    return verdict(promote=False, reason=reason)


def decide_on(comparison: Comparison, challenger: int, margin: float, policy: SourcePolicy) -> GateDecision:
    """``decide`` on a ``Comparison``: the one call of the flow's gate and of ``pricemyride train``."""
    return decide(challenger, comparison.challenger_mae, comparison.champion, comparison.champion_mae, margin,
                  comparison.naive_mae, comparison.challenger_coverage, comparison.by_source, policy)  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """MAE of the challenger, the champion (when this code can run it) and the median price, on the same rows;
    the share of those rows' prices the challenger's 80% range covers; and, per source, rows and both MAEs."""

    challenger_mae: float
    champion: int | None
    champion_mae: float | None
    naive_mae: float
    rows: int
    challenger_coverage: float | None = None
    by_source: dict[str, dict[str, float]] | None = None


def per_source(test: pd.DataFrame, price: np.ndarray, challenger: np.ndarray, champion: np.ndarray | None) -> dict:
    """Rows and MAE of each model per ``source`` of the held-out listings (empty without a source column)."""
    if "source" not in test:
        return {}
    out: dict[str, dict[str, float]] = {}
    for source, rows in test.groupby(test["source"].fillna("unknown").astype(str)).indices.items():
        figures = {"rows": float(len(rows)), "challenger_mae": float(np.abs(price[rows] - challenger[rows]).mean())}
        if champion is not None:
            figures["champion_mae"] = float(np.abs(price[rows] - champion[rows]).mean())
        out[str(source)] = figures
    return out


def compare(settings: Settings, challenger: Any, test: pd.DataFrame, train_prices: pd.Series) -> Comparison:
    """Score ``test`` with the challenger model, the current champion and the naive median price."""
    if test.empty:
        raise TrainingRefused("gate: expected held-out listings to judge the challenger on, got none")
    test_input, test_price = model_input(test), prices(test).to_numpy()
    ranges = challenger.predict_range(test_input)
    overall = quality_metrics(test_price, ranges)["overall"]
    naive = baseline_mae(train_prices, test_price)
    fair = ranges["predicted_price"].to_numpy()
    alone = Comparison(overall["mae"], None, None, naive, len(test), overall["coverage"],
                       per_source(test, test_price, fair, None))  # fmt: skip
    client = configure(settings)
    try:
        champion = champion_version(client, settings)
        champion_model = load_version(client, settings, champion).model
        champion_fair = np.asarray(champion_model.predict(test_input), dtype="float64")
    except ModelNotFound:
        return alone
    except (IncompatibleModel, ModelLoadFailed) as exc:
        log.warning("the champion cannot be evaluated by this code: %s", exc)
        return alone
    champion_mae = point_metrics(test_price, champion_fair)["mae"]
    by_source = per_source(test, test_price, fair, champion_fair)
    return replace(alone, champion=champion, champion_mae=champion_mae, by_source=by_source)


def judge(settings: Settings, version: int, comparison: Comparison, margin: float) -> GateDecision:
    """Decide on ``version`` and apply it: promote it, or record why it stays a challenger."""
    return apply(settings, decide_on(comparison, version, margin, settings.sources), {})


def apply(settings: Settings, decision: GateDecision, extra: dict[str, Any]) -> GateDecision:
    """Act on the offline verdict: a winner over a champion is shadowed on live listings first
    (``training.live_gate`` promotes it or not; ``PRICEMYRIDE_SHADOW_ENABLED=false`` promotes at once), a winner
    with no champion to beat is promoted, a loser is recorded as rejected."""
    metrics = asdict(decision) | extra
    if decision.promote and settings.shadow.enabled and decision.champion is not None:
        start_shadow(settings, decision.challenger, decision.champion, Role.CHALLENGER,
                     f"offline gate: {decision.reason}", metrics)  # fmt: skip
        return replace(decision, shadowed=True)
    if decision.promote:
        promote(settings, decision.challenger, decision.reason, metrics)
    else:
        reject(settings, decision.challenger, decision.champion, decision.reason, metrics)
    return decision
