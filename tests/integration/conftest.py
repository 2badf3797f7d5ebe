"""Local parts for integration tests: a real OpenSearch node, moto, the simulator, a shared clock."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters
from opensearchpy import OpenSearch

from local import aws as local_aws
from local.engine_proxy import EngineProxy
from ti_anomali import clock as clocks
from ti_anomali.clock import ManualClock

API_KEY = "it-secret-api-key-7f3a9c"  # noqa: S105 - the simulator's key, the test looks for leaks of it
USERNAME = "it-analyst"
SERVICE = "ti-anomali"


@pytest.fixture(scope="session")
def opensearch_node() -> Iterator[Any]:
    from local.opensearch_node import start_node

    with start_node() as node:
        yield node


@pytest.fixture(scope="session")
def engine(opensearch_node: Any) -> OpenSearch:
    return OpenSearch(hosts=[opensearch_node.url], timeout=60)


@pytest.fixture(scope="session")
def moto(request: pytest.FixtureRequest) -> Iterator[local_aws.LocalAws]:
    with local_aws.moto_server() as aws:
        yield aws


@contextmanager
def redirect_service_log(buffer: io.StringIO) -> Iterator[io.StringIO]:
    """Point the handlers of the product's Powertools logger at `buffer` for the block.

    Powertools binds its handler to the stdout of the first test that created the logger, so
    capsys cannot see it; call this after loading a handler, which creates the logger.
    """
    handlers = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    # The stream is swapped directly: `setStream` would flush the old one, which may belong to
    # an earlier test's capture and be closed already.
    previous = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.stream = buffer
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.stream = stream


@pytest.fixture
def service_log() -> io.StringIO:
    """A buffer for `redirect_service_log`."""
    return io.StringIO()


@pytest.fixture
def manual_clock() -> Iterator[ManualClock]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    previous = clocks.current()
    clocks.use(clock)
    yield clock
    clocks.use(previous)


@pytest.fixture
def engine_proxy(opensearch_node: Any) -> Iterator[EngineProxy]:
    proxy = EngineProxy(opensearch_node.url)
    proxy.start()
    yield proxy
    proxy.stop()


@dataclass
class Stack:
    """One test's share of the local parts: its own table, bucket, secret and namespace."""

    aws: local_aws.LocalAws
    simulator: Any
    threatstream_url: str
    engine_url: str
    namespace: str
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def data_stream(self) -> str:
        return f"logs-ti_anomali.intelligence-{self.namespace}"


@pytest.fixture
def stack(
    moto: local_aws.LocalAws, opensearch_node: Any, manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    from local.simulator import Simulator

    suffix = uuid.uuid4().hex[:10]
    aws = local_aws.LocalAws(
        endpoint_url=moto.endpoint_url,
        table_name=f"cursor-{suffix}",
        dead_letter_bucket=f"dead-letters-{suffix}",
        threatstream_secret=f"threatstream-{suffix}",
    )
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    aws.create_resources(USERNAME, API_KEY)
    parameters.clear_caches()

    simulator = Simulator(manual_clock, username=USERNAME, api_key=API_KEY, seed=11, corpus_size=0)
    url = simulator.start()
    namespace = f"t{suffix}"
    environment = {
        **aws.environment(),
        "THREATSTREAM_URL": url,
        "THREATSTREAM_SECRET_NAME": aws.threatstream_secret,
        "CURSOR_TABLE_NAME": aws.table_name,
        "DEAD_LETTER_BUCKET": aws.dead_letter_bucket,
        "ENGINE_KIND": "opensearch",
        "ENGINE_URL": opensearch_node.url,
        "ENGINE_AUTH": "none",
        "NAMESPACE": namespace,
        "HTTP_TIMEOUT_SECONDS": "5",
        "POWERTOOLS_SERVICE_NAME": "ti-anomali",
        "POWERTOOLS_METRICS_NAMESPACE": "TiAnomaliTest",
    }
    yield Stack(aws, simulator, url, opensearch_node.url, namespace, environment)
    simulator.stop()
