"""What would narrow the range: for each field a listing leaves out, how much narrower its 80% range would be
if the seller gave it.

The range is the model's own (a difficulty model and a calibration table per information class), so a
listing that says more usually gets a narrower one. For a missing field we do not know the value the seller
would give, so we price the listing with each plausible value filled in — the values the most similar
stored listings have (its comparables), else the contract's own vocabulary or a grid of typical years and
mileages — and report the mean width against today's. One vectorised model call prices every variant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from pricemyride.rules import (
    CONDITIONS,
    CYLINDERS,
    DRIVES,
    FUELS,
    PAINT_COLORS,
    SIZES,
    TITLE_STATUSES,
    TRANSMISSIONS,
    TYPES,
)
from pricing.path import Model

VOCABULARIES: Final[dict[str, tuple[Any, ...]]] = {
    "condition": CONDITIONS, "cylinders": CYLINDERS, "fuel": FUELS, "title_status": TITLE_STATUSES,
    "transmission": TRANSMISSIONS, "drive": DRIVES, "size": SIZES, "type": TYPES, "paint_color": PAINT_COLORS,
    "year": (2004, 2008, 2011, 2014, 2016, 2018, 2020), "odometer": (15_000, 40_000, 70_000, 100_000, 140_000, 190_000),
}  # fmt: skip
# The fields a seller can give on a form; position (lat/long), region and dates come from the site.
ASKABLE: Final = ("year", "model", "odometer", "condition", "cylinders", "fuel", "title_status", "transmission",
                  "drive", "size", "type", "paint_color", "state")  # fmt: skip
MAX_CANDIDATES: Final = 4
MIN_NARROWING: Final = 0.01  # report a field only if it narrows the range by at least 1% of its width


@dataclass(frozen=True)
class WhatIf:
    """If the seller gave ``field``: the range's mean width over plausible values, against today's."""

    field: str
    width_now: float
    width_if_given: float
    tried: int

    @property
    def narrower_by(self) -> float:
        return self.width_now - self.width_if_given

    @property
    def narrower_by_percent(self) -> float:
        return 100 * self.narrower_by / self.width_now if self.width_now else 0.0


def candidates(field: str, examples: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Plausible values of ``field``: the most common among ``examples`` (two or more of them), else the
    vocabulary; none for a field with neither (a free-text field no example gives)."""
    seen = Counter(v for e in examples if (v := e.get(field)) is not None and v == v)
    if len(seen) >= 2 or (seen and field not in VOCABULARIES):
        return [v for v, _ in seen.most_common(MAX_CANDIDATES)]
    vocabulary = VOCABULARIES.get(field, ())
    if len(vocabulary) <= MAX_CANDIDATES:
        return list(vocabulary)
    picks = np.linspace(0, len(vocabulary) - 1, MAX_CANDIDATES).round().astype(int)
    return [vocabulary[i] for i in picks]


def variants(record: Mapping[str, Any], examples: Sequence[Mapping[str, Any]]
             ) -> tuple[list[dict[str, Any]], list[tuple[str, int, int]]]:  # fmt: skip
    """``record`` with each missing askable field filled by each of its candidates, and per field the span of
    those variants in the list."""
    out: list[dict[str, Any]] = []
    spans: list[tuple[str, int, int]] = []
    for field in ASKABLE:
        if record.get(field) is not None:
            continue
        values = candidates(field, examples)
        if values:
            spans.append((field, len(out), len(out) + len(values)))
            out.extend({**record, field: value} for value in values)
    return out, spans


def narrowing_of(width_now: float, widths: np.ndarray, spans: Sequence[tuple[str, int, int]]) -> list[WhatIf]:
    """The fields whose variants' mean width (``widths``, in ``spans``) is narrower than ``width_now``."""
    found = [WhatIf(field, width_now, float(widths[a:b].mean()), b - a) for field, a, b in spans]
    return sorted((w for w in found if w.narrower_by >= MIN_NARROWING * width_now), key=lambda w: -w.narrower_by)


def narrowing(model: Model, record: Mapping[str, Any], examples: Sequence[Mapping[str, Any]]) -> list[WhatIf]:
    """Per missing askable field that narrows the range, the width with it given; widest narrowing first."""
    extra, spans = variants(record, examples)
    ranges = np.asarray(model.price_ranges([record, *extra]), dtype="float64")
    widths = ranges[:, 2] - ranges[:, 1]
    return narrowing_of(float(widths[0]), widths[1:], spans)
