"""`make faults` and `make soak`: fault scenarios over the local stack, checked against ground truth.

Every scenario drives the fetch function into one fault, then stops the faults, drains the API,
runs MaintainLatest and checks the invariants: every published update is in the source data
stream exactly once or dead-lettered, the latest alias contains exactly the live indicators, the
cursor never moved backwards, and the API key appears in no log line, error or document.
The last stdout line is `{"faults_summary": {...}}` (or `{"soak_summary": {...}}`); the exit
status is 1 when any scenario failed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

from local import aws as local_aws
from local.engine_proxy import EngineFault
from local.faults.scenarios import SCENARIO_GROUPS, SCENARIOS
from local.faults.world import Checks, Scenario, World
from local.simulator.faults import Fault
from ti_anomali.fetch import FetchRequest


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="run only these scenarios")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--soak", action="store_true", help="run the soak instead of the scenarios")
    parser.add_argument("--updates", type=int, default=1_000_000, help="updates the soak publishes")
    parser.add_argument("--seed", type=int, default=None, help="seed of the soak's fault draw (printed)")
    parser.add_argument(
        "--heap-mb", type=int, default=None, help="heap of the OpenSearch node in MB (default 1024, soak 3072)"
    )
    return parser.parse_args(argv)


def run_scenario(world: World, name: str) -> tuple[Checks, dict[str, Any], dict[str, bool], float]:
    started = time.monotonic()
    scenario = Scenario(world, name)
    try:
        SCENARIOS[name](scenario)
        scenario.drain()
        scenario.maintain_latest()
        checks = scenario.check()
    finally:
        scenario.close()
    return checks, scenario.extra, scenario.expectations, time.monotonic() - started


def print_row(name: str, passed: bool, checks: Checks, extra: dict[str, Any], seconds: float) -> None:
    numbers = (
        f"published={checks.published} source={checks.in_source} dead={checks.dead_lettered} "
        f"lost={checks.lost} dup={checks.duplicated} latest={checks.latest_documents}/{checks.live_indicators} "
        f"backwards={checks.cursor_moved_backwards} leaks={checks.secrets_leaked} "
        f"failed_invocations={checks.failed_invocations}"
    )
    details = " ".join(f"{key}={value}" for key, value in extra.items())
    print(f"{name:<45} {'pass' if passed else 'FAIL':<5} {seconds:6.1f}s  {numbers} {details}".rstrip(), flush=True)


def run_scenarios(world: World, names: list[str]) -> int:
    totals = {"scenarios": len(names), "passed": 0, "lost": 0, "duplicated": 0, "secrets_leaked": 0}
    failed: list[str] = []
    print(f"{'scenario':<45} {'result':<5} {'time':>7}  numbers checked", flush=True)
    for name in names:
        try:
            checks, extra, expectations, seconds = run_scenario(world, name)
        except Exception:  # noqa: BLE001 - a crashing scenario is reported and the others still run
            traceback.print_exc()
            failed.append(name)
            print(f"{name:<45} FAIL  the scenario itself raised", flush=True)
            continue
        broken = [condition for condition, held in expectations.items() if not held]
        passed = checks.passed and not broken
        if broken:
            extra = {**extra, "unmet": "; ".join(broken)}
        print_row(name, passed, checks, extra, seconds)
        totals["lost"] += checks.lost
        totals["duplicated"] += checks.duplicated
        totals["secrets_leaked"] += checks.secrets_leaked
        if passed:
            totals["passed"] += 1
        else:
            failed.append(name)
    print(json.dumps({"faults_summary": {**totals, "failed": failed}}), flush=True)
    return 1 if failed else 0


def run_soak(world: World, updates: int, seed: int) -> int:
    """Publish `updates` updates in batches while faults drawn at random hit the API and the engine."""
    print(f"soak: {updates} updates, seed {seed}", flush=True)
    rng = random.Random(seed)
    scenario = Scenario(world, "soak", page_size=1000, seed=seed)
    api_faults = [
        lambda: Fault(
            kind="rate_limit", retry_after=rng.choice(["seconds", "http_date", "none"]), retry_after_seconds=5
        ),
        lambda: Fault(kind="server_error", status=rng.choice([500, 502, 503, 504])),
        lambda: Fault(kind="reset"),
        lambda: Fault(kind="truncated"),
        lambda: Fault(kind="html_200"),
        lambda: Fault(kind="empty_with_next"),
        lambda: Fault(kind="repeat_page"),
        lambda: Fault(kind="next_with_credentials"),
    ]
    engine_faults = [
        lambda: EngineFault("partial", status=rng.choice([429, 503]), every=rng.randint(2, 10)),
        lambda: EngineFault("whole", status=rng.choice([429, 503])),
        lambda: EngineFault("disconnect"),
    ]
    started = time.monotonic()
    published = 0
    batch = 5000
    try:
        while published < updates:
            count = min(batch, updates - published)
            scenario.simulator.publish(count, status_changes=0.2)
            published += count
            scenario.clock.advance(timedelta(minutes=1, seconds=1))
            for _ in range(rng.randint(0, 2)):
                scenario.simulator.inject(rng.choice(api_faults)())
            for _ in range(rng.randint(0, 2)):
                scenario.proxy.faults.append(rng.choice(engine_faults)())
            scenario.invoke_fetch(FetchRequest(page_budget=10))
            if rng.random() < 0.2:
                scenario.maintain_latest()
            print(
                f"soak: published={published} cursor={scenario.cursor()} failures={len(scenario.failures)}", flush=True
            )
        scenario.drain(max_invocations=2000)
        scenario.maintain_latest()
        seconds = time.monotonic() - started
        checks = scenario.check()
    finally:
        scenario.close()
    summary = {
        "updates": checks.published,
        "seed": seed,
        "seconds": round(seconds, 1),
        "updates_per_second": round(checks.published / seconds, 1),
        "lost": checks.lost,
        "duplicated": checks.duplicated,
        "secrets_leaked": checks.secrets_leaked,
        "latest_documents": checks.latest_documents,
        "live_indicators": checks.live_indicators,
        "cursor_moved_backwards": checks.cursor_moved_backwards,
        "failed_invocations": checks.failed_invocations,
        "passed": checks.passed,
    }
    print(json.dumps({"soak_summary": summary}), flush=True)
    return 0 if checks.passed else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.list:
        for name, group in SCENARIO_GROUPS.items():
            print(f"{group:<8} {name}")
        return 0
    names = args.only or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenarios: {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        from local.opensearch_node import start_node

        heap_mb = args.heap_mb or (3072 if args.soak else 1024)
        node = stack.enter_context(start_node(heap_mb=heap_mb))
        aws = stack.enter_context(local_aws.moto_server())
        world = World(node, aws)
        if args.soak:
            seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
            return run_soak(world, args.updates, seed)
        return run_scenarios(world, names)


if __name__ == "__main__":
    sys.exit(main())
