"""The retrain listener's failure handling: retried with backoff, then recorded — never dropped silently."""

from __future__ import annotations

from typing import Any, ClassVar

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


class FakeClient:
    hellos: ClassVar[list[str]] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def hello(self) -> None:
        FakeClient.hellos.append("hello")


@pytest.mark.parametrize(("deployment", "api_url", "started"), [("", "", True), ("retrain/prod", "", False),
                                                                ("", "http://prefect:4200/api", False)])  # fmt: skip
def test_the_temporary_prefect_server_is_started_ahead_only_for_in_process_runs(
    monkeypatch: pytest.MonkeyPatch, deployment: str, api_url: str, started: bool
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pricemyride.settings import Settings
    from retrainer import listener

    FakeClient.hellos = []
    monkeypatch.setattr("prefect.client.orchestration.get_client", lambda sync_client: FakeClient())
    listener.PREFECT_WARM.clear()
    with temporary_settings({PREFECT_API_URL: api_url or None}):
        listener.warm_prefect(Settings(retrain_deployment=deployment))
    assert FakeClient.hellos == (["hello"] if started else [])
    assert listener.PREFECT_WARM.is_set(), "flow runs never wait for a warm-up that is over"


def test_a_warm_up_that_fails_lets_flow_runs_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from pricemyride.settings import Settings
    from retrainer import listener

    def broken(sync_client: bool) -> FakeClient:
        raise OSError("no port free")

    monkeypatch.setattr("prefect.client.orchestration.get_client", broken)
    listener.PREFECT_WARM.clear()
    listener.warm_prefect(Settings(retrain_deployment=""))
    assert listener.PREFECT_WARM.is_set()
