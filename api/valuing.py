"""A request's listing → its valuation, on the stream's own path: the same parser and ``Listing`` model
(the same reasons), ``pricing.path.price_listings`` for the price, range and rating, the model's tree SHAP
for the factors (``pricing.explain``) and ``pricing.whatif`` for the fields that would narrow the range."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from api.answers import ComparableOut, ComparablesSummary, FactorOut, Priced, Problem, Refused, Valuation, WhatIfOut
from api.comparables import Comparable, summary
from pricemyride.errors import InvalidListing
from pricemyride.listing import Listing
from pricemyride.parsing import decode_object, field_messages
from pricemyride.storage import PredictionRow
from pricing.explain import top_factors, typical_price
from pricing.path import predict_ranges, price_listings, priced_rows
from pricing.whatif import WhatIf, narrowing_of, variants
from training.registry import LoadedModel


class Refusal(Exception):
    """A listing that cannot be valued: 422 with each field's problem."""

    def __init__(self, detail: str, problems: list[Problem] | None = None) -> None:
        super().__init__(detail)
        self.answer = Refused(detail=detail, problems=problems or [])


def listing_of(data: Any, site: str, need_id: bool) -> Listing:
    """A decoded JSON value as this site's ``Listing``; ``Refusal`` naming each problem.

    The site is the key's: a ``source`` naming another site is refused, none is filled in. Without an ``id``
    (a draft a seller is still typing) one is made, unless the listing is to be published."""
    if not isinstance(data, dict):
        raise Refusal(f"listing: expected a JSON object, got {type(data).__name__}")
    if data.get("source", site) != site:
        problem = Problem(
            field="source", problem=f"expected this key's site {site!r}, got {str(data['source'])[:60]!r}"
        )
        raise Refusal("listing: the source is not this key's site", [problem])
    fields = {**data, "source": site}
    if "id" not in fields and not need_id:
        fields["id"] = f"draft-{uuid.uuid4().hex}"
    try:
        return Listing.model_validate(fields)
    except ValidationError as exc:
        problems = [Problem(field=f, problem=m) for f, m in field_messages(exc)]
        raise Refusal(f"listing: {len(problems)} field(s) do not keep the contract", problems) from None


def read_listing(raw: bytes, site: str, need_id: bool) -> Listing:
    """One request body as this site's ``Listing`` (the stream's limits first: size, nesting, keys once)."""
    try:
        data = decode_object(raw)
    except InvalidListing as exc:
        raise Refusal(str(exc)) from None
    return listing_of(data, site, need_id)


def priced(model: LoadedModel, listings: Sequence[Listing]) -> list[PredictionRow | str]:
    """The stream's rows for ``listings``: one vectorised call, a reason where the model could not price one."""
    return price_listings(model.model, model.version, listings, datetime.now(UTC))


def as_priced(row: PredictionRow) -> Priced:
    return Priced(source=row.source, id=row.listing_id, model_version=row.model_version,
                     fair_price=row.predicted_price, price_low=row.price_low, price_high=row.price_high,
                     deal_rating=row.deal_rating, asking_price=row.asking_price)  # fmt: skip


def priced_with_variants(model: LoadedModel, listing: Listing, comparables: list[Comparable]
                         ) -> tuple[PredictionRow | str, list[WhatIf]]:  # fmt: skip
    """The listing's row (the stream's: ``pricing.path.priced_rows``) and its what-ifs, from one model call
    over the listing and its variants (each model call has a fixed cost that dwarfs a row's)."""
    extra, spans = variants(listing.__dict__, [c.listing for c in comparables])
    try:
        ranges = predict_ranges(model.model, [listing.__dict__, *extra])
    except Exception:  # noqa: BLE001 - the variants must not cost the listing its price: price it alone
        return priced(model, [listing])[0], []
    (row,) = priced_rows(ranges[:1], {}, model.version, [listing], datetime.now(UTC))
    widths = ranges[:, 2] - ranges[:, 1]
    return row, narrowing_of(float(widths[0]), widths[1:], spans)


def explained(model: LoadedModel, listing: Listing, comparables: list[Comparable]) -> Valuation:
    """The full answer for one listing: price, range, rating, factors in dollars, what-ifs, comparables."""
    row, whatifs = priced_with_variants(model, listing, comparables)
    if isinstance(row, str):
        raise Refusal(row)
    # the path attribution, not exact tree SHAP: 0.35 ms against 5 ms a listing, and it adds up to the price too
    contributions = model.model.contributions([listing.__dict__], approximate=True).iloc[0].to_dict()
    answer = Valuation(**as_priced(row).__dict__)
    answer.typical_price = round(typical_price(contributions), 2)
    answer.factors = [FactorOut(feature=f.feature, label=f.label, dollars=round(f.dollars, 2),
                                percent=round(f.percent, 2)) for f in top_factors(contributions)]  # fmt: skip
    answer.narrower_if_given = [
        WhatIfOut(field=w.field, range_width_now=round(w.width_now, 2), range_width_if_given=round(w.width_if_given, 2),
                  narrower_by=round(w.narrower_by, 2), narrower_by_percent=round(w.narrower_by_percent, 1))
        for w in whatifs
    ]  # fmt: skip
    answer.comparables = [ComparableOut(**c.shown()) for c in comparables]
    answer.comparables_summary = ComparablesSummary(**summary(comparables))
    return answer
