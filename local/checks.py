"""Ground-truth checks over a running engine: exact counts by (indicator id, update_id)."""

from __future__ import annotations

from typing import Any

SOURCE_PATTERN = "logs-ti_anomali.intelligence-*"


def count_documents(client: Any, index: str) -> int:
    """Return the number of documents in `index` after a refresh, 0 when it does not exist."""
    client.indices.refresh(index=index, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    response = client.count(index=index, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    return int(response["count"])


def updates_by_key(client: Any, index: str) -> dict[tuple[str, str], int]:
    """Return how many documents hold each (indicator id, update_id), across all backing indices."""
    client.indices.refresh(index=index, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    counts: dict[tuple[str, str], int] = {}
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {
            "size": 5000,
            "sources": [
                {"id": {"terms": {"field": "anomali.threatstream.id"}}},
                {"update_id": {"terms": {"field": "anomali.threatstream.update_id"}}},
            ],
        }
        if after:
            composite["after"] = after
        response = client.search(
            index=index,
            body={"size": 0, "aggs": {"keys": {"composite": composite}}},
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
        aggregation = response.get("aggregations", {}).get("keys")
        if not aggregation or not aggregation["buckets"]:
            return counts
        for bucket in aggregation["buckets"]:
            counts[(bucket["key"]["id"], bucket["key"]["update_id"])] = bucket["doc_count"]
        after = aggregation.get("after_key")
        if after is None:
            return counts
