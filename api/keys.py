"""API keys, one site each: made by ``pricemyride api-key create SITE``, shown once, kept only as a hash.

A key reads ``pmr_<key id>_<secret>``. The key id finds the row; the secret's SHA-256 is compared in
constant time. The secret is 32 random bytes, so a fast hash is enough (nothing to guess by brute force);
the table never holds a key that works.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg_pool import AsyncConnectionPool

from pricemyride.errors import ConfigError
from pricemyride.topics import site_name

PREFIX: Final = "pmr"
FIND: Final = "SELECT site, key_hash, revoked_at IS NOT NULL FROM api_keys WHERE key_id = %s"


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    site: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: the key's id and its site."""

    key_id: str
    site: str


class KeyRefused(Exception):
    """A request's key does not open the API; ``status`` is 401 (none, or unknown) or 403 (revoked)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_key(key: str) -> tuple[str, str]:
    """(key id, secret) of a key as ``create`` printed it; ``KeyRefused`` (401) for anything else."""
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise KeyRefused(401, f"API key: expected '{PREFIX}_<id>_<secret>' as the Bearer token, got another shape")
    return parts[1], parts[2]


def create_key(conn: psycopg.Connection[Any], site: str) -> str:
    """A new key for ``site``; the returned text is the only copy of it."""
    try:
        site = site_name(site)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32).replace("_", "-")
    conn.execute("INSERT INTO api_keys (key_id, site, key_hash) VALUES (%s, %s, %s)", [key_id, site, digest(secret)])
    return f"{PREFIX}_{key_id}_{secret}"


def list_keys(conn: psycopg.Connection[Any]) -> list[KeyRow]:
    rows = conn.execute("SELECT key_id, site, created_at, revoked_at FROM api_keys ORDER BY created_at").fetchall()
    return [KeyRow(*row) for row in rows]


def revoke_key(conn: psycopg.Connection[Any], key_id: str) -> bool:
    """Revoke ``key_id`` (the middle part of a key, as ``list`` shows it); False if there is no such key."""
    done = conn.execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s", [key_id])
    return done.rowcount == 1


class KeyBook:
    """The API's view of the keys: each looked up in Postgres, then trusted for ``ttl_s`` seconds."""

    def __init__(self, pool: AsyncConnectionPool, ttl_s: float) -> None:
        self.pool, self.ttl_s = pool, ttl_s
        self.seen: dict[str, tuple[float, tuple[str, bytes, bool] | None]] = {}

    async def caller(self, authorization: str | None) -> Caller:
        """The caller a ``Bearer`` header names; ``KeyRefused`` when it names none that works."""
        if not authorization or not authorization.startswith("Bearer "):
            raise KeyRefused(401, "API key: expected an 'Authorization: Bearer <key>' header, got none")
        key_id, secret = split_key(authorization.removeprefix("Bearer ").strip())
        row = await self._row(key_id)
        if row is None or not hmac.compare_digest(row[1], digest(secret)):
            raise KeyRefused(401, "API key: expected a key made by `pricemyride api-key create`, got an unknown one")
        if row[2]:
            raise KeyRefused(403, f"API key {key_id}: expected a live key, got one that was revoked")
        return Caller(key_id, row[0])

    async def _row(self, key_id: str) -> tuple[str, bytes, bool] | None:
        now = time.monotonic()
        cached = self.seen.get(key_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        async with self.pool.connection() as conn:
            found = await (await conn.execute(FIND, [key_id])).fetchone()
        row = (found[0], bytes(found[1]), bool(found[2])) if found else None
        if len(self.seen) > 10_000:  # unknown ids are remembered too: a flood of them cannot grow this forever
            self.seen.clear()
        self.seen[key_id] = (now, row)
        return row
