"""`python -m bench`: run every benchmark, write bench/results.json and bench/RESULTS.md.

Progress goes to stderr and the functions' own log lines to .cache/bench/functions.log. The last
line on stdout is `{"bench_summary": {...}}`. The exit status is 1 only when a benchmark could not
run; a figure that misses its goal is reported, not failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cold_start, corpus, end_to_end, latest_index, machine, mapping, memory, package_size, report, stack
from bench.measure import progress

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR.parent / ".cache" / "bench"
BENCHMARKS = ("mapping", "fetch", "memory", "latest", "cold_start", "package")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks to run, from {', '.join(BENCHMARKS)} (default: all). "
        "A partial run writes .cache/bench/results-partial.json and leaves bench/ alone",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small corpora and two rounds, to check that the benchmarks run; writes like a partial run",
    )
    parser.add_argument("--profile", action="store_true", help="also profile the mapping with cProfile")
    return parser.parse_args(argv)


def sizes(quick: bool) -> dict[str, int]:
    """Return corpus sizes and rounds; the full sizes take about six minutes on 2 cores."""
    if quick:
        return {
            "mapping_objects": 5_000,
            "mapping_rounds": 2,
            "fetch_indicators": 3_000,
            "fetch_rounds": 2,
            "memory_rounds": 1,
            "latest_documents": 3_000,
            "latest_rounds": 2,
            "sweep_documents": 10_000,
            "sweep_rounds": 1,
            "import_rounds": 2,
        }
    return {
        "mapping_objects": 100_000,
        "mapping_rounds": 3,
        "fetch_indicators": 20_000,
        "fetch_rounds": 5,
        "memory_rounds": 3,
        "latest_documents": 20_000,
        "latest_rounds": 5,
        "sweep_documents": 100_000,
        "sweep_rounds": 3,
        "import_rounds": 7,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, write the results, and print the summary line."""
    args = parse_arguments(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmarks {unknown}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    complete = set(selected) == set(BENCHMARKS) and not args.quick
    settings = sizes(args.quick)
    started = time.monotonic()
    description = machine.describe()
    summary_stream = _keep_stdout_for_summary(CACHE_DIR / "functions.log")

    benchmarks: dict[str, Any] = {}
    engine_version = _run_all(selected, settings, benchmarks, args.profile)
    description["opensearch"] = engine_version
    description["load_average_at_end"] = machine.load_average()

    figures = report.summary(benchmarks)
    results = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": description,
        "settings": settings,
        "benchmarks": benchmarks,
        "goals": report.goals(figures),
        "bench_summary": figures,
    }
    if complete:
        (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        report.write_markdown(BENCH_DIR / "RESULTS.md", results)
        progress("results written", json=BENCH_DIR / "results.json", markdown=BENCH_DIR / "RESULTS.md")
    else:
        partial = CACHE_DIR / "results-partial.json"
        partial.write_text(json.dumps(results, indent=2) + "\n")
        progress("partial results written", json=partial)
    print(json.dumps({"bench_summary": figures}), file=summary_stream, flush=True)
    failed = any(isinstance(value, dict) and "error" in value for value in benchmarks.values())
    return 1 if failed else 0


def _run_all(selected: list[str], settings: dict[str, int], benchmarks: dict[str, Any], profile: bool) -> str | None:
    """Run the benchmarks in a fixed order, recording a failure as an error entry; return the engine version."""
    need_corpus = {"mapping", "latest"} & set(selected)
    bench_corpus = None
    if need_corpus:
        progress("building the corpus", objects=settings["mapping_objects"])
        bench_corpus = corpus.build(settings["mapping_objects"])
        progress("corpus built", pages=len(bench_corpus.pages), mean_object_bytes=bench_corpus.mean_object_bytes)
    if "mapping" in selected:
        _record(
            benchmarks,
            "mapping",
            lambda: mapping.run(bench_corpus, settings["mapping_rounds"], CACHE_DIR if profile else None),
        )

    engine_version = None
    engine_benchmarks = [name for name in ("fetch", "memory", "latest", "cold_start") if name in selected]
    if engine_benchmarks:
        progress("starting OpenSearch, moto and the simulator")
        with stack.running(settings["fetch_indicators"], corpus.SEED) as parts:
            engine_version = parts.engine_version
            progress("local parts are up", opensearch=parts.engine_version, simulator=parts.threatstream_url)
            runs: dict[str, Callable[[], Any]] = {
                "fetch": lambda: end_to_end.run(parts, settings["fetch_indicators"], settings["fetch_rounds"]),
                "memory": lambda: memory.run(parts, settings["memory_rounds"]),
                "latest": lambda: latest_index.run(
                    parts,
                    bench_corpus,
                    settings["latest_documents"],
                    settings["latest_rounds"],
                    settings["sweep_documents"],
                    settings["sweep_rounds"],
                ),
                "cold_start": lambda: cold_start.run(parts, settings["import_rounds"]),
            }
            for name in engine_benchmarks:
                _record(benchmarks, name, runs[name])
    if "package" in selected:
        _record(benchmarks, "package", package_size.run)
    return engine_version


def _record(benchmarks: dict[str, Any], name: str, run: Callable[[], Any]) -> None:
    progress(f"running {name}")
    started = time.monotonic()
    try:
        benchmarks[name] = run()
    except Exception as exc:  # noqa: BLE001 - one failed benchmark must not lose the others' figures
        traceback.print_exc(file=sys.stderr)
        benchmarks[name] = {"error": f"{type(exc).__name__}: {exc}"}
    progress(f"{name} done", seconds=round(time.monotonic() - started, 1))


def _keep_stdout_for_summary(log_path: Path) -> Any:
    """Send everything printed to stdout (the functions' JSON logs) to `log_path`; return the real stdout."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    summary_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    log_file = log_path.open("w")
    sys.stdout.flush()
    os.dup2(log_file.fileno(), sys.stdout.fileno())
    return summary_stream


if __name__ == "__main__":
    sys.exit(main())
