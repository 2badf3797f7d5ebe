"""ReceiveThreatstream: check a pushed request, map its indicators to ECS and write them.

The HTTP contract with the sender (the Anomali Elastic Extension):

- 405 for any method but POST, 415 for a media type other than the configured one.
- 413 for a body over the size limit, 400 for a body that is not valid base64 or UTF-8 text.
- 401 without a valid `X-Filebeat-Signature` (PUSH_AUTH=hmac), or without an IAM identity on
  the request (PUSH_AUTH=iam, which means the Function URL is not set to AWS_IAM).
- 400 when not one line of the body is a JSON object, 200 when every object is accounted for:
  in the data stream (written now or already present from an earlier push) or in the
  dead-letter store. Lines that are not JSON objects are counted and listed, never echoed.
- 503 with `Retry-After` when the engine or the dead-letter store failed. Some documents may be
  written by then, but deterministic ids make the sender's retry add no duplicates.

A replayed request adds nothing: ids already in any backing index of the data stream are left
out before the write, and `create` returns 409 for those written since the last refresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from opensearchpy.exceptions import TransportError

from ti_anomali.adapters.dead_letters import DeadLetterError
from ti_anomali.adapters.search_engine import BulkWriter, DataStreamSetup, EngineError, existing_ids
from ti_anomali.clock import Clock
from ti_anomali.ecs.common import PIPELINE_ERROR_KIND, get_field
from ti_anomali.ecs.threatstream import ThreatstreamOptions, document_id, map_threatstream
from ti_anomali.engine.templates import data_stream_name
from ti_anomali.push import (
    ALLOWED_METHOD,
    SIGNATURE_HEADER,
    BodyError,
    ParsedBody,
    ParsedObject,
    PushRequest,
    PushResponse,
    SignatureCheck,
    check_signature,
    decode_body,
    error_response,
    media_type,
    parse_body,
    rejected_lines_body,
)
from ti_anomali.settings import PushSettings

if TYPE_CHECKING:
    from ti_anomali.ecs.geoip import GeoIP

DATASET = "threatstream"
RETRY_AFTER_SECONDS = 30
# A bulk request carries at most this many documents or about this many bytes of them, well
# under the 10 MiB request limit of the smallest Amazon OpenSearch Service instance types.
BULK_MAX_DOCUMENTS = 1000
BULK_MAX_BYTES = 5 * 1024 * 1024
# A signature mismatch re-reads the secret at most once in this interval, so badly signed
# requests cause at most one Secrets Manager call per interval in each container.
MIN_SECONDS_BETWEEN_KEY_RELOADS = 30.0
logger = Logger(service="ti-anomali", child=True)

# Loads the HMAC keys. With `force`, it bypasses the secret cache.
KeyLoader = Callable[[bool], Sequence[str]]


class HmacKeyring:
    """The accepted HMAC keys, re-read from the secret when a signature matches none of them.

    During a rotation the secret contains the new key and the previous one, and both are accepted.
    A sender that switches to a key this container has not seen yet gets one forced re-read of
    the secret before its request gets a 401 response.
    """

    def __init__(self, load: KeyLoader, clock: Clock) -> None:
        self._load = load
        self._clock = clock
        self._keys: Sequence[str] = load(False)
        self._last_reload: datetime | None = None

    def verify(self, signature: str | None, body: bytes) -> SignatureCheck:
        """Check a signature, re-reading the keys once when it is present but matches none."""
        result = check_signature(signature, body, self._keys)
        if result is not SignatureCheck.INVALID or not self._may_reload():
            return result

        self._last_reload = self._clock.now()
        try:
            self._keys = self._load(True)
        except Exception as exc:  # noqa: BLE001 - the cached keys stay in use, and the request still gets a response
            logger.warning(
                "re-reading the HMAC keys failed, so the cached keys stay in use",
                reason="signature matched no cached key",
                error=type(exc).__name__,
            )
            return result
        logger.info("HMAC keys re-read after a signature mismatch", keys=len(self._keys))
        return check_signature(signature, body, self._keys)

    def _may_reload(self) -> bool:
        if self._last_reload is None:
            return True
        return self._clock.now() - self._last_reload >= timedelta(seconds=MIN_SECONDS_BETWEEN_KEY_RELOADS)


@dataclass
class PushDependencies:
    """The adapters the receiver works with, built once per container by the handler."""

    settings: PushSettings
    keyring: HmacKeyring | None
    setup: DataStreamSetup
    writer: BulkWriter
    engine_client: Any
    clock: Clock
    geoip: GeoIP | None = None


@dataclass
class PushOutcome:
    """Result of one request: the response, and the counts the handler turns into metrics."""

    response: PushResponse
    lines: int = 0
    lines_rejected: int = 0
    documents: int = 0
    created: int = 0
    already_present: int = 0
    dead_lettered: int = 0
    mapping_errors: int = 0


@dataclass
class _Batch:
    documents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    size_bytes: int = 0


class PushReceiver:
    """Handles one pushed request from checks to response."""

    def __init__(self, deps: PushDependencies) -> None:
        self._deps = deps
        self._settings = deps.settings
        self._index = data_stream_name(DATASET, self._settings.engine.namespace)

    def handle(self, request: PushRequest) -> PushOutcome:
        """Check, parse, map and write one request.

        No content of the request makes this raise. A failure of the engine or of the dead-letter
        store becomes a 503 response.
        """
        started = time.monotonic()
        checked = self._check_request(request)
        if isinstance(checked, PushResponse):
            return PushOutcome(checked)

        parsed = parse_body(checked)
        if not parsed.objects:
            logger.warning("push rejected", reason="no line is a JSON object", lines=parsed.lines, status=400)
            message = "the body is empty" if parsed.lines == 0 else "no line of the body is a JSON object"
            body = {"message": message, "accepted": 0, **rejected_lines_body(parsed)}
            return PushOutcome(PushResponse(400, body), lines=parsed.lines, lines_rejected=len(parsed.rejected))

        outcome = PushOutcome(PushResponse(200, {}), lines=parsed.lines, lines_rejected=len(parsed.rejected))
        documents = self._map(parsed.objects, outcome)
        try:
            self._write(documents, outcome)
        except (EngineError, DeadLetterError) as exc:
            logger.error(
                "writing pushed indicators failed, so the sender is asked to retry",
                error=type(exc).__name__,
                detail=str(exc),
                documents=len(documents),
                documents_accounted=outcome.created + outcome.already_present + outcome.dead_lettered,
                status=503,
            )
            outcome.response = error_response(
                503,
                "writing to the search engine failed. Retry the same request later",
                {"retry-after": str(RETRY_AFTER_SECONDS)},
            )
            return outcome

        outcome.response = PushResponse(200, self._summary(parsed, outcome))
        logger.info(
            "push written",
            lines=outcome.lines,
            lines_rejected=outcome.lines_rejected,
            indicators_created=outcome.created,
            indicators_already_present=outcome.already_present,
            indicators_dead_lettered=outcome.dead_lettered,
            mapping_errors=outcome.mapping_errors,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        return outcome

    def _check_request(self, request: PushRequest) -> PushResponse | bytes:
        """Return the raw body of an acceptable request, or the response that rejects it."""
        if request.method != ALLOWED_METHOD:
            return self._reject(405, f"only {ALLOWED_METHOD} is allowed", {"allow": ALLOWED_METHOD})

        expected_type = self._settings.content_type
        if media_type(request.header("content-type")) != expected_type:
            return self._reject(415, f"the Content-Type must be {expected_type}")

        if self._settings.auth == "iam" and not request.has_iam_identity:
            # NOTE: Lambda checks the caller's IAM signature only when the Function URL's AuthType
            # is AWS_IAM. A request without an identity means the URL accepts anyone.
            logger.error(
                "request without an IAM identity while PUSH_AUTH=iam. Set the Function URL's AuthType to AWS_IAM"
            )
            return self._reject(401, "the request is not signed with AWS Signature Version 4")

        try:
            raw = decode_body(request.body, request.is_base64_encoded, self._settings.max_body_bytes)
        except BodyError as exc:
            return self._reject(exc.status, str(exc))

        if self._deps.keyring is not None:
            check = self._deps.keyring.verify(request.header(SIGNATURE_HEADER), raw)
            if check is SignatureCheck.MISSING:
                return self._reject(401, "the X-Filebeat-Signature header is missing")
            if check is SignatureCheck.INVALID:
                return self._reject(401, "the X-Filebeat-Signature header does not match the body")
        return raw

    def _reject(self, status: int, message: str, headers: dict[str, str] | None = None) -> PushResponse:
        logger.warning("push rejected", reason=message, status=status)
        return error_response(status, message, headers)

    def _map(self, objects: list[ParsedObject], outcome: PushOutcome) -> list[tuple[str, dict[str, Any]]]:
        options = ThreatstreamOptions(
            now=self._deps.clock.now(),
            ioc_duration=self._settings.ioc_duration,
            tags=self._settings.tags,
            preserve_original=self._settings.preserve_original_event,
            namespace=self._settings.engine.namespace,
            geoip=self._deps.geoip,
        )
        documents = []
        for parsed in objects:
            document = map_threatstream(parsed.obj, options, original=parsed.text)
            if get_field(document, "event.kind") == PIPELINE_ERROR_KIND:
                outcome.mapping_errors += 1
            documents.append((document_id(document, parsed.obj), document))
        outcome.documents = len(documents)
        return documents

    def _write(self, documents: list[tuple[str, dict[str, Any]]], outcome: PushOutcome) -> None:
        self._deps.setup.ensure(DATASET)
        for batch in _batches(documents):
            new_documents = self._without_existing(batch, outcome)
            if not new_documents:
                continue
            result = self._deps.writer.write(self._index, new_documents)
            outcome.created += result.created
            outcome.already_present += result.already_present
            outcome.dead_lettered += result.dead_lettered

    def _without_existing(
        self, batch: list[tuple[str, dict[str, Any]]], outcome: PushOutcome
    ) -> list[tuple[str, dict[str, Any]]]:
        """Leave out documents already in any backing index, which `create` alone misses after a rollover."""
        try:
            present = existing_ids(self._deps.engine_client, self._index, [doc_id for doc_id, _ in batch])
        except TransportError as exc:
            raise EngineError(f"looking up existing ids in {self._index} failed with {exc.status_code}") from exc
        outcome.already_present += len(present)
        return [(doc_id, document) for doc_id, document in batch if doc_id not in present]

    def _summary(self, parsed: ParsedBody, outcome: PushOutcome) -> dict[str, Any]:
        return {
            "accepted": outcome.documents,
            "created": outcome.created,
            "already_present": outcome.already_present,
            "dead_lettered": outcome.dead_lettered,
            "mapping_errors": outcome.mapping_errors,
            **rejected_lines_body(parsed),
        }


def _batches(documents: list[tuple[str, dict[str, Any]]]) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Split documents into bulk requests of at most BULK_MAX_DOCUMENTS and about BULK_MAX_BYTES."""
    batch = _Batch()
    for document_id_, document in documents:
        # surrogatepass: a lone surrogate from a JSON escape has no UTF-8 form, and only the size matters here.
        size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        full = len(batch.documents) >= BULK_MAX_DOCUMENTS or batch.size_bytes + size > BULK_MAX_BYTES
        if batch.documents and full:
            yield batch.documents
            batch = _Batch()
        batch.documents.append((document_id_, document))
        batch.size_bytes += size
    if batch.documents:
        yield batch.documents
