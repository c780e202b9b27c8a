"""Unit tests see the project's defaults, not whatever an integration fixture exported."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("PRICEMYRIDE_", "MLFLOW_")):
            monkeypatch.delenv(key)
