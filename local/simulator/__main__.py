"""Run the ThreatStream API simulator on its own, with the system clock.

    python -m local.simulator --port 0 --corpus-size 2500 --seed 7

The first line on standard output is the base URL. Another process on this machine can
publish with `POST <url>/_simulator/publish?count=N`. SIGINT or SIGTERM stops the server.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import timedelta
from types import FrameType

from local.simulator.server import Simulator
from ti_anomali.clock import SystemClock


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m local.simulator",
        description="Serve a simulated ThreatStream intelligence API on 127.0.0.1.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1, where 0 picks a free one (default: 0)"
    )
    parser.add_argument(
        "--corpus-size", type=int, default=2500, help="number of updates served at start (default: 2500)"
    )
    parser.add_argument(
        "--corpus-age-days", type=float, default=30, help="age of the oldest update in days (default: 30)"
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="random seed of the corpus and of published updates (default: 7)"
    )
    parser.add_argument("--username", default="sim-user", help="username the API accepts (default: sim-user)")
    parser.add_argument("--api-key", default="sim-key", help="API key the API accepts (default: sim-key)")
    parser.add_argument("--big-ids", action="store_true", help="include ids and update_ids above 2**53")
    parser.add_argument("--log-level", default="INFO", help="logging level on standard error (default: INFO)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the simulator, print its URL and serve until SIGINT or SIGTERM."""
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=arguments.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    simulator = Simulator(
        SystemClock(),
        username=arguments.username,
        api_key=arguments.api_key,
        seed=arguments.seed,
        corpus_size=arguments.corpus_size,
        corpus_age=timedelta(days=arguments.corpus_age_days),
        big_ids=arguments.big_ids,
    )
    stopping = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    url = simulator.start(arguments.port)
    print(url, flush=True)
    try:
        stopping.wait()
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
