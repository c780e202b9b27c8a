"""A version scoring in shadow: started by the gate, ended by the live gate (``training.live_gate``).

Two roles: a **challenger** that passed the offline gate earns its promotion on live listings, and after a
live promotion the previous champion **watches** the new one (a new champion worse on live listings is
rolled back). At most one shadow runs at a time.

The truth is ``model_events``, which only the trainer's role may write: a version is the shadow while the
latest of its ``shadowed`` / ``shadow_ended`` rows is ``shadowed``. The registry alias ``@shadow`` points at
it for people to see, and workers load a shadow only where both agree (an alias moved by hand is refused,
as for the champion). A ``ModelUpdate`` with ``alias`` = the shadow alias tells workers to look again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import psycopg

from pricemyride.errors import ModelLoadFailed, UncrownedModel
from pricemyride.events import ModelUpdate
from pricemyride.settings import Settings
from pricemyride.storage import ModelEventKind as EventKind
from training.promotion import alias_version, publish_update, record_event, require_version
from training.registry import LoadedModel, configure, load_version

log = logging.getLogger(__name__)

ACTIVE_SHADOW = """
SELECT kind, version, champion, metrics->>'role' AS role, at FROM model_events
WHERE metrics->>'model' = %s AND kind IN ('shadowed', 'shadow_ended') ORDER BY id DESC LIMIT 1
"""


class Role(StrEnum):
    CHALLENGER = "challenger"  # passed the offline gate; promoted if it wins on live listings
    WATCH = "watch"  # the champion before a live promotion; the new one is rolled back if this one wins


@dataclass(frozen=True)
class ActiveShadow:
    """The version in shadow, the champion it was started beside, its role and since when."""

    version: int
    champion: int | None
    role: Role
    since: datetime


def active_shadow(settings: Settings, database_url: str | None = None) -> ActiveShadow | None:
    """The running shadow as ``model_events`` records it, or None."""
    url = database_url or settings.database_url.get_secret_value()
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute(ACTIVE_SHADOW, [settings.model_name]).fetchone()
    except psycopg.Error as exc:
        raise ModelLoadFailed(f"{settings.model_name}: expected the shadow record from Postgres, got "
                              f"{type(exc).__name__}") from None  # fmt: skip
    return shadow_of(row)


def shadow_of(row: tuple[Any, ...] | None) -> ActiveShadow | None:
    """An ``ACTIVE_SHADOW`` row as the running shadow, or None (no row, or the last one ended it)."""
    if row is None or row[0] != EventKind.SHADOWED:
        return None
    return ActiveShadow(int(row[1]), row[2], Role(row[3] or Role.CHALLENGER), row[4])


def load_shadow(settings: Settings, version: int, database_url: str | None = None) -> LoadedModel:
    """``version`` from the registry once ``model_events`` and the ``@shadow`` alias both name it (blocking)."""
    recorded = active_shadow(settings, database_url)
    client = configure(settings)
    alias = alias_version(client, settings, settings.shadow_alias)
    if recorded is None or recorded.version != version or alias != version:
        raise UncrownedModel(
            f"{settings.model_name} version {version}: expected the shadow the gate started "
            f"({recorded.version if recorded else 'none recorded'}, model_events) and @{settings.shadow_alias} "
            f"({alias}) to name it; not loading it"
        )
    return load_version(client, settings, version)


def announce(settings: Settings, version: int, reason: str) -> None:
    """Tell the workers to look at the shadow again (they read the record, not the message)."""
    publish_update(settings, ModelUpdate(model=settings.model_name, version=version, alias=settings.shadow_alias,
                                         promoted_at=datetime.now(UTC), reason=reason))  # fmt: skip


def end_running_shadow(settings: Settings, outcome: str, reason: str) -> None:
    """End the shadow that is running, if one is (its alias goes with it)."""
    running = active_shadow(settings)
    if running is not None:
        end_shadow(settings, running, outcome, reason, {})


def start_shadow(
    settings: Settings, version: int, champion: int | None, role: Role, reason: str, metrics: dict[str, Any]
) -> None:
    """Make ``version`` the shadow (ending any other first), record why and announce it."""
    client = configure(settings)
    require_version(client, settings, version)
    end_running_shadow(settings, "replaced", f"version {version} is shadowed instead")
    record_event(settings, EventKind.SHADOWED, version, champion, reason, metrics | {"role": role.value},
                 then=lambda: client.set_registered_model_alias(settings.model_name, settings.shadow_alias,
                                                                str(version)))  # fmt: skip
    announce(settings, version, f"shadow ({role.value}): {reason}")
    log.warning("version %d scores in shadow as the %s beside version %s: %s", version, role.value, champion, reason)


def end_shadow(settings: Settings, shadow: ActiveShadow, outcome: str, reason: str, metrics: dict[str, Any]) -> None:
    """Stop ``shadow`` (``outcome``: promoted, rejected, kept, rolled_back, dropped, replaced); record, announce."""
    client = configure(settings)

    def remove_alias() -> None:
        if alias_version(client, settings, settings.shadow_alias) == shadow.version:
            client.delete_registered_model_alias(settings.model_name, settings.shadow_alias)

    record_event(settings, EventKind.SHADOW_ENDED, shadow.version, shadow.champion, reason,
                 metrics | {"role": shadow.role.value, "outcome": outcome}, then=remove_alias)  # fmt: skip
    announce(settings, shadow.version, f"shadow ended ({outcome}): {reason}")
    log.warning("version %d no longer scores in shadow (%s): %s", shadow.version, outcome, reason)
