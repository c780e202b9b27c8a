"""``pricemyride``: the command line of every PriceMyRide piece.

pricemyride produce  [--data FILE] [--rate N] [--limit N] [--order posting_date]
pricemyride train    [--data FILE] [--limit N] [--no-promote]
pricemyride evaluate [--data FILE] [--out-dir reports]
pricemyride predict  --data FILE --out FILE
pricemyride rescore  --since TIME [--version N]
pricemyride retrain  [--data FILE ...] [--since TIME]
pricemyride retrain-listener
pricemyride deploy-flow [--name NAME]
pricemyride schema   [--out FILE]
pricemyride prepare
pricemyride worker   [faust worker options]
pricemyride monitor  [faust worker options]
pricemyride dashboard
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from pricemyride.errors import PriceMyRideError
from pricemyride.settings import Settings

QUIET_LOGGERS = ("mlflow", "alembic", "urllib3", "kafka", "git", "httpx", "matplotlib")


def quiet_libraries() -> None:
    """No telemetry from MLflow or Prefect: this system talks to no host but its own services."""
    for key, value in (("MLFLOW_DISABLE_TELEMETRY", "true"), ("DO_NOT_TRACK", "true"),
                       ("PREFECT_SERVER_ANALYTICS_ENABLED", "false")):  # fmt: skip
        os.environ.setdefault(key, value)


def configure_logging() -> None:
    quiet_libraries()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def data_path(args: argparse.Namespace, settings: Settings) -> Path | None:
    return args.data or settings.data


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from producers.replay import replay

    summary = replay(
        settings, data_path(args, settings), rate=args.rate, limit=args.limit, order=args.order, seed=args.seed
    )
    print(summary.line(), flush=True)
    for error in summary.errors:
        print(f"  delivery error: {error}", file=sys.stderr)
    return 1 if summary.failed else 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.model import TrainParams
    from training.train import train

    result = train(
        settings,
        data_path(args, settings),
        limit=args.limit,
        params=TrainParams(max_rounds=args.max_rounds),
        promote=not args.no_promote,
    )
    print(json.dumps({"version": result.version, "run_id": result.run_id} | result.metrics))
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from training.evaluate import evaluate, write_reports

    report = evaluate(data_path(args, settings), limit=args.limit)
    json_path, md_path = write_reports(report, args.out_dir)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from training.flow import retrain

    files = [str(p) for p in args.data] or ([str(settings.data)] if settings.data else [])
    decision = retrain(data=files, since=args.since, margin=args.margin, max_rounds=args.max_rounds)
    print(json.dumps(decision))
    return 0


def cmd_retrain_listener(args: argparse.Namespace, settings: Settings) -> int:
    from training.listener import listen

    listen(settings, max_requests=args.max_requests)
    return 0


def cmd_deploy_flow(args: argparse.Namespace, settings: Settings) -> int:
    from training.deployment import deploy_flow

    deployment_id = deploy_flow(settings, args.name)
    print(f"deployed retrain/{args.name} ({deployment_id}) on work pool {settings.prefect_work_pool}")
    return 0


def cmd_rescore(args: argparse.Namespace, settings: Settings) -> int:
    from training.rescore import rescore

    count = rescore(settings, args.since, args.version)
    print(f"rescored {count} listings")
    return 0


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from training.predict import batch_predict

    rows = batch_predict(settings, args.data, args.out)
    print(f"scored {rows} listings into {args.out}")
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.events import listing_json_schema

    text = json.dumps(listing_json_schema(), indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.bootstrap import prepare

    prepare(settings)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream_workers.app import create_app, without_web

    sys.argv = without_web(["pricemyride-worker", "worker", *args.faust_args])
    create_app(settings, preload=True).main()
    return 0


def cmd_monitor(args: argparse.Namespace, settings: Settings) -> int:
    from monitoring.app import create_monitor_app
    from monitoring.policy import policy_from_settings
    from stream_workers.app import without_web

    sys.argv = without_web(["pricemyride-monitor", "worker", *args.faust_args])
    create_monitor_app(settings, policy_from_settings(settings)).main()
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.app import run

    run(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricemyride", description="Real-time used-car valuation.")
    sub = parser.add_subparsers(dest="command", required=True)
    produce = sub.add_parser("produce", help="replay listings into Kafka")
    produce.add_argument("--data", type=Path, help="Craigslist CSV/parquet; default: PRICEMYRIDE_DATA or the generator")
    produce.add_argument("--rate", type=float, help="listings per second (default: as fast as possible)")
    produce.add_argument("--limit", type=int, help="stop after N listings (the generator runs forever without it)")
    produce.add_argument("--order", choices=["posting_date", "id"], help="replay in this order")
    produce.add_argument("--seed", type=int, default=0, help="generator seed")
    train = sub.add_parser("train", help="train, register and crown a price model")
    train.add_argument("--data", type=Path)
    train.add_argument("--limit", type=int, help="use the first N rows only")
    train.add_argument("--max-rounds", type=int, default=2000)
    train.add_argument("--no-promote", action="store_true", help="register as @challenger, leave @champion")
    evaluate = sub.add_parser("evaluate", help="our model vs two baselines on an honest split → reports/")
    evaluate.add_argument("--data", type=Path)
    evaluate.add_argument("--limit", type=int)
    evaluate.add_argument("--out-dir", type=Path, default=Path("reports"))
    retrain = sub.add_parser("retrain", help="Prefect flow: train a challenger, promote it if it beats the champion")
    retrain.add_argument("--data", type=Path, action="append", default=[], help="a labelled file (repeatable)")
    retrain.add_argument("--since", type=datetime.fromisoformat, help="also use listings stored since (ISO 8601)")
    retrain.add_argument("--margin", type=float, default=0.02, help="MAE improvement needed to promote")
    retrain.add_argument("--max-rounds", type=int, default=2000)
    listener = sub.add_parser("retrain-listener", help="run the retrain flow for each retrain request")
    listener.add_argument("--max-requests", type=int, help="stop after N requests (default: run until stopped)")
    deploy = sub.add_parser("deploy-flow", help="register the retrain flow as a Prefect deployment (PREFECT_API_URL)")
    deploy.add_argument("--name", default="pricemyride", help="deployment name (runs as retrain/NAME)")
    rescore = sub.add_parser("rescore", help="score stored listings again with the champion or a version")
    rescore.add_argument("--since", type=datetime.fromisoformat, required=True, help="stored since (ISO 8601)")
    rescore.add_argument("--version", type=int, help="model version (default: the champion)")
    predict = sub.add_parser("predict", help="batch-score a file with the champion")
    predict.add_argument("--data", type=Path, required=True)
    predict.add_argument("--out", type=Path, required=True)
    schema = sub.add_parser("schema", help="print or write the Listing JSON Schema")
    schema.add_argument("--out", type=Path)
    sub.add_parser("prepare", help="create topics and the database schema")
    worker = sub.add_parser("worker", help="run a scoring worker")
    worker.add_argument("faust_args", nargs=argparse.REMAINDER)
    monitor = sub.add_parser("monitor", help="run the drift worker")
    monitor.add_argument("faust_args", nargs=argparse.REMAINDER)
    sub.add_parser("dashboard", help="serve the analysts' dashboard")
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "produce": cmd_produce,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "retrain": cmd_retrain,
    "retrain-listener": cmd_retrain_listener,
    "deploy-flow": cmd_deploy_flow,
    "rescore": cmd_rescore,
    "predict": cmd_predict,
    "schema": cmd_schema,
    "prepare": cmd_prepare,
    "worker": cmd_worker,
    "monitor": cmd_monitor,
    "dashboard": cmd_dashboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return COMMANDS[args.command](args, Settings())
    except PriceMyRideError as exc:
        print(f"pricemyride {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
