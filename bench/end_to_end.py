"""Fetch end to end: indicators per second through the fetch handler, against raw `_bulk` of the same.

The product side invokes FetchIntelligence, loaded as a new Lambda container would load it, with
a page budget that covers the whole corpus. It fetches each page from the simulator, maps it,
writes it with `_bulk`, and commits its cursor in moto. Every round writes to a new namespace, so
each starts from an empty cursor and an empty data stream. The limit sends the same documents,
already mapped and serialized, to a new data stream of the same template, with the client the
function builds and the same 1000 documents per request. The objects are fetched from the
simulator once beforehand and mapped untimed. Loading the handler is not timed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.corpus import PAGE_SIZE
from bench.mapping import default_options
from bench.measure import compare, stopwatch
from bench.stack import Stack, delete_data_streams
from local import aws as local_aws
from local.functions import LambdaContext, load_handler
from ti_anomali.adapters.search_engine import DataStreamSetup, build_client, bulk_create_body
from ti_anomali.engine.templates import data_stream_name
from ti_anomali.fetch import map_page
from ti_anomali.settings import EngineSettings

INVOCATION_TIMEOUT_SECONDS = 900


class BulkWriteFailed(RuntimeError):
    """A raw `_bulk` request of the limit side rejected documents."""


def run(stack: Stack, indicators: int, rounds: int) -> dict[str, Any]:
    """Compare the fetch handler with raw `_bulk`, writing `indicators` documents per round."""
    pages = -(-indicators // PAGE_SIZE)
    client = build_client(EngineSettings.from_environment(stack.fetch_environment("benchraw")))
    DataStreamSetup(client, "opensearch").ensure("intelligence")
    documents, _, _ = map_page(stack.download_objects(indicators), default_options())

    def product(number: int) -> float:
        namespace = _namespace("benchfetch", number)
        with local_aws.environment(stack.fetch_environment(namespace)):
            handler = load_handler("fetch_intelligence")
            context = LambdaContext("FetchIntelligence", timeout_seconds=INVOCATION_TIMEOUT_SECONDS)
            with stopwatch() as elapsed:
                outcome = handler.lambda_handler({"page_budget": pages}, context)
        delete_data_streams(client, data_stream_name("intelligence", namespace))
        if outcome["indicators_created"] != indicators:
            raise RuntimeError(f"the fetch handler created {outcome['indicators_created']} of {indicators} documents")
        return indicators / elapsed[0]

    def limit(number: int) -> float:
        index = data_stream_name("intelligence", _namespace("benchraw", number))
        ingested = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        bodies = [
            bulk_create_body(index, documents[start : start + PAGE_SIZE], ingested)
            for start in range(0, len(documents), PAGE_SIZE)
        ]
        with stopwatch() as elapsed:
            for body in bodies:
                response = client.bulk(body=body)
                if response["errors"]:
                    raise BulkWriteFailed(f"raw _bulk to {index} rejected documents")
        delete_data_streams(client, index)
        return indicators / elapsed[0]

    comparison = compare(rounds, product, limit, "indicators/s", "fetch")
    return {
        **comparison.as_dict(),
        "indicators_per_round": indicators,
        "pages_per_round": pages,
        "documents_per_bulk_request": PAGE_SIZE,
        "engine": f"OpenSearch {stack.engine_version}, one node on 127.0.0.1",
    }


def _namespace(prefix: str, number: int) -> str:
    return f"{prefix}warmup" if number < 0 else f"{prefix}{number}"
