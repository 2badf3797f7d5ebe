"""Index templates and lifecycle policies of the source data streams, as data.

Field types follow Elastic's `ti_anomali` package, except that `anomali.threatstream.id` and
`update_id` are `keyword` (the documents hold them as decimal strings, exact beyond 2^53).
Mappings are not dynamic: a field the templates do not name stays in `_source` but is not
indexed, so unknown input can never grow the mapping without bound or conflict with it.
"""

from __future__ import annotations

from typing import Any

TEMPLATE_VERSION = 1
SOURCE_RETENTION_DAYS = 5
# Each backing index is rolled over daily and deleted once it is a day older than the retention,
# so every document is kept for at least SOURCE_RETENTION_DAYS.
ROLLOVER_AGE = "1d"
DELETE_AGE = f"{SOURCE_RETENTION_DAYS + 1}d"
LIFECYCLE_POLICY_ID = "logs-ti_anomali-source-5d"

DATASETS = ("intelligence", "threatstream")

_COMMON_FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "data_stream.type": "keyword",
    "data_stream.dataset": "keyword",
    "data_stream.namespace": "keyword",
    "ecs.version": "keyword",
    "error.message": "text",
    "event.category": "keyword",
    "event.created": "date",
    "event.dataset": "keyword",
    "event.ingested": "date",
    "event.kind": "keyword",
    "event.module": "keyword",
    "event.original": "original",
    "event.severity": "long",
    "event.type": "keyword",
    "input.type": "keyword",
    "labels.is_ioc_transform_source": "keyword",
    "related.hash": "keyword",
    "related.hosts": "keyword",
    "related.ip": "ip",
    "related.user": "keyword",
    "tags": "keyword",
    "threat.feed.dashboard_id": "keyword",
    "threat.feed.name": "keyword",
    "threat.indicator.as.number": "long",
    "threat.indicator.as.organization.name": "keyword",
    "threat.indicator.confidence": "keyword",
    "threat.indicator.email.address": "keyword",
    "threat.indicator.file.hash.md5": "keyword",
    "threat.indicator.file.hash.sha1": "keyword",
    "threat.indicator.file.hash.sha256": "keyword",
    "threat.indicator.file.hash.sha384": "keyword",
    "threat.indicator.file.hash.sha512": "keyword",
    "threat.indicator.file.hash.ssdeep": "keyword",
    "threat.indicator.file.name": "keyword",
    "threat.indicator.file.path": "keyword",
    "threat.indicator.first_seen": "date",
    "threat.indicator.geo.city_name": "keyword",
    "threat.indicator.geo.continent_name": "keyword",
    "threat.indicator.geo.country_iso_code": "keyword",
    "threat.indicator.geo.country_name": "keyword",
    "threat.indicator.geo.location": "geo_point",
    "threat.indicator.geo.region_iso_code": "keyword",
    "threat.indicator.geo.region_name": "keyword",
    "threat.indicator.ip": "ip",
    "threat.indicator.last_seen": "date",
    "threat.indicator.marking.tlp": "keyword",
    "threat.indicator.modified_at": "date",
    "threat.indicator.name": "keyword",
    "threat.indicator.provider": "keyword",
    "threat.indicator.type": "keyword",
    "threat.indicator.url.domain": "keyword",
    "threat.indicator.url.extension": "keyword",
    "threat.indicator.url.fragment": "keyword",
    "threat.indicator.url.full": "wildcard_or_keyword",
    "threat.indicator.url.original": "wildcard_or_keyword",
    "threat.indicator.url.password": "keyword",
    "threat.indicator.url.path": "keyword",
    "threat.indicator.url.port": "long",
    "threat.indicator.url.query": "keyword",
    "threat.indicator.url.scheme": "keyword",
    "threat.indicator.url.username": "keyword",
}

_INTELLIGENCE_FIELDS: dict[str, str] = {
    "anomali.threatstream.can_add_public_tags": "boolean",
    "anomali.threatstream.confidence": "long",
    "anomali.threatstream.deletion_scheduled_at": "date",
    "anomali.threatstream.expiration_ts": "date",
    "anomali.threatstream.feed_id": "long",
    "anomali.threatstream.id": "keyword",
    "anomali.threatstream.import_session_id": "long",
    "anomali.threatstream.is_anonymous": "boolean",
    "anomali.threatstream.is_editable": "boolean",
    "anomali.threatstream.is_public": "boolean",
    "anomali.threatstream.itype": "keyword",
    "anomali.threatstream.meta.maltype": "keyword",
    "anomali.threatstream.meta.registrant.address": "keyword",
    "anomali.threatstream.meta.registrant.email": "keyword",
    "anomali.threatstream.meta.registrant.name": "keyword",
    "anomali.threatstream.meta.registrant.org": "keyword",
    "anomali.threatstream.meta.registrant.phone": "keyword",
    "anomali.threatstream.meta.registration_created": "date",
    "anomali.threatstream.meta.registration_updated": "date",
    "anomali.threatstream.meta.severity": "keyword",
    "anomali.threatstream.owner_organization_id": "long",
    "anomali.threatstream.rdns": "keyword",
    "anomali.threatstream.retina_confidence": "long",
    "anomali.threatstream.source_created": "date",
    "anomali.threatstream.source_modified": "date",
    "anomali.threatstream.source_reported_confidence": "long",
    "anomali.threatstream.status": "keyword",
    "anomali.threatstream.threat_type": "keyword",
    "anomali.threatstream.threatscore": "keyword",
    "anomali.threatstream.trusted_circle_ids": "long",
    "anomali.threatstream.type": "keyword",
    "anomali.threatstream.update_id": "keyword",
    "anomali.threatstream.uuid": "keyword",
    "anomali.threatstream.value": "keyword",
}

_THREATSTREAM_FIELDS: dict[str, str] = {
    "anomali.threatstream.added_at": "date",
    "anomali.threatstream.classification": "keyword",
    "anomali.threatstream.confidence": "short",
    "anomali.threatstream.deleted_at": "date",
    "anomali.threatstream.detail2": "text",
    "anomali.threatstream.id": "keyword",
    "anomali.threatstream.import_session_id": "keyword",
    "anomali.threatstream.itype": "keyword",
    "anomali.threatstream.maltype": "wildcard_or_keyword",
    "anomali.threatstream.md5": "keyword",
    "anomali.threatstream.resource_uri": "keyword",
    "anomali.threatstream.severity": "keyword",
    "anomali.threatstream.source": "keyword",
    "anomali.threatstream.source_feed_id": "keyword",
    "anomali.threatstream.state": "keyword",
    "anomali.threatstream.trusted_circle_ids": "keyword",
    "anomali.threatstream.update_id": "keyword",
    "anomali.threatstream.url": "keyword",
    "anomali.threatstream.value_type": "keyword",
}

FIELDS_BY_DATASET = {
    "intelligence": {**_COMMON_FIELDS, **_INTELLIGENCE_FIELDS},
    "threatstream": {**_COMMON_FIELDS, **_THREATSTREAM_FIELDS},
}


def data_stream_name(dataset: str, namespace: str) -> str:
    """Return the source data stream of a dataset, e.g. `logs-ti_anomali.intelligence-default`."""
    return f"logs-ti_anomali.{dataset}-{namespace}"


def _field_mapping(kind: str, engine_kind: str) -> dict[str, Any]:
    if kind == "original":
        # Kept for reading only: never searched, so neither indexed nor stored twice.
        return {"type": "keyword", "index": False, "doc_values": False}
    if kind == "wildcard_or_keyword":
        # NOTE: OpenSearch 2.15 added `wildcard`; Amazon OpenSearch Service domains on older
        # versions reject it, so OpenSearch gets `keyword` with the ECS length limit.
        if engine_kind == "elasticsearch":
            return {"type": "wildcard"}
        return {"type": "keyword", "ignore_above": 8191}
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": 1024}
    return {"type": kind}


def build_properties(fields: dict[str, str], engine_kind: str) -> dict[str, Any]:
    """Turn dotted field names into the nested `properties` tree of a mapping."""
    root: dict[str, Any] = {}
    for dotted, kind in sorted(fields.items()):
        node = root
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = _field_mapping(kind, engine_kind)
    return root


def source_index_template(dataset: str, engine_kind: str) -> dict[str, Any]:
    """Return the composable index template of a source data stream (all namespaces)."""
    settings: dict[str, Any] = {"index.mapping.total_fields.limit": 1000}
    if engine_kind == "elasticsearch":
        settings["index.lifecycle.name"] = LIFECYCLE_POLICY_ID
    return {
        "index_patterns": [f"logs-ti_anomali.{dataset}-*"],
        "data_stream": {},
        "priority": 250,
        "template": {
            "settings": settings,
            "mappings": {
                "dynamic": False,
                "properties": build_properties(FIELDS_BY_DATASET[dataset], engine_kind),
            },
        },
        "_meta": {"managed_by": "ti-anomali", "template_version": TEMPLATE_VERSION},
        "version": TEMPLATE_VERSION,
    }


def opensearch_ism_policy() -> dict[str, Any]:
    """Return the ISM policy that rolls source backing indices daily and deletes them after retention."""
    return {
        "policy": {
            "description": "ti-anomali source data streams: daily rollover, deleted after retention",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [{"rollover": {"min_index_age": ROLLOVER_AGE}}],
                    "transitions": [{"state_name": "delete", "conditions": {"min_index_age": DELETE_AGE}}],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": [".ds-logs-ti_anomali.*"], "priority": 100}],
        }
    }


def elasticsearch_ilm_policy() -> dict[str, Any]:
    """Return the ILM policy: daily rollover, deletion once a backing index has been rolled over for 5 days."""
    return {
        "policy": {
            "phases": {
                "hot": {"actions": {"rollover": {"max_age": ROLLOVER_AGE, "max_primary_shard_size": "50gb"}}},
                "delete": {"min_age": f"{SOURCE_RETENTION_DAYS}d", "actions": {"delete": {}}},
            },
            "_meta": {"managed_by": "ti-anomali"},
        }
    }


# The latest index: one document per (dataset, indicator id), behind an alias that detection rules
# read. Raise LATEST_VERSION whenever its mapping changes; MaintainLatest then moves the alias to a
# new index and removes the old one.
LATEST_VERSION = 1
TOMBSTONE_INDEX = "ti_anomali-latest-tombstones"


def latest_alias(dataset: str) -> str:
    """Return the alias detection rules read, e.g. `logs-ti_anomali_latest.intelligence`."""
    return f"logs-ti_anomali_latest.{dataset}"


def latest_index(dataset: str, version: int = LATEST_VERSION) -> str:
    """Return the versioned index behind the latest alias."""
    return f"{latest_alias(dataset)}-{version}"


def latest_index_body(dataset: str, engine_kind: str, *, hidden: bool) -> dict[str, Any]:
    """Return the settings and mappings of a latest index; `hidden` keeps it out of wildcards while it fills."""
    return {
        "settings": {"index.hidden": hidden, "index.mapping.total_fields.limit": 1000},
        "mappings": {
            "dynamic": False,
            "_meta": {"managed_by": "ti-anomali", "latest_version": LATEST_VERSION},
            "properties": build_properties(FIELDS_BY_DATASET[dataset], engine_kind),
        },
    }


def tombstone_index_body() -> dict[str, Any]:
    """Return the mapping of the tombstone index: the newest update of each indicator that left the latest index."""
    return {
        "settings": {"index.hidden": True},
        "mappings": {
            "dynamic": False,
            "properties": {
                "dataset": {"type": "keyword"},
                "indicator_id": {"type": "keyword"},
                "update_id": {"type": "keyword"},
                "reason": {"type": "keyword"},
                "removed_at": {"type": "date"},
            },
        },
    }
