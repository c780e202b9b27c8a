"""Fit the built-in listing generator's parameters from a real Craigslist file and write them as figures.

    python -m producers.fit_generator --data ../shared/data/craigslist_2021.csv

Only aggregates are written (frequencies, medians, slopes, rates) — never a row of the source file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pricemyride.datafile import read_listings_file
from training.cleaning import clean

PARAMS_FILE = Path(__file__).with_name("generator_params.json")
CATEGORY_FIELDS = (
    "condition",
    "cylinders",
    "fuel",
    "title_status",
    "transmission",
    "drive",
    "size",
    "type",
    "paint_color",
)
TOP_MAKES, TOP_MODELS, MIN_MODEL_ROWS = 30, 12, 15


def shares(series: pd.Series) -> dict[str, float]:
    counts = series.astype("string").str.lower().fillna("<missing>").value_counts(normalize=True)
    return {str(k): round(float(v), 4) for k, v in counts.items() if v >= 0.001}


def age_shares(age: pd.Series) -> dict[str, float]:
    counts = age.clip(0, 40).astype(int).value_counts(normalize=True).sort_index()
    return {str(k): round(float(v), 4) for k, v in counts.items()}


def fit_price(clean: pd.DataFrame, ref_year: int) -> dict[str, Any]:
    """log price = base(make, model) − depreciation·age − mileage·odometer/100k + noise."""
    age = (ref_year - clean["year"]).clip(lower=0)
    miles = clean["odometer"].fillna(clean["odometer"].median()) / 100_000
    design = np.column_stack([np.ones(len(clean)), age, miles])
    coef, *_ = np.linalg.lstsq(design, np.log(clean["price"]), rcond=None)
    residual_base = np.log(clean["price"]) - coef[1] * age - coef[2] * miles
    noise = float(np.std(residual_base - residual_base.groupby(clean["model_base"]).transform("median")))
    return {
        "depreciation_per_year": round(float(-coef[1]), 4),
        "per_100k_miles": round(float(-coef[2]), 4),
        "noise_sigma": round(noise, 4),
        "residual_base": residual_base,
    }


def fit_makes(clean: pd.DataFrame, residual_base: pd.Series) -> dict[str, Any]:
    makes: dict[str, Any] = {}
    for make, rows in clean.groupby("manufacturer"):
        if len(makes) >= TOP_MAKES:
            break
        models = rows["model_base"].value_counts()
        models = models[models >= MIN_MODEL_ROWS].head(TOP_MODELS)
        base = residual_base[rows.index]
        if models.empty:
            continue
        makes[str(make)] = {
            "share": len(rows),
            "models": {
                str(m): {
                    "share": int(n),
                    "log_base": round(float(base[rows["model_base"] == m].median()), 3),
                    "name": str(rows.loc[rows["model_base"] == m, "model"].str.lower().str.strip().mode().iat[0]),
                }
                for m, n in models.items()
            },
        }
    total = sum(m["share"] for m in makes.values())
    for make in makes.values():
        make["share"] = round(make["share"] / total, 4)
    return dict(sorted(makes.items(), key=lambda kv: -kv[1]["share"]))


def fit(frame: pd.DataFrame) -> dict[str, Any]:
    ref_year = int(pd.to_datetime(frame["posting_date"], utc=True, errors="coerce", format="mixed").dt.year.median())
    usable, _ = clean(frame)
    usable = usable[usable["odometer"].notna() & usable["model"].notna()].copy()
    usable["manufacturer"] = usable["manufacturer"].str.lower()
    usable["model_base"] = usable["model"].str.lower().str.split().str[0]
    usable = usable[usable["manufacturer"].isin(usable["manufacturer"].value_counts().head(TOP_MAKES).index)]
    price = fit_price(usable, ref_year)
    age = (ref_year - usable["year"]).clip(lower=0.5)
    log_mpy = np.log((usable["odometer"] / age).clip(lower=500))
    states = frame.dropna(subset=["state", "lat", "long"])
    states = states[states["lat"].between(18, 72) & states["long"].between(-180, -60)]
    price_raw = pd.to_numeric(frame["price"], errors="coerce")
    return {
        "fitted_from": "Craigslist used-vehicle listings (aggregates only, no rows)",
        "reference_year": ref_year,
        "age": {"shares": age_shares(ref_year - usable["year"])},
        "miles_per_year": {"log_mean": round(float(log_mpy.mean()), 3), "log_sigma": round(float(log_mpy.std()), 3)},
        "price": {k: v for k, v in price.items() if k != "residual_base"},
        "makes": fit_makes(usable, price["residual_base"]),
        "categories": {field: shares(frame[field]) for field in CATEGORY_FIELDS},
        "states": {
            str(s): {
                "share": round(len(g) / len(states), 4),
                "lat": round(float(g["lat"].median()), 2),
                "long": round(float(g["long"].median()), 2),
                "region": str(g["region"].mode().iat[0]) if g["region"].notna().any() else None,
            }
            for s, g in states.groupby("state")
        },
        "dirt": {
            "price_zero": round(float((price_raw == 0).mean()), 4),
            "price_one": round(float((price_raw == 1).mean()), 4),
            "price_absurd": round(float((price_raw > 1_000_000).mean()), 4),
            "odometer_missing": round(float(frame["odometer"].isna().mean()), 4),
            "odometer_absurd": round(float((frame["odometer"] > 2_000_000).mean()), 4),
            "year_missing": round(float(frame["year"].isna().mean()), 4),
            "model_missing": round(float(frame["model"].isna().mean()), 4),
            "latlong_missing": round(float(frame["lat"].isna().mean()), 4),
        },
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
