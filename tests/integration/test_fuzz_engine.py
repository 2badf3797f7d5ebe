"""Fuzzing: whatever the API sends, every document is stored by the engine or dead-lettered.

The objects are built from real field names with values of any JSON type, unknown fields,
deep nesting and long strings. Each example is one bulk write into a real data stream.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opensearchpy import OpenSearch

from ti_anomali.adapters.dead_letters import DeadLetterStore
from ti_anomali.adapters.search_engine import BulkWriter, DataStreamSetup
from ti_anomali.clock import ManualClock
from ti_anomali.ecs.intelligence import MappingOptions, document_id, map_intelligence
from ti_anomali.engine import templates
from ti_anomali.retry import no_deadline

from .conftest import Stack

pytestmark = pytest.mark.integration

FIELDS = [
    "id",
    "update_id",
    "value",
    "itype",
    "type",
    "status",
    "tlp",
    "confidence",
    "source",
    "meta",
    "tags",
    "expiration_ts",
    "created_ts",
    "modified_ts",
    "ip",
    "asn",
    "org",
    "country",
    "latitude",
    "longitude",
    "is_public",
    "trusted_circle_ids",
    "feed_id",
    "import_session_id",
    "rdns",
    "subtype",
    "threat_type",
    "retina_confidence",
    "source_reported_confidence",
    "owner_organization_id",
    "uuid",
    "is_anonymous",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.integers(min_value=5000, max_value=40000).map(lambda size: "x" * size),
    st.sampled_from(["9999-12-31T00:00:00.000Z", "0001-01-01T00:00:00Z", "1.2.3.4", "::1", "mal_ip", "RED", ""]),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
OBJECTS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=20)), JSON, max_size=12)


@pytest.fixture
def fuzz_target(stack: Stack, engine: OpenSearch, manual_clock: ManualClock) -> tuple[BulkWriter, DeadLetterStore, str]:
    DataStreamSetup(engine, "opensearch").ensure("intelligence")
    dead_letters = DeadLetterStore(stack.aws.client("s3"), stack.aws.dead_letter_bucket)
    return BulkWriter(engine, dead_letters, manual_clock, no_deadline), dead_letters, stack.data_stream


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(objects=st.lists(OBJECTS, min_size=1, max_size=10))
def test_every_document_stored_or_dead_lettered(
    fuzz_target: tuple[BulkWriter, DeadLetterStore, str], objects: list[dict[str, Any]]
) -> None:
    writer, _, index = fuzz_target
    options = MappingOptions(now=datetime.now(UTC))
    documents = []
    for obj in objects:
        document = map_intelligence(obj, options)
        # A unique id per example: identical generated objects must not count as replays here.
        documents.append((f"{document_id(document)}-{uuid.uuid4().hex}", document))

    result = writer.write(index, documents)

    assert result.accounted == len(documents)
    assert result.created + result.dead_lettered == len(documents)


def test_fuzzed_fields_do_not_grow_mapping(
    fuzz_target: tuple[BulkWriter, DeadLetterStore, str], engine: OpenSearch
) -> None:
    writer, _, index = fuzz_target
    odd = {f"unknown_{i}": {"deep": {"deeper": i}} for i in range(300)}
    document = map_intelligence(
        {"id": 1, "update_id": 2, "itype": "mal_ip", "ip": "1.2.3.4", **odd}, MappingOptions(now=datetime.now(UTC))
    )
    writer.write(index, [("fuzz-mapping", document)])

    mapping = engine.indices.get_mapping(index=index)
    (backing,) = mapping.values()
    fields = set(_leaf_fields(backing["mappings"]["properties"]))

    assert fields <= set(templates.FIELDS_BY_DATASET["intelligence"])


def _leaf_fields(properties: dict[str, Any], prefix: str = "") -> list[str]:
    leaves = []
    for name, spec in properties.items():
        if "properties" in spec:
            leaves.extend(_leaf_fields(spec["properties"], f"{prefix}{name}."))
        else:
            leaves.append(f"{prefix}{name}")
    return leaves
