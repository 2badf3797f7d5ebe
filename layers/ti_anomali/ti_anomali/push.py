"""The push endpoint's rules, without I/O: requests, bodies, signatures and responses.

The Anomali Elastic Extension posts indicators to a Lambda Function URL (payload format 2.0) the
way it posts them to the Elastic Agent's `http_endpoint` input: NDJSON, one flat object a line,
signed with `X-Filebeat-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. A JSON array of
objects is accepted too. Nothing here reads the environment, the network or a clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

SIGNATURE_HEADER = "x-filebeat-signature"
SIGNATURE_PREFIX = "sha256="
ALLOWED_METHOD = "POST"
# A line nested deeper than this is rejected, so that mapping and serialising it cannot hit
# Python's recursion limit.
MAX_NESTING_DEPTH = 64
MAX_LINES = 20_000
# The response lists at most this many rejected lines, so it stays small whatever the body.
MAX_REPORTED_REJECTIONS = 100
NDJSON = "ndjson"
JSON_ARRAY = "json-array"
_UTF8_BOM = b"\xef\xbb\xbf"


# --- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushRequest:
    """The parts of a Function URL request that the endpoint reads. Header names are lower case."""

    method: str
    headers: Mapping[str, str]
    body: str
    is_base64_encoded: bool
    has_iam_identity: bool

    @classmethod
    def from_function_url_event(cls, event: Any) -> PushRequest:
        """Read a Function URL event (payload format 2.0). Missing or malformed parts read as empty."""
        event = event if isinstance(event, Mapping) else {}
        context = event.get("requestContext")
        context = context if isinstance(context, Mapping) else {}
        http = context.get("http")
        method = http.get("method") if isinstance(http, Mapping) else None
        authorizer = context.get("authorizer")
        iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None

        raw_headers = event.get("headers")
        headers = {
            str(name).lower(): value
            for name, value in (raw_headers.items() if isinstance(raw_headers, Mapping) else ())
            if isinstance(value, str)
        }
        body = event.get("body")
        return cls(
            method=method.upper() if isinstance(method, str) else "",
            headers=headers,
            body=body if isinstance(body, str) else "",
            is_base64_encoded=event.get("isBase64Encoded") is True,
            has_iam_identity=isinstance(iam, Mapping) and bool(iam),
        )

    def header(self, name: str) -> str | None:
        """Return a header's value by its case-insensitive name, or None."""
        return self.headers.get(name.lower())


def media_type(content_type: str | None) -> str | None:
    """Return the media type of a Content-Type value without parameters, lower case, or None."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


# --- bodies -------------------------------------------------------------------------------------


class BodyError(ValueError):
    """The body cannot be read, and `status` is the HTTP status to respond with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def max_base64_length(max_bytes: int) -> int:
    """Return the length of the base64 text of a `max_bytes` body, padding included."""
    return 4 * math.ceil(max_bytes / 3)


def decode_body(body: str, is_base64_encoded: bool, max_bytes: int) -> bytes:
    """Return the raw body bytes, checking the size before and after decoding.

    Raises `BodyError` with 413 for a body over `max_bytes` and 400 for invalid base64 or text
    that cannot be encoded as UTF-8.
    """
    too_large = BodyError(413, f"the body is larger than the limit of {max_bytes} bytes")
    if is_base64_encoded:
        if len(body) > max_base64_length(max_bytes):
            raise too_large
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BodyError(400, "the body is marked as base64 but is not valid base64") from None
    else:
        # Each character is at least one byte, so a text longer than the limit is over it.
        if len(body) > max_bytes:
            raise too_large
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise BodyError(400, "the body contains characters that are not valid UTF-8") from None

    if len(raw) > max_bytes:
        raise too_large
    # NOTE: parsing and mapping cost about 1 ms and 4 kB of memory a line, so a body of tiny lines
    # within the byte limit could still outrun the function's time and memory. An array body is
    # counted by its commas, an estimate that errs on the side of too many.
    separators = raw.count(b"\n") if not raw.lstrip().startswith(b"[") else raw.count(b",")
    if separators >= MAX_LINES:
        raise BodyError(413, f"the body contains more than {MAX_LINES} lines; send smaller batches")
    return raw


@dataclass(frozen=True)
class RejectedLine:
    """A line that gave no object, and the reason. Lines and array items are numbered from 1."""

    number: int
    reason: str


@dataclass(frozen=True)
class ParsedObject:
    """An object of the body with its line (or item) number and its raw JSON text."""

    number: int
    obj: dict[str, Any]
    text: str


@dataclass
class ParsedBody:
    """The objects of a body and the lines that gave none. Blank lines count as neither."""

    format: str
    objects: list[ParsedObject] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)

    @property
    def lines(self) -> int:
        """Lines (or array items) that were not blank."""
        return len(self.objects) + len(self.rejected)


def parse_body(raw: bytes) -> ParsedBody:
    """Split a body into objects: a JSON array of objects, else NDJSON with one object a line.

    A line that is not a JSON object is rejected with a reason that never quotes its content,
    and the other lines are still parsed.
    """
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    if raw.lstrip().startswith(b"["):
        items = _parse_array(raw)
        if items is not None:
            return _objects_of_array(items)
    return _parse_ndjson(raw)


def _parse_array(raw: bytes) -> list[Any] | None:
    try:
        value = _loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def _objects_of_array(items: list[Any]) -> ParsedBody:
    parsed = ParsedBody(format=JSON_ARRAY)
    for number, item in enumerate(items, start=1):
        problem = _problem_with(item)
        if problem:
            parsed.rejected.append(RejectedLine(number, problem))
            continue
        text = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        parsed.objects.append(ParsedObject(number, item, text))
    return parsed


def _parse_ndjson(raw: bytes) -> ParsedBody:
    parsed = ParsedBody(format=NDJSON)
    for number, data in enumerate(raw.split(b"\n"), start=1):
        if not data.strip():
            continue
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            parsed.rejected.append(RejectedLine(number, "not valid UTF-8"))
            continue

        try:
            value = _loads(text)
        except json.JSONDecodeError as exc:
            parsed.rejected.append(RejectedLine(number, f"not valid JSON at column {exc.colno}"))
            continue
        except _ConstantError:
            parsed.rejected.append(RejectedLine(number, "not valid JSON: NaN and Infinity are not JSON numbers"))
            continue
        except ValueError:
            parsed.rejected.append(RejectedLine(number, "holds an integer too long to read (over 4300 digits)"))
            continue
        except RecursionError:
            parsed.rejected.append(RejectedLine(number, f"nested deeper than {MAX_NESTING_DEPTH} levels"))
            continue

        problem = _problem_with(value)
        if problem:
            parsed.rejected.append(RejectedLine(number, problem))
            continue
        parsed.objects.append(ParsedObject(number, value, text))
    return parsed


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


class _ConstantError(ValueError):
    """NaN, Infinity or -Infinity in a line: Python's parser accepts them, JSON does not."""


def _reject_constant(name: str) -> Any:
    raise _ConstantError(f"{name} is not a JSON number")


def _problem_with(value: Any) -> str:
    """Return why a parsed value cannot be mapped, or an empty string when it can."""
    if not isinstance(value, dict):
        return f"a JSON {_json_type(value)}, not an object"
    return _structure_problem(value)


def _structure_problem(root: dict[str, Any]) -> str:
    """Check nesting depth and number range without recursion."""
    pending: list[tuple[Any, int]] = [(root, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return "a number is outside the range of a 64-bit float"
        if isinstance(value, dict | list):
            if depth > MAX_NESTING_DEPTH:
                return f"nested deeper than {MAX_NESTING_DEPTH} levels"
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return ""


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# --- signatures ---------------------------------------------------------------------------------


class SignatureCheck(Enum):
    """The result of checking `X-Filebeat-Signature` against the configured keys."""

    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"


def sign(body: bytes, key: str) -> str:
    """Return the `X-Filebeat-Signature` value for a body: `sha256=` and the hex HMAC-SHA256."""
    return SIGNATURE_PREFIX + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def check_signature(signature: str | None, body: bytes, keys: Sequence[str]) -> SignatureCheck:
    """Check a signature header against every key, comparing digests in constant time.

    The hex digits may be in either case. Every key is tried even after a match, so the time
    taken does not tell which key matched.
    """
    if signature is None or not signature.strip():
        return SignatureCheck.MISSING
    text = signature.strip()
    if not text.startswith(SIGNATURE_PREFIX):
        return SignatureCheck.INVALID
    digits = text[len(SIGNATURE_PREFIX) :]
    if not all(character in string.hexdigits for character in digits):
        return SignatureCheck.INVALID
    try:
        given = bytes.fromhex(digits)
    except ValueError:
        return SignatureCheck.INVALID

    matches = [hmac.compare_digest(hmac.new(key.encode(), body, hashlib.sha256).digest(), given) for key in keys]
    return SignatureCheck.VALID if any(matches) else SignatureCheck.INVALID


def hmac_keys_from_secret(secret: Mapping[str, Any]) -> tuple[str, ...]:
    """Read the HMAC keys from a secret: `{"hmac_keys": [current, previous]}` or `{"hmac_key": key}`.

    Raises ValueError describing the expected shape, never quoting a value.
    """
    shape = 'expected {"hmac_keys": ["<current>", "<previous>"]} with one or two keys, or {"hmac_key": "<key>"}'
    if "hmac_keys" in secret:
        keys = secret["hmac_keys"]
        if not isinstance(keys, list) or not 1 <= len(keys) <= 2:
            raise ValueError(f"'hmac_keys' must be a list of one or two keys; {shape}")
    elif "hmac_key" in secret:
        keys = [secret["hmac_key"]]
    else:
        raise ValueError(f"the secret has neither 'hmac_keys' nor 'hmac_key'; {shape}")
    if not all(isinstance(key, str) and key for key in keys):
        raise ValueError(f"every HMAC key must be a non-empty string; {shape}")
    return tuple(keys)


# --- responses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResponse:
    """An HTTP response of the endpoint: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_function_url_result(self) -> dict[str, Any]:
        """Return the response in the shape a Function URL expects from its function."""
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json", **self.headers},
            "body": json.dumps(self.body, separators=(",", ":")),
            "isBase64Encoded": False,
        }


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> PushResponse:
    """Return a response whose body is `{"message": ...}`."""
    return PushResponse(status, {"message": message}, dict(headers or {}))


def rejected_lines_body(parsed: ParsedBody) -> dict[str, Any]:
    """Return the response fields that report rejected lines, the list cut to its first 100."""
    key = "line" if parsed.format == NDJSON else "item"
    return {
        "format": parsed.format,
        "lines": parsed.lines,
        "rejected_count": len(parsed.rejected),
        "rejected": [{key: line.number, "reason": line.reason} for line in parsed.rejected[:MAX_REPORTED_REJECTIONS]],
        "rejected_truncated": len(parsed.rejected) > MAX_REPORTED_REJECTIONS,
    }
