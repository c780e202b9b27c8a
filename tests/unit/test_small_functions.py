"""Small, plain code: no function in product code runs over 40 lines (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("pricemyride", "pricemyride_cli", "pricing", "training", "producers", "stream_workers", "monitoring",
           "retrainer", "dashboard", "infra", "benchmarks")  # fmt: skip
MAX_LINES = 40


def long_functions() -> list[str]:
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_LINES:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_product_code_is_over_40_lines() -> None:
    assert long_functions() == []
