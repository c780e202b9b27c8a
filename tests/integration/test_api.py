"""The valuation API over real HTTP: `pricemyride api` served by Uvicorn, with the real database, registry
and broker, a real scoring worker beside it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaProducer

from api.keys import create_key, revoke_key
from pricemyride.access import add_site
from pricemyride.datafile import read_listings_file
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings
from pricemyride.topics import read_topic
from producers.replay import row_event
from tests.corpus.hostile import corpus
from tests.integration.helpers import free_port, query, spawn, stop, wait_for
from training.model import TrainParams
from training.promotion import promote
from training.train import train

pytestmark = pytest.mark.integration
RATE = 240  # requests a minute per key in these tests
# Where the API's contract differs from the stream's on purpose: a draft may come without an id (one is made).
API_DIFFERS = {"no id": {200}}


def new_key(settings: Settings, site: str) -> str:
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        return create_key(conn, site)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextmanager
def served_api(log_file: Path, **env: str) -> Iterator[httpx.Client]:
    """`pricemyride api` on a free port, ready (a champion loaded); yields a client for it."""
    port = free_port()
    proc = spawn(["-m", "pricemyride_cli", "api"], log_file,
                 {"PRICEMYRIDE_API_PORT": str(port), "PRICEMYRIDE_API_RATE_PER_MINUTE": str(RATE),
                  "PRICEMYRIDE_API_KEY_CACHE_S": "0", "PRICEMYRIDE_METRICS_PORT": "0"} | env)  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def ready() -> bool:
        assert proc.poll() is None, log_file.read_text()[-3000:]
        try:
            return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 120, "the API ready")
        yield client
    finally:
        client.close()
        stop(proc)


@pytest.fixture(scope="module")
def api(settings: Settings, champion: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with served_api(tmp_path_factory.mktemp("api") / "api.log") as client:
        yield client


@pytest.fixture(scope="module")
def real_listings(data_dir: Path) -> list[dict[str, Any]]:
    """Real 2021 listings with every field a seller types, as events of site ``site-a``."""
    frame = read_listings_file(data_dir / "craigslist_2021.csv").head(3000)
    now, out = datetime.now(UTC), []
    for i, row in enumerate(frame.to_dict("records")):
        event = row_event(row, "site-a", f"real-{i}", now)
        if all(event.get(f) is not None for f in ("year", "model", "odometer", "condition", "manufacturer", "price")):
            out.append({k: v for k, v in event.items() if k not in ("event_id", "event_time")})
    return out[:40]


def test_a_valuation_matches_what_the_stream_stores(
    settings: Settings, worker: Path, champion: int, api: httpx.Client, real_listings: list[dict[str, Any]]
) -> None:
    key, listing = new_key(settings, "site-a"), {**real_listings[0], "id": f"api-{uuid.uuid4().hex[:8]}"}
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    producer.send(settings.listings_topic, json.dumps(listing).encode(), key=listing["id"].encode())
    producer.flush()
    producer.close()
    stored = (
        "SELECT predicted_price, price_low, price_high, deal_rating FROM predictions "
        "WHERE source = %s AND listing_id = %s"
    )
    wait_for(lambda: bool(query(settings, stored, ["site-a", listing["id"]])), 90, "the stream's valuation")
    answer = api.post("/v1/valuations", json=listing, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["model_version"] == champion
    assert (got["fair_price"], got["price_low"], got["price_high"], got["deal_rating"]) == query(
        settings, stored, ["site-a", listing["id"]])[0]  # fmt: skip
    history = api.get(f"/v1/listings/site-a/{listing['id']}", headers=bearer(key)).json()
    assert [v["model_version"] for v in history["valuations"]] == [champion]
    assert history["valuations"][0]["fair_price"] == got["fair_price"]
    assert api.get(f"/v1/listings/site-b/{listing['id']}", headers=bearer(key)).status_code == 403


def test_an_answer_explains_compares_and_names_what_would_narrow_the_range(
    settings: Settings, api: httpx.Client, real_listings: list[dict[str, Any]]
) -> None:
    key = new_key(settings, "site-a")
    answer = api.post("/v1/valuations", json={**real_listings[1], "year": None}, headers=bearer(key)).json()
    dollars = sum(f["dollars"] for f in answer["factors"])
    assert answer["factors"]
    assert abs(dollars) <= abs(answer["fair_price"] - answer["typical_price"]) + 1
    assert answer["comparables_summary"]["count"] == len(answer["comparables"])
    for other in answer["comparables"]:
        assert other["source"] in (None, "site-a")
        assert (other["id"] is None) == (other["source"] is None)
    assert "year" in {w["field"] for w in answer["narrower_if_given"]}


@pytest.mark.parametrize("field", ["year", "condition"])
def test_the_fields_named_really_narrow_the_range(
    settings: Settings, api: httpx.Client, real_listings: list[dict[str, Any]], field: str
) -> None:
    """Blank ``field`` in real listings; where the answer names it, give the real value back: the range narrows."""
    key, narrowed, named = new_key(settings, "site-a"), [], 0
    for listing in real_listings[:20]:
        blank = api.post("/v1/valuations", json={**listing, field: None}, headers=bearer(key)).json()
        if field not in {w["field"] for w in blank["narrower_if_given"]}:
            continue
        named += 1
        given = api.post("/v1/valuations", json=listing, headers=bearer(key)).json()
        narrowed.append((blank["price_high"] - blank["price_low"]) - (given["price_high"] - given["price_low"]))
    assert named >= 5, f"{field} was named for only {named} of 20 listings"
    assert sum(n > 0 for n in narrowed) >= 0.7 * named, narrowed
    assert sum(narrowed) > 0, narrowed


def test_hostile_bodies_get_422_or_413_never_a_500(settings: Settings, api: httpx.Client) -> None:
    key, seen = new_key(settings, "hostile"), {}
    for item in corpus():
        if item.value is None:
            continue
        status = api.post("/v1/valuations", content=item.value, headers=bearer(key)).status_code
        seen[item.name] = status
        allowed = API_DIFFERS.get(item.name) or {"scored": {200}, "dead": {422}, "refused": {413, 422}}[item.expect]
        assert status in allowed, f"{item.name}: expected {allowed}, got {status}"
    batch = api.post("/v1/valuations/batch", content=b"[" + b",".join([b'{"year": "x"}', b"[[[1]]]", b'"x"']) + b"]",
                     headers=bearer(key)).json()  # fmt: skip
    assert [r["error"] is not None for r in batch["results"]] == [True, True, True]
    assert api.get("/readyz").status_code == 200
    assert len(seen) > 50


def test_keys_are_checked_revoked_and_rate_limited(settings: Settings, api: httpx.Client) -> None:
    body = {"manufacturer": "ford", "year": 2015}
    assert api.post("/v1/valuations", json=body).status_code == 401
    assert api.post("/v1/valuations", json=body, headers=bearer("pmr_nope_nope")).status_code == 401
    key = new_key(settings, "site-a")
    assert api.post("/v1/valuations", json=body, headers=bearer(key)).status_code == 200
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        assert revoke_key(conn, key.split("_")[1])
    assert api.post("/v1/valuations", json=body, headers=bearer(key)).status_code == 403
    fresh = new_key(settings, "site-a")
    answers = [api.get("/v1/listings/site-a/none", headers=bearer(fresh)) for _ in range(RATE + 1)]
    assert [a.status_code for a in answers[:RATE]] == [404] * RATE
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[0].headers["RateLimit-Limit"] == str(RATE)
    assert answers[-1].headers["RateLimit-Remaining"] == "0"


def test_bodies_over_the_limit_are_refused_before_parsing(settings: Settings, api: httpx.Client) -> None:
    key, big = new_key(settings, "site-a"), b"[" + b" " * 3_000_000 + b"]"
    assert api.post("/v1/valuations/batch", content=big, headers=bearer(key)).status_code == 413
    chunks = (b" " * 65_536 for _ in range(50))  # no Content-Length: counted as it arrives
    assert api.post("/v1/valuations/batch", content=chunks, headers=bearer(key)).status_code == 413
    too_many = json.dumps([{"manufacturer": "ford"}] * 1001).encode()
    assert api.post("/v1/valuations/batch", content=too_many, headers=bearer(key)).status_code == 422


def test_publish_puts_the_listing_on_the_sites_own_topic(settings: Settings, api: httpx.Client) -> None:
    site = f"pub-{uuid.uuid4().hex[:6]}"
    topic = add_site(settings, site).writes
    key, listing = new_key(settings, site), {"id": "draft-1", "manufacturer": "honda", "model": "civic", "year": 2016}
    answer = api.post("/v1/valuations?publish=true", json=listing, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    assert answer.json()["published"]
    (message,) = read_topic(settings, topic)
    assert message.key == b"draft-1"
    assert json.loads(message.value)["source"] == site
    assert (
        api.post("/v1/valuations?publish=true", json={"manufacturer": "honda"}, headers=bearer(key)).status_code == 422
    )


def test_a_promotion_during_load_changes_the_version_without_a_failed_request(
    own_registry: Settings, data_dir: Path, tmp_path: Path
) -> None:
    first = train(own_registry, data_dir / "craigslist_2021.csv", limit=2000, params=TrainParams(max_rounds=30),
                  promote=True).version  # fmt: skip
    second = train(own_registry, data_dir / "craigslist_2021.csv", limit=2500, params=TrainParams(max_rounds=30),
                   promote=False).version  # fmt: skip
    key, versions, statuses = new_key(own_registry, "site-a"), [], []
    with served_api(tmp_path / "api.log") as client:
        done = threading.Event()

        def load() -> None:
            while not done.is_set():
                answer = client.post("/v1/valuations", json={"manufacturer": "ford", "year": 2014}, headers=bearer(key))
                statuses.append(answer.status_code)
                versions.append(answer.json().get("model_version"))
                time.sleep(0.2)

        thread = threading.Thread(target=load)
        thread.start()
        wait_for(lambda: len(versions) >= 5, 30, "answers before the promotion")
        promote(own_registry, second, "test: promoted during load")
        wait_for(lambda: versions[-1] == second, 60, "the promoted version in answers")
        done.set()
        thread.join()
    assert set(statuses) == {200}
    assert versions[0] == first
    assert versions[-1] == second
    assert versions == sorted(versions, key=[first, second].index)  # never back to the old version
