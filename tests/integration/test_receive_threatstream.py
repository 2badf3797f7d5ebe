"""ReceiveThreatstream invoked in-process with Function URL events: real OpenSearch node, moto.

Each test loads the handler afresh, as a cold start, with a push secret, a dead-letter bucket and
a data stream namespace of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opensearchpy import OpenSearch

from local import aws as local_aws
from local.checks import count_documents, updates_by_key
from local.engine_proxy import EngineFault, EngineProxy
from local.functions import LambdaContext, load_handler
from ti_anomali.adapters.dead_letters import DeadLetterStore
from ti_anomali.clock import ManualClock
from ti_anomali.latest import LatestJob
from ti_anomali.push import sign
from ti_anomali.retry import no_deadline
from ti_anomali.runtime import build_latest_dependencies
from ti_anomali.settings import LatestSettings, SettingsError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "threatstream"
SESSION = REPO.parent / "shared" / "conformance" / "extension" / "extension-sdk-session.ndjson"
# Keys of the push secret; the leak test looks for them in every output.
KEY_A = "it-push-key-a-5c91e0"
KEY_B = "it-push-key-b-e27d4f"
MAX_BODY_BYTES = 4 * 1024 * 1024


def indicators() -> bytes:
    return (FIXTURES / "indicators.ndjson").read_bytes()


def function_url_event(
    body: bytes,
    key: str | None = KEY_A,
    *,
    method: str = "POST",
    content_type: str = "application/x-ndjson",
    base64_encoded: bool = True,
) -> dict[str, Any]:
    """Build a Function URL event (payload format 2.0) carrying `body`, signed with `key`."""
    headers = {"content-type": content_type, "content-length": str(len(body)), "user-agent": "it-sender"}
    if key is not None:
        headers["x-filebeat-signature"] = sign(body, key)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": base64.b64encode(body).decode() if base64_encoded else body.decode(),
        "isBase64Encoded": base64_encoded,
    }


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    text: str


@dataclass
class AwsClients:
    """Clients of the moto server, made once per module because each takes a while to build."""

    aws: local_aws.LocalAws
    s3: Any
    secrets: Any


@pytest.fixture(scope="module")
def aws_clients(moto: local_aws.LocalAws) -> AwsClients:
    return AwsClients(moto, moto.client("s3"), moto.client("secretsmanager"))


@dataclass
class PushStack:
    """One test's push secret, dead-letter bucket and namespace, and a cold start of the handler on them."""

    clients: AwsClients
    engine: OpenSearch
    engine_url: str
    monkeypatch: pytest.MonkeyPatch
    suffix: str

    @property
    def namespace(self) -> str:
        return f"p{self.suffix}"

    @property
    def secret_name(self) -> str:
        return f"push-{self.suffix}"

    @property
    def dead_letter_bucket(self) -> str:
        return f"push-dead-letters-{self.suffix}"

    @property
    def data_stream(self) -> str:
        return f"logs-ti_anomali.threatstream-{self.namespace}"

    def put_secret(self, value: dict[str, Any]) -> None:
        secrets = self.clients.secrets
        try:
            secrets.create_secret(Name=self.secret_name, SecretString=json.dumps(value))
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=self.secret_name, SecretString=json.dumps(value))

    def cold_start(self, **overrides: str | None) -> ModuleType:
        """Load the handler with this test's environment and `overrides`; None removes a variable."""
        environment: dict[str, str | None] = {
            **self.clients.aws.environment(),
            "PUSH_SECRET_NAME": self.secret_name,
            "DEAD_LETTER_BUCKET": self.dead_letter_bucket,
            "ENGINE_KIND": "opensearch",
            "ENGINE_URL": self.engine_url,
            "ENGINE_AUTH": "none",
            "NAMESPACE": self.namespace,
            "POWERTOOLS_SERVICE_NAME": "ti-anomali",
            "POWERTOOLS_METRICS_NAMESPACE": "TiAnomaliTest",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **overrides,
        }
        for name, value in environment.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        parameters.clear_caches()
        return load_handler("receive_threatstream")

    def documents(self) -> list[dict[str, Any]]:
        self.engine.indices.refresh(index=self.data_stream)
        hits = self.engine.search(index=self.data_stream, body={"size": 2000})["hits"]["hits"]
        return [hit["_source"] for hit in hits]

    def count(self) -> int:
        return count_documents(self.engine, self.data_stream)


@pytest.fixture
def push(
    aws_clients: AwsClients,
    opensearch_node: Any,
    engine: OpenSearch,
    manual_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[PushStack]:
    push_stack = PushStack(aws_clients, engine, opensearch_node.url, monkeypatch, uuid.uuid4().hex[:10])
    aws_clients.s3.create_bucket(Bucket=push_stack.dead_letter_bucket)
    push_stack.put_secret({"hmac_keys": [KEY_A]})
    yield push_stack
    parameters.clear_caches()


class RecordList(logging.Handler):
    """Keeps every record of the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def service_records() -> Iterator[list[logging.LogRecord]]:
    """Records of the functions' Powertools loggers, whose own handler keeps the first test's stdout."""
    handler = RecordList()
    service_logger = logging.getLogger("ti-anomali")
    service_logger.addHandler(handler)
    yield handler.records
    service_logger.removeHandler(handler)


def invoke(handler: ModuleType, event: dict[str, Any]) -> Response:
    result = handler.lambda_handler(event, LambdaContext("ReceiveThreatstream"))
    return Response(result["statusCode"], result["headers"], json.loads(result["body"]), result["body"])


# --- signatures ---------------------------------------------------------------------------------


def test_valid_signature_writes_documents(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(indicators()))

    assert response.status == 200
    assert response.body["created"] == 6
    assert response.body["rejected"] == []
    assert set(updates_by_key(push.engine, push.data_stream)) == {
        (str(4100023000 + n), str(5200004100 + n)) for n in range(1, 7)
    }
    document = next(d for d in push.documents() if d["anomali"]["threatstream"]["id"] == "4100023003")
    assert document["threat"]["indicator"]["url"]["domain"] == "login.example.org"
    assert document["event"]["dataset"] == "ti_anomali.threatstream"
    assert document["tags"] == ["forwarded", "anomali-threatstream", "credential-harvest"]
    assert document["anomali"]["threatstream"]["deleted_at"] == "2026-05-12T10:02:47.000Z"
    assert "ingested" in document["event"]


def test_plain_body_is_accepted(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(indicators(), base64_encoded=False))

    assert response.status == 200
    assert push.count() == 6


def test_invalid_signature_answers_401(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(indicators(), key="not-the-key"))

    assert response.status == 401
    assert response.body == {"message": "the X-Filebeat-Signature header does not match the body"}
    assert push.count() == 0


def test_missing_signature_answers_401(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(indicators(), key=None))

    assert response.status == 401
    assert response.body == {"message": "the X-Filebeat-Signature header is missing"}
    assert push.count() == 0


def test_signature_of_tampered_body_answers_401(push: PushStack) -> None:
    handler = push.cold_start()
    event = function_url_event(indicators())
    event["body"] = base64.b64encode(indicators().replace(b'"high"', b'"low"')).decode()

    assert invoke(handler, event).status == 401


def test_second_key_is_accepted(push: PushStack) -> None:
    push.put_secret({"hmac_keys": [KEY_B, KEY_A]})
    handler = push.cold_start()

    first = invoke(handler, function_url_event(indicators(), key=KEY_A))
    second = invoke(handler, function_url_event(indicators(), key=KEY_B))

    assert first.status == 200
    assert second.status == 200
    assert second.body["already_present"] == 6


def test_single_key_secret_is_accepted(push: PushStack) -> None:
    push.put_secret({"hmac_key": KEY_B})
    handler = push.cold_start()

    assert invoke(handler, function_url_event(indicators(), key=KEY_B)).status == 200


def test_rotated_key_accepted_after_reread(push: PushStack) -> None:
    handler = push.cold_start()
    assert invoke(handler, function_url_event(indicators(), key=KEY_A)).status == 200

    push.put_secret({"hmac_keys": [KEY_B, KEY_A]})
    rotated = invoke(handler, function_url_event(indicators(), key=KEY_B))
    previous = invoke(handler, function_url_event(indicators(), key=KEY_A))

    assert rotated.status == 200
    assert previous.status == 200


def test_reread_waits_between_mismatches(push: PushStack, manual_clock: ManualClock) -> None:
    handler = push.cold_start()
    assert invoke(handler, function_url_event(indicators(), key=KEY_B)).status == 401

    push.put_secret({"hmac_keys": [KEY_B]})
    too_soon = invoke(handler, function_url_event(indicators(), key=KEY_B))
    manual_clock.advance(timedelta(seconds=31))
    later = invoke(handler, function_url_event(indicators(), key=KEY_B))

    assert too_soon.status == 401
    assert later.status == 200


def test_bad_secret_fails_cold_start(push: PushStack) -> None:
    push.put_secret({"hmac_keys": "not-a-list"})

    with pytest.raises(SettingsError, match="hmac_keys"):
        push.cold_start()


# --- method, media type, size -------------------------------------------------------------------


def test_wrong_method_answers_405(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(indicators(), method="GET"))

    assert response.status == 405
    assert response.headers["allow"] == "POST"
    assert push.count() == 0


def test_wrong_content_type_answers_415(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(indicators(), content_type="application/json"))

    assert response.status == 415
    assert response.body == {"message": "the Content-Type must be application/x-ndjson"}


def test_content_type_with_charset_is_accepted(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(indicators(), content_type="application/x-ndjson; charset=utf-8"))

    assert response.status == 200


def test_configured_content_type_is_enforced(push: PushStack) -> None:
    handler = push.cold_start(PUSH_CONTENT_TYPE="application/json")

    assert invoke(handler, function_url_event(indicators())).status == 415
    assert invoke(handler, function_url_event(indicators(), content_type="application/json")).status == 200


def oversized_line() -> bytes:
    """Return one NDJSON line of exactly the size limit plus one byte."""
    start, end = b'{"id": 1, "update_id": 1, "pad": "', b'"}\n'
    return start + b"x" * (MAX_BODY_BYTES + 1 - len(start) - len(end)) + end


def test_oversized_base64_body_answers_413(push: PushStack) -> None:
    body = oversized_line()
    assert len(body) == MAX_BODY_BYTES + 1
    handler = push.cold_start()

    response = invoke(handler, function_url_event(body))

    assert response.status == 413
    assert push.count() == 0


def test_oversized_plain_body_answers_413(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(oversized_line(), base64_encoded=False))

    assert response.status == 413


def test_overlong_base64_text_answers_413(push: PushStack) -> None:
    handler = push.cold_start()
    event = function_url_event(b"{}")
    event["body"] = "!" * (MAX_BODY_BYTES * 4 // 3 + 8)

    assert invoke(handler, event).status == 413


def test_body_at_limit_is_accepted(push: PushStack) -> None:
    line = oversized_line()
    body = line[:-3] + b'"}'
    assert len(body) == MAX_BODY_BYTES
    handler = push.cold_start()

    response = invoke(handler, function_url_event(body))

    assert response.status == 200
    assert response.body["created"] == 1


# --- lines --------------------------------------------------------------------------------------


def numbered_indicator(number: int) -> bytes:
    obj = json.loads(indicators().splitlines()[number % 6])
    obj["id"] = 4200000000 + number
    obj["update_id"] = 5300000000 + number
    return json.dumps(obj).encode() + b"\n"


def test_mixed_lines_write_good_report_bad(push: PushStack) -> None:
    bad = {17: b'{"id": 17, "value_type": \n', 250: b"[1, 2, 3]\n", 999: b"\xff\xfe not utf-8\n"}
    body = b"".join(bad.get(number, numbered_indicator(number)) for number in range(1, 1001))
    handler = push.cold_start()

    response = invoke(handler, function_url_event(body))

    assert response.status == 200
    assert response.body["accepted"] == 997
    assert response.body["created"] == 997
    assert response.body["rejected"] == [
        {"line": 17, "reason": "not valid JSON at column 25"},
        {"line": 250, "reason": "a JSON array, not an object"},
        {"line": 999, "reason": "not valid UTF-8"},
    ]
    counts = updates_by_key(push.engine, push.data_stream)
    assert len(counts) == 997
    assert (str(4200000000 + 17), str(5300000000 + 17)) not in counts


def test_no_usable_line_answers_400(push: PushStack) -> None:
    handler = push.cold_start()

    response = invoke(handler, function_url_event(b"[1]\nnot json\n"))

    assert response.status == 400
    assert response.body["rejected_count"] == 2


def test_replayed_request_adds_nothing(push: PushStack) -> None:
    body = indicators() + b'{"value_type": "domain", "domain": "no-ids.example.net"}\n'
    event = function_url_event(body)
    handler = push.cold_start()

    first = invoke(handler, event)
    replay = invoke(handler, event)

    assert first.body["created"] == 7
    assert replay.status == 200
    assert replay.body["created"] == 0
    assert replay.body["already_present"] == 7
    assert push.count() == 7


def test_replay_after_rollover_adds_nothing(push: PushStack) -> None:
    body = indicators() + b'{"value_type": "domain", "domain": "no-ids.example.net"}\n'
    event = function_url_event(body)
    handler = push.cold_start()
    invoke(handler, event)
    push.engine.indices.refresh(index=push.data_stream)

    push.engine.indices.rollover(alias=push.data_stream)
    replay = invoke(handler, event)

    assert replay.status == 200
    assert replay.body["created"] == 0
    assert replay.body["already_present"] == 7
    assert push.count() == 7


def test_json_array_body_is_accepted(push: PushStack) -> None:
    objects = [json.loads(line) for line in indicators().splitlines()]
    body = json.dumps([*objects[:2], "not an object", objects[2]], indent=2).encode()
    handler = push.cold_start()

    response = invoke(handler, function_url_event(body))

    assert response.status == 200
    assert response.body["format"] == "json-array"
    assert response.body["created"] == 3
    assert response.body["rejected"] == [{"item": 3, "reason": "a JSON string, not an object"}]


def test_extension_session_rows_are_written(push: PushStack) -> None:
    messages = [json.loads(line) for line in SESSION.read_text().splitlines() if line.strip()]
    names = next(m for m in messages if m["message_type"] == "start")["integrator_metadata"]["ioc_field_names"]
    rows = [row for m in messages if m["message_type"] == "data" for row in m["intelligence"]]
    body = b"".join(json.dumps(dict(zip(names, row, strict=True))).encode() + b"\n" for row in rows)
    handler = push.cold_start()

    response = invoke(handler, function_url_event(body))

    assert response.status == 200
    assert response.body["created"] == len(rows)
    (document,) = push.documents()
    assert document["threat"]["indicator"]["ip"] == "89.160.20.156"
    assert document["threat"]["indicator"]["url"]["domain"] == "d4xgfj.example.net"
    assert document["threat"]["indicator"]["type"] == "domain-name"
    assert document["anomali"]["threatstream"]["id"] == "3135167627"


def test_rejected_document_is_dead_lettered(push: PushStack) -> None:
    line = json.loads(indicators().splitlines()[0])
    line["org"] = {"name": "an object where the template has a keyword"}
    body = json.dumps(line).encode() + b"\n" + indicators().splitlines(keepends=True)[1]
    handler = push.cold_start()

    response = invoke(handler, function_url_event(body))

    assert response.status == 200
    assert response.body["created"] == 1
    assert response.body["dead_lettered"] == 1
    s3 = push.clients.s3
    (key,) = DeadLetterStore(s3, push.dead_letter_bucket).list_keys()
    letter = json.loads(s3.get_object(Bucket=push.dead_letter_bucket, Key=key)["Body"].read())
    assert letter["document_id"] == "4100023001-5200004101"
    assert letter["error"]["type"] == "mapper_parsing_exception"


def test_engine_failure_answers_503_then_retry_succeeds(push: PushStack, engine_proxy: EngineProxy) -> None:
    engine_proxy.faults.extend([EngineFault("whole", status=503)] * 10)
    handler = push.cold_start(ENGINE_URL=engine_proxy.url)

    failed = invoke(handler, function_url_event(indicators()))
    engine_proxy.faults.clear()
    retried = invoke(handler, function_url_event(indicators()))

    assert failed.status == 503
    assert failed.headers["retry-after"] == "30"
    assert retried.status == 200
    assert push.count() == 6


# --- modes and cold start -----------------------------------------------------------------------


def test_open_endpoint_refused_at_cold_start(push: PushStack) -> None:
    with pytest.raises(SettingsError, match="PUSH_ALLOW_OPEN_ENDPOINT"):
        push.cold_start(PUSH_AUTH="none")


def test_open_endpoint_warns_at_cold_start(push: PushStack, service_records: list[logging.LogRecord]) -> None:
    handler = push.cold_start(PUSH_AUTH="none", PUSH_ALLOW_OPEN_ENDPOINT="true")

    warnings = [record.getMessage() for record in service_records if record.levelno == logging.WARNING]
    assert "the push endpoint accepts indicators from anyone" in warnings
    assert invoke(handler, function_url_event(indicators(), key=None)).status == 200


def test_iam_mode_needs_identity(push: PushStack) -> None:
    handler = push.cold_start(PUSH_AUTH="iam", PUSH_SECRET_NAME=None)
    event = function_url_event(indicators(), key=None)

    without_identity = invoke(handler, event)
    event["requestContext"]["authorizer"] = {"iam": {"accessKey": "AKIAEXAMPLE", "accountId": "123456789012"}}
    with_identity = invoke(handler, event)

    assert without_identity.status == 401
    assert with_identity.status == 200


def test_metrics_are_emitted(push: PushStack, capsys: pytest.CaptureFixture[str]) -> None:
    handler = push.cold_start()
    capsys.readouterr()

    invoke(handler, function_url_event(indicators() + b"oops\n"))

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {
        name: metrics[-1][name]
        for name in ("PushRequests", "IndicatorsWritten", "IndicatorsDeadLettered", "LinesRejected")
    }
    assert values == {
        "PushRequests": [1.0],
        "IndicatorsWritten": [6.0],
        "IndicatorsDeadLettered": [0.0],
        "LinesRejected": [1.0],
    }


def test_secret_never_in_logs_responses_or_documents(
    push: PushStack,
    manual_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    service_records: list[logging.LogRecord],
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="ti-anomali")
    handler = push.cold_start(POWERTOOLS_LOG_LEVEL="DEBUG", PRESERVE_ORIGINAL_EVENT="true")
    responses: list[Response] = []

    responses.append(invoke(handler, function_url_event(indicators())))
    responses.append(invoke(handler, function_url_event(indicators(), key=KEY_B)))
    push.put_secret({"hmac_keys": [KEY_B, KEY_A]})
    manual_clock.advance(timedelta(minutes=1))
    responses.append(invoke(handler, function_url_event(indicators() + b"{bad\n", key=KEY_B)))
    responses.append(invoke(handler, function_url_event(b"[1]\n")))

    captured = capsys.readouterr()
    documents = json.dumps(push.documents())
    records = [json.dumps(record.__dict__, default=str) for record in service_records]
    outputs = [captured.out, captured.err, caplog.text, documents, *records, *(r.text for r in responses)]
    assert [response.status for response in responses] == [200, 401, 200, 400]
    assert any("HMAC keys re-read" in record for record in records)
    for text in outputs:
        assert KEY_A not in text
        assert KEY_B not in text


# --- any body -----------------------------------------------------------------------------------


@pytest.fixture
def warm_handler(push: PushStack) -> ModuleType:
    return push.cold_start()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.binary(max_size=3000)
    | st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=5), max_size=5).map(
        lambda objects: b"".join(json.dumps(obj).encode() + b"\n" for obj in objects)
    ),
    base64_encoded=st.booleans(),
)
def test_any_body_never_answers_5xx(warm_handler: ModuleType, body: bytes, base64_encoded: bool) -> None:
    if not base64_encoded:
        body = body.decode("utf-8", errors="replace").encode()

    response = invoke(warm_handler, function_url_event(body, base64_encoded=base64_encoded))

    assert response.status < 500
    assert response.status in (200, 400)


def test_pushed_indicators_reach_latest_alias(push: PushStack, manual_clock: ManualClock) -> None:
    engine = push.engine
    engine.indices.delete_data_stream(name="logs-ti_anomali.threatstream-*")
    engine.indices.delete(
        index="logs-ti_anomali_latest.threatstream-*,ti_anomali-latest-tombstones",
        params={"ignore_unavailable": "true", "expand_wildcards": "all"},
    )
    conformance = json.loads((SESSION.parent.parent / "threatstream" / "extension-push.json").read_text())
    # Added now, so that the default 90-day IOC duration keeps them live.
    added_at = manual_clock.now().isoformat().replace("+00:00", "Z")
    objects = [{**event["json"], "added_at": added_at} for event in conformance["events"]]
    body = b"".join(json.dumps(obj).encode() + b"\n" for obj in objects)
    response = invoke(push.cold_start(), function_url_event(body))
    table = f"latest-{push.suffix}"
    push.clients.aws.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    manual_clock.advance(timedelta(seconds=61))
    settings = LatestSettings.from_environment(
        {
            "LATEST_DATASETS": "threatstream",
            "CURSOR_TABLE_NAME": table,
            "ENGINE_URL": push.engine_url,
            "ENGINE_AUTH": "none",
            "DEAD_LETTER_BUCKET": push.dead_letter_bucket,
        }
    )

    (outcome,) = LatestJob(build_latest_dependencies(settings), no_deadline, owner="test").run()

    alias = "logs-ti_anomali_latest.threatstream"
    engine.indices.refresh(index=alias)
    hits = engine.search(index=alias, body={"size": 200})["hits"]["hits"]
    pushed_ids = {str(obj["id"]) for obj in objects}
    assert response.status == 200
    assert outcome.source_documents == len(objects)
    assert {hit["_source"]["anomali"]["threatstream"]["id"] for hit in hits} == pushed_ids
    assert all(hit["_source"]["labels"]["is_ioc_transform_source"] == "false" for hit in hits)
