"""`ti-anomali map`: map ThreatStream objects, one JSON object a line on stdin, to ECS documents on stdout.

Each input line gives one output line, in order. Blank lines are skipped. A line that is not a
JSON object is reported on stderr by its line number, without its content, and the command
goes on with the next one and exits with status 1 at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from ti_anomali import clock
from ti_anomali.ecs.common import parse_timestamp, validate_namespace
from ti_anomali.ecs.geoip import GeoIP, GeoIPDatabaseError
from ti_anomali.ecs.intelligence import MappingOptions, map_intelligence, parse_duration
from ti_anomali.ecs.threatstream import ThreatstreamOptions, map_threatstream

EXIT_OK = 0
EXIT_REJECTED_LINES = 1
EXIT_BAD_CONFIGURATION = 2
DEFAULT_IOC_DURATION = timedelta(days=90)

# A mapper turns one parsed object and its raw line into a document.
DocumentMapper = Callable[[dict[str, Any], str], dict[str, Any]]


def _intelligence_mapper(args: argparse.Namespace, geoip: GeoIP | None) -> DocumentMapper:
    options = MappingOptions(
        now=args.now if args.now is not None else clock.current().now(),
        ioc_duration=args.ioc_duration,
        tags=args.tags,
        preserve_original=args.preserve_original,
        namespace=args.namespace,
        geoip=geoip,
    )

    def map_line(obj: dict[str, Any], line: str) -> dict[str, Any]:
        return map_intelligence(obj, options, original=line)

    return map_line


def _threatstream_mapper(args: argparse.Namespace, geoip: GeoIP | None) -> DocumentMapper:
    options = ThreatstreamOptions(
        now=args.now if args.now is not None else clock.current().now(),
        ioc_duration=args.ioc_duration,
        tags=args.tags,
        preserve_original=args.preserve_original,
        namespace=args.namespace,
        geoip=geoip,
    )

    def map_line(obj: dict[str, Any], line: str) -> dict[str, Any]:
        return map_threatstream(obj, options, original=line)

    return map_line


# One entry per dataset.
MAPPER_FACTORIES: dict[str, Callable[[argparse.Namespace, GeoIP | None], DocumentMapper]] = {
    "intelligence": _intelligence_mapper,
    "threatstream": _threatstream_mapper,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `map` subcommand to the `ti-anomali` parser."""
    parser = subparsers.add_parser(
        "map",
        help="map ThreatStream objects (NDJSON on stdin) to ECS documents (NDJSON on stdout)",
        description=__doc__,
    )
    parser.add_argument(
        "--dataset",
        required=True,
        choices=sorted(MAPPER_FACTORIES),
        help="where the objects come from: intelligence is GET /api/v2/intelligence/, "
        "threatstream is what the Anomali Elastic Extension pushes",
    )
    parser.add_argument(
        "--now",
        type=_timestamp_argument,
        default=None,
        metavar="ISO-8601",
        help="ingest time for @timestamp and deletion (threatstream: @timestamp of objects without "
        "added_at), such as 2026-03-05T11:11:48.666Z; "
        "a missing offset means UTC, digits past microseconds are dropped (default: the current time)",
    )
    parser.add_argument(
        "--ioc-duration",
        type=_duration_argument,
        default=DEFAULT_IOC_DURATION,
        metavar="DURATION",
        help="maximum time an indicator stays in the latest index (threatstream: after added_at, "
        "when deleted_at is missing), in d, h or m such as 85d, or 'none' for no limit (default: 90d)",
    )
    parser.add_argument(
        "--tags",
        type=_tags_argument,
        default=(),
        metavar="A,B",
        help="comma-separated tags every document gets before the indicator's own (default: none)",
    )
    parser.add_argument(
        "--geoip-db",
        metavar="PATH",
        help="MaxMind City database (.mmdb) for threat.indicator.geo of IP indicators (default: none)",
    )
    parser.add_argument(
        "--preserve-original",
        action="store_true",
        help="keep each input line in event.original and add the tag preserve_original_event",
    )
    parser.add_argument(
        "--namespace",
        type=_namespace_argument,
        default="default",
        help="data stream namespace written in data_stream.namespace (default: default)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Map every line of stdin to stdout and return the exit status."""
    with ExitStack() as resources:
        try:
            geoip = resources.enter_context(GeoIP(args.geoip_db)) if args.geoip_db else None
        except GeoIPDatabaseError as exc:
            print(f"ti-anomali map: {exc}", file=sys.stderr)
            return EXIT_BAD_CONFIGURATION

        map_line = MAPPER_FACTORIES[args.dataset](args, geoip)
        rejected = _map_stream(map_line, sys.stdin, sys.stdout, sys.stderr)

    return EXIT_REJECTED_LINES if rejected else EXIT_OK


def _map_stream(map_line: DocumentMapper, source: IO[str], sink: IO[str], errors: IO[str]) -> int:
    """Write one document per object line and return how many lines were rejected."""
    write = _utf8_writer(sink)
    rejected = 0
    for number, line in _numbered_lines(source):
        if line is not None and not line.strip():
            continue
        problem, obj = _parse_object(line)
        if obj is None:
            rejected += 1
            print(f"ti-anomali map: line {number} skipped: {problem}", file=errors)
            continue
        document = map_line(obj, line.strip() if line is not None else "")
        write(_document_line(document))
    sink.flush()
    return rejected


def _numbered_lines(source: IO[str]) -> Iterator[tuple[int, str | None]]:
    """Yield (line number, text), with None as the text of a line that is not UTF-8.

    The bytes are decoded here, so the locale of the terminal or Lambda runtime does not matter.
    """
    raw = getattr(source, "buffer", None)
    if raw is None:
        yield from enumerate(source, start=1)
        return
    for number, data in enumerate(raw, start=1):
        try:
            yield number, data.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            yield number, None


def _document_line(document: dict[str, Any]) -> str:
    """Serialise one document as a line; a lone surrogate (from a JSON escape) stays an ASCII escape."""
    line = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(document, separators=(",", ":"))
    return line + "\n"


def _utf8_writer(sink: IO[str]) -> Callable[[str], None]:
    raw = getattr(sink, "buffer", None)

    def write(text: str) -> None:
        if raw is None:
            sink.write(text)
        else:
            raw.write(text.encode("utf-8"))

    return write


def _parse_object(line: str | None) -> tuple[str, dict[str, Any] | None]:
    if line is None:
        return "not valid UTF-8", None
    try:
        value = json.loads(line.rstrip("\r\n"), parse_constant=_reject_constant)
    except ValueError as exc:
        position = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        return f"not valid JSON{position}", None
    if not isinstance(value, dict):
        return f"a JSON {_json_type(value)}, not an object", None
    return "", value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


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


def _timestamp_argument(text: str) -> datetime:
    try:
        return parse_timestamp(text).astimezone(UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid timestamp {text!r}: {exc}") from exc


def _duration_argument(text: str) -> timedelta | None:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _tags_argument(text: str) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in text.split(",") if tag.strip())


def _namespace_argument(text: str) -> str:
    try:
        return validate_namespace(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
