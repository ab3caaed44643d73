"""Shared fixtures: the lab world and its DNS on a free loopback port.

Every test module can ask for ``lab_world`` / ``lab_world_v2`` (loaded worlds),
``lab_dns`` / ``lab_dns_v2`` (a running ``LabDNS``; ``.port``, ``.resolver``) or
``lab_port`` for the port of ``lab_dns``.  The servers are session-scoped: starting them is
cheap, but one per session keeps the two shared cores free.

A test that needs a whole lab census (a probe and a crawl of the world) is marked ``slow``
here, by the fixture it asks for: ``python -m pytest -m "not slow"`` is the quick run.
The fuzz targets (``tests/fuzz``, marked ``fuzz`` and ``slow``) share ``--fuzz-minutes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crawler.lab import LabDNS, World, free_port, load_world

FUZZ_MINUTES = 1.5
"""The CI budget of the fuzz targets (``tests/fuzz``), shared by them; with the pathological
pages (about 20 s) the fuzz suite takes about two minutes."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-minutes", type=float, default=FUZZ_MINUTES,
                     help="time budget of all fuzz targets together (default: %(default)s)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.fuzz.harness import REPORT

    if REPORT:
        terminalreporter.section("fuzz targets")
        for name, examples, seconds in REPORT:
            terminalreporter.write_line(f"{name:<40} {examples:>9} inputs {seconds:7.1f} s")


WHOLE_LAB_RUNS = {"lab_census", "two_runs", "crawled", "replay"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a fuzz target runs for its share of the budget: never cut by the per-test timeout
    fuzz_timeout = config.getoption("--fuzz-minutes") * 60 + 120
    for item in items:
        if item.get_closest_marker("fuzz"):
            item.add_marker(pytest.mark.timeout(fuzz_timeout))
        if WHOLE_LAB_RUNS & set(getattr(item, "fixturenames", ())):
            # the first test to ask pays for whole lab censuses (two, for two_runs)
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.timeout(600))


@pytest.fixture(scope="session")
def lab_world() -> World:
    return load_world("kp")


@pytest.fixture(scope="session")
def lab_world_v2() -> World:
    return load_world("kp", version=2)


@pytest.fixture(scope="session")
def lab_dns(lab_world: World) -> Iterator[LabDNS]:
    with LabDNS(lab_world, free_port(lab_world.addresses())) as server:
        yield server


@pytest.fixture(scope="session")
def lab_dns_v2(lab_world_v2: World) -> Iterator[LabDNS]:
    with LabDNS(lab_world_v2, free_port(lab_world_v2.addresses())) as server:
        yield server


@pytest.fixture(scope="session")
def lab_port(lab_dns: LabDNS) -> int:
    return lab_dns.port
