"""The retrain listener's failure handling: retried with backoff, then recorded — never dropped silently."""

from __future__ import annotations

from typing import Any

import pytest

from retrainer.listener import with_retries


def test_a_flaky_flow_is_retried_until_it_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("retrainer.listener.time.sleep", waits.append)
    calls = iter([RuntimeError("prefect down"), RuntimeError("again"), {"promote": True}])

    def attempt() -> dict[str, Any]:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(attempt, backoff=(1.0, 2.0, 4.0)) == {"promote": True}
    assert waits == [1.0, 2.0]


def test_the_last_failure_is_raised_after_every_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("retrainer.listener.time.sleep", waits.append)

    def attempt() -> dict[str, Any]:
        raise RuntimeError(f"failure {len(waits)}")

    with pytest.raises(RuntimeError, match="failure 2"):
        with_retries(attempt, backoff=(1.0, 2.0))
    assert waits == [1.0, 2.0]


def test_sigterm_leaves_through_python_so_prefect_stops_its_temporary_server() -> None:
    import os
    import signal
    import time

    from retrainer.listener import exit_on_sigterm

    previous = signal.getsignal(signal.SIGTERM)
    try:
        exit_on_sigterm()
        with pytest.raises(SystemExit) as caught:
            sigterm_and_wait(os.getpid(), time.sleep)
        assert caught.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def sigterm_and_wait(pid: int, sleep: Any) -> None:
    import os
    import signal

    os.kill(pid, signal.SIGTERM)
    sleep(5)  # the handler raises before this returns
