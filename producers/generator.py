"""A built-in source of realistic listings, so a new user needs no data file.

Its parameters (``generator_params.json``) are aggregates fitted from real Craigslist listings by
``producers/fit_generator.py``: price by make, model and age, mileage, how often each field is missing
or dirty. The output has the Craigslist columns and the same kinds of dirt.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from producers.fit_generator import PARAMS_FILE


@cache
def generator_params() -> dict[str, Any]:
    return dict(json.loads(PARAMS_FILE.read_text()))


def _pick(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    keys = list(shares)
    weights = np.array([shares[k] for k in keys], dtype="float64")
    return rng.choice(np.array(keys, dtype=object), size=n, p=weights / weights.sum())


def _cars(rng: np.random.Generator, params: dict[str, Any], n: int) -> pd.DataFrame:
    makes = params["makes"]
    make = _pick(rng, {m: v["share"] for m, v in makes.items()}, n)
    model = np.empty(n, dtype=object)
    log_base = np.empty(n)
    for name in np.unique(make):
        rows = np.flatnonzero(make == name)
        models = makes[name]["models"]
        chosen = _pick(rng, {m: v["share"] for m, v in models.items()}, len(rows))
        model[rows] = [models[c].get("name", c) for c in chosen]
        log_base[rows] = [models[c]["log_base"] for c in chosen]
    return pd.DataFrame({"manufacturer": make, "model": model, "log_base": log_base})


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


def generate_listings(n: int, seed: int = 0, start: datetime | None = None, dirty: bool = True) -> pd.DataFrame:
    """``n`` listings in the Craigslist format, posted one second apart from ``start`` (default: now)."""
    params = generator_params()
    rng = np.random.default_rng(seed)
    start = start or datetime.now(UTC)
    frame = _cars(rng, params, n)
    ages = _pick(rng, params["age"]["shares"], n).astype(int)
    posted = pd.Series([start + timedelta(seconds=i) for i in range(n)])
    frame["year"] = posted.dt.year.to_numpy() - ages
    miles = np.exp(rng.normal(params["miles_per_year"]["log_mean"], params["miles_per_year"]["log_sigma"], n))
    frame["odometer"] = np.round(miles * np.clip(ages, 0.3, None))
    price = params["price"]
    wear = price["depreciation_per_year"] * ages + price["per_100k_miles"] * frame["odometer"] / 100_000
    log_price = frame["log_base"] - wear + rng.normal(0, price["noise_sigma"], n)
    frame["price"] = np.round(np.exp(log_price.clip(upper=np.log(300_000))), -1)
    for field, shares in params["categories"].items():
        frame[field] = pd.Series(_pick(rng, shares, n)).replace("<missing>", None)
    state = _pick(rng, {s: v["share"] for s, v in params["states"].items()}, n)
    frame["state"] = state
    frame["region"] = [params["states"][s]["region"] for s in state]
    frame["lat"] = [params["states"][s]["lat"] for s in state] + rng.normal(0, 0.8, n)
    frame["long"] = [params["states"][s]["long"] for s in state] + rng.normal(0, 0.8, n)
    frame["posting_date"] = posted.map(lambda t: t.isoformat(timespec="seconds"))
    frame["id"] = [f"gen-{seed}-{i}" for i in range(n)]
    frame = frame.drop(columns="log_base")
    return _dirty(rng, frame, params["dirt"]) if dirty else frame
