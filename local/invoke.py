"""`make invoke-*`: invoke one handler with event files on a fresh local stack.

Starts OpenSearch, moto and the simulator (with a small corpus, its clock moved past the fetch
delay), points the function's environment at them, invokes the handler once per event file and
prints each result as JSON on stdout. The functions' own log lines go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local import aws as local_aws
from local.functions import LambdaContext, load_handler
from local.run import SIMULATOR_API_KEY, SIMULATOR_USERNAME, function_environment
from ti_anomali import clock as clocks
from ti_anomali.clock import ManualClock

FUNCTION_NAMES = {
    "fetch_intelligence": "FetchIntelligence",
    "maintain_latest": "MaintainLatest",
    "receive_threatstream": "ReceiveThreatstream",
}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.splitlines()[0])
    parser.add_argument("function", choices=sorted(FUNCTION_NAMES), help="the folder under functions/")
    parser.add_argument("events", nargs="+", type=Path, help="JSON event files, invoked in order")
    parser.add_argument("--corpus-size", type=int, default=300, help="indicators the simulator starts with")
    return parser.parse_args(argv)


def push_environment(aws: local_aws.LocalAws) -> dict[str, str]:
    """Return the push function's settings for the local stack, with its HMAC secret stored in moto."""
    from local.push_key import LOCAL_PUSH_SECRET_NAME, store_local_push_secret

    store_local_push_secret(aws)
    return {"PUSH_AUTH": "hmac", "PUSH_SECRET_NAME": LOCAL_PUSH_SECRET_NAME}


def main(argv: list[str] | None = None) -> int:
    """Invoke the handler with each event and return 1 if any invocation raised."""
    args = parse_arguments(argv)
    events = [(path, json.loads(path.read_text())) for path in args.events]
    failed = 0
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with ExitStack() as stack:
        from local.opensearch_node import start_node
        from local.simulator import Simulator

        node = stack.enter_context(start_node())
        aws = stack.enter_context(local_aws.moto_server())
        clock = ManualClock(datetime.now(UTC))
        clocks.use(clock)
        simulator = Simulator(
            clock, username=SIMULATOR_USERNAME, api_key=SIMULATOR_API_KEY, corpus_size=args.corpus_size
        )
        url = simulator.start()
        stack.callback(simulator.stop)
        aws.create_resources(SIMULATOR_USERNAME, SIMULATOR_API_KEY)
        clock.advance(timedelta(minutes=2))

        environment = function_environment(aws, url, node.url)
        if args.function == "receive_threatstream":
            environment.update(push_environment(aws))
        stack.enter_context(local_aws.environment(environment))
        handler = load_handler(args.function)
        for path, event in events:
            try:
                result: Any = handler.lambda_handler(event, LambdaContext(FUNCTION_NAMES[args.function]))
            except Exception as exc:  # noqa: BLE001 - reported per event, the next event still runs
                failed += 1
                result = {"error": type(exc).__name__, "message": str(exc)}
            print(json.dumps({"event": str(path), "result": result}, default=str), file=results, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
