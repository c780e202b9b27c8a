"""The API's Prometheus metrics (served on the ops port, as every service's are)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from pricemyride.ops import PREFIX, SECONDS_BUCKETS

REQUEST_SECONDS = Histogram(f"{PREFIX}api_request_seconds", "Seconds to answer an API request, by route.",
                            ["route"], buckets=SECONDS_BUCKETS)  # fmt: skip
ANSWERS = Counter(f"{PREFIX}api_answers_total", "API answers, by route, HTTP status and key id ('none': no key).",
                  ["route", "status", "key"])  # fmt: skip
COMPARABLES_SECONDS = Histogram(f"{PREFIX}api_comparables_seconds", "Seconds the comparables query took.",
                                buckets=SECONDS_BUCKETS)  # fmt: skip
LISTINGS_VALUED = Counter(f"{PREFIX}api_listings_valued_total", "Listings valued by the API (batch items included).")
PUBLISHED = Counter(f"{PREFIX}api_published_total", "Listings the API published on Kafka (?publish=true).")
MODEL_VERSION = Gauge(f"{PREFIX}api_model_version", "The model version the API values with.")
MODEL_LOADED = Gauge(f"{PREFIX}api_model_loaded", "1 once the API has a champion to value with.")
SWAPS = Counter(f"{PREFIX}api_model_swaps_total", "Champion versions swapped in without a restart.")
LOAD_FAILURES = Counter(f"{PREFIX}api_model_load_failures_total", "Versions the API could not load (kept its own).")


class ApiModelMetrics:
    """``training.champion.ModelMetrics`` for the API."""

    def model(self, version: int, swapped: bool = False) -> None:
        MODEL_VERSION.set(version)
        MODEL_LOADED.set(1)
        if swapped:
            SWAPS.inc()

    def load_failed(self, uncrowned: bool = False) -> None:
        LOAD_FAILURES.inc()
