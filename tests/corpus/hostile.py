"""The hostile corpus: messages a listing site (or anyone who can reach the broker) might publish to
``listings``, each with what must become of it. Built in code, deterministically, so that a 1 MiB message is
not committed to the repository; ``python -m tests.corpus.hostile`` lists it.

Outcomes: ``scored`` (a valid listing, however odd), ``dead`` (a dead letter with a reason that starts with
``reason``), ``refused`` (the broker refuses it at publish: larger than its ``message.max.bytes``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pricemyride.listing import FEATURE_FIELDS
from pricemyride.parsing import MAX_EVENT_BYTES

BROKER_MAX_BYTES = 1_048_588  # Kafka's default message.max.bytes (a whole record batch)
Outcome = Literal["scored", "dead", "refused"]


@dataclass(frozen=True)
class Hostile:
    name: str
    value: bytes | None
    expect: Outcome
    reason: str = ""  # for "dead": the start of the dead letter's reason
    key: bytes | None = None


def nested(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '"x":1' if opener == "{" else "1"
    return (opener + ('"a":' if opener == "{" else "")) * (depth - 1) + opener + inner + closer * depth


def event(listing_id: str, raw_fields: str = "") -> bytes:
    """A listing with ``raw_fields`` written as JSON text after the id (so they may be anything)."""
    extra = f",{raw_fields}" if raw_fields else ""
    return f'{{"id":"{listing_id}","source":"hostile","year":2015,"manufacturer":"ford"{extra}}}'.encode()


DEEP = "listing: expected a flat JSON object, got nesting deeper than 8 levels"
NOT_JSON = "listing: expected a JSON object, got text that is not JSON"


def deep_nesting() -> Iterator[Hostile]:
    """1,000 nested arrays in every field (the 2 KB message that stopped the stream), objects 9 deep, and a
    whole message of nothing but brackets."""
    for field in ("id", "source", "event_id", "event_time", "price", *FEATURE_FIELDS):
        yield Hostile(f"1,000 nested arrays in {field}", event(f"deep-{field}", f'"{field}":{nested(1_000)}'),
                      "dead", DEEP)  # fmt: skip
    yield Hostile("objects 9 deep in model", event("deep-objects", f'"model":{nested(9, "{")}'), "dead", DEEP)
    yield Hostile("arrays 7 deep in model", event("deep-7", f'"model":{nested(7)}'), "dead", "model: expected text")
    yield Hostile("60,000 opening brackets", b"[" * 60_000, "dead", DEEP)
    yield Hostile("a top-level array 1,000 deep", nested(1_000).encode(), "dead", DEEP)


def sizes() -> Iterator[Hostile]:
    yield Hostile("just under the broker's limit", event("big-under", '"model":"' + "a" * (BROKER_MAX_BYTES - 1_200)
                  + '"'), "dead", f"listing: expected at most {MAX_EVENT_BYTES} bytes")  # fmt: skip
    yield Hostile("just over the broker's limit", b"a" * (BROKER_MAX_BYTES + 1_024), "refused")
    yield Hostile("just over the contract's 64 KiB", event("big-64k", '"model":"' + "a" * MAX_EVENT_BYTES + '"'),
                  "dead", f"listing: expected at most {MAX_EVENT_BYTES} bytes")  # fmt: skip
    yield Hostile("a 200 KB key", event("big-key", '"model":"f-150"'), "scored", key=b"k" * 200_000)
    yield Hostile("a 200 KB key on a bad message", b"nope", "dead", NOT_JSON, key=b"k" * 200_000)
    yield Hostile("60,000 characters in one text", event("long-text", '"model":"' + "m" * 60_000 + '"'), "dead",
                  "model: expected at most 200 characters, got 60000")  # fmt: skip
    yield Hostile("10,000 escaped NULs", event("nuls", '"model":"' + "\\u0000" * 10_000 + '"'), "dead",
                  "model: expected at most 200 characters, got 10000")  # fmt: skip
    yield Hostile(
        "10,000 keys (over 64 KiB)", many_keys(10_000), "dead", f"listing: expected at most {MAX_EVENT_BYTES}"
    )
    yield Hostile("6,000 keys (under 64 KiB)", many_keys(6_000), "dead", "listing: expected at most 64 keys, got 6,000")


def encodings() -> Iterator[Hostile]:
    yield Hostile("invalid UTF-8", b'{"id":"bad-utf8","model":"\xff\xfe\xfd"}', "dead", "listing: expected UTF-8 text")
    yield Hostile("a UTF-16 BOM", '{"id":"utf16"}'.encode("utf-16"), "dead", "listing: expected UTF-8 text")
    yield Hostile("a UTF-8 BOM", b"\xef\xbb\xbf" + event("utf8-bom"), "dead", NOT_JSON)
    yield Hostile("a lone surrogate escaped", event("surrogate", '"model":"\\ud800"'), "dead", NOT_JSON)
    yield Hostile(
        "a right-to-left override", event("bidi", '"model":"f\\u202e150"'), "dead", "model: expected printable"
    )
    yield Hostile("an empty message (tombstone)", None, "dead", "listing: expected a JSON object, got an empty message")
    yield Hostile("zero bytes", b"", "dead", NOT_JSON)
    yield Hostile("binary noise", bytes(range(256)) * 4, "dead", "listing: expected UTF-8 text")


def numbers() -> Iterator[Hostile]:
    yield Hostile("price 1e400", event("n-1e400", '"price":1e400'), "dead", NOT_JSON)
    yield Hostile("price -0", event("n-minus-zero", '"price":-0'), "scored")
    yield Hostile("odometer -0.0", event("n-minus-zero-float", '"odometer":-0.0'), "scored")
    yield Hostile("price 1e-400", event("n-tiny", '"price":1e-400'), "scored")
    yield Hostile("odometer 2e10", event("n-odometer", '"odometer":2e10'), "dead", "odometer: expected 0")
    yield Hostile("a 30-digit id", b'{"id":123456789012345678901234567890}', "dead", "id: expected a listing id")
    yield Hostile("id -1", b'{"id":-1}', "dead", "id: expected a listing id")
    yield Hostile("NaN", event("n-nan", '"price":NaN'), "dead", NOT_JSON)
    yield Hostile("Infinity", event("n-inf", '"odometer":Infinity'), "dead", NOT_JSON)
    yield Hostile("a price as text", event("n-text", '"price":"20000"'), "dead", "price: expected a number")


def shapes() -> Iterator[Hostile]:
    for name, text in (("an array", "[1,2]"), ("a string", '"listing"'), ("a number", "42"), ("null", "null"),
                       ("true", "true")):  # fmt: skip
        yield Hostile(f"valid JSON that is {name}", text.encode(), "dead", "listing: expected a JSON object, got")
    yield Hostile("duplicate keys", b'{"id":"dup","price":1000,"price":90000}', "dead", "price: expected each key once")
    yield Hostile("no id", b'{"year":2015}', "dead", "id: required field is missing")
    yield Hostile("truncated JSON", event("cut")[:-5], "dead", NOT_JSON)
    yield Hostile(
        "an unknown key holding markup", event("markup", '"<a href=x>":1'), "dead", "<a href=x>: unknown field"
    )
    yield Hostile("a second source key (last-wins would claim another site)", event("claim", '"source":"other"'),
                  "dead", "source: expected each key once")  # fmt: skip


def many_keys(n: int) -> bytes:
    """An object of ``n`` keys with the shortest distinct names."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    names = (letters[i // 62 // 62 % 62] * (i >= 3844) + letters[i // 62 % 62] + letters[i % 62] for i in range(n))
    return ("{" + ",".join(f'"{k}":0' for k in names) + "}").encode()


def corpus() -> list[Hostile]:
    return [*deep_nesting(), *sizes(), *encodings(), *numbers(), *shapes()]


PREDICTION_POISON: list[bytes] = [  # what the drift monitor must survive on ``price-predictions``
    b'{"listing_id":"p","model_version":1,"listing":' + nested(1_000).encode() + b"}",
    b'{"listing_id":"p","model_version":1,"predicted_price":NaN}',
    b'{"listing_id":"p","model_version":1,"predicted_price":Infinity,"price_low":1,"price_high":2}',
    b"\xff\xfe not json",
    b"[" * 60_000,
    many_keys(6_000),
]


if __name__ == "__main__":
    for item in corpus():
        size = len(item.value) if item.value is not None else 0
        print(f"{item.expect:8} {size:>9,} B  {item.name}")
