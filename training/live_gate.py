"""The live gate: the shadow and the champion judged on the same live listings, by their asking prices.

Every listing carries its own label, so a shadow's prices (``shadow_predictions``) can be compared with the
champion's (``predictions``) on exactly the listings both priced, once there are enough of them with a usable
asking price (``training.cleaning.is_usable_label``, the drift monitor's rule). Figures: MAE, median absolute
percentage error and 80% range coverage of each, per band of the champion's own price and per ``source``, and
a paired bootstrap interval (``scipy.stats.bootstrap``) of the mean of (shadow − champion) absolute errors.

The test (``decide_live``) is the offline gate's, made live: the shadow wins only if the whole interval lies
below −``promotion_margin`` × the champion's MAE, its coverage is within ``COVERAGE_BOUNDS``, and no source
with ``gate_min_rows`` listings is worse beyond ``gate_margin``. A challenger that wins is promoted (and the
champion it replaces watches it in shadow); one that does not is rejected. A watching old champion that wins
rolls the new one back; one that does not is let go ("kept").
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import psycopg
from scipy import stats

from pricemyride.listing import Listing
from pricemyride.policy import ShadowPolicy, SourcePolicy
from pricemyride.settings import Settings
from pricemyride.storage import ModelEventKind as EventKind
from training.cleaning import is_usable_label
from training.gate import COVERAGE_BOUNDS, worse_sources
from training.metrics import PRICE_BANDS, band_name
from training.promotion import promote, record_event, reject
from training.registry import champion_version, configure
from training.shadow import ActiveShadow, Role, active_shadow, end_shadow, start_shadow

log = logging.getLogger(__name__)
SEED: Final = 20_260_105  # the bootstrap's resamples are drawn the same way every time

LIVE_ROWS: Final = """
SELECT s.source, s.predicted_price, s.price_low, s.price_high, p.predicted_price, p.price_low, p.price_high,
       p.listing
FROM shadow_predictions s
JOIN predictions p ON p.source = s.source AND p.listing_id = s.listing_id AND p.model_version = s.champion_version
WHERE s.shadow_version = %s AND s.stored_at >= %s
"""
FIRST_DROP: Final = """
SELECT worker, reason FROM shadow_drops WHERE shadow_version = %s AND dropped_at >= %s ORDER BY dropped_at LIMIT 1
"""
PRICES: Final = ("shadow_fair", "shadow_low", "shadow_high", "champion_fair", "champion_low", "champion_high")


@dataclass(frozen=True)
class LiveComparison:
    """Champion and shadow on the same labelled live listings. ``ci_low``/``ci_high``: the interval of the
    shadow's MAE minus the champion's (negative: the shadow errs less)."""

    rows: int
    champion_mae: float
    shadow_mae: float
    champion_mdape: float
    shadow_mdape: float
    champion_coverage: float
    shadow_coverage: float
    ci_low: float
    ci_high: float
    by_source: dict[str, dict[str, float]] = field(default_factory=dict)
    by_band: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveVerdict:
    """Whether the shadow won the live test, and why."""

    shadow_wins: bool
    reason: str


def live_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The joined rows as one frame: the listing's fields (every field of the contract, None where a stored
    listing lacks it), ``source``, and both models' prices."""
    listings = pd.DataFrame([row[7] for row in rows])
    listings = listings.reindex(columns=list(dict.fromkeys([*Listing.model_fields, *listings.columns])))
    prices = pd.DataFrame([row[1:7] for row in rows], columns=list(PRICES), dtype="float64")
    return listings.assign(source=[row[0] for row in rows]).join(prices)


def read_live(settings: Settings, shadow: ActiveShadow) -> tuple[pd.DataFrame, tuple[str, str] | None]:
    """The shadow's labelled live listings with both models' prices, and its first drop (worker, reason)."""
    with psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=10) as conn:
        rows = conn.execute(LIVE_ROWS, [shadow.version, shadow.since]).fetchall()
        drop = conn.execute(FIRST_DROP, [shadow.version, shadow.since]).fetchone()
    return labelled(rows), (drop[0], drop[1]) if drop else None


def labelled(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """``LIVE_ROWS`` as a frame, only the listings whose asking price is a usable label."""
    frame = live_frame(rows) if rows else pd.DataFrame(columns=["price", "source", *PRICES])
    return frame[is_usable_label(frame)] if len(frame) else frame


def errors_of(frame: pd.DataFrame, who: str) -> dict[str, float]:
    """MAE, median absolute percentage error and coverage of ``who`` (champion or shadow) on ``frame``."""
    price, fair = frame["price"].to_numpy("float64"), frame[f"{who}_fair"].to_numpy("float64")
    low, high = frame[f"{who}_low"].to_numpy("float64"), frame[f"{who}_high"].to_numpy("float64")
    error = np.abs(fair - price)
    return {"mae": float(error.mean()), "mdape": float(np.median(error / price)),
            "coverage": float(((price >= low) & (price <= high)).mean())}  # fmt: skip


def per_group(frame: pd.DataFrame, keys: pd.Series) -> dict[str, dict[str, float]]:
    """Rows and both models' figures per group (the ``challenger_*`` keys are the shadow's, as the offline
    gate's ``worse_sources`` reads them)."""
    out = {}
    for name, index in frame.groupby(keys.to_numpy()).indices.items():
        part = frame.iloc[index]
        champion, shadow = errors_of(part, "champion"), errors_of(part, "shadow")
        out[str(name)] = {"rows": float(len(part)), "champion_mae": champion["mae"],
                          "challenger_mae": shadow["mae"], "champion_coverage": champion["coverage"],
                          "challenger_coverage": shadow["coverage"]}  # fmt: skip
    return out


def band_of(fair: pd.Series) -> pd.Series:
    """Each listing's band of the champion's own price (never of the asking price: see the brief's note on
    regression to the mean)."""
    names = pd.Series("", index=fair.index)
    for low, high in PRICE_BANDS:
        names[(fair >= low) & (fair < high)] = band_name(low, high)
    return names


def difference_interval(frame: pd.DataFrame, policy: ShadowPolicy) -> tuple[float, float]:
    """Paired bootstrap interval of mean(|shadow − price| − |champion − price|) over the same listings."""
    price = frame["price"].to_numpy("float64")
    paired = np.abs(frame["shadow_fair"].to_numpy("float64") - price) - np.abs(
        frame["champion_fair"].to_numpy("float64") - price)  # fmt: skip
    result = stats.bootstrap((paired,), np.mean, n_resamples=policy.resamples, confidence_level=policy.confidence,
                             method="percentile", rng=np.random.default_rng(SEED))  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare_live(frame: pd.DataFrame, policy: ShadowPolicy) -> LiveComparison | None:
    """The comparison on ``frame`` (labelled rows with both models' prices); None with fewer than 2 rows."""
    if len(frame) < 2:
        return None
    champion, shadow = errors_of(frame, "champion"), errors_of(frame, "shadow")
    low, high = difference_interval(frame, policy)
    return LiveComparison(
        len(frame), champion["mae"], shadow["mae"], champion["mdape"], shadow["mdape"], champion["coverage"],
        shadow["coverage"], low, high, per_group(frame, frame["source"].astype(str)),
        per_group(frame, band_of(frame["champion_fair"])),
    )  # fmt: skip


def decide_live(comparison: LiveComparison, margin: float, sources: SourcePolicy) -> LiveVerdict:
    """Does the shadow beat the champion on live listings, by the margin, with confidence, on every source?"""
    c, needed = comparison, -margin * comparison.champion_mae
    figures = (f"MAE {c.shadow_mae:,.0f} vs the champion's {c.champion_mae:,.0f} on {c.rows:,} live listings, "
               f"difference in [{c.ci_low:+,.0f}, {c.ci_high:+,.0f}]")  # fmt: skip
    if not c.ci_high < needed:
        return LiveVerdict(False, f"{figures}: expected all of it below {needed:+,.0f} ({margin:.0%} of its MAE)")
    low, high = COVERAGE_BOUNDS
    if not low <= c.shadow_coverage <= high:
        return LiveVerdict(False, f"{figures}, but its 80% range covers {c.shadow_coverage:.1%} of live prices; "
                                  f"expected {low:.0%} … {high:.0%}")  # fmt: skip
    if (worse := worse_sources(c.by_source, sources)) is not None:
        return LiveVerdict(False, f"{figures}, but its {worse}")
    return LiveVerdict(True, f"{figures}: better by more than {margin:.0%} with confidence")


def figures_of(comparison: LiveComparison, shadow: ActiveShadow) -> dict[str, Any]:
    return {"live": asdict(comparison), "shadow": shadow.version, "role": shadow.role.value,
            "shadow_since": shadow.since.isoformat()}  # fmt: skip


def apply_live(settings: Settings, shadow: ActiveShadow, champion: int | None, comparison: LiveComparison) -> str:
    """Decide on ``shadow`` and act: promoted / rejected (a challenger), rolled_back / kept (a watcher)."""
    verdict = decide_live(comparison, settings.promotion_margin, settings.sources)
    metrics = figures_of(comparison, shadow)
    if shadow.role is Role.CHALLENGER:
        outcome = EventKind.PROMOTED.value if verdict.shadow_wins else EventKind.REJECTED.value
        end_shadow(settings, shadow, outcome, f"live gate: {verdict.reason}", metrics)
        if not verdict.shadow_wins:
            reject(settings, shadow.version, champion, f"live gate: {verdict.reason}", metrics)
            return outcome
        promote(settings, shadow.version, f"live gate: {verdict.reason}", metrics)
        if champion is not None:
            start_shadow(settings, champion, shadow.version, Role.WATCH, "the champion before it watches it", {})
        return outcome
    if not verdict.shadow_wins:
        end_shadow(settings, shadow, "kept", f"live watch: the new champion holds: {verdict.reason}", metrics)
        return "kept"
    end_shadow(settings, shadow, EventKind.ROLLED_BACK.value, f"live watch: {verdict.reason}", metrics)
    if champion is not None:
        record_event(settings, EventKind.ROLLED_BACK, champion, shadow.version,
                     f"worse on live listings than version {shadow.version}: {verdict.reason}", metrics)  # fmt: skip
    promote(settings, shadow.version, f"rollback: version {champion} was worse on live listings", metrics, verify=True)
    return EventKind.ROLLED_BACK.value


def end_dropped(settings: Settings, shadow: ActiveShadow, drop: tuple[str, str]) -> str:
    """A shadow some worker could not run: a challenger is rejected, a watcher let go, with the worker's reason."""
    reason = f"shadow could not run on worker {drop[0]}: {drop[1]}"
    end_shadow(settings, shadow, "dropped", reason, {})
    if shadow.role is Role.CHALLENGER:
        reject(settings, shadow.version, shadow.champion, reason, {})
        return EventKind.REJECTED.value
    return "kept"


def elapsed_s(shadow: ActiveShadow) -> float:
    return (datetime.now(UTC) - shadow.since).total_seconds()


@dataclass(frozen=True)
class LiveCheck:
    """One look at the running shadow: its figures so far and, when it was decided, the outcome."""

    shadow: ActiveShadow
    comparison: LiveComparison | None
    outcome: str | None = None


def enough(settings: Settings, shadow: ActiveShadow, comparison: LiveComparison | None) -> bool:
    needed = settings.shadow.min_rows if shadow.role is Role.CHALLENGER else settings.shadow.watch_rows
    return comparison is not None and comparison.rows >= needed and elapsed_s(shadow) >= settings.shadow.min_s


def check(settings: Settings) -> LiveCheck | None:
    """Judge the running shadow (None without one) once it has enough labelled live listings, and act on it
    (the registry is asked for the champion only then)."""
    shadow = active_shadow(settings)
    if shadow is None:
        return None
    frame, drop = read_live(settings, shadow)
    if drop is not None:
        return LiveCheck(shadow, None, end_dropped(settings, shadow, drop))
    comparison = compare_live(frame, settings.shadow)
    if comparison is None or not enough(settings, shadow, comparison):
        return LiveCheck(shadow, comparison)
    champion = champion_version(configure(settings), settings)
    return LiveCheck(shadow, comparison, apply_live(settings, shadow, champion, comparison))
