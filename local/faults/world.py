"""The local stack a scenario runs on, and the invariant checks made after it.

One OpenSearch node and one moto server serve every scenario. Each scenario gets its own
simulator, clock, cursor table, dead-letter bucket and namespace, and starts from an engine
without any ti_anomali data, because MaintainLatest reads every namespace.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from opensearchpy import OpenSearch

from local import aws as local_aws
from local.checks import updates_by_key
from local.engine_proxy import EngineProxy
from local.functions import LambdaContext, load_handler
from local.push_key import LOCAL_PUSH_SECRET_FILE, LOCAL_PUSH_SECRET_NAME, store_local_push_secret
from ti_anomali import clock as clocks
from ti_anomali.adapters.cursor_store import CursorKey, CursorStore
from ti_anomali.adapters.dead_letters import DeadLetterStore
from ti_anomali.clock import ManualClock
from ti_anomali.engine import templates
from ti_anomali.fetch import FetchJob, FetchOutcome, FetchRequest
from ti_anomali.latest import DatasetOutcome, LatestJob
from ti_anomali.retry import Deadline, no_deadline
from ti_anomali.runtime import build_fetch_dependencies, build_latest_dependencies
from ti_anomali.settings import FetchSettings, LatestSettings

USERNAME = "faults-analyst"
# The simulator's key; the checks look for it in every log line, error and document.
API_KEY = "faults-secret-key-5b1e9d"  # noqa: S105
SERVICE = "ti-anomali"
# The published local test key of the push endpoint; the checks look for it like for the API key.
LOCAL_PUSH_KEY = json.loads(LOCAL_PUSH_SECRET_FILE.read_text())["hmac_keys"][0]
FETCH_DELAY = timedelta(minutes=1)
SYNC_DELAY = timedelta(seconds=60)
LATEST_ALIAS = templates.latest_alias("intelligence")


class LogBuffer:
    """Collects every log line the product writes: its Powertools logger and the root logger."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        Logger(service=SERVICE, level="DEBUG", logger_handler=handler)
        logging.getLogger(SERVICE).handlers = [handler]
        root_handler = logging.StreamHandler(self.stream)
        root_handler.setLevel(logging.INFO)
        logging.getLogger().addHandler(root_handler)

    def start_scenario(self) -> int:
        return self.stream.tell()

    def since(self, position: int) -> str:
        return self.stream.getvalue()[position:]


@dataclass
class Checks:
    """The invariants after a scenario, with the numbers behind them."""

    published: int = 0
    in_source: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    latest_documents: int = 0
    live_indicators: int = 0
    latest_missing: int = 0
    latest_extra: int = 0
    cursor_moved_backwards: int = 0
    secrets_leaked: int = 0
    failed_invocations: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.latest_missing
            or self.latest_extra
            or self.cursor_moved_backwards
            or self.secrets_leaked
        )


class World:
    """The shared local parts: one OpenSearch node, one moto server, the log buffer."""

    def __init__(self, node: Any, aws: local_aws.LocalAws) -> None:
        self.node = node
        self.aws = aws
        self.engine = OpenSearch(hosts=[node.url], timeout=120)
        self.log = LogBuffer()
        # boto3 and Powertools in this process must reach nothing but the moto server.
        os.environ.update(aws.environment())

    def clean_engine(self) -> None:
        """Remove every ti_anomali data stream, latest index and tombstone."""
        self.engine.indices.delete_data_stream(name="logs-ti_anomali.*")
        for name in ("logs-ti_anomali_latest.*", templates.TOMBSTONE_INDEX):
            self.engine.indices.delete(index=name, params={"ignore_unavailable": "true", "expand_wildcards": "all"})


class Scenario:
    """One scenario's share of the world and the driver of its invocations."""

    def __init__(self, world: World, name: str, *, corpus_size: int = 0, page_size: int = 100, seed: int = 5) -> None:
        from local.simulator import Simulator

        self.world = world
        self.name = name
        world.clean_engine()
        self.clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        clocks.use(self.clock)
        suffix = uuid.uuid4().hex[:8]
        self.aws = local_aws.LocalAws(
            endpoint_url=world.aws.endpoint_url,
            table_name=f"faults-{suffix}",
            dead_letter_bucket=f"faults-dead-letters-{suffix}",
            threatstream_secret=f"faults/threatstream-{suffix}",
        )
        self.aws.create_resources(USERNAME, API_KEY)
        parameters.clear_caches()
        self.simulator = Simulator(self.clock, username=USERNAME, api_key=API_KEY, seed=seed, corpus_size=corpus_size)
        self.namespace = f"f{suffix}"
        self.proxy = EngineProxy(world.node.url)
        self.proxy.start()
        self.environment = {
            **self.aws.environment(),
            "THREATSTREAM_URL": self.simulator.start(),
            "THREATSTREAM_SECRET_NAME": self.aws.threatstream_secret,
            "CURSOR_TABLE_NAME": self.aws.table_name,
            "DEAD_LETTER_BUCKET": self.aws.dead_letter_bucket,
            "ENGINE_KIND": "opensearch",
            "ENGINE_URL": self.proxy.url,
            "ENGINE_AUTH": "none",
            "NAMESPACE": self.namespace,
            "PAGE_SIZE": str(page_size),
            "HTTP_TIMEOUT_SECONDS": "2",
            "LATEST_DATASETS": "intelligence",
        }
        self.cursors: list[int | None] = []
        self.failures: list[str] = []
        self.extra: dict[str, Any] = {}
        self.pushed: set[tuple[str, str]] = set()
        self.push_responses: list[str] = []
        self._push_handler: Any = None
        self.expectations: dict[str, bool] = {}
        self.log_position = world.log.start_scenario()

    @property
    def data_stream(self) -> str:
        return f"logs-ti_anomali.intelligence-{self.namespace}"

    def close(self) -> None:
        self.simulator.stop()
        self.proxy.stop()

    def fetch_job(self, deadline: Deadline = no_deadline, **overrides: str) -> FetchJob:
        settings = FetchSettings.from_environment({**self.environment, **overrides})
        return FetchJob(build_fetch_dependencies(settings, deadline), deadline, owner=str(uuid.uuid4()))

    def invoke_fetch(
        self, request: FetchRequest | None = None, *, job: FetchJob | None = None, **overrides: str
    ) -> FetchOutcome | None:
        """Run one invocation as the schedule would; a failure is recorded, as Lambda would report it."""
        try:
            outcome = (job or self.fetch_job(**overrides)).run(request or FetchRequest())
        except BaseException as exc:  # noqa: BLE001 - a killed or failed invocation is part of the scenario
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.failures.append(f"{type(exc).__name__}: {exc}")
            outcome = None
        self.cursors.append(self.cursor())
        return outcome

    def cursor(self) -> int | None:
        store = CursorStore(self.aws.client("dynamodb"), self.aws.table_name)
        return store.read(CursorKey("intelligence", self.namespace, None))

    def schedule(self, invocations: int, between: timedelta = timedelta(minutes=1), **overrides: str) -> None:
        """Invoke the fetch function `invocations` times, one schedule interval apart."""
        for _ in range(invocations):
            self.clock.advance(between)
            self.invoke_fetch(**overrides)

    def drain(self, max_invocations: int = 200) -> None:
        """Stop publishing, let the delay pass, and invoke until the API has nothing more."""
        self.simulator.clear_faults()
        self.proxy.faults.clear()
        self.clock.advance(FETCH_DELAY + timedelta(seconds=1))
        for _ in range(max_invocations):
            outcome = self.invoke_fetch(FetchRequest(page_budget=100))
            if (
                outcome is not None
                and outcome.status == "done"
                and outcome.stop_reason in ("empty page", "no next page")
            ):
                return
            self.clock.advance(timedelta(minutes=1))
        self.failures.append("drain did not finish")

    def maintain_latest(self, **overrides: str) -> list[DatasetOutcome]:
        self.clock.advance(SYNC_DELAY + timedelta(seconds=1))
        settings = LatestSettings.from_environment({**self.environment, "ENGINE_URL": self.world.node.url, **overrides})
        return LatestJob(build_latest_dependencies(settings), no_deadline, owner=str(uuid.uuid4())).run()

    def check(self) -> Checks:
        """Compare the engine and dead-letter bucket with everything the simulator published."""
        checks = Checks()
        published = {(str(u.id), str(u.update_id)) for u in self.simulator.published_updates()}
        counts = updates_by_key(self.world.engine, self.data_stream)
        dead = self._dead_lettered_keys()
        checks.published = len(published)
        checks.in_source = len(counts)
        checks.dead_lettered = len(dead)
        checks.lost = len(published - set(counts) - dead)
        checks.duplicated = sum(count - 1 for count in counts.values() if count > 1) + len(set(counts) & dead)

        # An indicator with a dead-lettered update cannot be judged: that update never reached
        # the source, so the latest index rightly shows the update before it.
        undecidable = {indicator_id for indicator_id, _ in dead}
        live = self.simulator.live_indicator_ids(self.clock.now()) - undecidable
        latest = self._latest_ids() - undecidable
        checks.latest_documents = len(latest)
        checks.live_indicators = len(live)
        checks.latest_missing = len(live - latest)
        checks.latest_extra = len(latest - live)

        committed = [cursor for cursor in self.cursors if cursor is not None]
        checks.cursor_moved_backwards = sum(1 for a, b in zip(committed, committed[1:], strict=False) if b < a)

        if self.pushed:
            self._check_pushed(checks, dead)

        texts = [self.world.log.since(self.log_position), *self.failures, json.dumps(self._all_documents())]
        texts += self.push_responses
        checks.secrets_leaked = sum(text.count(API_KEY) + text.count(LOCAL_PUSH_KEY) for text in texts)
        checks.failed_invocations = len(self.failures)
        return checks

    def _check_pushed(self, checks: Checks, dead: set[tuple[str, str]]) -> None:
        """Count pushed indicators against the threatstream data stream, as for fetched ones."""
        counts = updates_by_key(self.world.engine, f"logs-ti_anomali.threatstream-{self.namespace}")
        checks.published += len(self.pushed)
        checks.in_source += len(counts)
        checks.lost += len(self.pushed - set(counts) - dead)
        checks.duplicated += sum(count - 1 for count in counts.values() if count > 1)

    def push(self, body: bytes, *, signed_body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        """Send one Function URL request to the push handler, signed over `signed_body` (default: the body)."""
        if self._push_handler is None:
            store_local_push_secret(self.aws)
            environment = {
                **self.environment,
                "ENGINE_URL": self.world.node.url,
                "PUSH_AUTH": "hmac",
                "PUSH_SECRET_NAME": LOCAL_PUSH_SECRET_NAME,
                "POWERTOOLS_SERVICE_NAME": SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": "TiAnomaliFaults",
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
            with local_aws.environment(environment), contextlib.redirect_stdout(io.StringIO()):
                self._push_handler = load_handler("receive_threatstream")
        signature = "sha256=" + hmac.new(LOCAL_PUSH_KEY.encode(), signed_body or body, hashlib.sha256).hexdigest()
        event = {
            "version": "2.0",
            "rawPath": "/",
            "headers": {"content-type": "application/x-ndjson", "x-filebeat-signature": signature},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
        with contextlib.redirect_stdout(io.StringIO()):
            response = self._push_handler.lambda_handler(event, LambdaContext("ReceiveThreatstream"))
        self.push_responses.append(response.get("body", ""))
        return int(response["statusCode"]), json.loads(response.get("body") or "{}")

    def _dead_lettered_keys(self) -> set[tuple[str, str]]:
        store = DeadLetterStore(self.aws.client("s3"), self.aws.dead_letter_bucket)
        keys = set()
        for key in store.list_keys():
            body = self.aws.client("s3").get_object(Bucket=self.aws.dead_letter_bucket, Key=key)["Body"].read()
            threatstream = json.loads(body)["document"].get("anomali", {}).get("threatstream", {})
            keys.add((str(threatstream.get("id")), str(threatstream.get("update_id"))))
        return keys

    def _latest_ids(self) -> set[str]:
        engine = self.world.engine
        if not engine.indices.exists_alias(name=LATEST_ALIAS):
            return set()
        engine.indices.refresh(index=LATEST_ALIAS)
        ids: set[str] = set()
        search_after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": 5000,
                "sort": [{"anomali.threatstream.id": "asc"}],
                "_source": ["anomali.threatstream.id"],
            }
            if search_after:
                body["search_after"] = search_after
            hits = engine.search(index=LATEST_ALIAS, body=body)["hits"]["hits"]
            ids.update(hit["_source"]["anomali"]["threatstream"]["id"] for hit in hits)
            if len(hits) < 5000:
                return ids
            search_after = hits[-1]["sort"]

    def _all_documents(self) -> list[Any]:
        engine = self.world.engine
        engine.indices.refresh(index=self.data_stream, params={"ignore_unavailable": "true"})
        response = engine.search(
            index=f"{self.data_stream},{LATEST_ALIAS}",
            body={"size": 2000},
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
        return response["hits"]["hits"]


ScenarioBody = Callable[[Scenario], None]
