"""Memory: peak resident memory of a fetch handler process that takes one page of 1000 indicators.

Each round starts a fresh process (`bench.page_process`) with a new namespace, so the page is a
full page of new documents. Megabytes here are MiB, as Lambda's memory setting counts them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.measure import median, progress
from bench.stack import REPO, Stack

PAGE_INDICATORS = 1000
CHILD_TIMEOUT_SECONDS = 300


def run(stack: Stack, rounds: int) -> dict[str, Any]:
    """Run `rounds` fresh handler processes and return the median peak RSS in MiB."""
    peaks: list[float] = []
    after_import: list[float] = []
    for number in range(rounds):
        figures = _one_process(stack, f"benchmemory{number}")
        if figures["indicators_created"] != PAGE_INDICATORS:
            raise RuntimeError(f"the handler created {figures['indicators_created']} documents, not one full page")
        peaks.append(figures["peak_rss_kib"] / 1024)
        after_import.append(figures["peak_rss_kib_after_import"] / 1024)
        progress(f"memory round {number + 1}/{rounds}", peak_rss_mb=f"{peaks[-1]:.1f}")
    return {
        "peak_rss_mb": round(median(peaks), 1),
        "peak_rss_mb_after_import": round(median(after_import), 1),
        "rounds": rounds,
        "peak_rss_mb_rounds": [round(value, 1) for value in peaks],
        "indicators": PAGE_INDICATORS,
    }


def _one_process(stack: Stack, namespace: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        result_path = Path(folder) / "result.json"
        environment = {**os.environ, **stack.fetch_environment(namespace)}
        subprocess.run(
            [sys.executable, "-m", "bench.page_process", str(result_path)],
            cwd=REPO,
            env=environment,
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=CHILD_TIMEOUT_SECONDS,
        )
        return json.loads(result_path.read_text())
