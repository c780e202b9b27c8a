"""Fit the built-in listing generator's parameters from a real Craigslist file and write them as figures.

    python -m producers.fit_generator --data ../shared/data/craigslist_2021.csv

Only aggregates are written (frequencies, medians, fitted effects, quantiles, rates) — never a row of the
source file.

The price is additive in log dollars: a base per make and model, an age curve and a mileage curve
(piecewise linear), and one effect per level of every categorical field (condition, cylinders, fuel,
title, transmission, drive, size, type, colour, state; a missing value is a level of its own). They are
fitted together by least squares, robust to outlying prices (Huber weights), with the dummies shrunk
toward 0 (ridge) so a rare level or model keeps a small effect; each make and model also has its own
depreciation slope (a pickup holds its value, a luxury saloon does not). The noise is the distribution
of what that leaves, as quantiles per band of price (cheap old cars stray further from their value than
new ones). The fields a model decides (body type, drive, cylinders, …) are drawn per model, from that
model's shares shrunk toward the market's; miles per year depend on age.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from pricemyride.datafile import read_listings_file
from pricemyride.generator import CATEGORY_FIELDS, MISSING, MODEL_FIELDS, PARAMS_FILE
from training.cleaning import clean
from training.features import model_words

PRICE_FIELDS: Final = (*CATEGORY_FIELDS, "state")  # fields with a fitted effect on the log price
TOP_MAKES, TOP_MODELS, MIN_MODEL_ROWS = 30, 12, 15
MAX_AGE: Final = 40
AGE_PIVOT: Final = 10.0  # a model's own depreciation slope turns about this age (its base is the market's)
AGE_KNOTS: Final = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0, 20.0, 25.0, 30.0)  # years
MILES_KNOTS: Final = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)  # hundred-thousand miles
MAX_MILES: Final = 5.0
RIDGE: Final = 10.0  # a dummy's effect is shrunk as if it had this many more rows at 0
SHARE_PRIOR: Final = 3.0  # a model's field shares are shrunk toward the market's with this many rows
NOISE_BANDS: Final = 6  # bands of fitted log price, each with its own noise quantiles
# The noise is drawn from the residual's central 98%: its outer 1% on either side is mostly what an additive
# fit cannot express (collector cars, a deposit posted as the price), and the anchor and absurd prices are
# added as dirt. Kept, those tails alone cost the model 0.07 of R² on generated listings (0.74 → 0.81).
NOISE_QUANTILES: Final = np.linspace(0.01, 0.99, 50)


def shares(series: pd.Series) -> dict[str, float]:
    counts = levels(series).value_counts(normalize=True)
    return {str(k): round(float(v), 4) for k, v in counts.items() if v >= 0.001}


def levels(series: pd.Series) -> pd.Series:
    """A categorical field as its levels: lower case, missing as ``<missing>``."""
    return series.astype("string").str.lower().str.strip().fillna(MISSING).astype(object)


def age_shares(age: pd.Series) -> dict[str, float]:
    counts = age.clip(0, MAX_AGE).astype(int).value_counts(normalize=True).sort_index()
    return {str(k): round(float(v), 4) for k, v in counts.items()}


def hinge(x: np.ndarray, knots: tuple[float, ...]) -> np.ndarray:
    """A piecewise-linear basis: x and (x − knot)⁺ for every knot."""
    return np.column_stack([x, *(np.maximum(x - k, 0.0) for k in knots)])


def one_hot(values: pd.Series, prefix: str) -> tuple[np.ndarray, list[str]]:
    codes, names = pd.factorize(values, sort=True)
    matrix = np.zeros((len(values), len(names)))
    matrix[np.arange(len(values)), codes] = 1.0
    return matrix, [f"{prefix}={n}" for n in names]


def car_keys(usable: pd.DataFrame) -> pd.Series:
    """The model each row is priced as: 'make|model' for the kept models, 'make|<missing>' for the rest."""
    key = usable["manufacturer"] + "|" + usable["model_base"]
    counts = key.value_counts()
    counts = counts[counts >= MIN_MODEL_ROWS]
    top = counts.groupby(counts.index.str.split("|", n=1).str[0]).head(TOP_MODELS).index
    return key.where(key.isin(top), usable["manufacturer"] + "|" + MISSING)


def design(usable: pd.DataFrame, ref_year: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The columns of the price fit, the ridge penalty of each and the names of the dummies."""
    age = (ref_year - usable["year"]).clip(0, MAX_AGE).to_numpy(dtype="float64")
    miles = (usable["odometer"] / 100_000).clip(0, MAX_MILES).to_numpy(dtype="float64")
    numeric = np.column_stack([np.ones(len(usable)), hinge(age, AGE_KNOTS), hinge(miles, MILES_KNOTS)])
    blocks = [one_hot(usable["manufacturer"], "make"), one_hot(usable["car_key"], "car")]
    blocks += [one_hot(levels(usable[field]), field) for field in PRICE_FIELDS]
    slope = ((age - AGE_PIVOT) / 10)[:, None]  # a make's and a model's own depreciation, per 10 years
    blocks += [(m * slope, [n.replace("=", "_age=", 1) for n in names]) for m, names in blocks[:2]]
    dummies = np.hstack([b[0] for b in blocks])
    penalty = np.r_[np.zeros(numeric.shape[1]), np.full(dummies.shape[1], RIDGE)]
    return np.hstack([numeric, dummies]), penalty, [name for b in blocks for name in b[1]]


def robust_lstsq(x: np.ndarray, y: np.ndarray, penalty: np.ndarray, rounds: int = 6) -> np.ndarray:
    """Ridge least squares with Huber weights (iteratively reweighted): a $500 'call me' price on a
    new truck does not drag the truck's base down."""
    weights = np.ones(len(y))
    coef = np.zeros(x.shape[1])
    for _ in range(rounds):
        xw = x * weights[:, None]
        coef = np.linalg.solve(xw.T @ x + np.diag(penalty), xw.T @ y)
        residual = y - x @ coef
        scale = robust_sigma(residual)
        weights = np.minimum(1.0, 1.345 * scale / np.maximum(np.abs(residual), 1e-9))
    return coef


def robust_sigma(residual: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))))


def curve(
    coef: np.ndarray, knots: tuple[float, ...], points: np.ndarray, falling: bool = False
) -> dict[str, list[float]]:
    """A fitted piecewise-linear effect, tabulated where the generator reads it (``falling``: never rising,
    for mileage, whose last stretch has too few cars to say more)."""
    values = hinge(points, knots) @ coef
    values = np.minimum.accumulate(values) if falling else values
    return {"x": [round(float(p), 3) for p in points], "y": [round(float(v), 4) for v in values]}


def fit_price(usable: pd.DataFrame, ref_year: int) -> dict[str, Any]:
    """log price = base(make, model) + age curve + mileage curve + Σ field effects + noise."""
    x, penalty, names = design(usable, ref_year)
    y = np.log(usable["price"].to_numpy(dtype="float64"))
    coef = robust_lstsq(x, y, penalty)
    residual = y - x @ coef
    n_age, n_miles = len(AGE_KNOTS) + 1, len(MILES_KNOTS) + 1
    dummies = dict(zip(names, coef[1 + n_age + n_miles :], strict=True))
    effects, level_mean = field_effects(usable, dummies)
    keys = [(key, key.split("|", 1)[0]) for key in usable["car_key"].unique()]
    base = {key: coef[0] + level_mean + dummies[f"make={make}"] + dummies[f"car={key}"] for key, make in keys}
    slope = {key: dummies[f"make_age={make}"] + dummies[f"car_age={key}"] for key, make in keys}
    ages = np.arange(MAX_AGE + 1, dtype="float64")
    miles = np.array([0.0, *MILES_KNOTS, MAX_MILES])
    return {
        "age_curve": curve(coef[1 : 1 + n_age], AGE_KNOTS, ages),
        "miles_curve": curve(coef[1 + n_age : 1 + n_age + n_miles], MILES_KNOTS, miles, falling=True),
        "effects": effects,
        "noise": fit_noise(x @ coef, residual),
        "age_pivot": AGE_PIVOT,
        "log_base": base,
        "age_slope": slope,
    }


def fit_noise(fitted: np.ndarray, residual: np.ndarray) -> dict[str, Any]:
    """The residual's quantiles per band of fitted log price: a $40,000 truck's asking price strays less
    (in proportion) than a $2,000 runabout's, and the low tail (a deposit posted as the price) is longer."""
    edges = np.quantile(fitted, np.linspace(0, 1, NOISE_BANDS + 1)[1:-1])
    band = np.searchsorted(edges, fitted, side="right")
    return {
        "robust_sigma": round(robust_sigma(residual), 4),
        "band_edges": [round(float(e), 3) for e in edges],
        "p": [round(float(p), 4) for p in NOISE_QUANTILES],
        "quantiles": [
            [round(float(q), 4) for q in np.quantile(residual[band == b], NOISE_QUANTILES)] for b in range(NOISE_BANDS)
        ],
    }


def field_effects(usable: pd.DataFrame, dummies: dict[str, float]) -> tuple[dict[str, dict[str, float]], float]:
    """Each field's effects centred on its average listing, and the sum of the averages taken out."""
    effects: dict[str, dict[str, float]] = {}
    taken = 0.0
    for field in PRICE_FIELDS:
        values = levels(usable[field])
        raw = {level: dummies[f"{field}={level}"] for level in values.unique()}
        mean = float(values.map(raw).mean())
        taken += mean
        effects[field] = {str(k): round(float(v - mean), 4) for k, v in sorted(raw.items(), key=lambda kv: -kv[1])}
    return effects, taken


def model_fields(rows: pd.DataFrame, market: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The shares of the fields a model decides (body type, drive, …), shrunk toward the market's."""
    out = {}
    for field in MODEL_FIELDS:
        counts = levels(rows[field]).value_counts()
        mixed = counts.add(pd.Series(market[field]) * SHARE_PRIOR, fill_value=0) / (len(rows) + SHARE_PRIOR)
        out[field] = {str(k): round(float(v), 3) for k, v in mixed.sort_values(ascending=False).items() if v >= 0.01}
    return out


def fit_makes(usable: pd.DataFrame, price: dict[str, Any], market: dict[str, Any]) -> dict[str, Any]:
    makes: dict[str, Any] = {}
    for make, rows in usable.groupby("manufacturer"):
        models = rows["car_key"].value_counts().drop(f"{make}|{MISSING}", errors="ignore")
        if models.empty:
            continue
        makes[str(make)] = {"share": len(rows), "models": {}}
        for key, n in models.items():
            car = rows[rows["car_key"] == key]
            makes[str(make)]["models"][str(key).split("|", 1)[1]] = {
                "share": int(n),
                "log_base": round(float(price["log_base"][str(key)]), 3),
                "age_slope": round(float(price["age_slope"][str(key)]), 3),
                "name": str(car["model"].str.lower().str.strip().mode().iat[0]),
                "fields": model_fields(car, market),
            }
    total = sum(m["share"] for m in makes.values())
    for make in makes.values():
        make["share"] = round(make["share"] / total, 4)
    return dict(sorted(makes.items(), key=lambda kv: -kv[1]["share"]))


def fit_miles(usable: pd.DataFrame, ref_year: int) -> dict[str, Any]:
    """Miles per year (log) by age: its mean and spread as curves (new and old cars are driven less)."""
    age = (ref_year - usable["year"]).clip(0, MAX_AGE).to_numpy(dtype="float64")
    log_mpy = np.log((usable["odometer"].to_numpy(dtype="float64") / np.maximum(age, 0.5)).clip(500))
    x = np.column_stack([np.ones(len(age)), hinge(age, AGE_KNOTS)])
    mean, *_ = np.linalg.lstsq(x, log_mpy, rcond=None)
    spread, *_ = np.linalg.lstsq(x, np.abs(log_mpy - x @ mean) * np.sqrt(np.pi / 2), rcond=None)
    ages = np.column_stack([np.ones(MAX_AGE + 1), hinge(np.arange(MAX_AGE + 1.0), AGE_KNOTS)])
    return {
        "x": list(range(MAX_AGE + 1)),
        "log_mean": [round(float(v), 3) for v in ages @ mean],
        "log_sigma": [round(float(v), 3) for v in np.maximum(ages @ spread, 0.2)],
    }


def usable_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Clean rows with a mileage and a model of a common make, with the model's first word and price key."""
    usable, _ = clean(frame)
    usable = usable[usable["odometer"].notna() & usable["model"].notna()].copy()
    usable["manufacturer"] = usable["manufacturer"].str.lower().str.strip()
    usable["model_base"] = usable["model"].map(lambda m: " ".join(model_words(str(m))[:1]))
    usable = usable[usable["model_base"] != ""]
    usable = usable[usable["manufacturer"].isin(usable["manufacturer"].value_counts().head(TOP_MAKES).index)]
    usable["car_key"] = car_keys(usable)
    return usable


def fit_states(frame: pd.DataFrame) -> dict[str, Any]:
    states = frame.dropna(subset=["state", "lat", "long"])
    states = states[states["lat"].between(18, 72) & states["long"].between(-180, -60)]
    return {
        str(s): {
            "share": round(len(g) / len(states), 4),
            "lat": round(float(g["lat"].median()), 2),
            "long": round(float(g["long"].median()), 2),
            "region": str(g["region"].mode().iat[0]) if g["region"].notna().any() else None,
        }
        for s, g in states.groupby("state")
    }


def fit_dirt(frame: pd.DataFrame) -> dict[str, float]:
    price_raw = pd.to_numeric(frame["price"], errors="coerce")
    return {
        "price_zero": round(float((price_raw == 0).mean()), 4),
        "price_one": round(float((price_raw == 1).mean()), 4),
        "price_absurd": round(float((price_raw > 1_000_000).mean()), 4),
        "odometer_missing": round(float(frame["odometer"].isna().mean()), 4),
        "odometer_absurd": round(float((frame["odometer"] > 2_000_000).mean()), 4),
        "year_missing": round(float(frame["year"].isna().mean()), 4),
        "model_missing": round(float(frame["model"].isna().mean()), 4),
        "latlong_missing": round(float(frame["lat"].isna().mean()), 4),
    }


def fit(frame: pd.DataFrame) -> dict[str, Any]:
    ref_year = int(pd.to_datetime(frame["posting_date"], utc=True, errors="coerce", format="mixed").dt.year.median())
    usable = usable_rows(frame)
    price = fit_price(usable, ref_year)
    market = {field: shares(usable[field]) for field in CATEGORY_FIELDS}
    return {
        "fitted_from": "Craigslist used-vehicle listings (aggregates only, no rows)",
        "reference_year": ref_year,
        "age": {"shares": age_shares(ref_year - usable["year"])},
        "miles_per_year": fit_miles(usable, ref_year),
        "price": {k: v for k, v in price.items() if k not in ("log_base", "age_slope")},
        "makes": fit_makes(usable, price, market),
        "categories": market,
        "states": fit_states(frame),
        "dirt": fit_dirt(frame),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    params = fit(read_listings_file(args.data))
    PARAMS_FILE.write_text(json.dumps(params, indent=1, sort_keys=False) + "\n")
    print(f"wrote {PARAMS_FILE} ({len(params['makes'])} makes)")


if __name__ == "__main__":
    main()
