"""`ti-anomali report`: write the overview of the live indicators as one HTML file and a PNG per chart.

It reads the latest aliases of a running engine, the same data as the overview dashboard, and
needs no Kibana or OpenSearch Dashboards. Credentials come from the environment, never from the
command line: ENGINE_USERNAME and ENGINE_PASSWORD for basic auth, ENGINE_API_KEY for an API key
(the base64 `id:key` that Elasticsearch's `ApiKey` header takes), the AWS credential chain for SigV4.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ti_anomali.ecs.common import parse_timestamp
from ti_anomali.settings import is_loopback_host

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIGURATION = 2
AUTH_MODES = ("none", "basic", "api-key", "sigv4")


class ConfigurationError(Exception):
    """An option or environment variable is missing or invalid. The message names it."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `report` subcommand to the `ti-anomali` parser."""
    parser = subparsers.add_parser(
        "report",
        help="write the overview of the live indicators as one HTML file and a PNG per chart",
        description=__doc__,
    )
    _add_engine_arguments(parser)
    _add_output_arguments(parser)
    parser.set_defaults(run=run)


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine-url",
        required=True,
        type=_url_argument,
        metavar="URL",
        help="OpenSearch or Elasticsearch endpoint; https, or http for a loopback host",
    )
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="none",
        help="how to authenticate: basic reads ENGINE_USERNAME and ENGINE_PASSWORD, api-key reads "
        "ENGINE_API_KEY, sigv4 signs with the AWS credential chain (default: none)",
    )
    parser.add_argument("--region", help="AWS region for sigv4 (default: AWS_REGION or AWS_DEFAULT_REGION)")
    parser.add_argument("--ca-bundle", metavar="PATH", help="CA certificates to verify the engine's TLS certificate")
    parser.add_argument(
        "--no-verify-tls",
        action="store_true",
        help="do not verify the engine's TLS certificate (only for a test cluster)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="timeout of each search, in seconds (default: 30)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder for ti-anomali-report.html and the PNG files; created if missing, earlier files replaced",
    )
    parser.add_argument(
        "--now",
        type=_timestamp_argument,
        default=None,
        metavar="ISO-8601",
        help="the time the 7-day windows count from, such as 2026-03-05T11:11:48Z (default: the current time)",
    )
    parser.add_argument("--no-png", action="store_true", help="write the HTML file only, without cairosvg")


def run(args: argparse.Namespace) -> int:
    """Write the report and return the exit status."""
    from ti_anomali.report import write_report
    from ti_anomali.report.charts import PngRenderingError
    from ti_anomali.report.queries import ReportQueryError

    try:
        client = build_report_client(args, os.environ)
    except ConfigurationError as exc:
        print(f"ti-anomali report: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIGURATION

    try:
        files = write_report(client, args.output, now=args.now, png=not args.no_png)
    except (ReportQueryError, PngRenderingError) as exc:
        print(f"ti-anomali report: {exc}", file=sys.stderr)
        return EXIT_FAILED

    print(str(files.html))
    print(
        f"ti-anomali report: {files.overview.live_total} live indicators; wrote {files.html.name} "
        f"and {len(files.pngs)} PNG files to {files.html.parent}",
        file=sys.stderr,
    )
    return EXIT_OK


def build_report_client(args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """Build an OpenSearch client for the chosen auth mode, or raise `ConfigurationError` naming what is missing."""
    from opensearchpy import OpenSearch, RequestsHttpConnection

    options: dict[str, Any] = {
        "hosts": [args.engine_url],
        "connection_class": RequestsHttpConnection,
        "verify_certs": not args.no_verify_tls,
        "timeout": args.timeout,
        "max_retries": 2,
        "retry_on_timeout": True,
    }
    if args.ca_bundle:
        options["ca_certs"] = args.ca_bundle
    if args.auth == "basic":
        username, password = environ.get("ENGINE_USERNAME"), environ.get("ENGINE_PASSWORD")
        if not username or password is None:
            raise ConfigurationError("--auth basic needs ENGINE_USERNAME and ENGINE_PASSWORD in the environment")
        options["http_auth"] = (username, password)
    elif args.auth == "api-key":
        api_key = environ.get("ENGINE_API_KEY")
        if not api_key:
            raise ConfigurationError("--auth api-key needs ENGINE_API_KEY in the environment")
        options["headers"] = {"Authorization": f"ApiKey {api_key}"}
    elif args.auth == "sigv4":
        options["http_auth"] = _sigv4_auth(
            args.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        )
    return OpenSearch(**options)


def _sigv4_auth(region: str | None) -> Any:
    if not region:
        raise ConfigurationError("--auth sigv4 needs --region, AWS_REGION or AWS_DEFAULT_REGION")
    import boto3
    from requests_aws4auth import AWS4Auth

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise ConfigurationError("--auth sigv4 found no AWS credentials; configure a profile or role")
    return AWS4Auth(region=region, service="es", refreshable_credentials=credentials)


def _url_argument(text: str) -> str:
    value = text.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"invalid engine URL {value!r}: expected https://host[:port]")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise argparse.ArgumentTypeError(
            f"invalid engine URL {value!r}: use https unless the host is loopback, so credentials stay encrypted"
        )
    if parts.username or parts.password:
        # The message leaves the value out because it contains a password.
        raise argparse.ArgumentTypeError(
            "invalid engine URL: it carries credentials; set ENGINE_USERNAME and ENGINE_PASSWORD instead"
        )
    return value


def _timestamp_argument(text: str) -> datetime:
    try:
        return parse_timestamp(text).astimezone(UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid timestamp {text!r}: {exc}") from exc
