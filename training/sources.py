"""No one listing site steers retraining: what the retrain flow does to stored listings before it trains.

Stored listings carry the ``source`` that published them and the price the champion gave them. In order:

1. **Re-publications**: the same listing content (every field but id and posting date) published again by
   the same source counts once.
2. **A source apart from the market**: each source with at least ``min_rows`` listings has the median log
   ratio of its asking prices to the champion's fair prices. The sources and the champion (ratio 1) each get
   one vote; a source whose median lies more than ``max_shift`` (a factor, 1.5 = ±50%) from the median of the
   votes is set aside whole — a site that floods ×3 prices sits at log 3 while the others and the champion
   sit near 0, and a market move that every site shows (the 2021 surge) moves the votes together.
3. **Outliers within a source**: listings whose log ratio lies more than ``outlier_z`` robust z-scores (MAD)
   from their source's median.
4. **A share cap**: no source keeps more than ``max_share`` of the stored training rows; a larger one is
   sampled down, and where not even equal shares fit (three sources and 0.3) all are levelled to the
   smallest. The cap keeps sites apart from each other: rows from files do not count, and a lone stored
   source is not capped (the default 0.3 was chosen on validation: ``training.share_choice``).

Rows from data files (no ``fair_price``) are the operator's choice: the guard leaves them to the cleaning.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from pricemyride.policy import SourcePolicy

log = logging.getLogger(__name__)
SOURCE: Final = "source"
FAIR: Final = "fair_price"  # the champion's price when the listing was stored (stored rows only)
CONTENT: Final = ("price", "year", "manufacturer", "model", "condition", "cylinders", "fuel", "odometer",
                  "title_status", "transmission", "drive", "size", "type", "paint_color", "region", "state",
                  "lat", "long")  # fmt: skip


@dataclass
class SourceReport:
    """Per source: rows in, re-publications, outliers and capped rows removed, rows kept; sources set aside
    with their median asking ÷ fair price."""

    rows: dict[str, int] = field(default_factory=dict)
    republished: dict[str, int] = field(default_factory=dict)
    outliers: dict[str, int] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)
    set_aside: dict[str, float] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame[SOURCE].value_counts().items()}


def log_ratio(frame: pd.DataFrame) -> pd.Series:
    """log(asking ÷ the champion's fair price); NaN where either is missing or not positive."""
    asking = pd.to_numeric(frame["price"], errors="coerce")
    fair = pd.to_numeric(frame[FAIR], errors="coerce") if FAIR in frame else pd.Series(np.nan, index=frame.index)
    ratio = np.log(asking.where(asking > 0) / fair.where(fair > 0))
    return pd.Series(ratio, index=frame.index, dtype="float64")


def stored_rows(frame: pd.DataFrame) -> pd.Series:
    """Row-wise: a stored listing (it has the champion's ``fair_price``), not a row from a file."""
    return frame[FAIR].notna() if FAIR in frame else pd.Series(False, index=frame.index)


def drop_republished(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored listings published again by the same source count once (file rows are left to the cleaning)."""
    columns = [SOURCE, *(c for c in CONTENT if c in frame)]
    again = frame[columns].astype("string").duplicated(keep="last") & stored_rows(frame)
    return frame.loc[~again]


def shifted_sources(frame: pd.DataFrame, policy: SourcePolicy) -> dict[str, float]:
    """Sources whose median asking ÷ fair lies beyond ``max_shift`` of the votes' median (see the module)."""
    ratios = log_ratio(frame)
    enough = [(str(s), r) for s, r in ratios.groupby(frame[SOURCE]) if r.notna().sum() >= policy.min_rows]
    medians = {s: float(r.median()) for s, r in enough}
    if not medians:
        return {}
    center = float(np.median([0.0, *medians.values()]))  # the champion votes "ratio 1"
    bound = float(np.log(policy.max_shift))
    return {s: round(float(np.exp(m)), 3) for s, m in medians.items() if abs(m - center) > bound}


def outliers(frame: pd.DataFrame, policy: SourcePolicy) -> pd.Series:
    """Row-wise: beyond ``outlier_z`` robust z-scores of its source's log ratios."""
    ratios = log_ratio(frame)
    grouped = ratios.groupby(frame[SOURCE])
    center = grouped.transform("median")
    spread = 1.4826 * (ratios - center).abs().groupby(frame[SOURCE]).transform("median")
    z = (ratios - center).abs() / spread.clip(lower=0.05)
    return (z > policy.outlier_z).fillna(False)


def share_caps(sizes: dict[str, int], others: int, max_share: float) -> dict[str, int]:
    """The most rows each too-large source may keep so that none is over ``max_share`` of the final total;
    ``others`` are rows of no source here (files). A source's share at a cap x, x ÷ (others + Σ min(size, x)),
    grows with x, so the cap is the largest x that keeps it within ``max_share`` (a bisection). Where even
    equal sources cannot meet it (three sources and 0.3), every source is levelled to the smallest one, the
    nearest to the rule there is. One source alone with nothing beside it is not capped."""
    if not sizes or max(sizes.values()) <= max_share * (others + sum(sizes.values())):
        return {}
    if len(sizes) == 1 and others == 0:
        return {}

    def within(x: int) -> bool:
        return x <= max_share * (others + sum(min(n, x) for n in sizes.values()))

    low, high = 0, max(sizes.values())  # within(low) holds, within(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if within(middle) else (low, middle)
    limit = low if low > 0 or others else min(sizes.values())  # 0 alone: not even equal shares fit: level
    return {source: limit for source, n in sizes.items() if n > limit}


def cap(frame: pd.DataFrame, stored: pd.Series, policy: SourcePolicy, seed: int) -> pd.DataFrame:
    sizes = counts(frame.loc[stored])
    limits = share_caps(sizes, 0, policy.max_share)  # among sites: the operator's files do not count
    keep = pd.Series(True, index=frame.index)
    for source, limit in limits.items():
        rows = frame.index[stored & (frame[SOURCE] == source)]
        dropped = rows.difference(pd.Index(np.random.default_rng(seed).choice(rows, limit, replace=False)))
        keep[dropped] = False
    return frame.loc[keep]


def guard_sources(frame: pd.DataFrame, policy: SourcePolicy, seed: int = 42) -> tuple[pd.DataFrame, SourceReport]:
    """``frame`` less what one source may not contribute (module docstring), and the per-source report.
    Stored rows are those with a ``fair_price``; a frame without a ``source`` column is returned as it is."""
    report = SourceReport()
    if SOURCE not in frame or frame.empty:
        return frame, report
    report.rows = counts(frame)
    deduplicated = drop_republished(frame)
    report.republished = diff(frame, deduplicated)
    report.set_aside = shifted_sources(deduplicated, policy)
    kept = deduplicated.loc[~deduplicated[SOURCE].isin(list(report.set_aside))]
    trimmed = kept.loc[~outliers(kept, policy)]
    report.outliers = diff(kept, trimmed)
    capped = cap(trimmed, stored_rows(trimmed), policy, seed)
    report.capped, report.kept = diff(trimmed, capped), counts(capped)
    for source, ratio in report.set_aside.items():
        log.warning("source %s set aside: its median asking price is %.2f× the champion's", source, ratio)
    return capped, report


def diff(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, int]:
    then, now = counts(before), counts(after)
    return {s: n - now.get(s, 0) for s, n in then.items() if n - now.get(s, 0)}
