"""Page analysis in worker processes: the same answers as in the crawl process, and a worker
that dies costs no page."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from crawler.crawl.analyse import PageJob, analyse
from crawler.crawl.workers import (
    Workers,
    _launched,
    default_workers,
    launch,
    planned_workers,
)

HOME = """<html lang="ko"><head><meta charset="euc-kr"><title>로동신문</title>
<link rel="stylesheet" href="/css/site.css"><script src="/js/menu.js"></script></head>
<body><h1>로동신문</h1><p>위대한 령도자 김정일동지의 혁명업적을 길이 빛내이자.</p>
<a href="/news/1.html">기사</a> <a href="javascript:goArticle(7, 'ko')">기사 7</a>
<img src="/img/logo.png"></body></html>""".encode("euc-kr")
MENU = "function goArticle(n, lang) { location.href = '/' + lang + '/article/' + n + '.html'; }"
PLAIN = b"<html><body><p>" + b"The people built a railway station by the river. " * 40 + b"</p>"


def job(url: str, body: bytes, content_type: str = "text/html") -> PageJob:
    return PageJob(url, 200, {"content-type": content_type}, body, True,
                   {b"Content-Type": [content_type.encode()]},
                   {"http://rodong.rep.kp/js/menu.js": MENU})


JOBS = [job("http://rodong.rep.kp/", HOME), job("http://bench.com.kp/p001.html", PLAIN),
        job("http://rodong.rep.kp/logo.png", b"\x89PNG", "image/png")]


@pytest.mark.slow  # worker processes load the language model: seconds
def test_workers_answer_as_the_crawl_process_would() -> None:
    async def main() -> list:
        workers = Workers(2)
        workers.start()
        try:
            return await asyncio.gather(*(workers.analyse(j) for j in JOBS * 3))
        finally:
            workers.close()

    got = asyncio.run(main())
    assert got == [analyse(j) for j in JOBS * 3]
    home = got[0]
    assert home.page.title == "로동신문" and home.page.lang == "ko"
    assert ("http://rodong.rep.kp/ko/article/7.html", "rodong.rep.kp", "js", "기사 7") \
        in home.script_links
    assert ("http://rodong.rep.kp/css/site.css", "stylesheet") in home.requisites
    assert got[1].page.lang == "en" and got[1].page.lang_source == "detector"


@pytest.mark.slow
def test_a_worker_killed_mid_crawl_is_replaced_and_no_page_is_lost() -> None:
    async def main() -> tuple[list, int, int]:
        workers = Workers(1)
        workers.start()
        try:
            first = await workers.analyse(JOBS[0])
            os.kill(workers.workers[0].process.pid, signal.SIGKILL)
            workers.workers[0].process.wait()
            after = await asyncio.gather(*(workers.analyse(j) for j in JOBS))
            return [first, *after], workers.restarts, len(workers.workers)
        finally:
            workers.close()

    got, restarts, alive = asyncio.run(main())
    assert got == [analyse(JOBS[0]), *(analyse(j) for j in JOBS)]
    assert (restarts, alive) == (1, 1)


def test_without_an_event_loop_the_analysis_stays_in_process() -> None:
    workers = Workers(2)
    workers.start()  # no running loop: nothing to read the workers' answers with
    assert workers.in_process
    assert asyncio.run(workers.analyse(JOBS[1])) == analyse(JOBS[1])


@pytest.mark.slow
def test_workers_launched_before_the_crawl_are_the_ones_it_uses() -> None:
    launch(2)
    early = [process.pid for process, _ in _launched]

    async def main() -> tuple[list[int], object]:
        workers = Workers(1)
        workers.start()  # takes the first launched worker; the second is not wanted
        try:
            return [w.process.pid for w in workers.workers], await workers.analyse(JOBS[1])
        finally:
            workers.close()

    used, answer = asyncio.run(main())
    assert used == early[:1] and not _launched
    assert answer == analyse(JOBS[1])
    with pytest.raises(ProcessLookupError):
        os.kill(early[1], 0)  # ended and reaped


def test_a_short_crawl_gets_no_workers_unless_asked() -> None:
    assert planned_workers(None, 20, 74) == 0  # 1,480 possible pages
    assert planned_workers(None, 20, 75) == default_workers()
    assert planned_workers(1, 1, 10) == 1 and planned_workers(0, 10**6, 200) == 0


@pytest.mark.slow
def test_jobs_the_pipe_has_no_room_for_wait_in_the_event_loop_not_in_the_write() -> None:
    image = job("http://rodong.rep.kp/big.png", b"\x89PNG" + bytes(100_000), "image/png")

    async def main() -> tuple[float, bool, list]:
        workers = Workers(1)
        workers.start()
        pid = workers.workers[0].process.pid
        os.kill(pid, signal.SIGSTOP)  # a worker busy with a page: it reads nothing
        resume = threading.Timer(5, os.kill, (pid, signal.SIGCONT))  # a blocked write's end
        resume.start()
        try:
            asked, started = [], time.monotonic()
            for _ in range(3):  # 4 MB a turn: the pipe soon has no room
                asked += [asyncio.ensure_future(workers.analyse(image)) for _ in range(40)]
                await asyncio.sleep(0)  # the jobs are asked for in this turn...
                await asyncio.sleep(0)  # ...and sent in the next
            took, waiting = time.monotonic() - started, workers.workers[0].waiting
            os.kill(pid, signal.SIGCONT)
            return took, waiting, await asyncio.gather(*asked)
        finally:
            resume.cancel()
            workers.close()

    took, waiting, got = asyncio.run(main())
    assert took < 2 and waiting  # the loop went on; the rest went when the pipe had room
    assert got == [analyse(image)] * 120
