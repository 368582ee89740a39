"""The Browser as a person opens it: time to the first map, and to a first layer's tiles.

``python bench/browser.py [--runs 10] [--update-results]``. Starts ``terracube serve`` in laptop mode
over the sample archive (as bench/tiles.py does: a fresh data directory whose ``sample`` links to the
bench's archive), warms it (one request to ``/browser/`` and one to ``/collections``), then opens
``/browser/`` in Debian's Chromium (Playwright) ``--runs`` times, each in a new browser context (no
cache, no storage: a first visit), at 1280 x 800. Per visit it measures, in the page's own clock:

* first map: from the navigation's start until the page is ready (``window.terracube.ready``: the
  collection read), MapLibre's map is loaded, not moving, every tile it wants is there and the
  collection's extent is drawn (its outline among the rendered features);
* first layer: the tutorial's area typed as the search's box, 21 July 2021 searched and its scene
  picked, NDVI chosen; from pressing "Show on map" until the layer's tiles are drawn (its source
  loaded, all tiles of the view loaded, the map still). Every visit makes a new map service, so its
  tiles are cold: drawn by the server for the first time.

The page is polled every 20 ms (the page's policy forbids the ``eval`` Playwright's own waiting
uses), so each time is late by at most that. Reports p50/p95 of both and the machine's load
average; ``--update-results`` writes section 7 of bench/RESULTS.md. A benchmark, not a test: it
asserts nothing but that the page works. The goal (issue 18): the first map within 2 s of opening
on a warm server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from load import percentile  # noqa: E402 - bench/ is a folder of scripts, not a package
from tiles import Terracube, archive, stop, write_section  # noqa: E402
from tutorial import AOI  # noqa: E402

DAY = "2021-07-21"
VIEWPORT = {"width": 1280, "height": 800}
GOAL_SECONDS = 2.0
POLL = 0.02

FIRST_MAP = """() => { const t = window.terracube, m = t && t.map.map;
    if (!t || !t.ready || !m.loaded() || m.isMoving() || !m.areTilesLoaded()) return null;
    return m.queryRenderedFeatures({layers: ['extent']}).length > 0 ? performance.now() : null; }"""
# MapLibre counts a source with no tile asked yet as loaded: a tile of the layer must have arrived too.
COUNT_TILES = """() => { window.layerTilesLoaded = 0;
    window.terracube.map.map.on('data', (e) => { if (e.dataType === 'source' && e.sourceId === 'layer' && e.tile) window.layerTilesLoaded++; }); }"""
LAYER_DRAWN = """() => { const m = window.terracube.map.map;
    if (!window.layerTilesLoaded || !m.getSource('layer') || !m.isSourceLoaded('layer') || !m.areTilesLoaded() || m.isMoving()) return null;
    return performance.now(); }"""
PROBLEM = "() => { const e = document.querySelector('#error'); return e && !e.hidden ? e.innerText : null; }"


def poll(page, expression: str, timeout: float, what: str) -> float:
    """Evaluate ``expression`` every POLL seconds until it gives a value (the page's clock, ms); fail on the page's error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value is not None:
            return value
        problem = page.evaluate(PROBLEM)
        if problem:
            raise RuntimeError(f"{what}: the page says {problem!r}")
        time.sleep(POLL)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def visit(browser, url: str) -> dict:
    """One first visit: the first map, then the NDVI of DAY over the tutorial's area; seconds for each."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{url}/browser/", wait_until="commit")
        first_map = poll(page, FIRST_MAP, 60, "the first map") / 1000
        # The tutorial's area as the search's box, the day searched and its scene picked, as a person does it.
        page.locator("#area-more summary").click()
        for field, value in zip(("west", "south", "east", "north"), (AOI["west"], AOI["south"], AOI["east"], AOI["north"])):
            page.fill(f"#area-{field}", str(value))
        page.get_by_role("button", name="Use this box").click()
        page.fill("#date-from", DAY)
        page.fill("#date-to", DAY)
        page.locator("#search-button").click()
        poll(page, "() => document.querySelector('#scenes button.scene') ? 1 : null", 60, "the day's scene")
        page.locator("#scenes button.scene").first.click()
        page.get_by_label("NDVI").check()
        poll(page, "() => { const m = window.terracube.map.map; return m.isMoving() ? null : 1; }", 10, "the map at the area")
        page.evaluate(COUNT_TILES)
        pressed = page.evaluate("performance.now()")
        page.get_by_role("button", name="Show on map").click()
        drawn = poll(page, LAYER_DRAWN, 120, "the layer's tiles")
        if errors:
            raise RuntimeError(f"the page failed: {errors}")
        return {"first_map": first_map, "first_layer": (drawn - pressed) / 1000, "zoom": page.evaluate("window.terracube.map.map.getZoom()")}
    finally:
        context.close()


def measure(runs: int = 10) -> dict:
    from terracube.browser_build import OUT_DIR, build_browser, source_dir

    from tests.auth.test_browser_login import CHROMIUM_ARGS, playwright_and_chromium

    built = build_browser(source_dir(), OUT_DIR)  # nothing to do when the sources did not change since the last build
    if not built.built:
        raise SystemExit(f"the Browser is not built: {built.message}")
    sample = archive()
    folder = Path(tempfile.mkdtemp(prefix="terracube-browser-"))
    server = Terracube(folder, sample)
    loads = [os.getloadavg()[0]]
    visits = []
    try:
        for path in ("/browser/", "/collections"):  # warm: the page's files and the catalog read once
            requests.get(server.url + path, timeout=60).raise_for_status()
        playwright, chromium = playwright_and_chromium()
        with playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                started = time.perf_counter()
                for run in range(runs):
                    visits.append(visit(browser, server.url))
                    loads.append(os.getloadavg()[0])
                    print(f"browser: visit {run + 1}/{runs}: {json.dumps(visits[-1])}", file=sys.stderr, flush=True)
                seconds = time.perf_counter() - started
            finally:
                browser.close()
    finally:
        stop(server)
    figures = {}
    for key in ("first_map", "first_layer"):
        values = [v[key] for v in visits]
        figures[key] = {"p50": statistics.median(values), "p95": percentile(values, 0.95), "min": min(values), "max": max(values)}
    return {"runs": runs, "seconds": seconds, "figures": figures, "zoom": visits[0]["zoom"], "cores": os.cpu_count(),
            "load_average": {"min": min(loads), "mean": statistics.mean(loads), "max": max(loads)}}


def results_section(result: dict, number: int = 7, alone: bool = False) -> list[str]:
    load, f = result["load_average"], result["figures"]
    measured = f" (measured {date.today().isoformat()}, by `python bench/browser.py --update-results` alone)" if alone else ""
    met = f["first_map"]["p50"] <= GOAL_SECONDS
    return [
        f"## {number}. The Browser: the first map and a first layer{measured}",
        "",
        "`bench/browser.py`: `terracube serve` in laptop mode over the sample archive, warmed by one request to `/browser/`",
        f"and one to `/collections`; Debian's Chromium (Playwright, headless) opens `/browser/` {result['runs']} times, each in a",
        "new browser context (a first visit: nothing cached), at 1280 x 800. First map: from the navigation's start until",
        "the page is ready (the collection read), MapLibre's map loaded and still with all its tiles, and the collection's",
        "extent drawn. First layer: the tutorial's area typed as the search's box, 21 July 2021 searched and its scene",
        f"picked, NDVI; from pressing \"Show on map\" until its tiles are drawn (zoom {result['zoom']:.1f}; a new map service each",
        "visit, so the server draws every tile for the first time). Times in the page's clock, polled every 20 ms.",
        "",
        f"{result['runs']} visits, {result['seconds']:.0f} s in all. **Machine load while measured: load average "
        f"{load['min']:.1f}-{load['max']:.1f} (mean {load['mean']:.1f}) on {result['cores']} cores** (above about 2, other work shared the machine).",
        "",
        "| step | p50 (s) | p95 (s) | min / max (s) |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {f[key]['p50']:.2f} | {f[key]['p95']:.2f} | {f[key]['min']:.2f} / {f[key]['max']:.2f} |"
          for key, name in (("first_map", "first map, from opening the page"), ("first_layer", "first layer's tiles, from \"Show on map\""))),
        "",
        f"Goal (issue 18): the first map within {GOAL_SECONDS:.0f} s of opening on a warm server (p50): **{'met' if met else 'missed'}**.",
    ]


def update_results(result: dict, number: int = 7) -> None:
    write_section("\n".join(results_section(result, number, alone=True)) + "\n", number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="first visits to measure (default 10)")
    parser.add_argument("--update-results", action="store_true", help="write section 7 of bench/RESULTS.md")
    args = parser.parse_args()
    result = measure(args.runs)
    print(json.dumps(result, indent=1))
    print("\n".join(results_section(result)))
    if args.update_results:
        update_results(result)


if __name__ == "__main__":
    main()
