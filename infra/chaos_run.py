"""`make chaos`: the scenarios of ``infra.chaos`` and ``infra.chaos_cluster`` → reports/reliability.{json,md}."""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from infra import chaos_cluster
from infra.chaos import (
    Outcome,
    World,
    bad_input,
    broker_restart,
    database_outage,
    registry_trouble,
    scale_out,
    shadow_crash,
    shared_champion,
    worker_crash,
)
from infra.services import Paths
from pricemyride.settings import Settings


def markdown(outcomes: list[Outcome], generated_at: str) -> str:
    lines = [
        "# Reliability", "", f"{generated_at} · `make chaos` on the real broker, database and registry.", "",
        "| scenario | produced | scored | dead-lettered | lost | duplicated | lost / duplicated on the output "
        "topics (read_committed) | crashes | recovery s | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for o in outcomes:
        checks = "; ".join(f"{'✓' if ok else '✗'} {name}" for name, ok in o.checks.items())
        recovery = "—" if o.recovery_s is None else f"{o.recovery_s:.1f}"
        lines.append(f"| {o.scenario} | {o.produced:,} | {o.scored:,} | {o.dead_lettered:,} | {o.lost} | "
                     f"{o.duplicated} | {o.output_lost} / {o.output_duplicated} | {o.crashes} | {recovery} | "
                     f"{checks} |")  # fmt: skip
    notes = [f"- {o.scenario}: {n}" for o in outcomes for n in o.notes]
    footnote = ("Counts are audited against the `listings` topic itself: a valid listing must be one row in "
                "`predictions`, an invalid one a row in `dead_letters` (by its Kafka coordinate), and each once on "
                "`price-predictions` (by listing id) or `listings.dlq` (by coordinate) as a read_committed consumer "
                "reads them. Scenarios named *cluster* run on a 3-broker KRaft cluster (replication 3, "
                "min.insync.replicas 2); the others on the single broker. Recovery: from the fault's end (or the "
                "kill) to the next stored prediction. The listings "
                "come from the generator, whose realistic dirt (e.g. a 10-million-mile odometer) is "
                "dead-lettered too, so dead-lettered slightly exceeds the hostile events sent.")  # fmt: skip
    return "\n".join([*lines, "", footnote, "", *(["Notes:", *notes, ""] if notes else [])])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.chaos_run", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count (e.g. 0.1 for a quick run)")
    parser.add_argument("--out-dir", type=Path, default=Path("reports"))
    parser.add_argument("--single-broker-only", action="store_true", help="skip the 3-broker cluster scenarios")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    base = Settings()
    infra = Paths(base.state_path)
    stamp = datetime.now(UTC).strftime("%H%M%S")
    folder = base.state_path / "chaos" / stamp
    registry = shared_champion(base, folder)

    def world(name: str, **overrides: str) -> World:
        return World(base, f"chaos-{stamp}-{name}", folder, registry, **overrides)

    def count(n: int) -> int:
        return max(int(n * args.scale), 200)

    outcomes = [
        bad_input(world("bad"), valid=count(50_000), bad=count(10_000)),
        worker_crash(world("crash"), n=count(100_000)),
        database_outage(world("db"), base, infra, n=count(30_000), outage_s=20, rate=1_000),
        broker_restart(world("broker"), base, infra, n=count(30_000), rate=1_000),
        registry_trouble(world("registry"), folder, n=count(20_000), rate=1_000),
        scale_out(world("scale"), n=count(40_000), rate=2_000),
        shadow_crash(world("shadow"), n=count(40_000)),
    ]
    if not args.single_broker_only:
        outcomes += chaos_cluster.run_all(base, folder, world, count)
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report = {"generated_at": generated_at, "scenarios": [asdict(o) | {"ok": o.ok} for o in outcomes],
              "ok": all(o.ok for o in outcomes), "run_id": uuid.uuid4().hex[:8]}  # fmt: skip
    (args.out_dir / "reliability.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / "reliability.md").write_text(markdown(outcomes, generated_at))
    print(markdown(outcomes, generated_at))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
