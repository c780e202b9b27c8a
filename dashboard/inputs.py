"""What an analyst types or a URL carries, checked once for the pages and the exports alike: text that is
printable and not too long, numbers in their range, one of a few choices. A bad value raises ``InputError``,
one line naming the field, what was expected and what arrived (a NUL in a make reached Postgres before, and
the export answered 500)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pricemyride.errors import PriceMyRideError
from pricemyride.rules import UNPRINTABLE, shown


class InputError(PriceMyRideError):
    """A value from a form or a query string the dashboard cannot use (over HTTP: 400)."""

    status: int = 400


def text_value(name: str, value: Any, longest: int = 100) -> str | None:
    """Printable text of at most ``longest`` characters, trimmed; blank or None is "not given" (None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{name}: expected text, got {shown(value)}")
    value = value.strip()
    if len(value) > longest:
        raise InputError(f"{name}: expected at most {longest} characters, got {len(value)}")
    if UNPRINTABLE.search(value):
        raise InputError(f"{name}: expected printable text (no control or format characters), got {shown(value)}")
    return value or None


def number_value(name: str, value: Any, kind: Callable[[Any], Any], low: float, high: float) -> Any:
    """A number (or its text) within ``low`` … ``high``; blank or None is "not given" (None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    given = value.strip()[:40] if isinstance(value, str) else value
    expected = f"{name}: expected a number {low:g} … {high:g}, got {shown(given)}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(expected)
    try:
        number = kind(given)
    except (ValueError, OverflowError):
        raise InputError(expected) from None
    if (isinstance(number, float) and math.isnan(number)) or not low <= number <= high:
        raise InputError(expected)
    return number


def choice_value(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{name}: expected one of {', '.join(choices)}, got {shown(value)}")
    return str(value)


def choices_value(name: str, value: Any, choices: tuple[str, ...]) -> tuple[str, ...]:
    """Some of ``choices``, as a list or as text with commas between them; none given is ()."""
    given = value.split(",") if isinstance(value, str) else (value or [])
    if not isinstance(given, list):
        raise InputError(f"{name}: expected some of {', '.join(choices)}, got {shown(value)}")
    picked = tuple(item.strip() if isinstance(item, str) else item for item in given)
    for item in picked:
        if item and item not in choices:
            raise InputError(f"{name}: expected some of {', '.join(choices)}, got {shown(item)}")
    return tuple(str(item) for item in picked if item)
