"""A built-in source of realistic listings, so a new user needs no data file.

Its parameters (``generator_params.json``) are aggregates fitted from real Craigslist listings by
``producers/fit_generator.py``. Each car is a make and model drawn by market share; the fields a model
decides (body type, drive, cylinders, fuel, transmission, size) are drawn from that model's shares, the
others (condition, title, colour, state) from the market's; its age from the market's ages and its
mileage from the miles driven per year at that age. Its log price is the model's base plus the fitted
age and mileage curves, plus the fitted effect of every field's value, plus noise drawn from the fitted
residual's quantiles. The output has the Craigslist columns and the same kinds of dirt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

PARAMS_FILE: Final = Path(__file__).with_name("generator_params.json")  # written by producers/fit_generator.py
CATEGORY_FIELDS: Final = ("condition", "cylinders", "fuel", "title_status", "transmission", "drive", "size", "type",
                          "paint_color")  # fmt: skip
MODEL_FIELDS: Final = ("cylinders", "fuel", "transmission", "drive", "size", "type")  # drawn per model
MISSING: Final = "<missing>"


@cache
def generator_params() -> dict[str, Any]:
    return dict(json.loads(PARAMS_FILE.read_text()))


@dataclass(frozen=True)
class Table:
    """Categorical draws: ``levels``, their shares per group (a model, or one group for the market) as
    cumulative shares offset by the group's number (so one sorted search serves every group), and the
    effect of each level on the log price."""

    levels: np.ndarray
    offset_cumulative: np.ndarray
    effect: np.ndarray

    @classmethod
    def of(cls, groups: Sequence[Mapping[str, float]], effects: Mapping[str, float] | None = None) -> Table:
        levels = list(dict.fromkeys(level for group in groups for level in group))
        shares = np.array([[group.get(level, 0.0) for level in levels] for group in groups], dtype="float64")
        cumulative = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)
        cumulative[:, -1] = 1.0
        offset = (cumulative + np.arange(len(groups))[:, None]).ravel()
        effect = np.array([(effects or {}).get(level, 0.0) for level in levels], dtype="float64")
        return cls(np.array(levels, dtype=object), offset, effect)

    @property
    def grouped(self) -> bool:
        return len(self.offset_cumulative) > len(self.levels)

    def draw(self, rng: np.random.Generator, n: int, group: np.ndarray | None = None) -> np.ndarray:
        """A level code for each of ``n`` rows, drawn from the row's group (the first if ``group`` is None)."""
        group = np.zeros(n, dtype=np.intp) if group is None else group
        found = np.searchsorted(self.offset_cumulative, group + rng.random(n), side="right")
        return np.minimum(found - group * len(self.levels), len(self.levels) - 1)


@dataclass(frozen=True)
class Catalog:
    """The fitted figures as arrays to draw from (built once): the models, and a table per field."""

    make: np.ndarray
    model: np.ndarray
    log_base: np.ndarray
    age_slope: np.ndarray
    models: Table
    fields: dict[str, Table]


@cache
def catalog() -> Catalog:
    params = generator_params()
    effects = params["price"]["effects"]
    cars = [(make, spec, car) for make, spec in params["makes"].items() for car in spec["models"].values()]
    weights = np.array([spec["share"] * car["share"] / _models_total(spec) for _, spec, car in cars])
    fields = {
        field: Table.of([car["fields"][field] for _, _, car in cars], effects.get(field))
        if field in MODEL_FIELDS
        else Table.of([params["categories"][field]], effects.get(field))
        for field in CATEGORY_FIELDS
    }
    fields["state"] = Table.of([{s: v["share"] for s, v in params["states"].items()}], effects.get("state"))
    return Catalog(
        make=np.array([make for make, _, _ in cars], dtype=object),
        model=np.array([car["name"] for _, _, car in cars], dtype=object),
        log_base=np.array([car["log_base"] for _, _, car in cars], dtype="float64"),
        age_slope=np.array([car["age_slope"] for _, _, car in cars], dtype="float64"),
        models=Table.of([{str(i): float(w) for i, w in enumerate(weights)}]),
        fields=fields,
    )


def _models_total(make: Mapping[str, Any]) -> float:
    return float(sum(car["share"] for car in make["models"].values()))


def _curve(curve: Mapping[str, Sequence[float]], x: np.ndarray, values: str = "y") -> np.ndarray:
    return np.interp(x, np.asarray(curve["x"], dtype="float64"), np.asarray(curve[values], dtype="float64"))


def _dirty(rng: np.random.Generator, frame: pd.DataFrame, dirt: dict[str, float]) -> pd.DataFrame:
    n = len(frame)
    frame.loc[rng.random(n) < dirt["price_zero"], "price"] = 0
    frame.loc[rng.random(n) < dirt["price_one"], "price"] = 1
    frame.loc[rng.random(n) < dirt["price_absurd"], "price"] = 1_234_567_890
    frame.loc[rng.random(n) < dirt["odometer_missing"], "odometer"] = np.nan
    frame.loc[rng.random(n) < dirt["odometer_absurd"], "odometer"] = 9_999_999
    frame.loc[rng.random(n) < dirt["year_missing"], "year"] = np.nan
    frame.loc[rng.random(n) < dirt["model_missing"], "model"] = None
    frame.loc[rng.random(n) < dirt["latlong_missing"], ["lat", "long"]] = np.nan
    return frame


def _cars(rng: np.random.Generator, cars: Catalog, car: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Make, model and the categorical fields of each car, and the sum of their effects on the log price."""
    n = len(car)
    frame = pd.DataFrame({"manufacturer": cars.make[car], "model": cars.model[car]})
    log_price = cars.log_base[car].copy()
    for field, table in cars.fields.items():
        codes = table.draw(rng, n, car if table.grouped else None)
        frame[field] = pd.Series(table.levels[codes]).replace(MISSING, None)
        log_price += table.effect[codes]
    return frame, log_price


def _age_and_miles(rng: np.random.Generator, params: dict[str, Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    shares = params["age"]["shares"]
    ages = np.array([int(a) for a in shares])[Table.of([shares]).draw(rng, n)]
    mpy = params["miles_per_year"]
    log_miles = rng.normal(_curve(mpy, ages, "log_mean"), _curve(mpy, ages, "log_sigma"))
    return ages, np.round(np.exp(log_miles) * np.maximum(ages, 0.5))


def _log_price_noise(rng: np.random.Generator, noise: Mapping[str, Any], log_price: np.ndarray) -> np.ndarray:
    """Noise drawn from the fitted residual quantiles of the band of each car's log price (between the
    lowest and highest quantile fitted)."""
    p = np.asarray(noise["p"], dtype="float64")
    u = p[0] + (p[-1] - p[0]) * rng.random(len(log_price))
    band = np.searchsorted(np.asarray(noise["band_edges"]), log_price, side="right")
    out = np.empty(len(log_price))
    for b, quantiles in enumerate(noise["quantiles"]):
        rows = band == b
        out[rows] = np.interp(u[rows], p, quantiles)
    return out


def generate_listings(n: int, seed: int = 0, start: datetime | None = None, dirty: bool = True) -> pd.DataFrame:
    """``n`` listings in the Craigslist format, posted one second apart up to ``start`` (default: now).

    The last listing is posted at ``start``, the others before it: a large sample never carries posting
    dates in the future, which the event contract refuses (more than a day ahead)."""
    params, cars = generator_params(), catalog()
    rng = np.random.default_rng(seed)
    start = start or datetime.now(UTC)
    car = cars.models.draw(rng, n)
    frame, log_price = _cars(rng, cars, car)
    ages, odometer = _age_and_miles(rng, params, n)
    frame["odometer"] = odometer
    posted = pd.Series([start - timedelta(seconds=n - 1 - i) for i in range(n)])
    frame["year"] = posted.dt.year.to_numpy() - ages
    price = params["price"]
    log_price += cars.age_slope[car] * (ages - price["age_pivot"]) / 10 + _curve(price["age_curve"], ages)
    log_price += _curve(price["miles_curve"], odometer / 100_000)
    log_price += _log_price_noise(rng, price["noise"], log_price)
    frame["price"] = np.round(np.exp(np.minimum(log_price, np.log(300_000))), -1)
    states = params["states"]
    frame["region"] = [states[s]["region"] for s in frame["state"]]
    frame["lat"] = [states[s]["lat"] for s in frame["state"]] + rng.normal(0, 0.8, n)
    frame["long"] = [states[s]["long"] for s in frame["state"]] + rng.normal(0, 0.8, n)
    frame["posting_date"] = posted.map(lambda t: t.isoformat(timespec="seconds"))
    frame["id"] = [f"gen-{seed}-{i}" for i in range(n)]
    frame = frame[["manufacturer", "model", "year", "odometer", "price", *CATEGORY_FIELDS, "state", "region",
                   "lat", "long", "posting_date", "id"]]  # fmt: skip
    return _dirty(rng, frame, params["dirt"]) if dirty else frame
