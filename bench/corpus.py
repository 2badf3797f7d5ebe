"""The benchmark corpus: API pages built from the simulator's generator, kept as response text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from local.simulator.server import Simulator
from ti_anomali.clock import ManualClock

PAGE_SIZE = 1000
SEED = 7


@dataclass(frozen=True)
class Corpus:
    """Pages of the intelligence endpoint as the client receives them (text), in update_id order."""

    pages: tuple[str, ...]
    objects: int
    mean_object_bytes: float

    def first_objects(self, count: int) -> list[dict]:
        """Parse and return the first `count` objects."""
        objects: list[dict] = []
        for page in self.pages:
            objects.extend(json.loads(page)["objects"])
            if len(objects) >= count:
                break
        return objects[:count]


def build(size: int, seed: int = SEED) -> Corpus:
    """Generate `size` updates with the simulator's corpus generator and join them into pages.

    The pages hold text rather than parsed objects, as a Lambda container receives them, and so
    the garbage collector has nothing to scan while the benchmarks run.
    """
    simulator = Simulator(ManualClock(datetime.now(UTC)), seed=seed, corpus_size=size)
    encoded = [
        json.dumps(update.obj, separators=(",", ":"), ensure_ascii=False) for update in simulator.published_updates()
    ]
    pages = []
    for start in range(0, len(encoded), PAGE_SIZE):
        chunk = encoded[start : start + PAGE_SIZE]
        meta = json.dumps({"limit": PAGE_SIZE, "next": None, "offset": start, "total_count": len(encoded)})
        pages.append(f'{{"meta":{meta},"objects":[{",".join(chunk)}]}}')
    return Corpus(
        pages=tuple(pages),
        objects=len(encoded),
        mean_object_bytes=round(sum(len(text.encode()) for text in encoded) / max(len(encoded), 1), 1),
    )
