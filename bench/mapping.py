"""Mapping: indicators per second through the intelligence mapper, against the bare JSON round trip.

Both sides parse each API page with the product's page parser and serialize into the `_bulk`
body the writer sends. The product maps every object between the two (`fetch.map_page`); the
limit serializes the parsed objects as they are. So the ratio is the share of the JSON round
trip's speed that the mapping keeps.
"""

from __future__ import annotations

import cProfile
import importlib.util
import io
import pstats
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.corpus import Corpus
from bench.measure import compare, progress, quiet_collector, stopwatch
from ti_anomali.adapters.search_engine import bulk_create_body
from ti_anomali.adapters.threatstream import parse_page
from ti_anomali.ecs.intelligence import MappingOptions
from ti_anomali.fetch import map_page
from ti_anomali.settings import FetchSettings

INDEX = "logs-ti_anomali.intelligence-default"
INGESTED = "2026-01-01T00:00:00.000000Z"
# Every variable the fetch settings require; all others keep the function's defaults.
REQUIRED_SETTINGS = {
    "THREATSTREAM_SECRET_NAME": "bench",
    "CURSOR_TABLE_NAME": "bench",
    "DEAD_LETTER_BUCKET": "bench",
    "ENGINE_URL": "http://127.0.0.1:9200",
    "ENGINE_AUTH": "none",
}


def default_options() -> MappingOptions:
    """Return the mapping options of a fetch function deployed with default settings."""
    settings = FetchSettings.from_environment(REQUIRED_SETTINGS)
    return MappingOptions(
        now=datetime.now(UTC),
        ioc_duration=settings.ioc_duration,
        tags=settings.tags,
        preserve_original=settings.preserve_original_event,
        namespace=settings.engine.namespace,
    )


def map_pages(corpus: Corpus, options: MappingOptions) -> int:
    """Parse, map and serialize every page as the fetch function does; return the bytes produced."""
    produced = 0
    for text in corpus.pages:
        page = parse_page(text, 1)
        documents, _, _ = map_page(page.objects, replace(options, now=datetime.now(UTC)))
        produced += len(bulk_create_body(INDEX, documents, INGESTED))
    return produced


def round_trip_pages(corpus: Corpus) -> int:
    """Parse every page and serialize its objects unmapped into a `_bulk` body; return the bytes produced."""
    produced = 0
    for text in corpus.pages:
        page = parse_page(text, 1)
        documents = [(f"{obj['id']}-{obj['update_id']}", obj) for obj in page.objects]
        produced += len(bulk_create_body(INDEX, documents, INGESTED))
    return produced


def run(corpus: Corpus, rounds: int, profile_dir: Path | None = None) -> dict[str, Any]:
    """Compare the mapper with the JSON round trip over the whole corpus, `rounds` times."""
    options = default_options()

    def product(_: int) -> float:
        with stopwatch() as elapsed:
            map_pages(corpus, options)
        return corpus.objects / elapsed[0]

    def limit(_: int) -> float:
        with stopwatch() as elapsed:
            round_trip_pages(corpus)
        return corpus.objects / elapsed[0]

    with quiet_collector():
        comparison = compare(rounds, product, limit, "indicators/s", "mapping", warmup=False)
        result: dict[str, Any] = {
            **comparison.as_dict(),
            "objects": corpus.objects,
            "pages": len(corpus.pages),
            "mean_object_bytes": corpus.mean_object_bytes,
            "json_library": "json (standard library)",
            "options": {"tags": list(options.tags), "ioc_duration_days": _days(options), "geoip": False},
        }
        result["orjson"] = _orjson_figures(corpus, options)
    if profile_dir is not None:
        result["profile"] = _profile(corpus, options, profile_dir)
    return result


def _days(options: MappingOptions) -> float | None:
    return None if options.ioc_duration is None else options.ioc_duration.total_seconds() / 86400


def _orjson_figures(corpus: Corpus, options: MappingOptions) -> dict[str, Any] | None:
    """Measure, once, both sides with orjson parsing pages and serializing documents.

    Informational only: the product parses with the standard library, because orjson reads an
    integer above 64 bits as a float without an error.
    """
    if importlib.util.find_spec("orjson") is None:
        return None
    import orjson

    def bodies(mapped: bool) -> None:
        for text in corpus.pages:
            objects = orjson.loads(text)["objects"]
            if mapped:
                documents, _, _ = map_page(objects, replace(options, now=datetime.now(UTC)))
            else:
                documents = [(f"{obj['id']}-{obj['update_id']}", obj) for obj in objects]
            lines = []
            for document_id, document in documents:
                document.setdefault("event", {})["ingested"] = INGESTED
                lines.append(orjson.dumps({"create": {"_index": INDEX, "_id": document_id}}))
                lines.append(orjson.dumps(document))
            b"\n".join(lines)

    with stopwatch() as product_elapsed:
        bodies(mapped=True)
    with stopwatch() as limit_elapsed:
        bodies(mapped=False)
    figures = {
        "version": orjson.__version__,
        "rounds": 1,
        "product_per_second": round(corpus.objects / product_elapsed[0], 1),
        "limit_per_second": round(corpus.objects / limit_elapsed[0], 1),
    }
    progress("mapping with orjson (one round)", **figures)
    return figures


def _profile(corpus: Corpus, options: MappingOptions, profile_dir: Path) -> dict[str, Any]:
    """Profile one product pass with cProfile; save the statistics and return the top functions."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile()
    profiler.runcall(map_pages, corpus, options)
    path = profile_dir / "mapping.prof"
    profiler.dump_stats(path)
    listing = io.StringIO()
    pstats.Stats(profiler, stream=listing).sort_stats("tottime").print_stats(15)
    progress("mapping profile saved", path=path)
    return {"path": str(path), "top_by_own_time": listing.getvalue().splitlines()[-22:]}
