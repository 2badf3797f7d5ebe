"""Adapter for OpenSearch and Elasticsearch: client factory, template set-up and bulk writes.

A page counts as written when every document of it is either in the engine (created now, or
already there from an earlier attempt: 409) or stored in the dead-letter store with the reason
the engine gave. Anything else raises `BulkWriteError`, and the caller must not move its cursor.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from opensearchpy import OpenSearch, RequestsHttpConnection
from opensearchpy.exceptions import ConnectionError as EngineConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from ti_anomali.adapters.dead_letters import DeadLetter, DeadLetterStore
from ti_anomali.clock import Clock
from ti_anomali.engine import templates
from ti_anomali.retry import RETRYABLE_STATUSES, Backoff, Deadline, fits_before_deadline
from ti_anomali.settings import EngineSettings

ALREADY_EXISTS = 409
# Statuses with which the engine refuses a whole bulk request for what is in it.
REQUEST_REJECTED_STATUSES = frozenset({400, 413})
logger = Logger(service="ti-anomali", child=True)
MAX_REASON_CHARS = 2000


class EngineError(Exception):
    """A request to the search engine failed."""


class SetupError(EngineError):
    """Installing a template or lifecycle policy failed."""


class BulkWriteError(EngineError):
    """A bulk write could not account for every document before the deadline."""


@dataclass(frozen=True)
class EngineCredentials:
    """Credentials for basic or API-key auth; the repr hides them."""

    username: str | None = None
    password: str | None = None
    api_key: str | None = None

    def __repr__(self) -> str:
        return f"EngineCredentials(username={self.username!r}, password='***', api_key='***')"


def build_client(
    settings: EngineSettings,
    credentials: EngineCredentials | None = None,
    aws_credentials: Any = None,
) -> OpenSearch:
    """Build one client per container; retries are this module's, not the client's."""
    options: dict[str, Any] = {
        "hosts": [settings.url],
        "connection_class": RequestsHttpConnection,
        "verify_certs": settings.tls_verify,
        "timeout": settings.timeout_seconds,
        "max_retries": 0,
        "retry_on_timeout": False,
        "http_compress": True,
    }
    if settings.ca_bundle_path:
        options["ca_certs"] = settings.ca_bundle_path
    if settings.auth == "sigv4":
        from requests_aws4auth import AWS4Auth

        # NOTE: refreshable credentials let the signer pick up the role's rotated session
        # credentials without rebuilding the client.
        options["http_auth"] = AWS4Auth(region=settings.region, service="es", refreshable_credentials=aws_credentials)
    elif settings.auth == "basic":
        if credentials is None or not credentials.username or credentials.password is None:
            raise SetupError("ENGINE_AUTH=basic needs 'username' and 'password' in the engine secret")
        options["http_auth"] = (credentials.username, credentials.password)
    elif settings.auth == "api-key":
        if credentials is None or not credentials.api_key:
            raise SetupError("ENGINE_AUTH=api-key needs 'api_key' in the engine secret")
        options["headers"] = {"Authorization": f"ApiKey {credentials.api_key}"}
    return OpenSearch(**options)


def encode_api_key(key_id: str, key: str) -> str:
    """Encode an Elasticsearch API key id and secret as the `ApiKey` header expects."""
    return base64.b64encode(f"{key_id}:{key}".encode()).decode()


@dataclass
class WriteResult:
    """Outcome counts of one bulk write."""

    created: int = 0
    already_present: int = 0
    dead_lettered: int = 0
    requests: int = 0
    retried_items: int = 0
    dead_letter_keys: list[str] = field(default_factory=list)

    @property
    def accounted(self) -> int:
        """Documents that are now in the engine or in the dead-letter store."""
        return self.created + self.already_present + self.dead_lettered


class DataStreamSetup:
    """Installs the lifecycle policy and index template of each source data stream, once per container."""

    def __init__(self, client: OpenSearch, engine_kind: str) -> None:
        self._client = client
        self._engine_kind = engine_kind
        self._installed: set[str] = set()

    def ensure(self, dataset: str) -> None:
        """Install the policy and template for `dataset` if this container has not yet done so."""
        if dataset in self._installed:
            return
        try:
            self._install_lifecycle_policy()
            self._client.indices.put_index_template(
                name=f"logs-ti_anomali.{dataset}",
                body=templates.source_index_template(dataset, self._engine_kind),
            )
        except (TransportError, EngineConnectionError) as exc:
            raise SetupError(f"installing the template of logs-ti_anomali.{dataset} failed: {exc.error}") from exc
        self._installed.add(dataset)

    def _install_lifecycle_policy(self) -> None:
        policy_id = templates.LIFECYCLE_POLICY_ID
        if self._engine_kind == "elasticsearch":
            self._client.transport.perform_request(
                "PUT", f"/_ilm/policy/{policy_id}", body=templates.elasticsearch_ilm_policy()
            )
            return
        path = f"/_plugins/_ism/policies/{policy_id}"
        try:
            self._client.transport.perform_request("GET", path)
        except NotFoundError:
            pass
        except RequestError as exc:
            # NOTE: a node without the Index Management plugin returns 400 "no handler found".
            # Writing goes on, because losing indicators is worse than keeping them too long.
            if "no handler found" not in str(exc.info):
                raise
            logger.warning(
                "no lifecycle policy installed: source documents will not be deleted after retention",
                reason="the engine has no Index State Management plugin",
                policy_id=policy_id,
            )
            return
        else:
            return
        try:
            self._client.transport.perform_request("PUT", path, body=templates.opensearch_ism_policy())
        except TransportError as exc:
            # A concurrent invocation created it between our GET and PUT.
            if exc.status_code != ALREADY_EXISTS:
                raise


class BulkWriter:
    """Writes documents with `create` and deterministic ids; every item is accounted for."""

    def __init__(
        self,
        client: OpenSearch,
        dead_letters: DeadLetterStore,
        clock: Clock,
        deadline: Deadline,
        backoff: Backoff | None = None,
        reserve_seconds: float = 10.0,
        request_timeout_seconds: float = 30.0,
    ) -> None:
        self._client = client
        self._dead_letters = dead_letters
        self._clock = clock
        self._deadline = deadline
        self._backoff = backoff or Backoff()
        self._reserve = reserve_seconds
        self._request_timeout = request_timeout_seconds
        self._last_failure = ""

    def write(self, index: str, documents: Sequence[tuple[str, dict[str, Any]]]) -> WriteResult:
        """Create every `(id, document)` in `index`, retrying 429 and 5xx items, dead-lettering the rest.

        `event.ingested` is set on each document just before each request that carries it, so it
        is never earlier than the moment the document was sent.
        """
        result = WriteResult()
        pending = list(documents)
        attempt = 0
        while pending:
            attempt += 1
            if attempt > 1:
                self._wait_before_retry(attempt - 1, index, len(pending))
                result.retried_items += len(pending)
            pending = self._send(index, pending, result)
        return result

    def _wait_before_retry(self, retry: int, index: str, pending: int) -> None:
        wait = self._backoff.delay(retry)
        out_of_attempts = retry >= self._backoff.max_attempts
        out_of_time = not fits_before_deadline(wait + self._request_timeout, self._deadline, self._reserve)
        if out_of_attempts or out_of_time:
            raise BulkWriteError(
                f"bulk write to {index} gave up after {retry} attempts with {pending} documents not written; "
                f"last failure: {self._last_failure}"
            )
        self._clock.sleep(wait)

    def _send(
        self, index: str, documents: list[tuple[str, dict[str, Any]]], result: WriteResult
    ) -> list[tuple[str, dict[str, Any]]]:
        """Send one bulk request and return the documents that must be retried."""
        ingested = self._clock.now().isoformat().replace("+00:00", "Z")
        body = bulk_create_body(index, documents, ingested)

        result.requests += 1
        try:
            response = self._client.bulk(body=body)
        except EngineConnectionError as exc:
            self._last_failure = f"no response ({type(exc.info).__name__ if exc.info else 'connection error'})"
            return documents
        except TransportError as exc:
            if isinstance(exc.status_code, int) and exc.status_code in RETRYABLE_STATUSES:
                self._last_failure = f"status {exc.status_code}"
                return documents
            if exc.status_code in REQUEST_REJECTED_STATUSES:
                return self._split(index, documents, result, exc)
            raise BulkWriteError(f"bulk write to {index} returned {exc.status_code}") from exc

        retry: list[tuple[str, dict[str, Any]]] = []
        self._last_failure = "items rejected with 429 or 5xx"
        items = response.get("items", [])
        if len(items) != len(documents):
            raise BulkWriteError(f"bulk write to {index} returned {len(items)} items for {len(documents)} documents")
        for (document_id, document), item in zip(documents, items, strict=True):
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 0))
            if status in (200, 201):
                result.created += 1
            elif status == ALREADY_EXISTS:
                result.already_present += 1
            elif status in RETRYABLE_STATUSES:
                retry.append((document_id, document))
            else:
                self._dead_letter(index, document_id, document, status, outcome.get("error"), result)
        return retry

    def _split(
        self, index: str, documents: list[tuple[str, dict[str, Any]]], result: WriteResult, exc: TransportError
    ) -> list[tuple[str, dict[str, Any]]]:
        """Send the halves of a request the engine refused as a whole, down to the one document at fault.

        A single document that the engine refuses as a request (an `_id` it rejects, say) is
        dead-lettered like an item it rejects.
        """
        if len(documents) == 1:
            ((document_id, document),) = documents
            info = exc.info if isinstance(exc.info, dict) else {}
            error = info.get("error") if isinstance(info.get("error"), dict) else {"type": str(exc.error)}
            self._dead_letter(index, document_id, document, int(exc.status_code), error, result)
            return []
        middle = len(documents) // 2
        return self._send(index, documents[:middle], result) + self._send(index, documents[middle:], result)

    def _dead_letter(
        self,
        index: str,
        document_id: str,
        document: dict[str, Any],
        status: int,
        error: Any,
        result: WriteResult,
    ) -> None:
        error = error if isinstance(error, dict) else {"reason": str(error)}
        letter = DeadLetter(
            index=index,
            document_id=document_id,
            document=document,
            status=status,
            error_type=str(error.get("type", "unknown")),
            reason=_describe_error(error)[:MAX_REASON_CHARS],
        )
        key = self._dead_letters.put(letter, self._clock.now())
        result.dead_lettered += 1
        result.dead_letter_keys.append(key)


def bulk_create_body(index: str, documents: Sequence[tuple[str, dict[str, Any]]], ingested: str) -> bytes:
    """Build a `_bulk` body that creates each `(id, document)` in `index`, setting `event.ingested` on each."""
    # The action lines differ only in the id, so they are joined from JSON strings.
    action_start = '{"create":{"_index":' + json.dumps(index) + ',"_id":'
    lines: list[str] = []
    for document_id, document in documents:
        document.setdefault("event", {})["ingested"] = ingested
        lines.append(action_start + json.dumps(document_id) + "}}")
        lines.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (from a `\ud800` escape in the API's JSON) has no UTF-8 form. Written as
        # an ASCII escape, the document reaches the engine, which stores or rejects it.
        return (
            "\n".join(
                line if i % 2 == 0 else json.dumps(documents[i // 2][1], separators=(",", ":"))
                for i, line in enumerate(lines)
            )
            + "\n"
        ).encode()


def _describe_error(error: dict[str, Any]) -> str:
    reason = str(error.get("reason", ""))
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason = f"{reason}: {cause.get('type', '')} {cause['reason']}"
    return reason


def existing_ids(client: OpenSearch, index_pattern: str, ids: Sequence[str]) -> set[str]:
    """Return which of `ids` already exist in any backing index matching `index_pattern`."""
    if not ids:
        return set()
    try:
        response = client.search(
            index=index_pattern,
            body={"query": {"ids": {"values": list(ids)}}, "_source": False, "size": len(ids)},
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
    except NotFoundError:
        return set()
    return {hit["_id"] for hit in response["hits"]["hits"]}
