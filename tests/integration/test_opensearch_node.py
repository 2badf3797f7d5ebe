"""The local OpenSearch node: start, health, bundled modules, restart, stop."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from local.opensearch_node import OPENSEARCH_VERSION, RunningNode, start_node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node() -> Iterator[RunningNode]:
    with start_node() as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def port_accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_node_is_green_on_loopback(node: RunningNode, http: requests.Session) -> None:
    assert node.url == f"http://127.0.0.1:{node.http_port}"
    assert node.version == OPENSEARCH_VERSION

    health = http.get(f"{node.url}/_cluster/health", timeout=10).json()
    assert health["status"] == "green"
    assert health["number_of_nodes"] == 1

    settings = http.get(f"{node.url}/_nodes/_local/settings", timeout=10).json()
    (node_info,) = settings["nodes"].values()
    assert node_info["settings"]["network"]["host"] == "127.0.0.1"
    assert node_info["settings"]["discovery"]["type"] == "single-node"


def test_ism_responds_when_installed(node: RunningNode, http: requests.Session) -> None:
    response = http.get(f"{node.url}/_plugins/_ism/policies", timeout=10)
    if node.has_ism:
        assert response.status_code == 200, response.text
    else:
        # Without the plugin OpenSearch 2.19 has no REST handler for the path.
        assert response.status_code == 400, response.text
        assert "no handler found" in response.text


def test_bundled_modules_are_loaded(node: RunningNode, http: requests.Session) -> None:
    plugins = http.get(f"{node.url}/_nodes/_local/plugins", timeout=10).json()
    (node_info,) = plugins["nodes"].values()
    module_names = {module["name"] for module in node_info["modules"]}
    assert {"lang-painless", "reindex", "mapper-extras", "transport-netty4"} <= module_names


def test_delete_by_query_and_scripts_work(node: RunningNode, http: requests.Session) -> None:
    index = f"{node.url}/node-modules-check"
    created = http.put(
        index,
        json={"mappings": {"properties": {"score": {"type": "scaled_float", "scaling_factor": 100}}}},
        timeout=30,
    )
    assert created.status_code == 200, created.text

    for doc_id, score in (("a", 1.5), ("b", 2.5)):
        indexed = http.put(f"{index}/_doc/{doc_id}?refresh=true", json={"score": score}, timeout=10)
        assert indexed.status_code == 201, indexed.text

    updated = http.post(
        f"{index}/_update/a?refresh=true",
        json={"script": {"source": "ctx._source.score += params.step", "params": {"step": 1}}},
        timeout=10,
    )
    assert updated.json()["result"] == "updated", updated.text

    deleted = http.post(
        f"{index}/_delete_by_query?refresh=true", json={"query": {"range": {"score": {"gte": 2}}}}, timeout=30
    )
    assert deleted.json()["deleted"] == 2, deleted.text


def test_remote_reindex_is_rejected(node: RunningNode, http: requests.Session) -> None:
    response = http.post(
        f"{node.url}/_reindex",
        json={
            "source": {"remote": {"host": "http://127.0.0.1:9"}, "index": "any"},
            "dest": {"index": "copy"},
        },
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "allowlist" in response.text


def test_restart_keeps_port_and_data(http: requests.Session) -> None:
    with start_node() as restarting:
        port = restarting.http_port
        stored = http.put(f"{restarting.url}/kept/_doc/1?refresh=true", json={"value": 1}, timeout=30)
        assert stored.status_code == 201, stored.text
        first_pid = restarting.pid

        restarting.restart()

        assert restarting.http_port == port
        assert restarting.pid != first_pid
        fetched = http.get(f"{restarting.url}/kept/_doc/1", timeout=10).json()
        assert fetched["_source"] == {"value": 1}

        restarting.stop()
        assert not restarting.is_running()
        assert not port_accepts_connections(port)

        restarting.start()
        assert http.get(f"{restarting.url}/kept/_doc/1", timeout=10).json()["found"]


def test_two_nodes_run_side_by_side(node: RunningNode, http: requests.Session) -> None:
    with start_node() as second:
        assert {second.http_port, second.transport_port}.isdisjoint({node.http_port, node.transport_port})
        assert second.base_dir != node.base_dir

        for running in (node, second):
            health = http.get(f"{running.url}/_cluster/health", timeout=10).json()
            assert health["status"] in ("green", "yellow")

        first_cluster = http.get(node.url, timeout=10).json()["cluster_uuid"]
        second_cluster = http.get(second.url, timeout=10).json()["cluster_uuid"]
        assert first_cluster != second_cluster


def test_close_stops_node_and_removes_folder() -> None:
    closing = start_node()
    port = closing.http_port
    base_dir = closing.base_dir
    assert port_accepts_connections(port)

    closing.close()

    assert not closing.is_running()
    assert not port_accepts_connections(port)
    assert not base_dir.exists()
