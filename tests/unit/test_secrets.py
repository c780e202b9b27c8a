"""No credentials in the repository or its history: URLs carry only development placeholders or
${VARIABLES}, and there are no private keys or cloud access keys."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pricemyride.settings import DEV_PASSWORDS

ROOT = Path(__file__).resolve().parents[2]
SELF = "tests/unit/test_secrets.py"  # plants made-up credentials to prove the scan finds them
URL_PASSWORD = re.compile(r"[a-z+]+://[^/\s:@'\"]+:([^@\s'\"/]+)@")
PRIVATE_KEY = re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----")
CLOUD_KEY = re.compile(r"\b(?:AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}|xox[bp]-[A-Za-z0-9-]{20,})\b")
# Made-up values in the tests of the production checks (they must look real to pass them).
ALLOWED = DEV_PASSWORDS | {"secret", "s3cret", "S3cure-long", "An0ther-long", "***"}  # *** is the mask


def findings(text: str, where: str) -> list[str]:
    found = [f"{where}: private key" for _ in PRIVATE_KEY.finditer(text)]
    found += [f"{where}: access key {m.group(0)[:8]}…" for m in CLOUD_KEY.finditer(text)]
    for match in URL_PASSWORD.finditer(text):
        password = match.group(1)
        if password not in ALLOWED and not password.startswith("${") and not password.startswith("{"):
            found.append(f"{where}: a password in {match.group(0)[:40]}…")
    return found


def test_no_credentials_in_tracked_files() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    problems = []
    for name in tracked.splitlines():
        if name == SELF:
            continue
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            problems += findings(path.read_text(errors="replace"), name)
    assert problems == []


def test_no_credentials_anywhere_in_history() -> None:
    history = subprocess.run(["git", "log", "-p", "--all", "--no-color", "--", ".", f":(exclude){SELF}"], cwd=ROOT,
                             capture_output=True, text=True, check=True, errors="replace").stdout  # fmt: skip
    assert "diff --git" in history, "expected the repository's history"
    added = "\n".join(line[1:] for line in history.splitlines() if line.startswith("+") and not line.startswith("+++"))
    assert findings(added, "history") == []


def test_the_scan_finds_a_planted_credential() -> None:
    planted = "\n".join(["url = postgresql://app:" + "Tr0ub4dor" + "@db:5432/x", "-----BEGIN RSA " + "PRIVATE KEY-----",
                         "AKIA" + "ABCDEFGHIJKLMNOP"])  # fmt: skip
    assert len(findings(planted, "planted")) == 3
