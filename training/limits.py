"""The floors training refuses to go below; a module of its own, light enough for the command line to check
an option against before it starts anything (``training.train`` imports XGBoost and MLflow)."""

from typing import Final

MIN_USABLE_ROWS: Final = 1_000  # usable labelled listings a model needs (and a --limit must allow)
