"""How much a listing tells: the information levels sites send, blanking them, and masking for training.

Real sites send listings with fields missing: no model year, no model name, or only the basics. The
evaluation blanks the same test rows to each level (so each level is judged on the same cars), training
adds masked copies so the model has seen every level, and the range is calibrated per information class
(``info_class``), which a scored listing's own fields decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from pricemyride.listing import FEATURE_FIELDS
from training.features import is_missing

SITE_LITE_BLANK: Final = ("model", "state", "title_status", "size", "lat", "long", "posting_date")
MINIMAL_KEEP: Final = ("manufacturer", "year", "odometer")
LEVELS: Final[dict[str, tuple[str, ...]]] = {
    "full": (),
    "no year": ("year",),
    "no model name": ("model",),
    "site-lite": SITE_LITE_BLANK,
    "minimal": tuple(f for f in FEATURE_FIELDS if f not in MINIMAL_KEEP),
}
# What a listing's fields say about how well it can be priced: the range is calibrated per class.
DETAILS: Final = tuple(f for f in FEATURE_FIELDS if f not in ("year", "model", "manufacturer", "odometer"))
SPARSE_DETAILS: Final = len(DETAILS) // 2  # more details missing than this: a sparse listing
INFO_CLASSES: Final = ("full", "no model name", "no year", "sparse", "sparse, no model name", "sparse, no year")
# Training copies per level, as a share of the training rows; "observed" copies take the missing-field
# pattern of another real listing.
MASK_SHARES: Final[dict[str, float]] = {"no year": 0.35, "no model name": 0.25, "site-lite": 0.25,
                                         "minimal": 0.15, "observed": 0.25}  # fmt: skip


def blank(frame: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """A copy of ``frame`` with ``fields`` missing, as a site that does not send them."""
    out = frame.copy()
    for field in fields:
        if field in out:
            out[field] = np.nan if pd.api.types.is_numeric_dtype(out[field]) else None
    return out


def at_level(frame: pd.DataFrame, level: str) -> pd.DataFrame:
    return blank(frame, LEVELS[level])


def info_class(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Per listing, its index in ``INFO_CLASSES``: year and model name given or not, and sparse or not."""
    out = np.empty(len(records), dtype=np.int64)
    na = pd.NA
    for i, record in enumerate(records):  # the stream's hot path: no function call per field
        given = [record.get(f) for f in DETAILS]
        sparse = sum(v is None or v is na or v != v for v in given) > SPARSE_DETAILS
        kind = 2 if is_missing(record.get("year")) else 1 if is_missing(record.get("model")) else 0
        out[i] = kind + 3 * sparse
    return out


def observed_masks(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``rows`` missing-field patterns drawn from the listings of ``frame`` (True: missing)."""
    present = frame.reindex(columns=list(FEATURE_FIELDS)).isna()
    return present.iloc[rng.integers(0, len(present), size=rows)].reset_index(drop=True)


def masked_copies(frame: pd.DataFrame, seed: int, shares: Mapping[str, float] = MASK_SHARES) -> pd.DataFrame:
    """``frame`` plus copies of random rows with fields blanked: per level in ``shares`` that share of rows.

    Each level's copies are drawn from every row alike, whatever its source, so a missing field is not
    learnt as a sign of the one seller sample where it happens to be missing."""
    rng = np.random.default_rng(seed)
    parts = [frame]
    for level, share in shares.items():
        picked = frame.iloc[rng.choice(len(frame), size=int(len(frame) * share), replace=False)]
        if level == "observed":
            masks = observed_masks(frame, len(picked), rng)
            copy = picked.reset_index(drop=True).reindex(columns=frame.columns)
            for field in masks.columns.intersection(copy.columns):
                copy.loc[masks[field].to_numpy(), field] = None
            parts.append(copy.set_axis(picked.index))
        else:
            parts.append(at_level(picked, level))
    return pd.concat(parts, ignore_index=True)
