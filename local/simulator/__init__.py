"""Local simulator of the Anomali ThreatStream intelligence API, for `make run` and the tests."""

from local.simulator.corpus import Update
from local.simulator.faults import Fault, FaultKind, RetryAfter
from local.simulator.server import (
    API_PATH,
    AUTH_MATCHED,
    AUTH_MISMATCHED,
    MAX_PAGE_SIZE,
    REDACTED,
    RecordedRequest,
    Simulator,
)

__all__ = [
    "API_PATH",
    "AUTH_MATCHED",
    "AUTH_MISMATCHED",
    "MAX_PAGE_SIZE",
    "REDACTED",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "RetryAfter",
    "Simulator",
    "Update",
]
