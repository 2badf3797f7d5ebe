"""Rounds, medians and paired comparisons shared by the benchmarks."""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


def progress(message: str, **fields: Any) -> None:
    """Print one progress line to stderr; stdout carries only the final summary."""
    details = " ".join(f"{name}={value}" for name, value in fields.items())
    print(f"[bench] {message} {details}".rstrip(), file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    """Return the median of a non-empty list."""
    return float(statistics.median(values))


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Measure the wall-clock seconds of the block; the one-element list holds them afterwards."""
    elapsed: list[float] = []
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - started)


@contextmanager
def quiet_collector() -> Iterator[None]:
    """Collect garbage before the block and move what survives out of the collector's sight.

    The benchmark process keeps corpora and clients that a Lambda container would not have, and
    full collections would otherwise scan them during every measured round.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class Comparison:
    """Rates of the product and of its limit, one pair per round, measured back to back."""

    unit: str
    product: list[float] = field(default_factory=list)
    limit: list[float] = field(default_factory=list)

    def add(self, product_rate: float, limit_rate: float) -> None:
        """Record one round."""
        self.product.append(product_rate)
        self.limit.append(limit_rate)

    @property
    def ratios(self) -> list[float]:
        """Product rate over limit rate, per round."""
        return [product / limit for product, limit in zip(self.product, self.limit, strict=True)]

    def as_dict(self) -> dict[str, Any]:
        """Return the medians, the ratio (median of the per-round ratios) and every round."""
        return {
            "ratio": round(median(self.ratios), 3),
            "unit": self.unit,
            "product_median": round(median(self.product), 1),
            "limit_median": round(median(self.limit), 1),
            "rounds": len(self.product),
            "product_rounds": [round(value, 1) for value in self.product],
            "limit_rounds": [round(value, 1) for value in self.limit],
            "ratio_rounds": [round(value, 3) for value in self.ratios],
        }


def compare(
    rounds: int,
    product: Callable[[int], float],
    limit: Callable[[int], float],
    unit: str,
    label: str,
    warmup: bool = True,
) -> Comparison:
    """Run `product(round)` and `limit(round)` back to back each round; each returns a rate.

    The order inside a pair alternates, so a slow drift of the machine does not favour one
    side. An unrecorded warm-up pair runs first when `warmup` is set.
    """
    comparison = Comparison(unit)
    if warmup:
        product(-1)
        limit(-1)
    for number in range(rounds):
        if number % 2 == 0:
            product_rate = product(number)
            limit_rate = limit(number)
        else:
            limit_rate = limit(number)
            product_rate = product(number)
        comparison.add(product_rate, limit_rate)
        progress(
            f"{label} round {number + 1}/{rounds}",
            product=f"{product_rate:.0f}",
            limit=f"{limit_rate:.0f}",
            ratio=f"{product_rate / limit_rate:.3f}",
        )
    return comparison
