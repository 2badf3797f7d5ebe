"""`make run`: the fetch function on local parts, invoked the way its schedule would.

Starts a local OpenSearch node, a moto server and the ThreatStream simulator (or, when
THREATSTREAM_URL, THREATSTREAM_USERNAME and THREATSTREAM_API_KEY are set, uses that API instead),
runs a backfill invocation, then incremental ones while the simulator publishes updates, stops
publishing, lets the fetch delay pass and runs one final fetch. Progress goes to stderr; the last
line on stdout is `{"run_summary": {...}}`. Exits 1 when an invocation failed or counts differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local import aws as local_aws
from local.checks import SOURCE_PATTERN, count_documents, updates_by_key
from local.functions import LambdaContext, load_handler
from ti_anomali import clock as clocks
from ti_anomali.clock import ManualClock
from ti_anomali.report import write_report

REPO = Path(__file__).resolve().parent.parent
SIMULATOR_USERNAME = "local-analyst"
# Not a secret: the simulator accepts it and nothing else does.
SIMULATOR_API_KEY = "local-simulator-key"  # noqa: S105
FETCH_DELAY = timedelta(minutes=1)
SYNC_DELAY = timedelta(seconds=60)


def progress(message: str, **fields: Any) -> None:
    """Print one progress line to stderr."""
    details = " ".join(f"{name}={value}" for name, value in fields.items())
    print(f"[make run] {message} {details}".rstrip(), file=sys.stderr, flush=True)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.run", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus-size", type=int, default=2500, help="indicators the simulator starts with")
    parser.add_argument("--rounds", type=int, default=5, help="incremental invocations while updates are published")
    parser.add_argument("--updates-per-round", type=int, default=300, help="updates published before each round")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulator's generator")
    parser.add_argument(
        "--log-file",
        type=Path,
        default=REPO / ".cache" / "run" / "functions.log",
        help="where the functions' own log lines go",
    )
    return parser.parse_args(argv)


def function_environment(aws: local_aws.LocalAws, threatstream_url: str, engine_url: str) -> dict[str, str]:
    """Return the fetch function's environment for the local stack."""
    environment = {
        **aws.environment(),
        "THREATSTREAM_URL": threatstream_url,
        "THREATSTREAM_SECRET_NAME": aws.threatstream_secret,
        "CURSOR_TABLE_NAME": aws.table_name,
        "DEAD_LETTER_BUCKET": aws.dead_letter_bucket,
        "ENGINE_KIND": "opensearch",
        "ENGINE_URL": engine_url,
        "ENGINE_AUTH": "none",
        "NAMESPACE": "default",
        "POWERTOOLS_SERVICE_NAME": "ti-anomali",
        "POWERTOOLS_METRICS_NAMESPACE": "TiAnomaliLocal",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
    }
    geoip_database = REPO / ".cache" / "geoip" / "GeoLite2-City-Test.mmdb"
    if geoip_database.exists():
        environment["GEOIP_DATABASE_PATH"] = str(geoip_database)
    return environment


class Invoker:
    """Invokes the fetch handler and keeps the totals of every invocation."""

    def __init__(self, handler: Any) -> None:
        self._handler = handler
        self.totals = {
            "invocations": 0,
            "failed_invocations": 0,
            "pages": 0,
            "indicators_fetched": 0,
            "indicators_written": 0,
            "indicators_dead_lettered": 0,
            "mapping_errors": 0,
        }
        self.cursor: str | None = None

    def invoke(self, label: str, event: dict[str, Any]) -> None:
        self.totals["invocations"] += 1
        try:
            result = self._handler.lambda_handler(event, LambdaContext("FetchIntelligence"))
        except Exception as exc:  # noqa: BLE001 - a failed invocation is reported, and the run goes on
            self.totals["failed_invocations"] += 1
            progress("invocation failed", invocation=label, error=type(exc).__name__)
            traceback.print_exc(file=sys.stderr)
            return
        self.totals["pages"] += result["pages"]
        self.totals["indicators_fetched"] += result["indicators_fetched"]
        self.totals["indicators_written"] += result["indicators_created"]
        self.totals["indicators_dead_lettered"] += result["indicators_dead_lettered"]
        self.totals["mapping_errors"] += result["mapping_errors"]
        self.cursor = result["cursor_after"]
        progress(
            "invocation done",
            invocation=label,
            status=result["status"],
            pages=result["pages"],
            indicators=result["indicators_fetched"],
            written=result["indicators_created"],
            dead_lettered=result["indicators_dead_lettered"],
            cursor=result["cursor_after"],
            backlog=result["backlog"],
            stop=repr(result["stop_reason"]),
        )


def run_maintain_latest() -> dict[str, Any]:
    """Invoke MaintainLatest once and return its figures for the intelligence dataset."""
    handler = load_handler("maintain_latest")
    result = handler.lambda_handler({}, LambdaContext("MaintainLatest"))
    (intelligence,) = [item for item in result["datasets"] if item["dataset"] == "intelligence"]
    progress(
        "latest maintained",
        upserted=intelligence["upserted"],
        retired=intelligence["retired"],
        expired=intelligence["expired"],
        source_documents=intelligence["source_documents"],
    )
    return {
        key: intelligence[key] for key in ("upserted", "retired", "expired", "held_back", "stale", "source_documents")
    }


def main(argv: list[str] | None = None) -> int:
    """Run the local job and print the run summary; return the exit status."""
    args = parse_arguments(argv)
    started = time.monotonic()
    summary_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    args.log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file = args.log_file.open("w")
    # Everything the functions print (JSON logs, metrics) goes to the log file, so that stdout
    # carries only the summary.
    sys.stdout.flush()
    os.dup2(log_file.fileno(), sys.stdout.fileno())

    real_api = all(
        os.environ.get(name) for name in ("THREATSTREAM_URL", "THREATSTREAM_USERNAME", "THREATSTREAM_API_KEY")
    )
    with ExitStack() as stack:
        from local.opensearch_node import start_node

        progress("starting OpenSearch")
        node_started = time.monotonic()
        node = stack.enter_context(start_node())
        opensearch_start_seconds = round(time.monotonic() - node_started, 1)
        progress("OpenSearch is up", url=node.url, seconds=opensearch_start_seconds)
        aws = stack.enter_context(local_aws.moto_server())
        progress("moto is up", url=aws.endpoint_url)

        simulator = None
        if real_api:
            threatstream_url = os.environ["THREATSTREAM_URL"]
            aws.create_resources(os.environ["THREATSTREAM_USERNAME"], os.environ["THREATSTREAM_API_KEY"])
            progress("pulling from the ThreatStream API", url=threatstream_url)
        else:
            from local.simulator import Simulator

            manual_clock = ManualClock(datetime.now(UTC))
            clocks.use(manual_clock)
            simulator = Simulator(
                manual_clock,
                username=SIMULATOR_USERNAME,
                api_key=SIMULATOR_API_KEY,
                seed=args.seed,
                corpus_size=args.corpus_size,
            )
            threatstream_url = simulator.start()
            stack.callback(simulator.stop)
            aws.create_resources(SIMULATOR_USERNAME, SIMULATOR_API_KEY)
            progress("simulator is up", url=threatstream_url, corpus=args.corpus_size, seed=args.seed)

        stack.enter_context(local_aws.environment(function_environment(aws, threatstream_url, node.url)))
        invoker = Invoker(load_handler("fetch_intelligence"))

        invoker.invoke("backfill", {"page_budget": 1000, "requested_by": "make run"})
        if simulator is not None:
            for round_number in range(1, args.rounds + 1):
                published = simulator.publish(args.updates_per_round)
                manual_clock.advance(timedelta(minutes=1))
                progress("simulator published updates", round=round_number, updates=len(published))
                invoker.invoke(f"scheduled-{round_number}", {})
            progress("publishing stopped; letting the fetch delay pass")
            manual_clock.advance(FETCH_DELAY + timedelta(seconds=1))
        invoker.invoke("final", {"page_budget": 1000, "requested_by": "make run"})

        if simulator is not None:
            manual_clock.advance(SYNC_DELAY + timedelta(seconds=1))
        latest = run_maintain_latest()

        from opensearchpy import OpenSearch

        engine = OpenSearch(hosts=[node.url])
        source_documents = count_documents(engine, SOURCE_PATTERN)
        keys = updates_by_key(engine, SOURCE_PATTERN)
        dead_letters = len(aws.client("s3").list_objects_v2(Bucket=aws.dead_letter_bucket).get("Contents", []))

        latest_documents = count_documents(engine, "logs-ti_anomali_latest.intelligence")
        report = write_report(
            engine, REPO / ".cache" / "run" / "report", now=manual_clock.now() if simulator is not None else None
        )
        progress("report written", path=report.html)
        live = None
        if simulator is not None:
            live = len(simulator.live_indicator_ids(manual_clock.now()))

        summary: dict[str, Any] = {
            **invoker.totals,
            "latest_documents": latest_documents,
            "simulator_live_indicators": live,
            "latest_run": latest,
            "report_path": str(report.html),
            "source_documents": source_documents,
            "distinct_updates_in_source": len(keys),
            "dead_letters_stored": dead_letters,
            "simulator_updates_published": len(simulator.published_updates()) if simulator else None,
            "cursor": invoker.cursor,
            "opensearch_start_seconds": opensearch_start_seconds,
            "duration_seconds": round(time.monotonic() - started, 1),
            "function_log": str(args.log_file),
        }
    failures = check_summary(summary)
    summary["checks_failed"] = failures
    for failure in failures:
        progress("check failed", detail=repr(failure))
    print(json.dumps({"run_summary": summary}), file=summary_stream, flush=True)
    return 1 if failures else 0


def check_summary(summary: dict[str, Any]) -> list[str]:
    """Return a description of every count that does not add up."""
    failures = []
    if summary["failed_invocations"]:
        failures.append(f"{summary['failed_invocations']} invocations failed")
    if summary["source_documents"] != summary["indicators_written"]:
        failures.append("source_documents != indicators_written")
    if summary["distinct_updates_in_source"] != summary["source_documents"]:
        failures.append("a (id, update_id) is in the source data stream more than once")
    if summary["dead_letters_stored"] != summary["indicators_dead_lettered"]:
        failures.append("dead_letters_stored != indicators_dead_lettered")
    if (
        summary["simulator_live_indicators"] is not None
        and summary["latest_documents"] != summary["simulator_live_indicators"]
    ):
        failures.append("latest_documents != simulator_live_indicators")
    published = summary["simulator_updates_published"]
    if published is not None and summary["indicators_written"] + summary["indicators_dead_lettered"] != published:
        failures.append("indicators_written + indicators_dead_lettered != simulator_updates_published")
    return failures


if __name__ == "__main__":
    sys.exit(main())
