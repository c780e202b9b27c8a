"""The valuation API's parts without services: keys, the body limit, the rate limit's headers, the listing
reader, the comparables' SQL, the factors in dollars and the what-ifs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.app import batch_items
from api.comparables import PER_YEAR, POOL, query
from api.guards import BodyLimit, RateLimits
from api.keys import KeyRefused, split_key
from api.valuing import Refusal, read_listing
from pricing.explain import top_factors
from pricing.whatif import MAX_CANDIDATES, candidates, narrowing, narrowing_of, variants


def test_a_key_has_one_shape() -> None:
    assert split_key("pmr_abc123_s3cr-et") == ("abc123", "s3cr-et")
    for bad in ("", "pmr_abc", "xyz_a_b", "pmr__b", "pmr_a_b_c"):
        with pytest.raises(KeyRefused) as refused:
            split_key(bad)
        assert refused.value.status == 401


def test_the_body_limit_refuses_declared_and_streamed_bodies_before_the_route_reads_them() -> None:
    app = FastAPI()
    seen: list[int] = []

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        seen.append(len(await request.body()))
        return {"bytes": seen[-1]}

    app.add_middleware(BodyLimit, limit=1000)
    client = TestClient(app)
    assert client.post("/echo", content=b"x" * 1000).json() == {"bytes": 1000}
    assert client.post("/echo", content=b"x" * 1001).status_code == 413
    streamed = client.post("/echo", content=(b"x" * 300 for _ in range(5)))
    assert streamed.status_code == 413
    assert "expected at most 1,000 bytes" in streamed.json()["detail"]
    assert seen == [1000]


def test_the_rate_limit_counts_per_key_and_says_when_to_come_back() -> None:
    limits = RateLimits(3)
    taken = [limits.take("a") for _ in range(4)]
    assert [t.allowed for t in taken] == [True, True, True, False]
    assert [t.remaining for t in taken] == [2, 1, 0, 0]
    assert taken[-1].headers()["Retry-After"] == str(max(taken[-1].reset_s, 1))
    assert "Retry-After" not in taken[0].headers()
    assert limits.take("b").allowed


def test_the_listing_reader_gives_the_streams_reasons_and_keeps_sites_apart() -> None:
    draft = read_listing(b'{"manufacturer": "ford"}', "site-a", need_id=False)
    assert draft.source == "site-a"
    assert draft.id.startswith("draft-")
    with pytest.raises(Refusal) as other_site:
        read_listing(b'{"id": "1", "source": "site-b"}', "site-a", need_id=False)
    assert other_site.value.answer.problems[0].field == "source"
    with pytest.raises(Refusal) as no_id:
        read_listing(b'{"manufacturer": "ford"}', "site-a", need_id=True)
    assert [p.field for p in no_id.value.answer.problems] == ["id"]
    with pytest.raises(Refusal) as bad:
        read_listing(b'{"year": 1800, "price": "cheap"}', "site-a", need_id=False)
    assert {p.field for p in bad.value.answer.problems} == {"year", "price"}
    with pytest.raises(Refusal, match="expected at most 65536 bytes"):
        read_listing(b'{"model": "' + b"x" * 70_000 + b'"}', "site-a", need_id=False)


def test_a_batch_is_an_array_of_at_most_the_maximum() -> None:
    assert batch_items(b'[{"a": 1}, 2]', 5) == [{"a": 1}, 2]
    for body, reason in ((b"{}", "got dict"), (b"[]", "got 0"), (b"[1,2,3]", "got 3"), (b"[" * 20, "nesting")):
        with pytest.raises(Refusal, match=reason):
            batch_items(body, 2)


def test_comparables_read_bounded_candidate_sets() -> None:
    full = read_listing(b'{"manufacturer": "Ford", "model": "F-150 XLT", "year": 2015, "state": "tx"}', "s", False)
    sql, params = query(full, 10)
    assert sql.count(f"LIMIT {PER_YEAR}") == 5
    assert (params["make"], params["family"], params["year0"], params["year4"]) == ("ford", "f-150", 2013, 2017)
    no_year = read_listing(b'{"manufacturer": "ford", "model": "f-150"}', "s", False)
    sql, _ = query(no_year, 10)
    assert f"LIMIT {POOL}" in sql
    assert f"LIMIT {PER_YEAR}" not in sql
    assert query(read_listing(b'{"model": "civic"}', "s", False), 10) is None
    assert query(read_listing(b'{"manufacturer": "ford", "year": 2015}', "s", False), 10) is None


def test_factors_in_dollars_add_up_to_the_gap_from_the_typical_price() -> None:
    contributions = {"bias": math.log(10_000), "age": -0.3, "odometer": -0.1, "model_base": 0.2}
    factors = top_factors(contributions)
    fair = 10_000 * math.exp(-0.2)
    assert sum(f.dollars for f in factors) == pytest.approx(fair - 10_000)
    assert [f.feature for f in factors] == ["age", "model_base", "odometer"]
    assert factors[0].dollars < 0 < factors[1].dollars


class WidthByYear:
    """A stand-in model: the range is 10,000 wide without a year, 4,000 with one."""

    def price_ranges(self, records: list[dict[str, object]]) -> np.ndarray:
        width = np.array([4_000.0 if r.get("year") is not None else 10_000.0 for r in records])
        return np.column_stack([np.full(len(records), 20_000.0), 20_000 - width / 2, 20_000 + width / 2])


def test_what_ifs_name_the_fields_that_narrow_the_range_and_by_how_much() -> None:
    record = {"manufacturer": "ford", "year": None, "condition": None}
    found = narrowing(WidthByYear(), record, [{"year": 2014}, {"year": 2016}, {"year": 2016}])
    assert [w.field for w in found] == ["year"]
    assert found[0].narrower_by == 6_000
    assert found[0].tried == 2
    extra, spans = variants(record, [])
    assert {field for field, _, _ in spans} >= {"year", "condition"}
    assert all(b - a <= MAX_CANDIDATES for _, a, b in spans)
    assert len(extra) == spans[-1][2]
    assert narrowing_of(100.0, np.array([99.5, 99.5]), [("x", 0, 2)]) == []  # under 1%: not named
    assert candidates("model", [{"model": "f-150"}]) == ["f-150"]
    assert candidates("state", []) == []
