"""The README's configuration table lists every Settings field, and the two commands."""

from __future__ import annotations

from pathlib import Path

from pricemyride.settings import Settings, described

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    names = [name for name, _ in described(Settings()) if not name.startswith("drift_")] + ["drift_"]
    missing = [name for name in names if f"`PRICEMYRIDE_{name.upper()}" not in README]
    assert not missing, f"add to the README's configuration table: {missing}"


def test_readme_shows_the_two_commands() -> None:
    assert "make demo" in README
    assert "make test" in README


def test_make_help_lists_every_documented_target() -> None:
    import re
    import subprocess

    root = Path(__file__).resolve().parents[2]
    targets = re.findall(r"^([a-zA-Z0-9_-]+):[^\n]*## ", (root / "Makefile").read_text(), re.M)
    shown = subprocess.run(["make", "-s", "help"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert {"test-e2e", "test-integration", "test-unit", "demo", "bench"} <= set(targets)
    assert [t for t in targets if f"make {t} " not in shown] == []
