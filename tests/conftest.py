"""Fixtures shared by every test: paths and the conformance data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = REPO.parent / "shared" / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """Elastic's public test data for the integration, beside the repository."""
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE}; check out ../shared beside the repository")
    return CONFORMANCE
