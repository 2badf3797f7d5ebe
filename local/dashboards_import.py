"""`make dashboards`: import the saved objects into Kibana or OpenSearch Dashboards.

Reads its target from the environment:

    DASHBOARDS_URL             base URL, such as https://dashboards.example.com:5601 (https unless loopback)
    DASHBOARDS_KIND            kibana or opensearch-dashboards (default: opensearch-dashboards)
    DASHBOARDS_USERNAME        with DASHBOARDS_PASSWORD: basic auth
    DASHBOARDS_API_KEY         Kibana only: an API key, sent as `Authorization: ApiKey <key>`
    DASHBOARDS_SPACE           Kibana only: the space to import into (default: the default space)
    DASHBOARDS_TENANT          OpenSearch Dashboards only: the security plugin tenant, such as global
    DASHBOARDS_TLS_VERIFY      false to skip certificate checks (default: true)
    DASHBOARDS_CA_BUNDLE_PATH  CA certificates to verify the server with

Each file of `dashboards/<kind>/` goes to `POST /api/saved_objects/_import?overwrite=true` as the
multipart field `file`, with the `kbn-xsrf` (Kibana) or `osd-xsrf` (OpenSearch Dashboards) header
both APIs require. The command prints what each import created or replaced and the dashboards'
addresses, and exits 1 when any object failed. Credentials are never printed.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests

from ti_anomali.settings import is_loopback_host

REPO = Path(__file__).resolve().parent.parent
DASHBOARDS_DIR = REPO / "dashboards"
KINDS = ("kibana", "opensearch-dashboards")
XSRF_HEADERS = {"kibana": "kbn-xsrf", "opensearch-dashboards": "osd-xsrf"}
IMPORT_PATH = "/api/saved_objects/_import"
TIMEOUT_SECONDS = 60
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIGURATION = 2


class ImportConfigurationError(Exception):
    """A DASHBOARDS_* variable is missing or invalid. The message names it."""


class ImportFailedError(Exception):
    """The import request failed as a whole. The message gives the status and the server's reason."""


@dataclass(frozen=True)
class Target:
    """Import target: base URL, kind, and the request options that carry credentials."""

    url: str
    kind: str
    headers: dict[str, str]
    auth: tuple[str, str] | None
    verify: bool | str

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, kind={self.kind!r}, auth={'***' if self.auth else None})"

    @property
    def import_url(self) -> str:
        return f"{self.url}{IMPORT_PATH}"

    def dashboard_url(self, dashboard_id: str) -> str:
        """Return the address that opens a dashboard in the browser."""
        return f"{self.url}/app/dashboards#/view/{quote(dashboard_id)}"


@dataclass(frozen=True)
class ImportResult:
    """Outcome of one file's import: the objects written, by type and id, and the ones rejected."""

    file: Path
    success_count: int
    written: tuple[tuple[str, str], ...]
    errors: tuple[str, ...]


def read_target(environ: Mapping[str, str]) -> Target:
    """Read the DASHBOARDS_* variables, or raise `ImportConfigurationError` naming the invalid one."""
    kind = environ.get("DASHBOARDS_KIND", "opensearch-dashboards").strip() or "opensearch-dashboards"
    if kind not in KINDS:
        raise ImportConfigurationError(f"DASHBOARDS_KIND must be one of {', '.join(KINDS)}, got {kind!r}")

    url = _read_url(environ.get("DASHBOARDS_URL", ""))
    space = environ.get("DASHBOARDS_SPACE", "").strip()
    if space:
        if kind != "kibana":
            raise ImportConfigurationError("DASHBOARDS_SPACE applies to Kibana only; use DASHBOARDS_TENANT")
        url = f"{url}/s/{quote(space, safe='')}"

    headers = {XSRF_HEADERS[kind]: "true"}
    tenant = environ.get("DASHBOARDS_TENANT", "").strip()
    if tenant:
        if kind != "opensearch-dashboards":
            raise ImportConfigurationError("DASHBOARDS_TENANT applies to OpenSearch Dashboards only")
        headers["securitytenant"] = tenant

    username, password = environ.get("DASHBOARDS_USERNAME", ""), environ.get("DASHBOARDS_PASSWORD")
    api_key = environ.get("DASHBOARDS_API_KEY", "")
    auth = None
    if username:
        if password is None:
            raise ImportConfigurationError("DASHBOARDS_PASSWORD is missing; DASHBOARDS_USERNAME needs it")
        auth = (username, password)
    elif api_key:
        if kind != "kibana":
            raise ImportConfigurationError("DASHBOARDS_API_KEY applies to Kibana only; use basic auth")
        headers["Authorization"] = f"ApiKey {api_key}"

    verify: bool | str = environ.get("DASHBOARDS_TLS_VERIFY", "true").strip().lower() not in ("false", "0", "no")
    ca_bundle = environ.get("DASHBOARDS_CA_BUNDLE_PATH", "").strip()
    if ca_bundle and verify:
        verify = ca_bundle
    return Target(url, kind, headers, auth, verify)


def _read_url(text: str) -> str:
    value = text.strip().rstrip("/")
    if not value:
        raise ImportConfigurationError(
            "DASHBOARDS_URL is missing; set it to the Kibana or OpenSearch Dashboards address"
        )
    parts = urlsplit(value)
    if parts.username or parts.password:
        # The message leaves the value out because it contains a password.
        raise ImportConfigurationError(
            "DASHBOARDS_URL carries credentials; set DASHBOARDS_USERNAME and DASHBOARDS_PASSWORD instead"
        )
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ImportConfigurationError(f"DASHBOARDS_URL must be an https URL without query, got {value!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ImportConfigurationError(
            f"DASHBOARDS_URL must use https unless the host is loopback, so credentials stay encrypted: {value!r}"
        )
    return value


def import_file(session: requests.Session, target: Target, path: Path) -> ImportResult:
    """Send one NDJSON file to the import API with overwrite on, or raise `ImportFailedError` if the request fails."""
    with path.open("rb") as content:
        try:
            response = session.post(
                target.import_url,
                params={"overwrite": "true"},
                headers=target.headers,
                auth=target.auth,
                files={"file": (path.name, content, "application/ndjson")},
                verify=target.verify,
                timeout=TIMEOUT_SECONDS,
            )
        except requests.RequestException as exc:
            raise ImportFailedError(
                f"importing {path.name}: could not reach {target.import_url} ({type(exc).__name__})"
            ) from exc

    body = _json_body(response)
    if response.status_code in (401, 403):
        raise ImportFailedError(
            f"importing {path.name}: HTTP {response.status_code}, the server rejected the credentials; "
            "check DASHBOARDS_USERNAME and DASHBOARDS_PASSWORD or DASHBOARDS_API_KEY"
        )
    if response.status_code != 200:
        raise ImportFailedError(f"importing {path.name}: HTTP {response.status_code}: {_reason(body)}")

    written = tuple((item.get("type", "?"), item.get("id", "?")) for item in body.get("successResults", []))
    errors = tuple(
        f"{error.get('type', '?')} {error.get('id', '?')}: {error.get('error', {}).get('type', 'unknown')}"
        for error in body.get("errors", [])
    )
    if not body.get("success", False) and not errors:
        errors = (f"the server reported no success: {_reason(body)}",)
    return ImportResult(path, int(body.get("successCount", len(written))), written, errors)


def _json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(body: dict[str, Any]) -> str:
    message = body.get("message") or body.get("error") or "no reason given"
    return str(message)[:300]


def describe(result: ImportResult) -> str:
    """Return one line saying how many objects of each type a file's import wrote."""
    counts = Counter(object_type for object_type, _ in result.written)
    kinds = ", ".join(f"{count} {object_type}" for object_type, count in sorted(counts.items()))
    return f"{result.file.name}: {result.success_count} saved objects written ({kinds or 'types not reported'})"


def run(environ: Mapping[str, str], out: IO[str], err: IO[str], source_dir: Path | None = None) -> int:
    """Import every file of the chosen kind and return the exit status."""
    try:
        target = read_target(environ)
    except ImportConfigurationError as exc:
        print(f"make dashboards: {exc}", file=err)
        return EXIT_BAD_CONFIGURATION

    folder = source_dir or DASHBOARDS_DIR / target.kind
    files = sorted(folder.glob("*.ndjson"))
    if not files:
        print(f"make dashboards: no .ndjson files in {folder}", file=err)
        return EXIT_FAILED

    failed = False
    dashboards: list[str] = []
    with requests.Session() as session:
        for path in files:
            try:
                result = import_file(session, target, path)
            except ImportFailedError as exc:
                print(f"make dashboards: {exc}", file=err)
                return EXIT_FAILED
            print(describe(result), file=out)
            for error in result.errors:
                failed = True
                print(f"make dashboards: {path.name}: not imported: {error}", file=err)
            dashboards += [object_id for object_type, object_id in result.written if object_type == "dashboard"]

    print(f"imported into {target.kind} at {target.url}", file=out)
    for dashboard_id in dashboards:
        print(f"  {target.dashboard_url(dashboard_id)}", file=out)
    return EXIT_FAILED if failed else EXIT_OK


def main() -> int:
    """Run `make dashboards` with the process environment."""
    return run(os.environ, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
