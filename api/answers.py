"""What the API answers, as pydantic models: the OpenAPI document is generated from these and from the
``Listing`` event the stream validates (one contract for both)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FactorOut(BaseModel):
    feature: str
    label: str
    dollars: float = Field(description="Its part of the gap between the typical price and the fair price, USD.")
    percent: float = Field(description="It multiplies the typical price by 1 + percent/100 (tree SHAP).")


class WhatIfOut(BaseModel):
    field: str = Field(description="A field the listing leaves out.")
    range_width_now: float
    range_width_if_given: float = Field(description="Mean width over plausible values of the field.")
    narrower_by: float
    narrower_by_percent: float


class ComparableOut(BaseModel):
    source: str | None = Field(description="Your site's name for your own listings; null for another site's.")
    id: str | None = Field(description="The listing's id, for your own listings only.")
    asking_price: float
    fair_price: float
    price_low: float
    price_high: float
    deal_rating: str | None
    posted: datetime
    year: int | None = None
    manufacturer: str | None = None
    model: str | None = None
    odometer: float | None = None
    state: str | None = None
    condition: str | None = None


class ComparablesSummary(BaseModel):
    count: int
    median_asking: float | None
    median_asking_to_fair: float | None = Field(description="Median of each comparable's asking ÷ fair price.")


class Priced(BaseModel):
    """A listing's price: the stream's fair price, 80% range and deal rating, by the named model version."""

    source: str
    id: str
    model_version: int
    fair_price: float
    price_low: float = Field(description="The 80% range's low end.")
    price_high: float = Field(description="The 80% range's high end.")
    deal_rating: str | None = Field(description="great … overpriced, 'not enough information', or null without "
                                    "an asking price")  # fmt: skip
    asking_price: float | None


class Valuation(Priced):
    """One listing's valuation: its price, why (factors), what would narrow the range, and its comparables."""

    typical_price: float | None = Field(None, description="The model's price before any field is read.")
    factors: list[FactorOut] = []
    narrower_if_given: list[WhatIfOut] = Field([], description="Missing fields that would narrow the range.")
    comparables: list[ComparableOut] = []
    comparables_summary: ComparablesSummary | None = None
    published: bool = False


class Problem(BaseModel):
    field: str
    problem: str = Field(description="What was expected and what arrived.")


class Refused(BaseModel):
    """A listing the API could not value: each problem names the field, what was expected and what arrived."""

    detail: str
    problems: list[Problem] = []


class BatchItem(BaseModel):
    index: int
    valuation: Priced | None = None
    error: Refused | None = None


class BatchAnswer(BaseModel):
    model_version: int
    valued: int
    refused: int
    results: list[BatchItem]


class StoredValuation(BaseModel):
    model_version: int
    fair_price: float
    price_low: float
    price_high: float
    deal_rating: str | None
    asking_price: float | None
    scored_at: datetime


class ListingHistory(BaseModel):
    source: str
    id: str
    valuations: list[StoredValuation]
