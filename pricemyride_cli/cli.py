"""``pricemyride``: the command line of every PriceMyRide piece (``pricemyride --help`` lists the commands).

Every option shows its default and, where it falls back to a setting, the environment variable. A failure
is one line on stderr — what was expected, what arrived, the setting to change — and an exit code from
sysexits.h (64 usage, 65 bad data, 66 no input, 69 service unavailable, 70 internal, 73 cannot create,
78 configuration); ``--debug`` adds the traceback. ``worker`` and ``monitor`` hand every option after them
to faust (``pricemyride worker -l info``).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final, NoReturn

from pricemyride.errors import ConfigError, PriceMyRideError
from pricemyride.process import configure_logging
from pricemyride.settings import Settings, env_name, load_settings
from training.limits import MIN_USABLE_ROWS

EX_USAGE: Final = 64
EX_UNAVAILABLE: Final = 69
EX_SOFTWARE: Final = 70
Run = Callable[[argparse.Namespace, Settings], int]


class HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help where it has a default and does not say it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if "default" in text or unset or not action.option_strings:
            return text
        return f"{text} (default: {action.default})"


class Parser(argparse.ArgumentParser):
    """argparse that exits 64 (EX_USAGE) on a usage error, as sysexits.h says, and shows defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: {message}\n")


def setting(field: str, text: str) -> str:
    """Help text for an option that falls back to a setting."""
    default = Settings.model_fields[field].default
    return f"{text} (default: ${env_name(field)}, else {default if default is not None else 'none'})"


def _number(text: str, kind: type[int] | type[float], rule: str, ok: Callable[[float], bool]) -> Any:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return int(_number(text, int, "a whole number ≥ 1", lambda v: v >= 1))


def training_rows(text: str) -> int:
    return int(_number(text, int, f"at least {MIN_USABLE_ROWS} rows", lambda v: v >= MIN_USABLE_ROWS))


def positive_float(text: str) -> float:
    return float(_number(text, float, "a number > 0", lambda v: v > 0))


def margin(text: str) -> float:
    return float(_number(text, float, "a share of MAE 0 ≤ margin < 1 (0.02 = 2%)", lambda v: 0 <= v < 1))


def when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-01-31T12:00+00:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"expected a time with its UTC offset (…+00:00), got {text!r}")
    return moment


@dataclass(frozen=True)
class Option:
    """One command-line option, declared once and added to every command that takes it."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def but(self, **kwargs: Any) -> Option:
        """The same option with some of its settings changed (its help, say)."""
        return Option(self.flags, self.kwargs | kwargs)

    def add_to(self, parser: Any) -> None:
        parser.add_argument(*self.flags, **self.kwargs)


@dataclass(frozen=True)
class OneOf:
    """Options that exclude each other (``required``: exactly one)."""

    options: tuple[Option, ...]
    required: bool = False

    def add_to(self, parser: Any) -> None:
        group = parser.add_mutually_exclusive_group(required=self.required)
        for option in self.options:
            option.add_to(group)


def option(*flags: str, **kwargs: Any) -> Option:
    return Option(flags, kwargs)


@dataclass(frozen=True)
class Command:
    """A command, declared once: its help and options, the services it needs (checked within seconds before it
    starts its work: kafka, postgres, mlflow), and what it runs. ``faust``: every option after it is faust's."""

    name: str
    help: str
    run: Run
    options: tuple[Option | OneOf, ...] = ()
    needs: tuple[str, ...] = ()
    faust: bool = False

    def add_to(self, sub: Any) -> None:
        parser = sub.add_parser(self.name, help=self.help, add_help=not self.faust)
        for each in self.options:
            each.add_to(parser)


COMMANDS: dict[str, Command] = {}  # in the order ``pricemyride --help`` lists them


def command(name: str, help: str, *options: Option | OneOf, needs: tuple[str, ...] = (),
            faust: bool = False) -> Callable[[Run], Run]:  # fmt: skip
    """Declare the function below as the command ``name``."""

    def declare(run: Run) -> Run:
        COMMANDS[name] = Command(name, help, run, options, needs, faust)
        return run

    return declare


# --- options more than one command takes ----------------------------------------------------------------

DATA = option("--data", type=Path, help=setting("data", "Craigslist CSV/Parquet; none: the generator"))
TRAINING_LIMIT = option("--limit", type=training_rows,
                        help=f"use the first N rows only (at least {MIN_USABLE_ROWS:,}; default: all)")  # fmt: skip
POOL = option("--pool", type=Path, help="a file of another year added to the training part only")
MAX_ROUNDS = option("--max-rounds", type=positive_int, default=2000, help="most boosting rounds (early stopping)")
MARGIN = option("--margin", type=margin, help=setting("promotion_margin", "MAE improvement the gate needs"))
OUT_DIR = option("--out-dir", type=Path, default=Path("reports"), help="where the reports go")


def data_path(args: argparse.Namespace, settings: Settings) -> Path | None:
    return args.data or settings.data


# --- the commands ------------------------------------------------------------------------------------


@command(
    "produce", "replay listings into Kafka (a file, or the built-in generator)",
    DATA,
    option("--rate", type=positive_float, help="listings per second (default: as fast as possible)"),
    option("--limit", type=positive_int, help="stop after N listings (default: the whole file; the generator runs "
           "until stopped)"),
    option("--order", choices=["posting_date", "id"], help="replay in this order (default: as in file)"),
    option("--seed", type=int, default=0, help="generator seed"),
    needs=("kafka",),
)  # fmt: skip
def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from producers.replay import replay

    summary = replay(
        settings, data_path(args, settings), rate=args.rate, limit=args.limit, order=args.order, seed=args.seed
    )
    print(summary.line(), flush=True)
    for error in summary.errors:
        print(f"  delivery error: {error}", file=sys.stderr)
    return EX_UNAVAILABLE if summary.failed else 0


@command("schema", "print or write the Listing JSON Schema (the event contract)",
         option("--out", type=Path, help="write here (default: standard output)"))  # fmt: skip
def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.errors import OutputError
    from pricemyride.listing import listing_json_schema

    text = json.dumps(listing_json_schema(), indent=2) + "\n"
    if args.out:
        try:
            args.out.write_text(text)
        except OSError as exc:
            raise OutputError(f"{args.out}: expected a writable file, got {exc.strerror or exc}") from None
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


@command("prepare", "create the Kafka topics and the database schema (idempotent)", needs=("kafka", "postgres"))
def cmd_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.bootstrap import prepare

    prepare(settings)
    if settings.mlflow_logins_dir is not None:
        from training.registry import ensure_registry_users

        users = ensure_registry_users(settings, settings.mlflow_logins_dir)
        print(f"[prepare] MLflow users: {', '.join(users) or 'none (no password files)'}", flush=True)
    return 0


@command("config", "print the effective settings, secrets masked")
def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.settings import described

    for name, value in described(settings):
        print(f"{env_name(name):<44} {value}")
    return 0


@command("hash-password", "print a 'user:hash' line for the dashboard's logins file (the password is read from "
         "standard input, never echoed)", option("user", help="the login name"))  # fmt: skip
def cmd_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from werkzeug.security import generate_password_hash

    if ":" in args.user or not args.user.strip():
        raise ConfigError(f"expected a user name without ':', got {args.user!r}")
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        raise ConfigError(f"expected a password of at least 12 characters, got {len(password)}")
    print(f"{args.user}:{generate_password_hash(password)}")
    return 0


@command(
    "add-site", "give a listing site its Kafka login, topics and ACLs (idempotent): it writes listings.<site> and "
    "reads price-predictions.<site>, nothing else",
    option("site", help="1-40 lower-case letters, digits or dashes"),
    option("--password-file", type=Path, help="its password (default: a new one in the state folder)"),
    needs=("kafka",),
)  # fmt: skip
def cmd_add_site(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.access import add_site

    made = add_site(settings, args.site, args.password_file)
    print(f"site {args.site}: Kafka principal User:{made.principal} writes {made.writes}, reads {made.reads}; "
          f"its password is in {made.password_file} (give it to the site; it is not printed)")  # fmt: skip
    return 0


@command("make-secrets", "write every secret file docker-compose.yml mounts (passwords, database URLs, Kafka TLS "
         "certificates); existing files are kept",
         option("folder", type=Path, help="where (compose reads ./secrets)"))  # fmt: skip
def cmd_make_secrets(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.secrets_dir import make_secrets

    made = make_secrets(args.folder)
    print(f"{args.folder}: wrote {len(made)} secret file(s){': ' + ', '.join(made) if made else ''}; kept the rest")
    return 0


@command(
    "train", "train and register a challenger; the promotion gate decides on @champion",
    DATA, TRAINING_LIMIT, POOL, MAX_ROUNDS, MARGIN,
    OneOf((option("--promote", action="store_const", const=True, dest="promote",
                  help="crown it @champion without the gate"),
           option("--no-promote", action="store_const", const=False, dest="promote",
                  help="register it as @challenger only, skip the gate"))),
    needs=("postgres", "mlflow"),
)  # fmt: skip
def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.model import TrainParams
    from training.train import train

    params = TrainParams(max_rounds=args.max_rounds)
    result = train(settings, data_path(args, settings), args.limit, params, promote=args.promote, margin=args.margin,
                   pool=args.pool)  # fmt: skip
    alias = settings.champion_alias if result.promoted else settings.challenger_alias
    print(json.dumps({"version": result.version, "alias": alias, "run_id": result.run_id} | result.metrics))
    return 0


@command(
    "evaluate", "our model vs two baselines on an honest split → reports/",
    DATA, option("--limit", type=positive_int, help="use the first N rows only (default: all)"), OUT_DIR,
    option("--seeds", type=positive_int, default=1,
           help="split and train with seeds 1 … N; the report gives medians (default: 1)"),
    option("--vintage", type=Path, help="a file of another year: scored as the 'other vintage' slice"),
    POOL,
)  # fmt: skip
def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from training.evaluate import evaluate, write_reports

    report = evaluate(data_path(args, settings), limit=args.limit, seeds=tuple(range(1, args.seeds + 1)),
                      vintage=args.vintage, pool=args.pool)  # fmt: skip
    json_path, md_path = write_reports(report, args.out_dir)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return 0


@command(
    "tune", "search XGBoost settings (and pooling) on validation data → reports/",
    DATA, TRAINING_LIMIT,
    option("--trials", type=positive_int, default=30, help="settings to try (default: 30)"),
    MAX_ROUNDS,
    POOL.but(help="a file of another year: the search decides whether to pool it"),
    OUT_DIR.but(help="where tuning.json goes"),
)  # fmt: skip
def cmd_tune(args: argparse.Namespace, settings: Settings) -> int:
    from training.tune import tune, write_tuning

    result = tune(data_path(args, settings), args.trials, args.max_rounds, pool=args.pool, limit=args.limit)
    path = write_tuning(result, args.out_dir)
    print(json.dumps({k: result[k] for k in ("default", "best", "best_params")}))
    print(f"wrote {path}")
    return 0


@command(
    "promote", "make a registered version @champion, or roll back to @previous",
    OneOf((option("--version", type=positive_int, help="the version to crown"),
           option("--rollback", action="store_true",
                  help="crown @previous, the champion before the current one (twice: back again)")), required=True),
    option("--reason", default="promoted by hand (pricemyride promote)", help="recorded with it"),
    needs=("postgres", "mlflow"),
)  # fmt: skip
def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    from training.promotion import promote, rollback

    update = rollback(settings) if args.rollback else promote(settings, args.version, args.reason, verify=True)
    print(f"{settings.model_name} version {update.version} is @{update.alias}: {update.reason}")
    return 0


@command(
    "predict", "batch-score a file with the champion (adds valid, reason, prices)",
    DATA.but(required=True, help="Craigslist CSV/Parquet to score"),
    option("--out", type=Path, required=True, help="output file: .csv or .parquet"),
    needs=("mlflow",),
)  # fmt: skip
def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from training.predict import batch_predict

    summary = batch_predict(settings, args.data, args.out)
    print(f"scored {summary.priced} of {summary.rows} listings into {args.out} ({summary.invalid} invalid: see "
          "the valid and reason columns)")  # fmt: skip
    return 0


@command(
    "rescore", "score stored listings again with the champion or a version",
    option("--since", type=when, required=True, help="stored since (ISO 8601 with offset)"),
    option("--version", type=positive_int, help="model version (default: the champion)"),
    needs=("postgres", "mlflow"),
)  # fmt: skip
def cmd_rescore(args: argparse.Namespace, settings: Settings) -> int:
    from training.rescore import rescore

    count = rescore(settings, args.since, args.version)
    print(f"rescored {count} listings")
    return 0


@command(
    "retrain", "Prefect flow: train a challenger, promote it if it beats the champion",
    DATA.but(action="append", default=[], help=setting("data", "a labelled file (repeatable)")),
    option("--since", type=when, help="also use listings stored since (ISO 8601 with offset)"),
    MARGIN, MAX_ROUNDS,
    needs=("postgres", "mlflow"),
)  # fmt: skip
def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from training.flow import retrain

    files = [str(p) for p in args.data] or ([str(settings.data)] if settings.data else [])
    decision = retrain(data=files, since=args.since, margin=args.margin, max_rounds=args.max_rounds)
    print(json.dumps(asdict(decision)))
    return 0


@command("retrain-listener", "run the retrain flow for each retrain request",
         option("--max-requests", type=positive_int, help="stop after N requests (default: run on)"))  # fmt: skip
def cmd_retrain_listener(args: argparse.Namespace, settings: Settings) -> int:
    from retrainer.listener import listen

    listen(settings, max_requests=args.max_requests)
    return 0


@command("deploy-flow", "register the retrain flow as a Prefect deployment (PREFECT_API_URL)",
         option("--name", default="pricemyride", help="deployment name (runs as retrain/NAME)"))  # fmt: skip
def cmd_deploy_flow(args: argparse.Namespace, settings: Settings) -> int:
    from training.deployment import deploy_flow

    deployment_id = deploy_flow(settings, args.name)
    print(f"deployed retrain/{args.name} ({deployment_id}) on work pool {settings.prefect_work_pool}")
    return 0


@command("worker", "run a scoring worker; faust worker options follow (e.g. -l info)", faust=True)
def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from pricemyride.faustapp import without_web
    from stream_workers.app import create_app

    sys.argv = without_web(["pricemyride-worker", "worker", *args.faust_args])
    create_app(settings, preload=True).main()
    return 0


@command("monitor", "run the drift worker; faust worker options follow (e.g. -l info)", faust=True)
def cmd_monitor(args: argparse.Namespace, settings: Settings) -> int:
    from monitoring.app import create_monitor_app
    from pricemyride.faustapp import without_web

    sys.argv = without_web(["pricemyride-monitor", "worker", *args.faust_args])
    create_monitor_app(settings).main()
    return 0


@command("dashboard", "serve the analysts' dashboard (PRICEMYRIDE_DASHBOARD_HOST/PORT)")
def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.app import run

    run(settings)
    return 0


@command("api", "serve the valuation API (PRICEMYRIDE_API_HOST/PORT): sites price a listing over HTTP",
         needs=("postgres",))  # fmt: skip
def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from api.serve import serve

    serve(settings)
    return 0


@command(
    "api-key", "make, list or revoke the valuation API's keys (one site each; a key is shown once, its hash kept)",
    option("action", choices=("create", "list", "revoke"), help="create SITE | list | revoke KEY_ID"),
    option("name", nargs="?", help="the site (create) or the key id (revoke: the middle part of the key)"),
    needs=("postgres",),
)  # fmt: skip
def cmd_api_key(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from api.keys import create_key, list_keys, revoke_key

    if args.action != "list" and not args.name:
        wanted = "site" if args.action == "create" else "key id"
        raise ConfigError(f"api-key {args.action}: expected a {wanted}, got none")
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        if args.action == "create":
            print(create_key(conn, args.name))
            print(f"(the key for site {args.name}: shown this once, only its hash is kept)", file=sys.stderr)
        elif args.action == "list":
            for row in list_keys(conn):
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M %Z}" if row.revoked_at else "live"
                print(f"{row.key_id}  {row.site:<20} created {row.created_at:%Y-%m-%d %H:%M %Z}  {state}")
        elif not revoke_key(conn, args.name):
            raise ConfigError(f"api-key revoke: expected a key id from `api-key list`, got {args.name[:40]!r}")
    return 0


FAUST_COMMANDS: Final = tuple(name for name, declared in COMMANDS.items() if declared.faust)


# --- parsing and running ------------------------------------------------------------------------------


def package_version() -> str:
    try:
        return version("pricemyride")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> Parser:
    parser = Parser(
        prog="pricemyride",
        description="Real-time used-car valuation on a Kafka event stream.",
        epilog="Settings come from PRICEMYRIDE_* variables or .env; `pricemyride config` shows them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for declared in COMMANDS.values():
        declared.add_to(sub)
    return parser


def split_faust(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(our arguments, faust's): everything after ``worker`` or ``monitor`` belongs to faust."""
    for index, token in enumerate(argv):
        if token in FAUST_COMMANDS:
            return list(argv[: index + 1]), list(argv[index + 1 :])
        if not token.startswith("-"):
            break
    return list(argv), []


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line; ``--debug`` may stand anywhere before faust's options."""
    ours, faust = split_faust(argv)
    debug = "--debug"
    args = build_parser().parse_args([word for word in ours if word != debug])
    args.debug = debug in ours
    args.faust_args = faust
    return args


def check_services(command: str, settings: Settings) -> None:
    from pricemyride import reachability

    needs = COMMANDS[command].needs
    if needs:
        reachability.bound_mlflow_retries()
    checks = {"kafka": reachability.check_kafka, "postgres": reachability.check_postgres,
              "mlflow": reachability.check_mlflow}  # fmt: skip
    for service in needs:
        checks[service](settings)


def fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    if args.debug:
        traceback.print_exception(exc)
    hint = "" if args.debug or isinstance(exc, PriceMyRideError) else " (run with --debug for the traceback)"
    text = str(exc) if isinstance(exc, PriceMyRideError) else f"unexpected {type(exc).__name__}: {exc}"
    print(f"pricemyride {args.command}: {' '.join(text.split())}{hint}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        settings = load_settings()
        check_services(args.command, settings)
        return COMMANDS[args.command].run(args, settings)
    except PriceMyRideError as exc:
        return fail(args, exc, exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line (and exit 70) instead of a traceback; --debug shows it
        return fail(args, exc, EX_SOFTWARE)


if __name__ == "__main__":
    sys.exit(main())
