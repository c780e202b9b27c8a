"""What a registered model version carries in MLflow, named once: the writer (``training.train``,
``training.promotion``) and every reader (the drift worker, the retrain service, the dashboard) use these.

A version's run holds:
- tags ``data_sha256``, ``git_commit`` and ``training_files`` (a JSON list of the files it learnt from,
  which the retrain service trains on again);
- metrics: the held-out figures below (``mae`` is the drift worker's yardstick for realized error);
- artifacts ``cleaning_report.json``, the drift reference sample ``reference/reference.parquet`` and the
  per-slice figures on its held-out part ``quality/slices.json`` (``training.slices``).
A version itself holds tags ``gate`` (promoted | rejected) and ``gate_reason``.
"""

from __future__ import annotations

from typing import Final

TAG_DATA_SHA256: Final = "data_sha256"
TAG_GIT_COMMIT: Final = "git_commit"
TAG_TRAINING_FILES: Final = "training_files"
VERSION_TAG_GATE: Final = "gate"
VERSION_TAG_GATE_REASON: Final = "gate_reason"
METRIC_MAE: Final = "mae"
HELD_OUT_METRICS: Final = ("mae", "rmse", "median_ae", "mape", "r2", "coverage", "mean_width")
CLEANING_REPORT: Final = "cleaning_report.json"
QUALITY_SLICES: Final = "quality/slices.json"
REFERENCE_DIR: Final = "reference"
REFERENCE_FILE: Final = "reference.parquet"
REFERENCE_ARTIFACT: Final = f"{REFERENCE_DIR}/{REFERENCE_FILE}"
