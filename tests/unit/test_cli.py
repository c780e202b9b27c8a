"""The command line as a new user meets it: documented command lines parse, errors are one line with a
sysexits code, secrets never show, services that do not answer fail within seconds."""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pricemyride.policy import DriftPolicy, ShadowPolicy, SourcePolicy
from pricemyride.settings import Settings
from pricemyride_cli import cli

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDERS = {"FILE": "listings.csv", "N": "3000", "TIME": "2026-01-01T00:00:00+00:00", "NAME": "nightly",
                "COMMAND": "train", "TEXT": "why"}  # fmt: skip


def compose_command_lines() -> list[list[str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = [s.get("command") for s in services.values()]
    return [c[1:] for c in commands if isinstance(c, list) and c[0] == "pricemyride"]


def written_spans(text: str) -> list[str]:
    """What follows `pricemyride ` in inline code and in lines of fenced code blocks."""
    inline = re.findall(r"`(?:[A-Z_]+=\S+ )*pricemyride ([^`]+)`", text)
    fenced = [m for block in re.findall(r"```\w*\n(.*?)```", text, re.S)
              for m in re.findall(r"^(?:[A-Z_]+=\S+ )*pricemyride ([^#\n]+)", block, re.M)]  # fmt: skip
    return inline + fenced


def documented_command_lines() -> list[list[str]]:
    """`pricemyride …` in README.md and OPERATIONS.md; usage brackets dropped, placeholders filled in."""
    lines = []
    for doc in ("README.md", "OPERATIONS.md"):
        for span in written_spans((ROOT / doc).read_text()):
            words = shlex.split(span.replace("[", " ").replace("]", " ").replace("…", " "))
            lines.append([PLACEHOLDERS.get(w, w) for w in words])
    return lines


def test_the_readme_lists_every_command() -> None:
    listed = {line[0] for line in documented_command_lines() if line and not line[0].startswith("-")}
    assert set(cli.COMMANDS) <= listed, f"not in README/OPERATIONS: {set(cli.COMMANDS) - listed}"


def test_the_docs_and_compose_have_command_lines_to_check() -> None:
    assert len(compose_command_lines()) >= 6
    assert len(documented_command_lines()) >= 15


@pytest.mark.parametrize("argv", compose_command_lines() + documented_command_lines(), ids=" ".join)
def test_every_written_command_line_parses_with_the_real_parser(argv: list[str]) -> None:
    if "--help" in argv or argv[0] == "--version":
        with pytest.raises(SystemExit) as caught:
            cli.parse(argv)
        assert caught.value.code == 0
        return
    args = cli.parse(argv)
    assert args.command in cli.COMMANDS


@pytest.mark.parametrize("command", ["worker", "monitor"])
def test_faust_receives_the_options_after_worker_and_monitor(command: str) -> None:
    args = cli.parse([command, "-l", "info", "--without-web"])
    assert (args.command, args.faust_args) == (command, ["-l", "info", "--without-web"])


def run_cli(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PRICEMYRIDE_STATE_DIR": "/tmp/pricemyride-cli-test"}
    return subprocess.run([sys.executable, "-m", "pricemyride_cli", *argv], cwd=ROOT, env=base | (env or {}),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.mark.parametrize("argv", [c for c in compose_command_lines() if c[0] in cli.FAUST_COMMANDS], ids=" ".join)
def test_faust_itself_accepts_the_compose_options(argv: list[str]) -> None:
    command = argv[0]
    done = run_cli(*argv, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--loglevel" in done.stdout
    refused = run_cli(command, "-l", "info", "--no-such-option", "--help")
    assert refused.returncode != 0
    assert "No such option: --no-such-option" in refused.stderr


def test_every_command_and_option_has_help() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS)
    for choice in sub._choices_actions:
        assert choice.help, f"{choice.dest}: no help"
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings}: no help"


def test_options_show_their_defaults_and_settings_fallbacks() -> None:
    text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()  # type: ignore[union-attr]
    flat = " ".join(text.split())
    assert "(default: 2000)" in flat
    assert "$PRICEMYRIDE_PROMOTION_MARGIN, else 0.02" in flat
    assert "$PRICEMYRIDE_DATA" in flat


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--max-rounds", "0"], "argument --max-rounds: expected a whole number ≥ 1, got '0'"),
        (["train", "--margin", "-0.1"], "argument --margin: expected a share of MAE 0 ≤ margin < 1"),
        (["train", "--limit", "400"], "argument --limit: expected at least 1000 rows, got '400'"),
        (["train", "--limit", "abc"], "argument --limit: expected at least 1000 rows, got 'abc'"),
        (["produce", "--rate", "-1"], "argument --rate: expected a number > 0, got '-1'"),
        (["retrain", "--margin", "1.5"], "argument --margin: expected a share of MAE 0 ≤ margin < 1"),
        (["rescore", "--since", "yesterday"], "expected an ISO 8601 time such as"),
        (["rescore", "--since", "2026-01-01T00:00"], "expected a time with its UTC offset"),
        (["promote"], "one of the arguments --version --rollback is required"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
    ],
)
def test_usage_errors_exit_64_naming_what_was_expected(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 64
    assert message in capsys.readouterr().err


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0
    assert re.fullmatch(r"pricemyride \d+\.\d+\.\d+\n", done.stdout)


PLANTED = "planted-S3cret-value"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PRICEMYRIDE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PRICEMYRIDE_KAFKA_SASL_PASSWORD": PLANTED,
          "PRICEMYRIDE_KAFKA_SASL_USERNAME": ""}, "PRICEMYRIDE_KAFKA_SASL_USERNAME"),
        ({"PRICEMYRIDE_ENVIRONMENT": "production",
          "PRICEMYRIDE_DATABASE_URL": f"postgresql://writer:{PLANTED}@db:5432/pricemyride",
          "PRICEMYRIDE_READER_DATABASE_URL": "postgresql://pricemyride_reader:pricemyride-reader-dev@db/p"},
         "PRICEMYRIDE_READER_DATABASE_URL: expected a real password in production"),
        ({"PRICEMYRIDE_KAFKA_SASL_PASSWORD": PLANTED, "PRICEMYRIDE_LISTINGS_PARTITIONS": "zero"},
         "PRICEMYRIDE_LISTINGS_PARTITIONS: Input should be a valid integer"),
        ({"PRICEMYRIDE_ENVIRONMENT": "production", "PRICEMYRIDE_DATABASE_URL": f"host=db password={PLANTED}",
          "PRICEMYRIDE_READER_DATABASE_URL": "host=db user=reader password=pricemyride-reader-dev"},
         "PRICEMYRIDE_READER_DATABASE_URL: expected a real password in production"),
        ({"PRICEMYRIDE_PROMOTION_MARGIN": "1.5", "PRICEMYRIDE_MLFLOW_TRACKING_URI": f"http://u:{PLANTED}@m:5000"},
         "PRICEMYRIDE_PROMOTION_MARGIN: Input should be less than 1"),
    ],
)  # fmt: skip
def test_settings_errors_name_the_variable_and_never_a_secret(env: dict[str, str], named: str) -> None:
    for debug in ((), ("--debug",)):
        done = run_cli(*debug, "config", env=env)
        assert done.returncode == 78, done.stderr
        assert named in done.stderr
        assert PLANTED not in done.stderr + done.stdout
        assert "S3cret" not in done.stderr + done.stdout


def test_config_prints_the_effective_settings_with_secrets_masked() -> None:
    env = {"PRICEMYRIDE_DATABASE_URL": f"postgresql://writer:{PLANTED}@db:5432/x",
           "PRICEMYRIDE_READER_DATABASE_URL": f"host=db user=reader password={PLANTED}",
           "PRICEMYRIDE_MLFLOW_TRACKING_URI": f"https://ci:{PLANTED}@mlflow.example:443",
           "PRICEMYRIDE_KAFKA_SASL_PASSWORD": PLANTED, "PRICEMYRIDE_BATCH_SIZE": "77"}  # fmt: skip
    done = run_cli("config", env=env)
    assert done.returncode == 0, done.stderr
    assert PLANTED not in done.stdout
    assert "PRICEMYRIDE_DATABASE_URL" in done.stdout
    assert "postgresql://writer:***@db:5432/x" in done.stdout
    assert re.search(r"PRICEMYRIDE_KAFKA_SASL_PASSWORD\s+\*\*\*", done.stdout)
    assert re.search(r"PRICEMYRIDE_READER_DATABASE_URL\s+\*\*\*\n", done.stdout)
    assert "mlflow.example:443" in done.stdout
    assert re.search(r"PRICEMYRIDE_BATCH_SIZE\s+77", done.stdout)
    nested = sum(len(policy.model_fields) for policy in (DriftPolicy, SourcePolicy, ShadowPolicy))  # field by field
    assert len(done.stdout.splitlines()) == len(Settings.model_fields) - 3 + nested


BAD_FILES: dict[str, tuple[bytes, int, str]] = {
    "empty.csv": (b"", 65, "expected a CSV header and listings, got an empty file"),
    "binary.csv": (bytes(range(256)) * 8, 65, "expected UTF-8 CSV text, got a byte that is not UTF-8"),
    "latin1.csv": ("id,price,year,manufacturer,model,odometer\n1,500,2010,citroën,c4,1\n".encode("latin-1"), 65,
                   "expected UTF-8 CSV text"),
    "semicolons.csv": (b"id;price;year;manufacturer;model;odometer\n1;500;2010;ford;f-150;1\n", 65,
                       "(the header has ';': use commas as separators)"),
    "header.csv": (b"id,price,year,manufacturer,model,odometer\n", 65,
                   "expected at least one listing, got a header only"),
    "listings.txt": (b"id,price\n1,2\n", 65, "expected a file named .csv or .parquet, got '.txt'"),
    "not.parquet": (b"id,price\n1,2\n", 65, "expected a Parquet file (by its name)"),
    "huge_odometer.csv": (b"id,price,year,manufacturer,model,odometer\n"
                          + b"".join(b"%d,9000,2012,ford,focus,1e308\n" % i for i in range(1_200)), 65,
                          "expected listings of enough different cars to fill the train, valid, calibration and test"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_data_file_is_one_line_with_exit_65(name: str, tmp_path: Path) -> None:
    content, code, message = BAD_FILES[name]
    (tmp_path / name).write_bytes(content)
    done = run_cli("evaluate", "--data", str(tmp_path / name), "--out-dir", str(tmp_path / "out"))
    assert done.returncode == code, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"pricemyride evaluate: {tmp_path / name}: ")
    assert message in done.stderr


def test_a_missing_file_exits_66_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    plain = run_cli("evaluate", "--data", str(tmp_path / "nothing.csv"))
    assert plain.returncode == 66
    assert (
        plain.stderr.strip() == f"pricemyride evaluate: {tmp_path / 'nothing.csv'}: expected a CSV or Parquet "
        "listings file, found nothing there"
    )
    debug = run_cli("--debug", "evaluate", "--data", str(tmp_path / "nothing.csv"))
    assert debug.returncode == 66
    assert "Traceback (most recent call last)" in debug.stderr


UNREACHABLE = {
    "PRICEMYRIDE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    "PRICEMYRIDE_DATABASE_URL": "postgresql://pricemyride:pricemyride-dev@127.0.0.1:1/pricemyride",
    "PRICEMYRIDE_MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
}


@pytest.mark.parametrize(
    ("argv", "service", "setting"),
    [
        (["produce", "--limit", "5"], "Kafka", "PRICEMYRIDE_KAFKA_BOOTSTRAP"),
        (["prepare"], "Kafka", "PRICEMYRIDE_KAFKA_BOOTSTRAP"),
        (["rescore", "--since", "2026-01-01T00:00:00+00:00"], "Postgres", "PRICEMYRIDE_DATABASE_URL"),
        (["promote", "--version", "1"], "Postgres", "PRICEMYRIDE_DATABASE_URL"),
        (["predict", "--data", "x.csv", "--out", "y.csv"], "MLflow", "PRICEMYRIDE_MLFLOW_TRACKING_URI"),
    ],
)
def test_a_service_that_does_not_answer_fails_within_15_s_with_exit_69(
    argv: list[str], service: str, setting: str
) -> None:
    started = time.monotonic()
    done = run_cli(*argv, env=UNREACHABLE)
    assert time.monotonic() - started < 15
    assert done.returncode == 69, done.stderr
    assert done.stderr.startswith(f"pricemyride {argv[0]}: {service}: expected ")
    assert setting in done.stderr
    assert "pricemyride-dev" not in done.stderr


def test_an_unexpected_error_is_one_line_with_exit_70(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def broken(args: argparse.Namespace, settings: Settings) -> int:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(cli.COMMANDS, "schema", dataclasses.replace(cli.COMMANDS["schema"], run=broken))
    assert cli.main(["schema"]) == 70
    assert capsys.readouterr().err == (
        "pricemyride schema: unexpected ZeroDivisionError: boom (run with --debug for the traceback)\n"
    )


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("in.csv", "expected an output other than the input file, got the input itself"),
        ("scores.txt", "expected an output file named .csv or .parquet, got '.txt'"),
        ("folder.csv", "expected a file to write, got a directory"),
    ],
)
def test_predict_refuses_an_output_it_must_not_write_with_exit_73(out: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,price\n1,2\n")
    (tmp_path / "folder.csv").mkdir()
    done = run_cli("predict", "--data", str(tmp_path / "in.csv"), "--out", str(tmp_path / out))
    assert done.returncode == 73, done.stderr
    assert done.stderr == f"pricemyride predict: {tmp_path / out}: {message}\n"
    assert (tmp_path / "in.csv").read_text() == "id,price\n1,2\n"


@pytest.fixture
def silent_port() -> Any:
    """A port that accepts connections and never answers (a hung server, not a closed port)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize(
    ("argv", "variable", "value", "service"),
    [
        (["produce", "--limit", "5"], "PRICEMYRIDE_KAFKA_BOOTSTRAP", "127.0.0.1:{port}", "Kafka"),
        (["rescore", "--since", "2026-01-01T00:00:00+00:00"], "PRICEMYRIDE_DATABASE_URL",
         "postgresql://pricemyride:pricemyride-dev@127.0.0.1:{port}/pricemyride", "Postgres"),
        (["predict", "--data", "x.csv", "--out", "y.csv"], "PRICEMYRIDE_MLFLOW_TRACKING_URI", "http://127.0.0.1:{port}",
         "MLflow"),
    ],
)  # fmt: skip
def test_a_service_that_accepts_but_never_answers_fails_within_15_s(
    argv: list[str], variable: str, value: str, service: str, silent_port: int
) -> None:
    started = time.monotonic()
    done = run_cli(*argv, env={variable: value.format(port=silent_port)})
    assert time.monotonic() - started < 15
    assert done.returncode == 69, done.stderr
    assert done.stderr.startswith(f"pricemyride {argv[0]}: {service}: expected ")


def test_a_database_url_that_does_not_parse_is_a_configuration_error_that_shows_no_part_of_it() -> None:
    done = run_cli("rescore", "--since", "2026-01-01T00:00:00+00:00",
                   env={"PRICEMYRIDE_DATABASE_URL": f"host=db password {PLANTED}"})  # fmt: skip
    assert done.returncode == 78, done.stderr
    assert "PRICEMYRIDE_DATABASE_URL: expected a PostgreSQL URL or key=value string" in done.stderr
    assert PLANTED not in done.stderr
