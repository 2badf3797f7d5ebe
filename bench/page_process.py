"""Child process of the memory benchmark: load the fetch handler, take one page, report peak RSS.

    python -m bench.page_process RESULT_FILE

The environment sets the function's variables. The process imports nothing beyond what the
handler needs, so its peak resident set is the handler's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from local.functions import LambdaContext, load_handler


def peak_rss_kib() -> int:
    """Return the peak resident set size of this process image in KiB (VmHWM in /proc/self/status).

    NOTE: `resource.getrusage(...).ru_maxrss` is no use here: Linux carries it across fork and
    exec, so a child reports at least the parent's resident size at the time it was started.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line; this benchmark needs Linux")


def main(argv: list[str]) -> int:
    """Invoke the handler once with the scheduled event and write the figures as JSON."""
    result_path = Path(argv[0])
    handler = load_handler("fetch_intelligence")
    after_import = peak_rss_kib()
    outcome = handler.lambda_handler({}, LambdaContext("FetchIntelligence"))
    figures = {
        "peak_rss_kib_after_import": after_import,
        "peak_rss_kib": peak_rss_kib(),
        "indicators_created": outcome["indicators_created"],
        "pages": outcome["pages"],
    }
    result_path.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
