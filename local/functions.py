"""Load the Lambda handlers from `functions/` and invoke them the way Lambda would."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"


class LambdaContext:
    """The parts of Lambda's context object the handlers read."""

    def __init__(self, function_name: str, timeout_seconds: float = 300.0, memory_mb: int = 512) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._ends_at = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Return the real time left before this invocation's timeout."""
        return max(int((self._ends_at - time.monotonic()) * 1000), 0)


def load_handler(function: str) -> ModuleType:
    """Import `functions/<function>/app.py` afresh, as a new Lambda container would (a cold start)."""
    path = FUNCTIONS_DIR / function / "app.py"
    name = f"ti_anomali_function_{function}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
