"""The DNS engine against the lab's servers: outcomes as values, TCP on truncation, limits."""

from __future__ import annotations

import asyncio
import time

from crawler.probe.engine import Engine, Limits, Rcode, bounded

FAST = Limits(queries_in_flight=8, queries_per_second=0, timeout=1.0, retries=1)


def ask(engine: Engine, server, name: str, rdtype: str, **kw):
    return asyncio.run(engine.query(server, name, rdtype, **kw))


def test_outcomes_are_values(lab_dns) -> None:
    port = lab_dns.port
    engine = Engine(FAST)
    assert ask(engine, lab_dns.resolver, "kcna.kp", "A").rcode == Rcode.NOERROR
    assert ask(engine, lab_dns.resolver, "nosuchname.com.kp", "A").rcode == Rcode.NXDOMAIN
    assert ask(engine, lab_dns.resolver, "friend.com.kp", "MX").rcode == Rcode.NODATA
    assert ask(engine, ("127.45.179.1", port), "kp", "SOA").rcode == Rcode.SERVFAIL
    assert ask(engine, ("127.45.176.17", port), "aca.kp", "SOA").rcode == Rcode.REFUSED


def test_tcp_fallback_on_truncation(lab_dns) -> None:
    answer = ask(Engine(FAST), ("127.45.176.18", lab_dns.port), "sca.kp", "SOA", recurse=False)
    assert answer.rcode == Rcode.NOERROR
    assert answer.values("SOA")[0].startswith("ns1.kptc.kp.")


def test_queries_per_second_are_paced(lab_dns) -> None:
    engine = Engine(Limits(queries_in_flight=8, queries_per_second=50, timeout=1.0))

    async def main() -> None:
        await asyncio.gather(*(engine.query(lab_dns.resolver, "kcna.kp", "A")
                               for _ in range(11)))

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started >= 0.19


def test_queries_in_flight_are_limited(lab_dns) -> None:
    """ns-tra.kptc.kp answers after 0.2 s: four queries two at a time take two rounds."""
    engine = Engine(Limits(queries_in_flight=2, queries_per_second=0, timeout=2.0))
    server = ("127.45.176.20", lab_dns.port)

    async def main() -> list[Rcode]:
        answers = await asyncio.gather(*(engine.query(server, "tra.kp", "SOA", recurse=False)
                                         for _ in range(4)))
        return [a.rcode for a in answers]

    started = time.monotonic()
    assert asyncio.run(main()) == [Rcode.NOERROR] * 4
    assert time.monotonic() - started >= 0.38


def test_bounded_pulls_lazily_and_yields_everything() -> None:
    running = 0
    peak = 0

    async def work(item: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return item * 2

    async def main() -> list[tuple[int, int]]:
        return [pair async for pair in bounded(iter(range(100)), work, 5)]

    results = asyncio.run(main())
    assert sorted(results) == [(i, i * 2) for i in range(100)]
    assert peak == 5
