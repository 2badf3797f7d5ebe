"""Latest maintenance: source documents per second reflected into the latest index, and the expiry sweep.

The product side runs MaintainLatest (`LatestJob`) once over a source data stream that contains the
benchmark documents, so the run reads them all, keeps the newest update of each indicator, and
upserts or removes it. The latest index and alias exist before the timed run, as they do in
steady operation. The limit indexes the same documents, already serialized, into a plain index
with the latest index's mapping, in requests of the function's batch size, then refreshes it
once, as the run does at its end.

The sweep loads 100,000 expired documents into the latest index and times
`LatestStore.sweep_expired`: it reads their ids, writes a tombstone for each, and deletes them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.corpus import Corpus
from bench.mapping import default_options
from bench.measure import compare, median, progress, stopwatch
from bench.stack import Stack, delete_data_streams, delete_indices
from local import aws as local_aws
from ti_anomali import clock as clocks
from ti_anomali.adapters.latest_store import LatestStore, latest_document_id
from ti_anomali.adapters.search_engine import DataStreamSetup, build_client, bulk_create_body
from ti_anomali.clock import ManualClock
from ti_anomali.engine import templates
from ti_anomali.fetch import map_page
from ti_anomali.latest import LatestJob
from ti_anomali.latest_rules import EXPIRY_GRACE, INTELLIGENCE, indicator_key
from ti_anomali.retry import no_deadline
from ti_anomali.runtime import build_latest_dependencies
from ti_anomali.settings import EngineSettings, LatestSettings

NAMESPACE = "benchlatest"
SOURCE_INDEX = templates.data_stream_name("intelligence", NAMESPACE)
SOURCE_PATTERN = "logs-ti_anomali.intelligence-*"
LATEST_PATTERN = f"{templates.latest_alias('intelligence')}-*"
SOURCE_WRITE_CHUNK = 1000
SWEEP_LOAD_CHUNK = 5000
PAST_SYNC_DELAY = timedelta(seconds=61)
PAST_EVERY_DELETION = timedelta(days=400)


class LatestBenchError(RuntimeError):
    """A benchmark round did not do what it was set up to do."""


def run(
    stack: Stack, corpus: Corpus, documents_per_round: int, rounds: int, sweep_documents: int, sweep_rounds: int
) -> dict[str, Any]:
    """Compare MaintainLatest with raw `_bulk`, then time the sweep of `sweep_documents` expired documents."""
    previous_clock = clocks.current()
    clock = ManualClock(datetime.now(UTC))
    clocks.use(clock)
    try:
        return _run(stack, corpus, clock, documents_per_round, rounds, sweep_documents, sweep_rounds)
    finally:
        clocks.use(previous_clock)


def _run(
    stack: Stack,
    corpus: Corpus,
    clock: ManualClock,
    documents_per_round: int,
    rounds: int,
    sweep_documents: int,
    sweep_rounds: int,
) -> dict[str, Any]:
    client = build_client(EngineSettings.from_environment(stack.latest_environment("unused")))
    options = replace(default_options(), now=clock.now(), namespace=NAMESPACE)
    source, _, _ = map_page(corpus.first_objects(documents_per_round), options)
    source_documents = [document for _, document in source]
    keyed_documents = [document for document in source_documents if indicator_key(document) is not None]
    batch_size = LatestSettings.from_environment(stack.latest_environment("unused")).batch_size

    def product(_: int) -> float:
        _reset(client)
        _write_source(client, clock, source)
        LatestStore(client, INTELLIGENCE, "opensearch", clock, no_deadline).ensure_index()
        clock.advance(PAST_SYNC_DELAY)
        environment = stack.latest_environment(stack.create_table())
        with local_aws.environment(environment):
            job = LatestJob(
                build_latest_dependencies(LatestSettings.from_environment(environment)),
                no_deadline,
                owner=str(uuid.uuid4()),
            )
            with stopwatch() as elapsed:
                (outcome,) = job.run()
        if outcome.source_documents != len(source_documents):
            raise LatestBenchError(f"the run read {outcome.source_documents} of {len(source_documents)} documents")
        return len(source_documents) / elapsed[0]

    def limit(number: int) -> float:
        index = f"bench-latest-raw-{'warmup' if number < 0 else number}"
        delete_indices(client, index)
        client.indices.create(index=index, body=templates.latest_index_body("intelligence", "opensearch", hidden=False))
        bodies = _index_bodies(index, [_as_latest(document) for document in source_documents], batch_size)
        with stopwatch() as elapsed:
            for body in bodies:
                if client.bulk(body=body)["errors"]:
                    raise LatestBenchError(f"raw _bulk to {index} rejected documents")
            client.indices.refresh(index=index)
        delete_indices(client, index)
        return len(source_documents) / elapsed[0]

    comparison = compare(rounds, product, limit, "source documents/s", "latest")
    sweep = _sweep(client, clock, keyed_documents, sweep_documents, sweep_rounds)
    _reset(client)
    return {
        "latest_vs_raw_bulk": {
            **comparison.as_dict(),
            "source_documents_per_round": len(source_documents),
            "distinct_indicators": len({_indicator_id(document) for document in source_documents}),
            "batch_size": batch_size,
        },
        "sweep": sweep,
    }


def _reset(client: Any) -> None:
    delete_data_streams(client, SOURCE_PATTERN)
    delete_indices(client, LATEST_PATTERN)
    delete_indices(client, templates.TOMBSTONE_INDEX)


def _write_source(client: Any, clock: ManualClock, documents: list[tuple[str, dict[str, Any]]]) -> None:
    """Write the `(id, document)` pairs as the fetch function does, 1000 per request, a few ms apart."""
    DataStreamSetup(client, "opensearch").ensure("intelligence")
    for start in range(0, len(documents), SOURCE_WRITE_CHUNK):
        chunk = [(doc_id, dict(document)) for doc_id, document in documents[start : start + SOURCE_WRITE_CHUNK]]
        ingested = clock.now().isoformat().replace("+00:00", "Z")
        if client.bulk(body=bulk_create_body(SOURCE_INDEX, chunk, ingested))["errors"]:
            raise LatestBenchError(f"writing the source documents to {SOURCE_INDEX} failed")
        clock.advance(timedelta(milliseconds=20))
    client.indices.refresh(index=SOURCE_INDEX)


def _sweep(client: Any, clock: ManualClock, documents: list[dict[str, Any]], count: int, rounds: int) -> dict[str, Any]:
    """Time `LatestStore.sweep_expired` over `count` expired documents, `rounds` times."""
    seconds: list[float] = []
    for number in range(rounds):
        _reset(client)
        store = LatestStore(client, INTELLIGENCE, "opensearch", clock, no_deadline)
        store.ensure_index()
        _load_expired(client, store.index, documents, count)
        with stopwatch() as elapsed:
            deleted = store.sweep_expired(clock.now() + PAST_EVERY_DELETION, EXPIRY_GRACE)
        if deleted != count:
            raise LatestBenchError(f"the sweep deleted {deleted} of {count} documents")
        seconds.append(elapsed[0])
        progress(f"sweep round {number + 1}/{rounds}", documents=count, seconds=f"{elapsed[0]:.2f}")
    return {
        "seconds": round(median(seconds), 2),
        "documents": count,
        "rounds": rounds,
        "seconds_rounds": [round(value, 2) for value in seconds],
    }


def _load_expired(client: Any, index: str, documents: list[dict[str, Any]], count: int) -> None:
    """Index `count` latest documents with distinct indicator ids, cycling through the keyed `documents`."""
    for start in range(0, count, SWEEP_LOAD_CHUNK):
        lines: list[str] = []
        for position in range(start, min(start + SWEEP_LOAD_CHUNK, count)):
            document = _as_latest(documents[position % len(documents)])
            threatstream = {**document["anomali"]["threatstream"], "id": f"sweep{position}"}
            document["anomali"] = {**document["anomali"], "threatstream": threatstream}
            doc_id = latest_document_id(INTELLIGENCE, threatstream["id"])
            lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}))
            lines.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
        if client.bulk(body="\n".join(lines) + "\n")["errors"]:
            raise LatestBenchError(f"loading expired documents into {index} failed")
    client.indices.refresh(index=index)


def _index_bodies(index: str, documents: list[dict[str, Any]], batch_size: int) -> list[bytes]:
    bodies: list[bytes] = []
    for start in range(0, len(documents), batch_size):
        lines: list[str] = []
        for document in documents[start : start + batch_size]:
            doc_id = latest_document_id(INTELLIGENCE, _indicator_id(document))
            lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}))
            lines.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies


def _as_latest(document: dict[str, Any]) -> dict[str, Any]:
    """Return a source document as the latest index keeps it."""
    return {**document, "labels": {**document.get("labels", {}), "is_ioc_transform_source": "false"}}


def _indicator_id(document: dict[str, Any]) -> str:
    threatstream = document.get("anomali", {}).get("threatstream", {})
    return str(threatstream.get("id", "unkeyed"))
