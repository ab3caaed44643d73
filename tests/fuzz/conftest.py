"""The fuzz suite's budget: ``--fuzz-minutes`` (tests/conftest.py) shared by the targets run."""

from __future__ import annotations

import pytest


@pytest.fixture
def fuzz_seconds(request: pytest.FixtureRequest) -> float:
    """This target's share of the budget: the minutes split evenly over the fuzz targets
    selected in this session (the tests that ask for this fixture)."""
    targets = sum(1 for item in request.session.items
                  if "fuzz_seconds" in getattr(item, "fixturenames", ()))
    return request.config.getoption("--fuzz-minutes") * 60 / max(1, targets)
