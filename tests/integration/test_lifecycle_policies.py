"""Lifecycle policy requests, against recorded responses.

The local OpenSearch node has no Index State Management plugin (Maven Central does not serve
its zip), and no Elasticsearch runs here, so these tests check what the client sends to a
loopback server that plays recorded responses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ti_anomali.adapters.search_engine import DataStreamSetup
from ti_anomali.engine import templates

RECORDED = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "ism.json").read_text())
POLICY_PATH = f"/_plugins/_ism/policies/{templates.LIFECYCLE_POLICY_ID}"


class RecordedEngine:
    """A loopback server that responds to each (method, path) with a queued recorded response."""

    def __init__(self, script: dict[tuple[str, str], list[str]]) -> None:
        self.script = {key: list(names) for key, names in script.items()}
        self.requests: list[tuple[str, str, Any]] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                engine.requests.append((self.command, path, json.loads(raw) if raw else None))
                names = engine.script.get((self.command, path)) or ["template_acknowledged"]
                recorded = RECORDED[names.pop(0) if len(names) > 1 else names[0]]
                body = json.dumps(recorded["body"]).encode()
                self.send_response(recorded["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def recorded() -> Iterator[Any]:
    engines: list[RecordedEngine] = []

    def start(script: dict[tuple[str, str], list[str]]) -> RecordedEngine:
        engines.append(RecordedEngine(script))
        return engines[-1]

    yield start
    for engine in engines:
        engine.server.shutdown()


def test_missing_ism_policy_created_then_template(recorded: Any) -> None:
    engine = recorded({("GET", POLICY_PATH): ["get_missing"], ("PUT", POLICY_PATH): ["put_created"]})

    DataStreamSetup(OpenSearch(hosts=[engine.url]), "opensearch").ensure("intelligence")

    methods = [(method, path) for method, path, _ in engine.requests]
    assert methods == [
        ("GET", POLICY_PATH),
        ("PUT", POLICY_PATH),
        ("PUT", "/_index_template/logs-ti_anomali.intelligence"),
    ]
    policy = engine.requests[1][2]["policy"]
    assert policy["ism_template"][0]["index_patterns"] == [".ds-logs-ti_anomali.*"]
    assert [state["name"] for state in policy["states"]] == ["hot", "delete"]
    assert policy["states"][0]["transitions"][0]["conditions"] == {"min_index_age": "6d"}
    template = engine.requests[2][2]
    assert template["data_stream"] == {}
    assert "index.lifecycle.name" not in template["template"]["settings"]


def test_existing_ism_policy_left_alone(recorded: Any) -> None:
    engine = recorded({("GET", POLICY_PATH): ["get_existing"]})

    DataStreamSetup(OpenSearch(hosts=[engine.url]), "opensearch").ensure("intelligence")

    assert ("PUT", POLICY_PATH) not in [(method, path) for method, path, _ in engine.requests]


def test_policy_created_concurrently_is_fine(recorded: Any) -> None:
    engine = recorded({("GET", POLICY_PATH): ["get_missing"], ("PUT", POLICY_PATH): ["put_conflict"]})

    DataStreamSetup(OpenSearch(hosts=[engine.url]), "opensearch").ensure("threatstream")

    assert engine.requests[-1][1] == "/_index_template/logs-ti_anomali.threatstream"


def test_setup_runs_once_per_container(recorded: Any) -> None:
    engine = recorded({("GET", POLICY_PATH): ["get_existing"]})
    setup = DataStreamSetup(OpenSearch(hosts=[engine.url]), "opensearch")

    setup.ensure("intelligence")
    setup.ensure("intelligence")

    assert len(engine.requests) == 2


def test_elasticsearch_gets_ilm_policy_and_setting(recorded: Any) -> None:
    ilm_path = f"/_ilm/policy/{templates.LIFECYCLE_POLICY_ID}"
    engine = recorded({("PUT", ilm_path): ["ilm_acknowledged"]})

    DataStreamSetup(OpenSearch(hosts=[engine.url]), "elasticsearch").ensure("intelligence")

    (ilm_request, template_request) = engine.requests
    assert ilm_request[:2] == ("PUT", ilm_path)
    phases = ilm_request[2]["policy"]["phases"]
    assert phases["delete"]["min_age"] == "5d"
    assert phases["hot"]["actions"]["rollover"]["max_age"] == "1d"
    settings = template_request[2]["template"]["settings"]
    assert settings["index.lifecycle.name"] == templates.LIFECYCLE_POLICY_ID
    url_mapping = template_request[2]["template"]["mappings"]["properties"]["threat"]["properties"]["indicator"]
    assert url_mapping["properties"]["url"]["properties"]["full"] == {"type": "wildcard"}
