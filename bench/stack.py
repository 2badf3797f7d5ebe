"""The local parts the engine benchmarks run against: OpenSearch node, moto server, simulator process.

The simulator runs in its own process with the system clock, so serving pages does not compete
with the fetch handler for the interpreter lock. moto runs in a thread of the benchmark process:
the handler makes only a few DynamoDB calls per page.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from opensearchpy.exceptions import NotFoundError

from local import aws as local_aws
from local.opensearch_node import start_node
from ti_anomali.adapters.threatstream import parse_page
from ti_anomali.paging import INTELLIGENCE_PATH

REPO = Path(__file__).resolve().parent.parent
SIMULATOR_USERNAME = "bench-analyst"
# Not a secret: only the simulator started here accepts it.
SIMULATOR_API_KEY = "bench-simulator-key"  # noqa: S105
ENGINE_HEAP_MB = 1024


@dataclass
class Stack:
    """URLs of the running parts and the function environment that points at them."""

    engine_url: str
    engine_version: str
    aws: local_aws.LocalAws
    threatstream_url: str

    def fetch_environment(self, namespace: str) -> dict[str, str]:
        """Return the fetch function's environment, writing to its own namespace and cursor."""
        return {
            **self.common_environment(),
            "THREATSTREAM_URL": self.threatstream_url,
            "THREATSTREAM_SECRET_NAME": self.aws.threatstream_secret,
            "NAMESPACE": namespace,
        }

    def latest_environment(self, cursor_table: str) -> dict[str, str]:
        """Return the latest function's environment with its own checkpoint table."""
        return {
            **self.common_environment(),
            "CURSOR_TABLE_NAME": cursor_table,
            "LATEST_DATASETS": "intelligence",
        }

    def common_environment(self) -> dict[str, str]:
        """Return the variables every function reads, aimed at the local parts."""
        return {
            **self.aws.environment(),
            "CURSOR_TABLE_NAME": self.aws.table_name,
            "DEAD_LETTER_BUCKET": self.aws.dead_letter_bucket,
            "ENGINE_KIND": "opensearch",
            "ENGINE_URL": self.engine_url,
            "ENGINE_AUTH": "none",
            "POWERTOOLS_SERVICE_NAME": "ti-anomali",
            "POWERTOOLS_METRICS_NAMESPACE": "TiAnomaliBench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }

    def create_table(self) -> str:
        """Create a new cursor table in moto and return its name."""
        name = f"bench-{uuid.uuid4().hex[:10]}"
        self.aws.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def download_objects(self, count: int) -> list[dict[str, Any]]:
        """Return the first `count` objects the simulator serves, in update_id order, as the API client parses them."""
        objects: list[dict[str, Any]] = []
        parameters = {"order_by": "update_id", "limit": "1000"}
        headers = {"Authorization": f"apikey {SIMULATOR_USERNAME}:{SIMULATOR_API_KEY}"}
        with requests.Session() as session:
            while len(objects) < count:
                response = session.get(
                    self.threatstream_url + INTELLIGENCE_PATH, params=parameters, headers=headers, timeout=60
                )
                response.raise_for_status()
                page = parse_page(response.text, 1)
                if not page.objects:
                    break
                objects.extend(page.objects)
                parameters["update_id__gt"] = str(page.objects[-1]["update_id"])
        return objects[:count]


@contextmanager
def running(corpus_size: int, seed: int) -> Iterator[Stack]:
    """Start OpenSearch, moto and a simulator serving `corpus_size` updates; stop them all afterwards."""
    with ExitStack() as stack:
        node = stack.enter_context(start_node(heap_mb=ENGINE_HEAP_MB))
        aws = stack.enter_context(local_aws.moto_server())
        aws.create_resources(SIMULATOR_USERNAME, SIMULATOR_API_KEY)
        threatstream_url = stack.enter_context(_simulator_process(corpus_size, seed))
        yield Stack(node.url, node.version, aws, threatstream_url)


@contextmanager
def _simulator_process(corpus_size: int, seed: int) -> Iterator[str]:
    """Run `python -m local.simulator` and return its base URL; SIGTERM stops it."""
    command = [
        sys.executable,
        "-m",
        "local.simulator",
        "--corpus-size",
        str(corpus_size),
        "--seed",
        str(seed),
        "--username",
        SIMULATOR_USERNAME,
        "--api-key",
        SIMULATOR_API_KEY,
        "--log-level",
        "WARNING",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the simulator did not print its URL (exit status {process.poll()})")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def delete_data_streams(client: Any, pattern: str) -> None:
    """Delete the data streams matching `pattern` with their backing indices, if there are any."""
    with contextlib.suppress(NotFoundError):
        client.indices.delete_data_stream(name=pattern)


def delete_indices(client: Any, pattern: str) -> None:
    """Delete the indices matching `pattern`, hidden ones included."""
    client.indices.delete(index=pattern, params={"ignore_unavailable": "true", "expand_wildcards": "all"})
