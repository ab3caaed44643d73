"""Bench the JavaScript engines the script sandbox could use, on a lab page with handlers.

    python bench/bench_scripts.py [--pages 200]

For each engine installed (QuickJS through ``quickjs``, Duktape through ``dukpy``, V8 through
``mini-racer``): a fresh context per page, the page's functions defined, 30 handlers called,
the navigations read back; milliseconds per page.  Then the sandbox itself
(``crawler.crawl.scripts.navigations`` on minju.com.kp's home page, stub DOM included) and the
CPU time of a hostile handler of each kind.  QuickJS was chosen: the fastest per page, and the
only one with a per-call time limit, a heap limit and a stack limit in its Python binding
(dukpy has no time limit; V8 costs ~15 ms and tens of MB per context).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFINE = ("var nav = []; var location = {set href(v) { nav.push(String(v)); }};"
          "function go(a, b) { location.href = '/' + b + '/news/' + a + '.html'; }")
CALLS = "".join(f"try {{ go('a{i}', 'ko') }} catch (e) {{}};" for i in range(30))


def per_page(name: str, run: object, pages: int) -> None:
    started = time.perf_counter()
    for _ in range(pages):
        run()  # type: ignore[operator]
    print(f"{name:<28} {(time.perf_counter() - started) / pages * 1000:7.2f} ms/page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    try:
        import quickjs

        def with_quickjs() -> None:
            ctx = quickjs.Context()
            ctx.set_time_limit(1)
            ctx.set_memory_limit(32 << 20)
            ctx.eval(DEFINE)
            ctx.eval(CALLS + "JSON.stringify(nav)")

        per_page("quickjs (QuickJS)", with_quickjs, args.pages)
    except ImportError:
        print("quickjs not installed")
    try:
        import dukpy

        per_page("dukpy (Duktape)", lambda: dukpy.evaljs([DEFINE, CALLS + "nav"]), args.pages)
    except ImportError:
        print("dukpy not installed")
    try:
        from py_mini_racer import MiniRacer

        def with_v8() -> None:
            ctx = MiniRacer()
            ctx.eval(DEFINE, timeout=1000, max_memory=64 << 20)
            ctx.eval(CALLS + "JSON.stringify(nav)", timeout=1000)

        per_page("mini-racer (V8)", with_v8, max(1, args.pages // 10))
    except ImportError:
        print("mini-racer not installed")

    from crawler.crawl.scripts import navigations
    from crawler.lab.world import _world_root

    site = Path(_world_root("kp")) / "sites" / "minju.com.kp"
    html = (site / "index.html").read_text()
    common = {"http://minju.com.kp/js/common.js": (site / "js" / "common.js").read_text()}
    per_page("sandbox on minju.com.kp /",
             lambda: navigations(html, "http://minju.com.kp/", common), args.pages)
    for label, code in [("endless loop", "while (1) {}"),
                        ("heap bomb", "var a = []; while (1) a.push(new Array(1e6).join('x'))"),
                        ("deep recursion", "function f() { return f() + 1 } f()"),
                        ("navigation loop", "while (1) location.href = '/x'")]:
        started = time.thread_time()
        found = navigations(f'<a onclick="{code}">x</a>', "http://x.kp/")
        print(f"hostile: {label:<19} {time.thread_time() - started:5.2f} s CPU, "
              f"{len(found)} navigations")


if __name__ == "__main__":
    main()
