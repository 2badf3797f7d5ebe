"""The ThreatStream client against the simulator's faults."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
import requests

from local.simulator import Simulator
from local.simulator.faults import Fault
from ti_anomali.adapters.threatstream import (
    Credentials,
    ThreatStreamAuthError,
    ThreatStreamClient,
    ThreatStreamResponseError,
    ThreatStreamTransportError,
)
from ti_anomali.clock import ManualClock
from ti_anomali.paging import RequestWindow, first_page_parameters
from ti_anomali.retry import Backoff

pytestmark = pytest.mark.integration
USERNAME = "client-analyst"
API_KEY = "client-test-key-19ab"  # noqa: S105 - the simulator's key


@pytest.fixture
def simulator(manual_clock: ManualClock) -> Any:
    simulator = Simulator(manual_clock, username=USERNAME, api_key=API_KEY, seed=3, corpus_size=0)
    simulator.start()
    simulator.publish(25, status_changes=0)
    manual_clock.advance(timedelta(minutes=2))
    yield simulator
    simulator.stop()


def make_client(
    simulator: Any,
    clock: ManualClock,
    *,
    timeout: float = 5.0,
    remaining: float = 900.0,
    api_key: str = API_KEY,
) -> ThreatStreamClient:
    return ThreatStreamClient(
        simulator.url if hasattr(simulator, "url") else simulator.base_url,
        Credentials(USERNAME, api_key),
        requests.Session(),
        timeout_seconds=timeout,
        verify=True,
        clock=clock,
        deadline=lambda: remaining,
        backoff=Backoff(base_seconds=0.5, cap_seconds=8, max_attempts=5, rng=random.Random(5)),
    )


def parameters(clock: ManualClock) -> dict[str, str]:
    window = RequestWindow(1000, timedelta(minutes=1), timedelta(days=90), None, False)
    return first_page_parameters(window, None, clock.now())


def test_plain_page_returned(simulator: Any, manual_clock: ManualClock) -> None:
    page = make_client(simulator, manual_clock).fetch_page(parameters(manual_clock))

    assert len(page.objects) == 25
    assert page.total_count == 25
    assert page.attempts == 1


@pytest.mark.parametrize("form", ["seconds", "http_date"])
def test_429_waits_for_retry_after(simulator: Any, manual_clock: ManualClock, form: str) -> None:
    simulator.inject(Fault(kind="rate_limit", retry_after=form, retry_after_seconds=40))
    before = manual_clock.now()

    page = make_client(simulator, manual_clock).fetch_page(parameters(manual_clock))

    assert page.attempts == 2
    assert len(page.objects) == 25
    assert manual_clock.now() - before >= timedelta(seconds=39)


def test_429_without_header_backs_off(simulator: Any, manual_clock: ManualClock) -> None:
    simulator.inject(Fault(kind="rate_limit", retry_after="none", count=2))

    page = make_client(simulator, manual_clock).fetch_page(parameters(manual_clock))

    assert page.attempts == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_with_html_retried(simulator: Any, manual_clock: ManualClock, status: int) -> None:
    simulator.inject(Fault(kind="server_error", status=status))

    page = make_client(simulator, manual_clock).fetch_page(parameters(manual_clock))

    assert page.attempts == 2


@pytest.mark.parametrize("kind", ["truncated", "html_200", "reset"])
def test_broken_response_retried(simulator: Any, manual_clock: ManualClock, kind: str) -> None:
    simulator.inject(Fault(kind=kind))

    page = make_client(simulator, manual_clock).fetch_page(parameters(manual_clock))

    assert page.attempts == 2
    assert len(page.objects) == 25


def test_response_slower_than_timeout_retried(simulator: Any, manual_clock: ManualClock) -> None:
    simulator.inject(Fault(kind="slow", delay_seconds=1.5))

    page = make_client(simulator, manual_clock, timeout=0.4).fetch_page(parameters(manual_clock))

    assert page.attempts == 2


def test_html_200_every_time_is_an_error(simulator: Any, manual_clock: ManualClock) -> None:
    simulator.inject(Fault(kind="html_200", count=10))

    with pytest.raises(ThreatStreamResponseError, match="not JSON"):
        make_client(simulator, manual_clock).fetch_page(parameters(manual_clock))


def test_retry_never_waits_past_deadline(simulator: Any, manual_clock: ManualClock) -> None:
    simulator.inject(Fault(kind="rate_limit", retry_after="seconds", retry_after_seconds=120))
    before = manual_clock.now()

    with pytest.raises(ThreatStreamResponseError, match="429"):
        make_client(simulator, manual_clock, remaining=60).fetch_page(parameters(manual_clock))
    assert manual_clock.now() == before


def test_connection_refused_is_transport_error(manual_clock: ManualClock) -> None:
    client = ThreatStreamClient(
        "http://127.0.0.1:9",
        Credentials(USERNAME, API_KEY),
        requests.Session(),
        timeout_seconds=1,
        verify=True,
        clock=manual_clock,
        deadline=lambda: 900.0,
        backoff=Backoff(max_attempts=2, rng=random.Random(1)),
    )

    with pytest.raises(ThreatStreamTransportError) as failure:
        client.fetch_page(parameters(manual_clock))
    assert API_KEY not in str(failure.value)


def test_wrong_key_raises_auth_error_without_key(simulator: Any, manual_clock: ManualClock) -> None:
    with pytest.raises(ThreatStreamAuthError) as failure:
        make_client(simulator, manual_clock, api_key="wrong-key-value").fetch_page(parameters(manual_clock))

    assert failure.value.status == 401
    assert "wrong-key-value" not in str(failure.value)
    assert "wrong-key-value" not in repr(failure.value)


def test_401_rereads_rotated_key_once(simulator: Any, manual_clock: ManualClock) -> None:
    reloads: list[int] = []

    def reload() -> Credentials:
        reloads.append(1)
        return Credentials(USERNAME, API_KEY)

    client = make_client(simulator, manual_clock, api_key="rotated-away")
    client._reload_credentials = reload

    page = client.fetch_page(parameters(manual_clock))

    assert reloads == [1]
    assert len(page.objects) == 25


def test_missing_meta_and_string_total_tolerated(simulator: Any, manual_clock: ManualClock) -> None:
    simulator.inject(Fault(kind="meta_missing"))
    simulator.inject(Fault(kind="total_count_string"))
    client = make_client(simulator, manual_clock)

    without_meta = client.fetch_page(parameters(manual_clock))
    string_total = client.fetch_page(parameters(manual_clock))

    assert without_meta.total_count is None
    assert without_meta.next_link is None
    assert string_total.total_count == 25


def test_credentials_repr_hides_key() -> None:
    assert API_KEY not in repr(Credentials(USERNAME, API_KEY))


def test_redirect_not_followed_with_key(manual_clock: ManualClock) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class Target(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the base class names it
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    target_url = f"http://127.0.0.1:{target.server_address[1]}/api/v2/intelligence/"

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the base class names it
            self.send_response(302)
            self.send_header("Location", target_url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    redirect = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (target, redirect):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    client = ThreatStreamClient(
        f"http://127.0.0.1:{redirect.server_address[1]}",
        Credentials(USERNAME, API_KEY),
        requests.Session(),
        timeout_seconds=2,
        verify=True,
        clock=manual_clock,
        deadline=lambda: 900.0,
    )
    try:
        with pytest.raises(ThreatStreamResponseError) as failure:
            client.fetch_page(parameters(manual_clock))
    finally:
        target.shutdown()
        redirect.shutdown()

    assert failure.value.status == 302
    assert seen == []
