"""`ti-anomali report` against a real OpenSearch node, checked in headless Chromium.

The tests write a known set of latest documents, mapped by the product's own mappers, into both
latest indices and run the command. They load the HTML in headless Chromium with `--dump-dom` and
compare the numbers Chromium shows with the ones the data set must give. A screenshot of the page
goes to tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import io
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ti_anomali import cli
from ti_anomali.ecs.intelligence import MappingOptions, document_id, map_intelligence
from ti_anomali.ecs.threatstream import ThreatstreamOptions, map_threatstream
from ti_anomali.engine import templates
from ti_anomali.report import HTML_NAME
from ti_anomali.report.defang import defang
from ti_anomali.report.figures import LIVE_OVER_TIME, TERMS_FIGURES
from ti_anomali.report.page import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_TIMEOUT_SECONDS = 120
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-20T12:00:00Z"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- the known data set --------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def intelligence(
    number: int,
    ingested_days_ago: int,
    created_days_ago: int,
    itype: str,
    kind: str,
    value: str,
    source: str,
    confidence: int,
    severity: str | None,
    **extra: Any,
) -> tuple[datetime, dict[str, Any]]:
    """Return an intelligence API object and the time it is ingested at."""
    obj: dict[str, Any] = {
        "id": 7000 + number,
        "update_id": 9000 + number,
        "itype": itype,
        "type": kind,
        "value": value,
        "source": source,
        "confidence": confidence,
        "status": "active",
        "is_public": False,
        "meta": {"severity": severity} if severity else {},
        "created_ts": _iso(NOW - timedelta(days=created_days_ago)),
        "modified_ts": _iso(NOW - timedelta(days=ingested_days_ago)),
        "expiration_ts": "9999-12-31T00:00:00.000Z",
    }
    if kind == "ip":
        obj["ip"] = value
    return NOW - timedelta(days=ingested_days_ago), obj | extra


def _in_days(days: int) -> str:
    return _iso(NOW + timedelta(days=days))


SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
INTELLIGENCE_OBJECTS = [
    intelligence(1, 1, 2, "mal_domain", "domain", "evil-one.example", "Analyst A", 90, "very-high", tlp="red"),
    intelligence(2, 10, 40, "phish_domain", "domain", "evil-two.example", "Analyst A", 50, "high", tlp="amber"),
    intelligence(
        3, 5, 40, "c2_domain", "domain", "c2.example.net", "Feed B", 80, "high", tlp="amber", expiration_ts=_in_days(3)
    ),
    intelligence(4, 5, 40, "mal_domain", "domain", "drop.example.org", "Feed B", 75, "medium", tlp="amber"),
    intelligence(
        5, 1, 1, "phish_url", "url", "http://evil-one.example/login.php", "Analyst A", 75, "medium", tlp="green"
    ),
    intelligence(6, 5, 50, "mal_url", "url", "https://cdn.bad.example/x.exe", "Feed C", 20, "low", tlp="amber"),
    intelligence(
        7,
        1,
        3,
        "mal_md5",
        "md5",
        "d41d8cd98f00b204e9800998ecf8427e",
        "Feed C",
        60,
        "high",
        tlp="amber",
        subtype="MD5",
        expiration_ts=_in_days(2),
    ),
    intelligence(8, 10, 60, "mal_md5", "md5", SHA256, "Feed C", 65, "high", tlp="amber", subtype="SHA256"),
    intelligence(9, 10, 60, "mal_ip", "ip", "81.2.69.142", "Feed B", 85, "very-high", is_public=True, country="GB"),
    intelligence(10, 10, 60, "scan_ip", "ip", "192.0.2.10", "Feed B", 30, "low", is_public=True, country="US"),
    intelligence(11, 5, 20, "phish_email", "email", "bad@phish.example", "Analyst A", 40, None, tlp="amber"),
    intelligence(12, 1, 20, "mal_domain", "domain", "late.example", "Feed D", 95, "very-high", tlp="amber"),
]
THREATSTREAM_OBJECTS = [
    {
        "id": 8101,
        "update_id": 9101,
        "value_type": "domain",
        "domain": "push.example",
        "itype": "mal_domain",
        "classification": "private",
        "confidence": 70,
        "severity": "medium",
        "source": "Push Sensor",
        "state": "active",
        "added_at": _iso(NOW - timedelta(days=4)),
    },
    {
        "id": 8102,
        "update_id": 9102,
        "value_type": "ip",
        "srcip": "198.51.100.7",
        "itype": "mal_ip",
        "classification": "public",
        "confidence": 55,
        "severity": "high",
        "source": "Push Sensor",
        "state": "active",
        "added_at": _iso(NOW - timedelta(days=4)),
        "country": "DE",
    },
]

# What the report must show for this data set, worked out by hand from the objects above.
EXPECTED_TOTAL = 14
EXPECTED_BY_DATASET = "ti_anomali.intelligence: 12, ti_anomali.threatstream: 2"
EXPECTED_NEWLY_ADDED = 5  # objects 1, 5 and 7, created 1 to 3 days ago; both pushed ones, added 4 days ago
EXPECTED_EXPIRING_SOON = 2  # objects 3 and 7 expire in 3 and 2 days
EXPECTED_TERMS = {
    "by-type": {"domain-name": 6, "ipv4-addr": 3, "url": 2, "file": 2, "email-addr": 1},
    "by-severity": {"very-high (99)": 3, "high (73)": 5, "medium (47)": 3, "low (21)": 2},
    "by-tlp": {"AMBER": 9, "WHITE": 3, "RED": 1, "GREEN": 1},
    "by-confidence": {"High": 7, "Medium": 6, "Low": 1},
    "by-provider": {"Analyst A": 4, "Feed B": 4, "Feed C": 3, "Push Sensor": 2, "Feed D": 1},
    "by-country": {"GB": 1, "US": 1, "DE": 1, "(no value)": 11},
}
# Documents per UTC day of @timestamp, from 10 days before NOW to 1 day before, empty days included.
EXPECTED_OVER_TIME = {(NOW - timedelta(days=days)).strftime("%Y-%m-%d"): 0 for days in range(10, 0, -1)}
EXPECTED_OVER_TIME |= {
    (NOW - timedelta(days=10)).strftime("%Y-%m-%d"): 4,
    (NOW - timedelta(days=5)).strftime("%Y-%m-%d"): 4,
    (NOW - timedelta(days=4)).strftime("%Y-%m-%d"): 2,
    (NOW - timedelta(days=1)).strftime("%Y-%m-%d"): 4,
}


def reset_latest_indices(engine: OpenSearch) -> None:
    """Replace both latest indices with empty ones behind their aliases."""
    for dataset in templates.DATASETS:
        alias = templates.latest_alias(dataset)
        engine.indices.delete(index=f"{alias}-*", params={"ignore_unavailable": "true", "expand_wildcards": "all"})
        body = templates.latest_index_body(dataset, "opensearch", hidden=False)
        engine.indices.create(index=templates.latest_index(dataset), body={**body, "aliases": {alias: {}}})


def write_latest(
    engine: OpenSearch,
    intelligence_objects: list[tuple[datetime, dict[str, Any]]],
    threatstream_objects: list[dict[str, Any]],
) -> None:
    """Map the objects as the functions do and write them to the latest aliases."""
    for ingested, obj in intelligence_objects:
        document = map_intelligence(obj, MappingOptions(now=ingested))
        document["labels"]["is_ioc_transform_source"] = "false"
        engine.index(index=templates.latest_alias("intelligence"), id=document_id(document), body=document)
    for obj in threatstream_objects:
        document = map_threatstream(obj, ThreatstreamOptions(now=NOW))
        document["labels"]["is_ioc_transform_source"] = "false"
        engine.index(index=templates.latest_alias("threatstream"), id=str(obj["id"]), body=document)
    for dataset in templates.DATASETS:
        engine.indices.refresh(index=templates.latest_alias(dataset))


@pytest.fixture
def latest_indices(engine: OpenSearch) -> Iterator[OpenSearch]:
    """Give the test empty latest indices, and remove them afterwards for the tests that follow."""
    reset_latest_indices(engine)
    yield engine
    for dataset in templates.DATASETS:
        engine.indices.delete(
            index=f"{templates.latest_alias(dataset)}-*",
            params={"ignore_unavailable": "true", "expand_wildcards": "all"},
        )


# --- running the command and Chromium ----------------------------------------------------------


@dataclass
class CommandResult:
    status: int
    stdout: str
    stderr: str


def run_report(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> CommandResult:
    """Run `ti-anomali report <args>` in this process and capture both outputs."""
    stdout, stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    try:
        status = cli.main(["report", *args])
    except SystemExit as exc:
        status = int(exc.code or 0)
    return CommandResult(status, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed by local/chromium.sh when it is missing."""
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(REPO / "local" / "chromium.sh")], check=True, timeout=900)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing after local/chromium.sh; run `apt-get install -y chromium` as root")
    return CHROMIUM


def chromium_command(chromium: Path, profile: Path) -> list[str]:
    """Return Chromium's command line, with everything that could reach the network switched off."""
    profile.mkdir(parents=True, exist_ok=False)
    return [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def dump_dom(chromium: Path, page: Path, work: Path) -> str:
    """Load the page in headless Chromium and return the DOM it built."""
    result = subprocess.run(
        [*chromium_command(chromium, work / "profile-dom"), "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<html" in result.stdout
    return result.stdout


def screenshot(chromium: Path, page: Path, work: Path, name: str) -> Path:
    """Take a full-width screenshot of the page and keep it in tests/artifacts."""
    shot = work / name
    result = subprocess.run(
        [
            *chromium_command(chromium, work / f"profile-{name}"),
            "--hide-scrollbars",
            "--window-size=1200,2600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    artifact = ARTIFACTS / name
    shutil.copyfile(shot, artifact)
    return artifact


# --- reading the DOM Chromium built --------------------------------------------------------------


HTML_VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    parents: list[str] = field(default_factory=list)


class DomReader(HTMLParser):
    """Collects every element with its attributes, direct text and the data-figure it sits in."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs}, parents=[e.tag for e in self._open])
        figure = next((e.attrs["data-figure"] for e in reversed(self._open) if "data-figure" in e.attrs), None)
        if figure is not None:
            element.attrs.setdefault("_figure", figure)
        self.elements.append(element)
        if tag not in HTML_VOID_ELEMENTS:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data

    def by_id(self, element_id: str) -> Element:
        (element,) = [e for e in self.elements if e.attrs.get("id") == element_id]
        return element

    def figure_table(self, figure_id: str) -> dict[str, int]:
        rows = [
            e for e in self.elements if e.tag == "tr" and "data-count" in e.attrs and e.attrs["_figure"] == figure_id
        ]
        return {row.attrs["data-label"]: int(row.attrs["data-count"]) for row in rows}

    def chart_bars(self, figure_id: str) -> dict[str, int]:
        """Return the `label: count` titles of the chart's bars, as Chromium parsed the inline SVG."""
        titles = [
            e.text
            for e in self.elements
            if e.tag == "title" and "g" in e.parents and e.attrs.get("_figure") == figure_id
        ]
        bars = {}
        for title in titles:
            label, _, count = title.rpartition(": ")
            bars[label] = int(count)
        return bars

    def list_values(self, list_id: str) -> list[str]:
        table = [e for e in self.elements if e.tag == "table" and e.attrs.get("data-list") == list_id]
        assert table, f"no table for list {list_id}"
        start = self.elements.index(table[0])
        cells = []
        for element in self.elements[start + 1 :]:
            if element.tag == "table" or element.tag == "section":
                break
            if element.tag == "td" and element.attrs.get("class") == "value":
                cells.append(element.text)
        return cells


def read_dom(dom: str) -> DomReader:
    reader = DomReader()
    reader.feed(dom)
    reader.close()
    return reader


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG file"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- tests ---------------------------------------------------------------------------------------


def test_report_shows_known_numbers_in_chromium(
    latest_indices: OpenSearch,
    opensearch_node: Any,
    chromium: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_latest(latest_indices, INTELLIGENCE_OBJECTS, THREATSTREAM_OBJECTS)
    output = tmp_path / "report"

    result = run_report(monkeypatch, ["--engine-url", opensearch_node.url, "--output", str(output), "--now", NOW_TEXT])

    assert result.status == 0, result.stderr
    assert result.stdout.strip() == str(output / HTML_NAME)
    dom = read_dom(dump_dom(chromium, output / HTML_NAME, tmp_path))
    assert dom.by_id("live-total").attrs["data-count"] == str(EXPECTED_TOTAL)
    assert dom.by_id("live-total").text == str(EXPECTED_TOTAL)
    assert dom.by_id("live-total-detail").text == EXPECTED_BY_DATASET
    assert dom.by_id("newly-added-total").text == str(EXPECTED_NEWLY_ADDED)
    assert dom.by_id("expiring-soon-total").text == str(EXPECTED_EXPIRING_SOON)
    for figure_id, expected in EXPECTED_TERMS.items():
        assert dom.figure_table(figure_id) == expected, figure_id
        assert dom.chart_bars(figure_id) == expected, figure_id
    over_time = {label[:10]: count for label, count in dom.figure_table(LIVE_OVER_TIME.id).items()}
    assert over_time == EXPECTED_OVER_TIME
    assert sum(dom.chart_bars(LIVE_OVER_TIME.id).values()) == EXPECTED_TOTAL
    assert dom.list_values("expiring-soon") == ["d41d8cd98f00b204e9800998ecf8427e", "c2[.]example[.]net"]
    assert dom.list_values("newly-added")[:3] == [
        "hxxp://evil-one[.]example/login[.]php",
        "evil-one[.]example",
        "d41d8cd98f00b204e9800998ecf8427e",
    ]
    screenshot(chromium, output / HTML_NAME, tmp_path, "report.png")


def test_report_writes_png_per_chart(
    latest_indices: OpenSearch, opensearch_node: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_latest(latest_indices, INTELLIGENCE_OBJECTS, THREATSTREAM_OBJECTS)

    result = run_report(
        monkeypatch, ["--engine-url", opensearch_node.url, "--output", str(tmp_path), "--now", NOW_TEXT]
    )

    assert result.status == 0, result.stderr
    expected = {LIVE_OVER_TIME.id, *(figure.id for figure in TERMS_FIGURES)}
    assert {path.stem for path in tmp_path.glob("*.png")} == expected
    width, height = png_size(tmp_path / "by-type.png")
    assert width == 2 * 520
    assert height > 2 * 5 * 24
    assert png_size(tmp_path / f"{LIVE_OVER_TIME.id}.png") == (2 * 1060, 2 * 260)


def test_report_page_is_self_contained(
    latest_indices: OpenSearch, opensearch_node: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_latest(latest_indices, INTELLIGENCE_OBJECTS, THREATSTREAM_OBJECTS)

    result = run_report(
        monkeypatch, ["--engine-url", opensearch_node.url, "--output", str(tmp_path), "--now", NOW_TEXT, "--no-png"]
    )

    assert result.status == 0, result.stderr
    page = (tmp_path / HTML_NAME).read_text(encoding="utf-8")
    assert (
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'.replace("'", "&#x27;")
        in page
    )
    for reference in ("href=", "src=", "url(", "@import", "<script", "<link", "<img", "<iframe"):
        assert reference not in page, reference
    assert list(tmp_path.glob("*.png")) == []


HOSTILE_SCRIPT_DOMAIN = '<script>alert("x")</script>.example'
HOSTILE_JAVASCRIPT_URL = "javascript:alert(document.domain)"
HOSTILE_ATTRIBUTE = "x\" onmouseover=\"alert(1)' data-x='"
HOSTILE_PROVIDER = '"><img src=x onerror=alert(1)></svg><script>alert(2)</script>'
HOSTILE_OBJECTS = [
    intelligence(21, 1, 1, "mal_domain", "domain", HOSTILE_SCRIPT_DOMAIN, "Feed H", 90, "high", tlp="amber"),
    intelligence(22, 1, 1, "mal_url", "url", HOSTILE_JAVASCRIPT_URL, "Feed H", 90, "high", tlp="amber"),
    intelligence(23, 1, 1, "mal_domain", "domain", HOSTILE_ATTRIBUTE, HOSTILE_PROVIDER, 90, "high", tlp="amber"),
    intelligence(
        24, 1, 1, "mal_url", "url", "http://evil.example/?q=<b>x</b>&y='z'", "Feed H", 90, "high", tlp="<i>amber</i>"
    ),
]


def test_hostile_values_render_as_text(
    latest_indices: OpenSearch,
    opensearch_node: Any,
    chromium: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_latest(latest_indices, HOSTILE_OBJECTS, [])
    output = tmp_path / "report"

    result = run_report(monkeypatch, ["--engine-url", opensearch_node.url, "--output", str(output), "--now", NOW_TEXT])

    assert result.status == 0, result.stderr
    dom = read_dom(dump_dom(chromium, output / HTML_NAME, tmp_path))
    policies = [e.attrs["content"] for e in dom.elements if e.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policies == [CONTENT_SECURITY_POLICY]
    tags = {element.tag for element in dom.elements}
    for tag in ("script", "img", "iframe", "a", "b", "i", "object", "embed", "link", "base", "form"):
        assert tag not in tags, tag
    attributes = {name for element in dom.elements for name in element.attrs}
    assert not [name for name in attributes if name.startswith("on")]
    assert not attributes & {"href", "src", "xlink:href", "data-x", "srcset", "action"}
    values = dom.list_values("newly-added")
    assert defang(HOSTILE_SCRIPT_DOMAIN) in values
    assert "javascript[:]alert(document[.]domain)" in values
    assert defang(HOSTILE_ATTRIBUTE) in values
    assert "hxxp://evil[.]example/?q=<b>x</b>&y='z'" in values
    assert dom.figure_table("by-provider") == {"Feed H": 3, HOSTILE_PROVIDER: 1}
    assert dom.chart_bars("by-provider") == {"Feed H": 3, HOSTILE_PROVIDER: 1}
    assert dom.figure_table("by-tlp") == {"AMBER": 3, "<I>AMBER</I>": 1}
    screenshot(chromium, output / HTML_NAME, tmp_path, "report-hostile-values.png")


def test_report_without_aliases_shows_zero(
    engine: OpenSearch, opensearch_node: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dataset in templates.DATASETS:
        engine.indices.delete(
            index=f"{templates.latest_alias(dataset)}-*",
            params={"ignore_unavailable": "true", "expand_wildcards": "all"},
        )

    result = run_report(
        monkeypatch, ["--engine-url", opensearch_node.url, "--output", str(tmp_path), "--now", NOW_TEXT, "--no-png"]
    )

    assert result.status == 0, result.stderr
    page = (tmp_path / HTML_NAME).read_text(encoding="utf-8")
    assert '<dd id="live-total" data-count="0">0</dd>' in page
    assert "No live indicators" in page


# --- configuration errors, no engine needed ---------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_basic_auth_without_environment_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENGINE_USERNAME", raising=False)
    monkeypatch.delenv("ENGINE_PASSWORD", raising=False)

    result = run_report(
        monkeypatch, ["--engine-url", "http://127.0.0.1:9", "--auth", "basic", "--output", str(tmp_path)]
    )

    assert result.status == 2
    assert "ENGINE_USERNAME and ENGINE_PASSWORD" in result.stderr


def test_url_with_password_rejected_without_echo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_report(
        monkeypatch, ["--engine-url", "https://admin:hunter2@127.0.0.1:9200", "--output", str(tmp_path)]
    )

    assert result.status == 2
    assert "carries credentials" in result.stderr
    assert "hunter2" not in result.stderr


def test_plain_http_to_remote_host_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_report(monkeypatch, ["--engine-url", "http://search.example.com:9200", "--output", str(tmp_path)])

    assert result.status == 2
    assert "use https unless the host is loopback" in result.stderr


def test_unreachable_engine_fails_with_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_USERNAME", "reader")
    monkeypatch.setenv("ENGINE_PASSWORD", "not-printed-5f2e")
    url = f"http://127.0.0.1:{_closed_port()}"

    result = run_report(
        monkeypatch, ["--engine-url", url, "--auth", "basic", "--timeout", "2", "--output", str(tmp_path)]
    )

    assert result.status == 1
    assert "could not be reached" in result.stderr
    assert "not-printed-5f2e" not in result.stderr + result.stdout
    assert not (tmp_path / HTML_NAME).exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://evil.example/a.php", "hxxp://evil[.]example/a[.]php"),
        ("HTTPS://Evil.Example", "hxxps://Evil[.]Example"),
        ("ftp://files.example/x", "fxp://files[.]example/x"),
        ("javascript:alert(1)", "javascript[:]alert(1)"),
        ("evil.example", "evil[.]example"),
        ("user@mail.example", "user[@]mail[.]example"),
        ("81.2.69.142", "81.2.69.142"),
        ("2001:db8::1", "2001:db8::1"),
        ("C:\\Windows\\evil.dll", "C:\\Windows\\evil[.]dll"),
        ("d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e"),
    ],
)
def test_defang(value: str, expected: str) -> None:
    assert defang(value) == expected
