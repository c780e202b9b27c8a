"""The exported JSON Schema (schemas/listing.schema.json) is the contract the code enforces."""

from __future__ import annotations

import json
from pathlib import Path

from pricemyride.listing import listing_json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_event_model() -> None:
    committed = json.loads((ROOT / "schemas" / "listing.schema.json").read_text())
    assert committed == listing_json_schema(), "run `make schema` and commit the result"
