"""Saved objects of the dashboards: up to date, consistent, on known fields, and imported as the APIs expect.

The field checks read the product's own index templates, so a field renamed or retyped there
breaks these tests before it breaks a dashboard. The import tests run `local.dashboards_import`
against a loopback server that checks requests the way Kibana and OpenSearch Dashboards do and
responds with recorded responses.
"""

from __future__ import annotations

import base64
import fnmatch
import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from local import dashboards_build, dashboards_import
from ti_anomali.engine import templates
from ti_anomali.report import figures
from ti_anomali.report.queries import window_query

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "tests" / "fixtures" / "recorded"
FLAVOURS = ("kibana", "opensearch-dashboards")
OBJECT_TYPES = {"index-pattern", "visualization", "search", "dashboard"}

# Field types each aggregation can run on, in the terms of templates.FIELDS_BY_DATASET.
AGGREGATION_FIELD_TYPES = {
    "terms": {"keyword", "long"},
    "date_histogram": {"date"},
    "geohash_grid": {"geo_point"},
    "geotile_grid": {"geo_point"},
    "geo_centroid": {"geo_point"},
    "geo_bounds": {"geo_point"},
}
RANGE_FIELD_TYPES = {"date", "long", "short"}
SORT_FIELD_TYPES = {"date", "long", "short", "keyword"}
DATE_MATH = re.compile(r"now([+-]\d+[smhdwMy])*(/[smhdwMy])?")


def load_objects(flavour: str) -> dict[str, list[dict[str, Any]]]:
    """Return the saved objects of every file of a flavour, by file name."""
    folder = REPO / "dashboards" / flavour
    return {
        path.name: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(folder.glob("*.ndjson"))
    }


def all_objects() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (flavour, name, obj)
        for flavour in FLAVOURS
        for name, objects in load_objects(flavour).items()
        for obj in objects
    ]


def field_types(name: str) -> set[str]:
    """Return the types a field has across the datasets that map it, or an empty set when none does."""
    return {fields[name] for fields in templates.FIELDS_BY_DATASET.values() if name in fields}


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


# --- a small KQL checker --------------------------------------------------------------------------


class KqlError(ValueError):
    """A query is not valid KQL, or uses a field or operator the checker does not accept."""


_KQL_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<lparen>\() | (?P<rparen>\))
    | (?P<range><=|>=|<|>)
    | (?P<colon>:)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<unterminated>")
    | (?P<word>(?:[^\s()":<>\\]|\\.)+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(query: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(query):
        match = _KQL_TOKEN.match(query, position)
        if match is None:
            raise KqlError(f"unexpected character {query[position]!r} at {position}")
        kind = match.lastgroup or ""
        if kind == "unterminated":
            raise KqlError(f"unterminated quoted value at {position}")
        if kind != "space":
            text = match.group()
            if kind == "word" and text.lower() in ("and", "or", "not"):
                kind = text.lower()
            tokens.append(Token(kind, text))
        position = match.end()
    return tokens


@dataclass
class KqlParser:
    """Recursive descent over KQL's grammar. Every clause must name a field, so free text is rejected."""

    tokens: list[Token]
    position: int = 0
    clauses: list[tuple[str, str, str]] = field(default_factory=list)

    def parse(self) -> list[tuple[str, str, str]]:
        if self.tokens:
            self._or(self._clause)
        if self.position != len(self.tokens):
            raise KqlError(f"unexpected {self.tokens[self.position].text!r}")
        return self.clauses

    def _peek(self) -> str | None:
        return self.tokens[self.position].kind if self.position < len(self.tokens) else None

    def _take(self, *kinds: str) -> Token:
        if self._peek() not in kinds:
            found = self.tokens[self.position].text if self.position < len(self.tokens) else "the end"
            raise KqlError(f"expected {' or '.join(kinds)}, found {found!r}")
        self.position += 1
        return self.tokens[self.position - 1]

    def _or(self, operand: Any) -> None:
        self._and(operand)
        while self._peek() == "or":
            self._take("or")
            self._and(operand)

    def _and(self, operand: Any) -> None:
        self._not(operand)
        while self._peek() == "and":
            self._take("and")
            self._not(operand)

    def _not(self, operand: Any) -> None:
        if self._peek() == "not":
            self._take("not")
            self._not(operand)
        elif self._peek() == "lparen":
            self._take("lparen")
            self._or(operand)
            self._take("rparen")
        else:
            operand()

    def _clause(self) -> None:
        name = self._take("word").text
        operator = self._take("colon", "range")
        if operator.kind == "range":
            value = self._take("word", "string").text
            self.clauses.append((name, operator.text, value.strip('"')))
            return
        if self._peek() == "lparen":
            self._take("lparen")
            self._or(lambda: self._value(name))
            self._take("rparen")
        else:
            self._value(name)

    def _value(self, name: str) -> None:
        value = self._take("word", "string").text
        self.clauses.append((name, ":", value.strip('"')))


def check_kql(query: str) -> list[tuple[str, str, str]]:
    """Parse a query, check its fields and operators, and return its (field, operator, value) clauses."""
    clauses = KqlParser(tokenize(query)).parse()
    for name, operator, value in clauses:
        kinds = field_types(name)
        if not kinds:
            raise KqlError(f"unknown field {name!r}")
        if operator != ":" and not kinds <= RANGE_FIELD_TYPES:
            raise KqlError(f"range on {name!r} of type {kinds}")
        if operator != ":" and kinds == {"date"} and not DATE_MATH.fullmatch(value):
            raise KqlError(f"date range on {name!r} with value {value!r}, which is not date math")
    return clauses


@pytest.mark.parametrize(
    "query",
    [
        'threat.indicator.type:("url" or "file"',
        'threat.indicator.type:"url',
        "threat.indicator.type:url)",
        "no.such.field:1",
        "free text",
        "threat.indicator.type:url and or threat.indicator.provider:x",
        'threat.indicator.provider > "a"',
        'event.created >= "yesterday"',
    ],
)
def test_kql_checker_rejects_bad_query(query: str) -> None:
    with pytest.raises(KqlError):
        check_kql(query)


def test_kql_checker_reads_nested_query() -> None:
    clauses = check_kql('not (threat.indicator.type:("url" or file) and event.severity >= 47) or tags:*')

    assert clauses == [
        ("threat.indicator.type", ":", "url"),
        ("threat.indicator.type", ":", "file"),
        ("event.severity", ">=", "47"),
        ("tags", ":", "*"),
    ]


# --- the files -------------------------------------------------------------------------------------


def test_files_match_builder() -> None:
    rendered = dashboards_build.render_files()

    for path, text in rendered.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is out of date: run python -m local.dashboards_build"
    for flavour in FLAVOURS:
        on_disk = set((REPO / "dashboards" / flavour).glob("*.ndjson"))
        assert on_disk == {path for path in rendered if path.parent.name == flavour}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_each_file_is_self_contained(flavour: str) -> None:
    for name, objects in load_objects(flavour).items():
        present = {(obj["type"], obj["id"]) for obj in objects}
        assert len(present) == len(objects), f"{name}: duplicate object"
        assert [obj["type"] for obj in objects].count("dashboard") == 1, name
        for obj in objects:
            assert obj["type"] in OBJECT_TYPES
            for reference in obj["references"]:
                assert (reference["type"], reference["id"]) in present, f"{name}: {obj['id']} -> {reference}"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_version_fields_per_flavour(flavour: str) -> None:
    for objects in load_objects(flavour).values():
        for obj in objects:
            if flavour == "kibana":
                assert obj["coreMigrationVersion"] == "8.8.0"
                assert re.fullmatch(r"\d+\.\d+\.\d+", obj["typeMigrationVersion"])
                assert "migrationVersion" not in obj
            else:
                assert set(obj["migrationVersion"]) == {obj["type"]}
                assert "coreMigrationVersion" not in obj
                assert "typeMigrationVersion" not in obj


def test_data_view_reads_only_latest_aliases() -> None:
    for _, _, obj in all_objects():
        if obj["type"] == "index-pattern":
            assert obj["id"] == figures.DATA_VIEW_ID
            assert obj["attributes"]["title"] == "logs-ti_anomali_latest.*"
            assert field_types(obj["attributes"]["timeFieldName"]) == {"date"}
        for reference in obj["references"]:
            if reference["type"] == "index-pattern":
                assert reference["id"] == figures.DATA_VIEW_ID

    pattern = figures.DATA_VIEW_TITLE
    for dataset in templates.DATASETS:
        assert fnmatch.fnmatchcase(templates.latest_alias(dataset), pattern)
        assert not fnmatch.fnmatchcase(templates.data_stream_name(dataset, "default"), pattern)
        assert not fnmatch.fnmatchcase(f".ds-{templates.data_stream_name(dataset, 'default')}-000001", pattern)


def test_search_sources_point_at_data_view() -> None:
    for flavour, name, obj in all_objects():
        if obj["type"] not in ("visualization", "search"):
            continue
        source = search_source(obj)
        references = {reference["name"]: reference for reference in obj["references"]}
        assert source["indexRefName"] in references, f"{flavour}/{name}: {obj['id']}"
        assert references[source["indexRefName"]]["type"] == "index-pattern"
        assert "index" not in source


def test_dashboard_panels_resolve() -> None:
    for flavour, name, obj in all_objects():
        if obj["type"] != "dashboard":
            continue
        panels = json.loads(obj["attributes"]["panelsJSON"])
        references = {reference["name"]: reference for reference in obj["references"]}
        assert len(panels) == len(references) == len({panel["panelIndex"] for panel in panels})
        for panel in panels:
            key = f"{panel['panelIndex']}:{panel['panelRefName']}" if flavour == "kibana" else panel["panelRefName"]
            assert key in references, f"{flavour}/{name}: panel {panel['panelIndex']}"
            grid = panel["gridData"]
            assert grid["i"] == panel["panelIndex"]
            assert grid["x"] + grid["w"] <= dashboards_build.GRID_COLUMNS


# --- fields and queries ----------------------------------------------------------------------------


def test_aggregation_fields_exist_with_suitable_type() -> None:
    checked = 0
    for flavour, name, obj in all_objects():
        if obj["type"] != "visualization":
            continue
        for aggregation in json.loads(obj["attributes"]["visState"])["aggs"]:
            if aggregation["type"] == "count":
                continue
            allowed = AGGREGATION_FIELD_TYPES[aggregation["type"]]
            kinds = field_types(aggregation["params"]["field"])
            assert kinds, f"{flavour}/{name}: {obj['id']} uses unknown {aggregation['params']['field']}"
            assert kinds <= allowed, f"{flavour}/{name}: {aggregation['type']} on {aggregation['params']['field']}"
            checked += 1
    assert checked >= 2 * (1 + len(figures.TERMS_FIGURES))


def test_saved_search_fields_exist() -> None:
    for flavour, name, obj in all_objects():
        if obj["type"] != "search":
            continue
        for column in obj["attributes"]["columns"]:
            assert field_types(column), f"{flavour}/{name}: column {column}"
        for sort_field, order in obj["attributes"]["sort"]:
            assert order in ("asc", "desc")
            assert field_types(sort_field) <= SORT_FIELD_TYPES, f"{flavour}/{name}: sort on {sort_field}"
            assert field_types(sort_field), sort_field


def test_field_formats_name_known_fields() -> None:
    for _, _, obj in all_objects():
        if obj["type"] == "index-pattern":
            for name in json.loads(obj["attributes"]["fieldFormatMap"]):
                assert field_types(name), name


def test_every_query_is_valid_kql() -> None:
    queries = 0
    for flavour, name, obj in all_objects():
        if "kibanaSavedObjectMeta" not in obj["attributes"]:
            continue
        query = search_source(obj)["query"]
        assert query["language"] == "kuery", f"{flavour}/{name}: {obj['id']}"
        try:
            check_kql(query["query"])
        except KqlError as exc:
            pytest.fail(f"{flavour}/{name}: {obj['id']}: {exc}: {query['query']!r}")
        queries += bool(query["query"])
    assert queries > 0


# --- the overview and the report show the same figures -------------------------------------------


def overview_objects(flavour: str) -> dict[str, dict[str, Any]]:
    objects = load_objects(flavour)[f"{figures.OVERVIEW_DASHBOARD_ID}.ndjson"]
    return {obj["id"]: obj for obj in objects}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_overview_shows_report_figures(flavour: str) -> None:
    objects = overview_objects(flavour)
    dashboard = objects[figures.OVERVIEW_DASHBOARD_ID]
    panel_ids = [reference["id"] for reference in dashboard["references"]]
    aggregations = [
        json.loads(objects[object_id]["attributes"]["visState"])["aggs"]
        for object_id in panel_ids
        if objects[object_id]["type"] == "visualization"
    ]
    bucket_fields = [aggs[1]["params"]["field"] for aggs in aggregations if len(aggs) > 1]

    assert dashboard["type"] == "dashboard"
    assert bucket_fields == [figures.LIVE_OVER_TIME.field, *(figure.field for figure in figures.TERMS_FIGURES)]
    for figure in figures.TERMS_FIGURES:
        (terms,) = [aggs[1] for aggs in aggregations if len(aggs) > 1 and aggs[1]["params"]["field"] == figure.field]
        assert terms["params"]["size"] == figure.size
        assert terms["params"]["otherBucket"] is True
        assert terms["params"]["missingBucket"] is figure.show_missing


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_overview_windows_match_report(flavour: str) -> None:
    objects = overview_objects(flavour)
    queries = {
        obj["id"]: search_source(obj)["query"]["query"]
        for obj in objects.values()
        if obj["type"] in ("visualization", "search")
    }

    for definition in (figures.NEWLY_ADDED, figures.EXPIRING_SOON):
        assert queries[f"{figures.OVERVIEW_DASHBOARD_ID}-{definition.id}"] == definition.kql()
        assert queries[f"{figures.OVERVIEW_DASHBOARD_ID}-{definition.id}-total"] == definition.kql()
    assert figures.NEWLY_ADDED.kql() == 'event.created >= "now-7d" or anomali.threatstream.added_at >= "now-7d"'
    assert figures.EXPIRING_SOON.kql() == (
        'anomali.threatstream.deletion_scheduled_at <= "now+7d" or anomali.threatstream.deleted_at <= "now+7d"'
    )


def test_report_window_equals_kql_window() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    added = window_query(figures.NEWLY_ADDED, now)["bool"]["should"]
    leaving = window_query(figures.EXPIRING_SOON, now)["bool"]["should"]

    assert added == [
        {"range": {"event.created": {"gte": "2026-11-13T12:00:00.000Z"}}},
        {"range": {"anomali.threatstream.added_at": {"gte": "2026-11-13T12:00:00.000Z"}}},
    ]
    assert leaving == [
        {"range": {"anomali.threatstream.deletion_scheduled_at": {"lte": "2026-11-27T12:00:00.000Z"}}},
        {"range": {"anomali.threatstream.deleted_at": {"lte": "2026-11-27T12:00:00.000Z"}}},
    ]


def test_topic_dashboards_split_indicators() -> None:
    files = check_kql(dashboards_build.FILES_QUERY)
    urls = check_kql(dashboards_build.URLS_DOMAINS_QUERY)

    assert {name for name, _, _ in files} == {
        f"threat.indicator.file.hash.{kind}" for kind in dashboards_build._HASH_FIELDS
    }
    assert {name for name, _, _ in urls} == {"threat.indicator.url.original", "threat.indicator.url.domain"}
    other = check_kql(dashboards_build.OTHER_QUERY)
    assert other == files + urls
    assert dashboards_build.OTHER_QUERY.startswith("not (")
    assert ") and not (" in dashboards_build.OTHER_QUERY


# --- the import request ----------------------------------------------------------------------------


@dataclass
class ImportRequest:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    parts: list[tuple[str | None, str | None, bytes]]


class RecordedDashboards:
    """A loopback Kibana or OpenSearch Dashboards that checks import requests and plays recorded responses.

    Like the real APIs it responds with 400 without the xsrf header or for a file not named .ndjson,
    and 401 when `require_auth` is set and the request has other credentials.
    """

    def __init__(self, flavour: str, require_auth: str | None = None, force: str | None = None) -> None:
        self.flavour = flavour
        self.recorded = json.loads((RECORDED / f"dashboards-{flavour}.json").read_text())
        self.requests: list[ImportRequest] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = ImportRequest(
                    urlsplit(self.path).path,
                    parse_qs(urlsplit(self.path).query),
                    {name.lower(): value for name, value in self.headers.items()},
                    parse_multipart(self.headers.get("Content-Type", ""), body),
                )
                server.requests.append(request)
                self._answer(server.recorded[server.choose(request, require_auth, force)])

            def _answer(self, recorded: dict[str, Any]) -> None:
                data = json.dumps(recorded["body"]).encode()
                self.send_response(recorded["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def choose(self, request: ImportRequest, require_auth: str | None, force: str | None) -> str:
        if dashboards_import.XSRF_HEADERS[self.flavour] not in request.headers:
            return "missing_xsrf_header"
        if require_auth is not None and request.headers.get("authorization") != require_auth:
            return "unauthorized"
        files = [filename for name, filename, _ in request.parts if name == "file"]
        if len(files) != 1 or not (files[0] or "").endswith(".ndjson"):
            return "wrong_file_extension"
        return force or str(files[0])


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str | None, str | None, bytes]]:
    """Return (field name, file name, content) of each part of a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        return []
    message = BytesParser(policy=policy.default).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


@pytest.fixture
def recorded_dashboards() -> Iterator[Any]:
    servers: list[RecordedDashboards] = []

    def start(flavour: str, **options: Any) -> RecordedDashboards:
        servers.append(RecordedDashboards(flavour, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.server.shutdown()


@dataclass
class ImportRun:
    status: int
    stdout: str
    stderr: str


def run_import(environ: dict[str, str]) -> ImportRun:
    out, err = io.StringIO(), io.StringIO()
    status = dashboards_import.run(environ, out, err)
    return ImportRun(status, out.getvalue(), err.getvalue())


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_import_sends_each_file_as_api_expects(flavour: str, recorded_dashboards: Any) -> None:
    password = "s3cret-not-printed"  # noqa: S105
    server = recorded_dashboards(flavour, require_auth=basic_auth("importer", password))
    files = sorted((REPO / "dashboards" / flavour).glob("*.ndjson"))

    result = run_import(
        {
            "DASHBOARDS_URL": server.url,
            "DASHBOARDS_KIND": flavour,
            "DASHBOARDS_USERNAME": "importer",
            "DASHBOARDS_PASSWORD": password,
        }
    )

    assert result.status == 0, result.stderr
    assert [request.path for request in server.requests] == ["/api/saved_objects/_import"] * len(files)
    xsrf, other = (
        dashboards_import.XSRF_HEADERS[flavour],
        dashboards_import.XSRF_HEADERS["kibana" if flavour != "kibana" else "opensearch-dashboards"],
    )
    for request, path in zip(server.requests, files, strict=True):
        assert request.query == {"overwrite": ["true"]}
        assert request.headers[xsrf] == "true"
        assert other not in request.headers
        assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
        assert request.parts == [("file", path.name, path.read_bytes())]
    for path in files:
        body = server.recorded[path.name]["body"]
        assert f"{path.name}: {body['successCount']} saved objects written" in result.stdout
    assert f"{server.url}/app/dashboards#/view/{figures.OVERVIEW_DASHBOARD_ID}" in result.stdout
    assert password not in result.stdout + result.stderr


def test_import_into_kibana_space(recorded_dashboards: Any) -> None:
    server = recorded_dashboards("kibana")

    result = run_import({"DASHBOARDS_URL": server.url, "DASHBOARDS_KIND": "kibana", "DASHBOARDS_SPACE": "threat intel"})

    assert result.status == 0, result.stderr
    assert {request.path for request in server.requests} == {"/s/threat%20intel/api/saved_objects/_import"}


def test_import_with_kibana_api_key(recorded_dashboards: Any) -> None:
    server = recorded_dashboards("kibana", require_auth="ApiKey a2V5LWlkOmtleQ==")

    result = run_import(
        {"DASHBOARDS_URL": server.url, "DASHBOARDS_KIND": "kibana", "DASHBOARDS_API_KEY": "a2V5LWlkOmtleQ=="}
    )

    assert result.status == 0, result.stderr
    assert "a2V5LWlkOmtleQ==" not in result.stdout + result.stderr


def test_import_into_opensearch_tenant(recorded_dashboards: Any) -> None:
    server = recorded_dashboards("opensearch-dashboards")

    result = run_import({"DASHBOARDS_URL": server.url, "DASHBOARDS_TENANT": "global"})

    assert result.status == 0, result.stderr
    assert {request.headers["securitytenant"] for request in server.requests} == {"global"}
    assert {request.headers.get("osd-xsrf") for request in server.requests} == {"true"}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_import_reports_rejected_objects(flavour: str, recorded_dashboards: Any) -> None:
    server = recorded_dashboards(flavour, force="missing_references")

    result = run_import({"DASHBOARDS_URL": server.url, "DASHBOARDS_KIND": flavour})

    assert result.status == 1
    assert "not imported: visualization ti-anomali-files-" in result.stderr
    assert "missing_references" in result.stderr


def test_import_rejected_credentials(recorded_dashboards: Any) -> None:
    server = recorded_dashboards("kibana", require_auth=basic_auth("importer", "right"))

    result = run_import(
        {
            "DASHBOARDS_URL": server.url,
            "DASHBOARDS_KIND": "kibana",
            "DASHBOARDS_USERNAME": "importer",
            "DASHBOARDS_PASSWORD": "wrong-password-x9",
        }
    )

    assert result.status == 1
    assert "HTTP 401" in result.stderr
    assert "DASHBOARDS_USERNAME" in result.stderr
    assert len(server.requests) == 1
    assert "wrong-password-x9" not in result.stdout + result.stderr


def test_import_wrong_kind_gets_xsrf_error(recorded_dashboards: Any) -> None:
    server = recorded_dashboards("kibana")

    result = run_import({"DASHBOARDS_URL": server.url, "DASHBOARDS_KIND": "opensearch-dashboards"})

    assert result.status == 1
    assert "HTTP 400: Request must contain a kbn-xsrf header." in result.stderr


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "DASHBOARDS_URL is missing"),
        ({"DASHBOARDS_URL": "http://dashboards.example.com"}, "must use https unless the host is loopback"),
        ({"DASHBOARDS_URL": "https://admin:pw-77@dashboards.example.com"}, "carries credentials"),
        ({"DASHBOARDS_URL": "https://d.example.com", "DASHBOARDS_KIND": "grafana"}, "DASHBOARDS_KIND must be one of"),
        ({"DASHBOARDS_URL": "https://d.example.com", "DASHBOARDS_USERNAME": "a"}, "DASHBOARDS_PASSWORD is missing"),
        ({"DASHBOARDS_URL": "https://d.example.com", "DASHBOARDS_SPACE": "x"}, "applies to Kibana only"),
    ],
)
def test_import_configuration_errors(environ: dict[str, str], message: str) -> None:
    result = run_import(environ)

    assert result.status == 2
    assert message in result.stderr
    assert "pw-77" not in result.stderr
