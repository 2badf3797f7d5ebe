"""The push endpoint without I/O: request reading, bodies, signatures, settings and the receiver with fakes."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opensearchpy.exceptions import TransportError

from ti_anomali.adapters.dead_letters import DeadLetterError
from ti_anomali.adapters.search_engine import BulkWriteError, WriteResult
from ti_anomali.clock import ManualClock
from ti_anomali.push import (
    JSON_ARRAY,
    MAX_NESTING_DEPTH,
    NDJSON,
    BodyError,
    PushRequest,
    SignatureCheck,
    check_signature,
    decode_body,
    hmac_keys_from_secret,
    max_base64_length,
    media_type,
    parse_body,
    sign,
)
from ti_anomali.receive import BULK_MAX_DOCUMENTS, HmacKeyring, PushDependencies, PushReceiver
from ti_anomali.settings import PushSettings, SettingsError

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "threatstream"
EVENTS = REPO / "events"
LOCAL_KEY = json.loads((FIXTURES / "local-push-secret.json").read_text())["hmac_keys"][0]
CURRENT_KEY = "unit-current-key"
PREVIOUS_KEY = "unit-previous-key"
MEBIBYTE = 1024 * 1024
BASE_ENVIRONMENT = {
    "PUSH_SECRET_NAME": "ti-anomali/push",
    "DEAD_LETTER_BUCKET": "dead",
    "ENGINE_URL": "https://search.example:443",
    "AWS_REGION": "eu-west-1",
}


def indicator_lines() -> list[bytes]:
    return (FIXTURES / "indicators.ndjson").read_bytes().splitlines(keepends=True)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


# --- reading a Function URL event ---------------------------------------------------------------


def test_function_url_event_is_read() -> None:
    request = PushRequest.from_function_url_event(load_event("push-valid"))

    assert request.method == "POST"
    assert request.header("Content-Type") == "application/x-ndjson"
    assert str(request.header("X-Filebeat-Signature")).startswith("sha256=")
    assert request.is_base64_encoded is True
    assert request.has_iam_identity is False
    assert base64.b64decode(request.body) == (FIXTURES / "indicators.ndjson").read_bytes()


def test_header_names_are_case_insensitive() -> None:
    event = {"requestContext": {"http": {"method": "post"}}, "headers": {"Content-Type": "application/x-ndjson"}}

    request = PushRequest.from_function_url_event(event)

    assert request.method == "POST"
    assert request.header("content-type") == "application/x-ndjson"


@pytest.mark.parametrize("event", [None, [], "text", {"requestContext": "x", "headers": ["a"], "body": 3}])
def test_malformed_event_reads_as_empty(event: Any) -> None:
    request = PushRequest.from_function_url_event(event)

    assert request.method == ""
    assert request.headers == {}
    assert request.body == ""


def test_iam_identity_is_detected() -> None:
    event = load_event("push-valid")
    event["requestContext"]["authorizer"] = {"iam": {"accessKey": "AKIAEXAMPLE", "accountId": "123456789012"}}

    assert PushRequest.from_function_url_event(event).has_iam_identity is True


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/x-ndjson", "application/x-ndjson"),
        ("Application/X-NDJSON; charset=utf-8", "application/x-ndjson"),
        ("  application/json ;q=1", "application/json"),
        (";", None),
        (None, None),
    ],
)
def test_media_type_drops_parameters(header: str | None, expected: str | None) -> None:
    assert media_type(header) == expected


# --- decoding bodies ----------------------------------------------------------------------------


def test_base64_body_is_decoded() -> None:
    assert decode_body(base64.b64encode(b'{"a":1}\n').decode(), True, 100) == b'{"a":1}\n'


def test_plain_body_is_encoded_as_utf8() -> None:
    assert decode_body('{"name":"café"}', False, 100) == '{"name":"café"}'.encode()


def test_invalid_base64_answers_400() -> None:
    with pytest.raises(BodyError) as failure:
        decode_body("not*base64!", True, 100)

    assert failure.value.status == 400


def test_encoded_length_checked_before_decoding() -> None:
    text = "*" * (max_base64_length(12) + 1)

    with pytest.raises(BodyError) as failure:
        decode_body(text, True, 12)

    assert failure.value.status == 413


def test_decoded_size_is_checked() -> None:
    text = base64.b64encode(b"x" * 14).decode()
    assert len(text) <= max_base64_length(13)

    with pytest.raises(BodyError) as failure:
        decode_body(text, True, 13)

    assert failure.value.status == 413


def test_body_at_limit_is_accepted() -> None:
    assert len(decode_body(base64.b64encode(b"x" * 12).decode(), True, 12)) == 12


def test_multibyte_text_over_limit_answers_413() -> None:
    with pytest.raises(BodyError) as failure:
        decode_body("é" * 7, False, 12)

    assert failure.value.status == 413


def test_lone_surrogate_answers_400() -> None:
    with pytest.raises(BodyError) as failure:
        decode_body('{"a":"\ud800"}', False, 100)

    assert failure.value.status == 400


# --- parsing bodies -----------------------------------------------------------------------------


def test_ndjson_lines_become_objects() -> None:
    parsed = parse_body(b"".join(indicator_lines()))

    assert parsed.format == NDJSON
    assert [item.number for item in parsed.objects] == [1, 2, 3, 4, 5, 6]
    assert parsed.objects[0].obj["id"] == 4100023001
    assert parsed.objects[0].text == indicator_lines()[0].decode().strip()
    assert parsed.rejected == []


def test_blank_lines_and_crlf_are_skipped() -> None:
    parsed = parse_body(b'\r\n{"a":1}\r\n   \n{"b":2}')

    assert [(item.number, item.obj) for item in parsed.objects] == [(2, {"a": 1}), (4, {"b": 2})]
    assert parsed.lines == 2


def test_byte_order_mark_is_ignored() -> None:
    parsed = parse_body(b'\xef\xbb\xbf{"a":1}\n')

    assert [item.obj for item in parsed.objects] == [{"a": 1}]


def test_bad_lines_are_reported_without_content() -> None:
    body = b'{"a":1}\n{"secret-looking": "payload-7431",\n["payload-7431"]\nNaN\n"payload-7431"\n\xff\xfe\n{"b":2}\n'

    parsed = parse_body(body)

    assert [item.number for item in parsed.objects] == [1, 7]
    reasons = {line.number: line.reason for line in parsed.rejected}
    assert reasons == {
        2: "not valid JSON at column 35",
        3: "a JSON array, not an object",
        4: "not valid JSON: NaN and Infinity are not JSON numbers",
        5: "a JSON string, not an object",
        6: "not valid UTF-8",
    }
    assert not any("payload-7431" in reason for reason in reasons.values())


def test_number_beyond_double_is_rejected() -> None:
    parsed = parse_body(b'{"confidence": 1e400}\n')

    assert parsed.rejected[0].reason == "a number is outside the range of a 64-bit float"


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 100_000])
def test_deep_nesting_is_rejected(depth: int) -> None:
    line = '{"a":' * depth + "1" + "}" * depth

    parsed = parse_body(line.encode() + b"\n")

    assert parsed.objects == []
    assert parsed.rejected[0].reason == f"nested deeper than {MAX_NESTING_DEPTH} levels"


def test_nesting_at_limit_is_accepted() -> None:
    depth = MAX_NESTING_DEPTH
    line = '{"a":' * depth + "1" + "}" * depth

    assert len(parse_body(line.encode()).objects) == 1


def test_json_array_of_objects_is_accepted() -> None:
    parsed = parse_body(b'[\n {"a": 1},\n 7,\n {"b": 2}\n]\n')

    assert parsed.format == JSON_ARRAY
    assert [(item.number, item.obj, item.text) for item in parsed.objects] == [
        (1, {"a": 1}, '{"a":1}'),
        (3, {"b": 2}, '{"b":2}'),
    ]
    assert [(line.number, line.reason) for line in parsed.rejected] == [(2, "a JSON number, not an object")]


def test_ndjson_array_line_is_rejected() -> None:
    parsed = parse_body(b'[{"a": 1}]\n{"b": 2}\n')

    assert parsed.format == NDJSON
    assert [item.obj for item in parsed.objects] == [{"b": 2}]
    assert parsed.rejected[0].number == 1


def test_empty_body_has_no_lines() -> None:
    parsed = parse_body(b"  \n\n")

    assert parsed.lines == 0
    assert parsed.objects == []


# --- signatures and keys ------------------------------------------------------------------------


def test_signature_of_current_key_is_valid() -> None:
    body = b'{"a":1}\n'

    assert check_signature(sign(body, CURRENT_KEY), body, [CURRENT_KEY, PREVIOUS_KEY]) is SignatureCheck.VALID


def test_signature_of_previous_key_is_valid() -> None:
    body = b'{"a":1}\n'

    assert check_signature(sign(body, PREVIOUS_KEY), body, [CURRENT_KEY, PREVIOUS_KEY]) is SignatureCheck.VALID


def test_upper_case_hex_is_valid() -> None:
    body = b'{"a":1}\n'
    signature = sign(body, CURRENT_KEY)

    assert check_signature("sha256=" + signature[7:].upper(), body, [CURRENT_KEY]) is SignatureCheck.VALID


@pytest.mark.parametrize("header", [None, "", "   "])
def test_absent_signature_is_missing(header: str | None) -> None:
    assert check_signature(header, b"{}", [CURRENT_KEY]) is SignatureCheck.MISSING


@pytest.mark.parametrize(
    "header",
    [
        "sha1=" + "0" * 40,
        "sha256=not-hex",
        "sha256=" + "0" * 64,
        "sha256=" + "ab" * 16,
        sign(b"another body", CURRENT_KEY),
        sign(b"{}", "unknown-key"),
    ],
)
def test_wrong_signature_is_invalid(header: str) -> None:
    assert check_signature(header, b"{}", [CURRENT_KEY, PREVIOUS_KEY]) is SignatureCheck.INVALID


def test_sign_matches_rfc_4231_vector() -> None:
    # RFC 4231, test case 2: HMAC-SHA256 with the key "Jefe".
    expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

    assert sign(b"what do ya want for nothing?", "Jefe") == expected


@pytest.mark.parametrize(
    ("secret", "keys"),
    [
        ({"hmac_keys": ["a", "b"]}, ("a", "b")),
        ({"hmac_keys": ["a"]}, ("a",)),
        ({"hmac_key": "a"}, ("a",)),
    ],
)
def test_secret_shapes_give_keys(secret: dict[str, Any], keys: tuple[str, ...]) -> None:
    assert hmac_keys_from_secret(secret) == keys


@pytest.mark.parametrize(
    "secret",
    [
        {},
        {"hmac_keys": []},
        {"hmac_keys": ["a", "b", "c"]},
        {"hmac_keys": "a"},
        {"hmac_keys": ["a", ""]},
        {"hmac_key": 12345},
        {"hmac_key": ""},
    ],
)
def test_bad_secret_shape_is_rejected_without_value(secret: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="hmac_key") as failure:
        hmac_keys_from_secret(secret)

    assert "12345" not in str(failure.value)


def test_event_files_are_signed_with_local_key() -> None:
    for name, expected in (
        ("push-valid", SignatureCheck.VALID),
        ("push-malformed-line", SignatureCheck.VALID),
        ("push-bad-signature", SignatureCheck.INVALID),
    ):
        request = PushRequest.from_function_url_event(load_event(name))
        body = decode_body(request.body, request.is_base64_encoded, 4 * MEBIBYTE)

        assert check_signature(request.header("x-filebeat-signature"), body, [LOCAL_KEY]) is expected, name


# --- the keyring --------------------------------------------------------------------------------


@dataclass
class FakeSecret:
    """Stands in for Secrets Manager: `keys` is the stored value, `reads` counts forced reads."""

    keys: list[str]
    forced_reads: int = 0
    fail: bool = False

    def load(self, force: bool) -> Sequence[str]:
        if force:
            self.forced_reads += 1
            if self.fail:
                raise ConnectionError("secrets manager is unreachable")
        return tuple(self.keys)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 5, 12, 0, tzinfo=UTC))


def test_rotated_key_is_accepted_after_one_reread(clock: ManualClock) -> None:
    secret = FakeSecret([PREVIOUS_KEY])
    keyring = HmacKeyring(secret.load, clock)
    secret.keys = [CURRENT_KEY, PREVIOUS_KEY]

    result = keyring.verify(sign(b"{}", CURRENT_KEY), b"{}")

    assert result is SignatureCheck.VALID
    assert secret.forced_reads == 1


def test_matching_signature_reads_nothing(clock: ManualClock) -> None:
    secret = FakeSecret([CURRENT_KEY])
    keyring = HmacKeyring(secret.load, clock)

    assert keyring.verify(sign(b"{}", CURRENT_KEY), b"{}") is SignatureCheck.VALID
    assert secret.forced_reads == 0


def test_missing_signature_reads_nothing(clock: ManualClock) -> None:
    secret = FakeSecret([CURRENT_KEY])
    keyring = HmacKeyring(secret.load, clock)

    assert keyring.verify(None, b"{}") is SignatureCheck.MISSING
    assert secret.forced_reads == 0


def test_rereads_are_spaced_by_interval(clock: ManualClock) -> None:
    secret = FakeSecret([CURRENT_KEY])
    keyring = HmacKeyring(secret.load, clock)
    bad = sign(b"{}", "unknown-key")

    keyring.verify(bad, b"{}")
    clock.advance(timedelta(seconds=29))
    keyring.verify(bad, b"{}")
    assert secret.forced_reads == 1

    clock.advance(timedelta(seconds=1))
    keyring.verify(bad, b"{}")
    assert secret.forced_reads == 2


def test_failed_reread_keeps_cached_keys(clock: ManualClock) -> None:
    secret = FakeSecret([CURRENT_KEY], fail=True)
    keyring = HmacKeyring(secret.load, clock)

    assert keyring.verify(sign(b"{}", "unknown-key"), b"{}") is SignatureCheck.INVALID
    assert keyring.verify(sign(b"{}", CURRENT_KEY), b"{}") is SignatureCheck.VALID


# --- settings -----------------------------------------------------------------------------------


def test_push_defaults_match_elastic_integration() -> None:
    push = PushSettings.from_environment(BASE_ENVIRONMENT)

    assert push.auth == "hmac"
    assert push.content_type == "application/x-ndjson"
    assert push.max_body_bytes == 4 * MEBIBYTE
    assert push.ioc_duration == timedelta(days=90)
    assert push.tags == ("forwarded", "anomali-threatstream")
    assert push.preserve_original_event is False
    assert push.allow_open_endpoint is False


def test_ioc_duration_none_means_no_expiry() -> None:
    assert PushSettings.from_environment({**BASE_ENVIRONMENT, "IOC_DURATION": "none"}).ioc_duration is None


def test_content_type_is_lower_cased() -> None:
    push = PushSettings.from_environment({**BASE_ENVIRONMENT, "PUSH_CONTENT_TYPE": "Application/JSON"})

    assert push.content_type == "application/json"


def test_hmac_without_secret_is_refused() -> None:
    environment = {name: value for name, value in BASE_ENVIRONMENT.items() if name != "PUSH_SECRET_NAME"}

    with pytest.raises(SettingsError, match="PUSH_SECRET_NAME"):
        PushSettings.from_environment(environment)


def test_open_endpoint_is_refused_by_default() -> None:
    with pytest.raises(SettingsError, match="PUSH_ALLOW_OPEN_ENDPOINT"):
        PushSettings.from_environment({**BASE_ENVIRONMENT, "PUSH_AUTH": "none"})


def test_open_endpoint_allowed_when_asked() -> None:
    push = PushSettings.from_environment({**BASE_ENVIRONMENT, "PUSH_AUTH": "none", "PUSH_ALLOW_OPEN_ENDPOINT": "true"})

    assert push.auth == "none"


def test_iam_needs_no_secret() -> None:
    environment = {name: value for name, value in BASE_ENVIRONMENT.items() if name != "PUSH_SECRET_NAME"}

    assert PushSettings.from_environment({**environment, "PUSH_AUTH": "iam"}).auth == "iam"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUSH_AUTH", "basic"),
        ("PUSH_MAX_BODY_BYTES", str(4 * MEBIBYTE + 1)),
        ("PUSH_MAX_BODY_BYTES", "0"),
        ("PUSH_MAX_BODY_BYTES", "4MB"),
        ("PUSH_CONTENT_TYPE", "ndjson"),
        ("IOC_DURATION", "90w"),
        ("PRESERVE_ORIGINAL_EVENT", "maybe"),
        ("PUSH_ALLOW_OPEN_ENDPOINT", "perhaps"),
        ("NAMESPACE", "Prod"),
    ],
)
def test_invalid_push_value_names_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        PushSettings.from_environment({**BASE_ENVIRONMENT, name: value})


# --- the receiver, with a fake engine -----------------------------------------------------------


@dataclass
class FakeSetup:
    datasets: list[str] = field(default_factory=list)

    def ensure(self, dataset: str) -> None:
        self.datasets.append(dataset)


@dataclass
class FakeWriter:
    """Counts every document as created, or raises `failure` instead."""

    failure: Exception | None = None
    batches: list[list[tuple[str, dict[str, Any]]]] = field(default_factory=list)

    def write(self, index: str, documents: Sequence[tuple[str, dict[str, Any]]]) -> WriteResult:
        if self.failure is not None:
            raise self.failure
        self.batches.append(list(documents))
        return WriteResult(created=len(documents), requests=1)


@dataclass
class FakeEngine:
    """Returns the id lookup before a write: `present` ids exist, or `failure` is raised."""

    present: set[str] = field(default_factory=set)
    failure: Exception | None = None

    def search(self, index: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        ids = body["query"]["ids"]["values"]
        return {"hits": {"hits": [{"_id": doc_id} for doc_id in ids if doc_id in self.present]}}


def make_receiver(
    clock: ManualClock,
    writer: FakeWriter | None = None,
    engine: FakeEngine | None = None,
    keys: Sequence[str] = (CURRENT_KEY, PREVIOUS_KEY),
    **environment: str,
) -> tuple[PushReceiver, FakeWriter]:
    push = PushSettings.from_environment({**BASE_ENVIRONMENT, **environment})
    keyring = HmacKeyring(FakeSecret(list(keys)).load, clock) if push.auth == "hmac" else None
    writer = writer or FakeWriter()
    deps = PushDependencies(
        settings=push,
        keyring=keyring,
        setup=FakeSetup(),  # type: ignore[arg-type]
        writer=writer,  # type: ignore[arg-type]
        engine_client=engine or FakeEngine(),
        clock=clock,
    )
    return PushReceiver(deps), writer


def post(
    body: bytes,
    *,
    key: str | None = CURRENT_KEY,
    method: str = "POST",
    content_type: str = "application/x-ndjson",
    base64_encoded: bool = True,
    iam: bool = False,
) -> PushRequest:
    headers = {"content-type": content_type}
    if key is not None:
        headers["x-filebeat-signature"] = sign(body, key)
    return PushRequest(
        method=method,
        headers=headers,
        body=base64.b64encode(body).decode() if base64_encoded else body.decode(),
        is_base64_encoded=base64_encoded,
        has_iam_identity=iam,
    )


def body_of(outcome: Any) -> dict[str, Any]:
    return json.loads(outcome.response.to_function_url_result()["body"])


def test_valid_push_writes_every_line(clock: ManualClock) -> None:
    receiver, writer = make_receiver(clock)

    outcome = receiver.handle(post(b"".join(indicator_lines())))

    assert outcome.response.status == 200
    assert body_of(outcome) == {
        "accepted": 6,
        "created": 6,
        "already_present": 0,
        "dead_lettered": 0,
        "mapping_errors": 0,
        "format": "ndjson",
        "lines": 6,
        "rejected_count": 0,
        "rejected": [],
        "rejected_truncated": False,
    }
    assert [doc_id for doc_id, _ in writer.batches[0]][0] == "4100023001-5200004101"
    assert writer.batches[0][0][1]["tags"][:2] == ["forwarded", "anomali-threatstream"]


@pytest.mark.parametrize(
    ("name", "status", "created", "rejected"),
    [
        ("push-valid", 200, 6, []),
        ("push-malformed-line", 200, 3, [2, 4]),
        ("push-bad-signature", 401, 0, []),
    ],
)
def test_event_files_give_expected_statuses(
    clock: ManualClock, name: str, status: int, created: int, rejected: list[int]
) -> None:
    receiver, _ = make_receiver(clock, keys=[LOCAL_KEY])

    outcome = receiver.handle(PushRequest.from_function_url_event(load_event(name)))

    assert outcome.response.status == status
    assert outcome.created == created
    assert [entry["line"] for entry in body_of(outcome).get("rejected", [])] == rejected


def test_get_answers_405_with_allow(clock: ManualClock) -> None:
    receiver, writer = make_receiver(clock)

    outcome = receiver.handle(post(b"{}", method="GET"))

    assert outcome.response.status == 405
    assert outcome.response.headers == {"allow": "POST"}
    assert writer.batches == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", ""])
def test_other_content_type_answers_415(clock: ManualClock, content_type: str) -> None:
    receiver, _ = make_receiver(clock)

    assert receiver.handle(post(b"{}", content_type=content_type)).response.status == 415


def test_content_type_parameters_are_ignored(clock: ManualClock) -> None:
    receiver, _ = make_receiver(clock)

    outcome = receiver.handle(post(indicator_lines()[0], content_type="Application/X-NDJSON; charset=utf-8"))

    assert outcome.response.status == 200


def test_oversized_body_answers_413(clock: ManualClock) -> None:
    receiver, writer = make_receiver(clock, PUSH_MAX_BODY_BYTES="100")

    outcome = receiver.handle(post(b'{"a":"' + b"x" * 100 + b'"}'))

    assert outcome.response.status == 413
    assert writer.batches == []


@pytest.mark.parametrize(("key", "message"), [(None, "missing"), ("unknown-key", "does not match")])
def test_bad_signature_answers_401(clock: ManualClock, key: str | None, message: str) -> None:
    receiver, writer = make_receiver(clock)

    outcome = receiver.handle(post(indicator_lines()[0], key=key))

    assert outcome.response.status == 401
    assert message in body_of(outcome)["message"]
    assert writer.batches == []


def test_iam_mode_needs_identity(clock: ManualClock) -> None:
    receiver, _ = make_receiver(clock, PUSH_AUTH="iam")

    assert receiver.handle(post(indicator_lines()[0], key=None)).response.status == 401
    assert receiver.handle(post(indicator_lines()[0], key=None, iam=True)).response.status == 200


def test_open_mode_needs_no_signature(clock: ManualClock) -> None:
    receiver, _ = make_receiver(clock, PUSH_AUTH="none", PUSH_ALLOW_OPEN_ENDPOINT="true")

    assert receiver.handle(post(indicator_lines()[0], key=None)).response.status == 200


def test_no_usable_line_answers_400(clock: ManualClock) -> None:
    receiver, writer = make_receiver(clock)

    outcome = receiver.handle(post(b"not json\n[1]\n"))

    assert outcome.response.status == 400
    assert body_of(outcome)["message"] == "no line of the body is a JSON object"
    assert [entry["line"] for entry in body_of(outcome)["rejected"]] == [1, 2]
    assert writer.batches == []


def test_empty_body_answers_400(clock: ManualClock) -> None:
    receiver, _ = make_receiver(clock)

    outcome = receiver.handle(post(b""))

    assert outcome.response.status == 400
    assert body_of(outcome)["message"] == "the body is empty"


def test_mixed_lines_write_good_report_bad(clock: ManualClock) -> None:
    receiver, writer = make_receiver(clock)
    lines = indicator_lines()
    body = lines[0] + b"{broken\n" + lines[1] + b"42\n"

    outcome = receiver.handle(post(body))

    assert outcome.response.status == 200
    assert body_of(outcome)["accepted"] == 2
    assert body_of(outcome)["rejected"] == [
        {"line": 2, "reason": "not valid JSON at column 2"},
        {"line": 4, "reason": "a JSON number, not an object"},
    ]
    assert outcome.lines_rejected == 2
    assert len(writer.batches[0]) == 2


def test_rejected_list_is_cut_at_100(clock: ManualClock) -> None:
    receiver, _ = make_receiver(clock)

    outcome = receiver.handle(post(indicator_lines()[0] + b"x\n" * 150))

    assert body_of(outcome)["rejected_count"] == 150
    assert len(body_of(outcome)["rejected"]) == 100
    assert body_of(outcome)["rejected_truncated"] is True


def test_mapping_error_still_counts_as_accepted(clock: ManualClock) -> None:
    receiver, _ = make_receiver(clock)

    outcome = receiver.handle(post(b'{"id": "not-a-number"}\n'))

    assert outcome.response.status == 200
    assert body_of(outcome)["accepted"] == 1
    assert body_of(outcome)["mapping_errors"] == 1


@pytest.mark.parametrize(
    "failure", [BulkWriteError("bulk write gave up"), DeadLetterError("storing a dead letter failed")]
)
def test_write_failure_answers_503_with_retry_after(clock: ManualClock, failure: Exception) -> None:
    receiver, _ = make_receiver(clock, FakeWriter(failure=failure))

    outcome = receiver.handle(post(b"".join(indicator_lines())))

    assert outcome.response.status == 503
    assert outcome.response.headers == {"retry-after": "30"}


def test_ids_in_older_backing_index_are_skipped(clock: ManualClock) -> None:
    engine = FakeEngine(present={"4100023001-5200004101", "4100023003-5200004103"})
    receiver, writer = make_receiver(clock, engine=engine)

    outcome = receiver.handle(post(b"".join(indicator_lines())))

    assert body_of(outcome)["already_present"] == 2
    assert body_of(outcome)["created"] == 4
    assert "4100023001-5200004101" not in [doc_id for doc_id, _ in writer.batches[0]]


def test_id_lookup_failure_answers_503(clock: ManualClock) -> None:
    engine = FakeEngine(failure=TransportError(503, "unavailable", {}))
    receiver, writer = make_receiver(clock, engine=engine)

    outcome = receiver.handle(post(b"".join(indicator_lines())))

    assert outcome.response.status == 503
    assert writer.batches == []


def test_large_push_is_split_into_batches(clock: ManualClock) -> None:
    receiver, writer = make_receiver(clock)
    body = b"".join(b'{"id": %d, "update_id": 1}\n' % number for number in range(2 * BULK_MAX_DOCUMENTS + 5))

    outcome = receiver.handle(post(body))

    assert outcome.created == 2 * BULK_MAX_DOCUMENTS + 5
    assert [len(batch) for batch in writer.batches] == [BULK_MAX_DOCUMENTS, BULK_MAX_DOCUMENTS, 5]


def test_plain_and_base64_bodies_give_same_documents(clock: ManualClock) -> None:
    receiver, writer = make_receiver(clock)
    body = b"".join(indicator_lines())

    receiver.handle(post(body, base64_encoded=True))
    receiver.handle(post(body, base64_encoded=False))

    assert writer.batches[0] == writer.batches[1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_any_signed_body_never_answers_5xx(clock: ManualClock, body: bytes) -> None:
    receiver, _ = make_receiver(clock)

    outcome = receiver.handle(post(body))

    assert outcome.response.status in (200, 400)
    json.loads(outcome.response.to_function_url_result()["body"])


# --- regressions from attacking the endpoint ----------------------------------------------------


def test_escaped_lone_surrogate_is_accepted() -> None:
    receiver, writer = make_receiver(ManualClock(datetime(2026, 12, 4, tzinfo=UTC)))
    body = b'{"id":1,"update_id":1,"value_type":"domain","domain":"a\\ud800.example"}\n{"id":2,"update_id":1}\n'

    outcome = receiver.handle(post(body))

    assert outcome.response.status == 200
    assert body_of(outcome)["accepted"] == 2


def test_too_many_lines_answers_413() -> None:
    with pytest.raises(BodyError) as failure:
        decode_body("{}\n" * 20_000, False, 4 * MEBIBYTE)

    assert failure.value.status == 413
    assert "20000 lines" in str(failure.value)


def test_integer_too_long_named_as_such() -> None:
    parsed = parse_body(b'{"id":' + b"1" * 5000 + b"}\n")

    assert parsed.objects == []
    assert "integer too long" in parsed.rejected[0].reason


def test_signature_with_spaces_is_invalid() -> None:
    body = b'{"a":1}'
    signed = sign(body, CURRENT_KEY)
    spaced = signed[:20] + " " + signed[20:]

    assert check_signature(spaced, body, [CURRENT_KEY]) is SignatureCheck.INVALID
    assert check_signature(signed, body, [CURRENT_KEY]) is SignatureCheck.VALID
