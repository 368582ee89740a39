"""Map tiles as a browser loads them: terracube's XYZ service against titiler-openeo on the same COGs.

``python bench/tiles.py [--quick] [--update-results]``, or as part of ``bench/run``. A map view of
the Ahr valley (NDVI of 2021-07-21, RdYlGn over -1..1) at zoom 12, 13 and 14: the 4 x 3 tiles a
1024 x 768 window shows, centred on the tutorial's area, fetched as a browser does (6 connections
to the host, as chromium over HTTP/1.1). Per zoom: the first view (cold: tiles this server has not
drawn), a pan by two tiles (half the tiles new), and the first view again (second visit: cached
where the server caches). Measured per tile (request to response) and per view (until its last
tile arrived), and the peak memory of each server's process tree (psutil).

terracube: ``terracube serve`` in laptop mode with a fresh data directory whose ``sample`` links to
the bench's archive; the layer is the docs' example (``load_collection`` + ``ndvi``, the colormap and
range in the service's configuration). titiler-openeo (PyPI, in ``bench/.titiler-venv``, made on
first use by the full run: its pins conflict with ours) reads the same COGs through a STAC API on
loopback (the tests' ``StacApiServer``, in a process of its own; assets as ``file://`` URLs, so both
servers read the same files from the same disk), with its JSON service store and its built-in basic
user; its layer is its own idiom for the same picture (``first`` over ``t``, ``ndvi``,
``linear_scale_range`` to 0..255, ``colormap(get_colormap("rdylgn"))``, PNG). Each repeat makes a
new service on both servers, so every repeat's first view is cold; the servers take turns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from load import percentile, tree_rss  # noqa: E402 - bench/ is a folder of scripts, not a package
from tutorial import AOI, free_port, wait_for_health  # noqa: E402 - bench/ is a folder of scripts, not a package

TITILER_VENV = HERE / ".titiler-venv"
TITILER_REQUIREMENT = "titiler-openeo==0.19.0"  # the version measured; bump it on purpose
ZOOMS = (12, 13, 14)
COLUMNS, ROWS = 4, 3  # the tiles of a 1024 x 768 window
PAN = 2  # tiles the view moves east: half the tiles are new
CONNECTIONS = 6  # chromium's per-host limit over HTTP/1.1
DATE = ["2021-07-21", "2021-07-22"]
PHASES = ("cold", "pan", "cached")
SERIAL = "cold, one at a time"  # the cold view's tiles requested one after another: a tile's own time, no queue


# --- the layers ------------------------------------------------------------------------------
def terracube_layer() -> dict:
    """The docs' NDVI layer (docs/services-rendering.md): the tile gives the extent."""
    return {"type": "XYZ", "title": "NDVI, 21 July 2021", "configuration": {"colormap": "RdYlGn", "range": [-1, 1]},
            "process": {"process_graph": {
                "load": {"process_id": "load_collection", "arguments": {
                    "id": "SENTINEL2_L2A", "spatial_extent": None, "temporal_extent": DATE, "bands": ["B04", "B08"]}},
                "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}, "result": True},
            }}}


def titiler_layer() -> dict:
    """The same picture in titiler-openeo's idiom (its services/eoapi.json examples): bytes through a rio-tiler colormap."""
    scale = {"process_graph": {
        "lin": {"process_id": "linear_scale_range", "arguments": {
            "x": {"from_parameter": "x"}, "inputMin": -1, "inputMax": 1, "outputMin": 0, "outputMax": 255}},
        "trunc": {"process_id": "trunc", "arguments": {"x": {"from_node": "lin"}}, "result": True}}}
    first = {"process_graph": {"f": {"process_id": "first", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}
    return {"type": "XYZ", "title": "NDVI, 21 July 2021", "configuration": {"tile_size": 256},
            "process": {"process_graph": {
                "load": {"process_id": "load_collection", "arguments": {
                    "id": "SENTINEL2_L2A", "spatial_extent": {"from_parameter": "bounding_box"},
                    "temporal_extent": [f"{DATE[0]}T00:00:00Z", f"{DATE[1]}T00:00:00Z"], "bands": ["B04", "B08"]}},
                "first": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "load"}, "dimension": "t", "reducer": first}},
                "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "first"}, "nir": "B08", "red": "B04"}},
                "scale": {"process_id": "apply", "arguments": {"data": {"from_node": "ndvi"}, "process": scale}},
                "cmap": {"process_id": "get_colormap", "arguments": {"name": "rdylgn"}},
                "color": {"process_id": "colormap", "arguments": {"data": {"from_node": "scale"}, "colormap": {"from_node": "cmap"}}},
                "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "color"}, "format": "PNG"}, "result": True},
            }}}


# --- the views -------------------------------------------------------------------------------
def views(zoom: int) -> dict[str, list[tuple[int, int, int]]]:
    """The tiles of each phase at ``zoom``: the window centred on the tutorial's area, then panned east, then back."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    centre = ((AOI["west"] + AOI["east"]) / 2, (AOI["south"] + AOI["north"]) / 2)
    x, y = tms.xy(*centre)
    size = tms.matrix(zoom).cellSize * tms.matrix(zoom).tileWidth
    origin_x, origin_y = tms.matrix(zoom).pointOfOrigin
    column, row = (x - origin_x) / size, (origin_y - y) / size
    left, top = round(column - COLUMNS / 2), round(row - ROWS / 2)

    def window(left: int) -> list[tuple[int, int, int]]:
        return [(zoom, left + dx, top + dy) for dy in range(ROWS) for dx in range(COLUMNS)]

    return {"cold": window(left), "pan": window(left + PAN), "cached": window(left)}


def fetch_view(pool: ThreadPoolExecutor, sessions: threading.local, template: str, tiles: list[tuple[int, int, int]]) -> dict:
    """All tiles of a view at once through the pool's connections: each tile's latency and the view's time.

    An empty tile is an answer too: terracube sends a transparent PNG, titiler-openeo a 404 ``NoDataAvailable``
    (a browser shows nothing for either).
    """
    started = time.perf_counter()

    def get(tile: tuple[int, int, int]) -> tuple[float, float, bytes | None]:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        z, x, y = tile
        sent = time.perf_counter()
        response = sessions.session.get(template.format(z=z, x=x, y=y), timeout=300)
        arrived = time.perf_counter()
        if response.status_code == 404 and "NoDataAvailable" in response.text:
            return arrived - sent, arrived - started, None
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith("image/png"):
            raise RuntimeError(f"tile {z}/{x}/{y} of {template}: {response.status_code} {response.text[:300]}")
        return arrived - sent, arrived - started, response.content

    answers = list(pool.map(get, tiles))
    return {"tiles": [a[0] for a in answers], "view": max(a[1] for a in answers), "pngs": {t: a[2] for t, a in zip(tiles, answers)}}


def with_data(tile: tuple[int, int, int], extent: tuple[float, float, float, float]) -> bool:
    """Whether a tile overlaps the archive (its collection's WGS84 box): the tiles that cost a read."""
    import morecantile

    z, x, y = tile
    bounds = morecantile.tms.get("WebMercatorQuad").bounds(morecantile.Tile(x, y, z))
    return bounds.left < extent[2] and bounds.right > extent[0] and bounds.bottom < extent[3] and bounds.top > extent[1]


# --- the servers -----------------------------------------------------------------------------
def archive() -> Path:
    from terracube.data.sample import ensure_sample_archive

    data_dir = Path(os.environ.get("TERRACUBE_TEST_DATA_DIR") or HERE / ".cache" / "data")
    ensure_sample_archive(data_dir / "sample")
    return data_dir / "sample"


class Terracube:
    name = "terracube"

    def __init__(self, folder: Path, sample: Path):
        data_dir = folder / "terracube-data"
        data_dir.mkdir()
        (data_dir / "sample").symlink_to(sample.resolve(), target_is_directory=True)
        port = free_port()
        env = {**os.environ, "TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_PORT": str(port)}
        for name in ("TERRACUBE_TEST_DATA_DIR", "TERRACUBE_DATABASE_URL", "TERRACUBE_TILE_CACHE_DIR", "TERRACUBE_AUTH"):
            env.pop(name, None)
        self.log = open(folder / "terracube.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "terracube.cli", "serve"], env=env, stdout=self.log, stderr=self.log)
        self.url = wait_for_health(f"http://127.0.0.1:{port}", self.process, seconds=120)

    def new_service(self) -> str:
        response = requests.post(self.url + "/services", json=terracube_layer(), timeout=120)
        response.raise_for_status()
        location = response.headers["Location"]
        service = requests.get(location if location.startswith("http") else self.url + location, timeout=60).json()
        return service["url"]


class Titiler:
    name = "titiler-openeo"
    TOKEN = {"Authorization": "Bearer basic//dGVzdDp0ZXN0"}  # its built-in basic user test:test (AuthSettings' default)

    def __init__(self, folder: Path, sample: Path):
        self.stac = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "stac-api", str(sample)],
                                     stdout=subprocess.PIPE, stderr=open(folder / "stac-api.log", "wb"), text=True)
        stac_url = self.stac.stdout.readline().strip()
        if not stac_url.startswith("http"):
            raise RuntimeError(f"the STAC API did not start: {(folder / 'stac-api.log').read_text()[-2000:]}")
        port = free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
               "TITILER_OPENEO_STAC_API_URL": stac_url, "TITILER_OPENEO_STORE_URL": str(folder / "titiler-services.json")}
        self.log = open(folder / "titiler.log", "wb")
        # Run in ``folder``: its settings also read a ``.env`` from the working directory.
        self.process = subprocess.Popen([str(TITILER_VENV / "bin" / "python"), "-m", "uvicorn", "titiler.openeo.main:app",
                                         "--port", str(port), "--log-level", "warning"], env=env, cwd=folder, stdout=self.log, stderr=self.log)
        try:
            self.url = wait_for_titiler(f"http://127.0.0.1:{port}", self.process)
        except BaseException:
            self.stac.kill()
            raise

    def new_service(self) -> str:
        response = requests.post(self.url + "/services", json=titiler_layer(), headers=self.TOKEN, timeout=120)
        response.raise_for_status()
        return f"{self.url}/services/xyz/{response.headers['OpenEO-Identifier']}/tiles/{{z}}/{{x}}/{{y}}"

    def stop(self) -> None:
        self.stac.kill()
        self.stac.wait(10)


def wait_for_titiler(url: str, process: subprocess.Popen, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url + "/", timeout=1).ok:
                return url
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"titiler-openeo at {url} did not start")


def stop(server) -> None:
    server.process.terminate()
    try:
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()
    if hasattr(server, "stop"):
        server.stop()


def ensure_titiler(create: bool) -> bool:
    """titiler-openeo's own virtualenv (its pins would hold back ours); made with pip from PyPI when ``create``."""
    python = TITILER_VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import titiler.openeo.main"], capture_output=True,
                                          env={"PATH": os.environ.get("PATH", ""), "TITILER_OPENEO_STAC_API_URL": "http://127.0.0.1:1",
                                               "TITILER_OPENEO_STORE_URL": "/nonexistent.json"}).returncode == 0:
        return True
    if not create:
        return False
    subprocess.run([sys.executable, "-m", "venv", str(TITILER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", TITILER_REQUIREMENT, "uvicorn"], check=True)
    return True


def serve_stac_api(sample: Path) -> None:
    """The subcommand ``stac-api``: the sample archive's items behind the tests' STAC API, until killed."""
    sys.path.insert(0, str(ROOT))
    from tests.stac.stac_api_server import StacApiServer

    collection_dir = sample / "SENTINEL2_L2A"
    collection = json.loads((collection_dir / "collection.json").read_text())
    items = []
    for path in sorted(collection_dir.glob("*/*.json")):
        item = json.loads(path.read_text())
        for asset in item["assets"].values():
            if "://" not in asset["href"]:
                # Absolute URLs: pystac would resolve a relative href (or a bare path) against the API's URL.
                asset["href"] = (path.parent / asset["href"]).resolve().as_uri()
        items.append(item)
    with StacApiServer([collection], items, page_size=100) as api:
        print(api.url, flush=True)
        threading.Event().wait()


# --- the measurement -------------------------------------------------------------------------
def agreement(ours: bytes, theirs: bytes) -> dict:
    """How alike two PNG tiles are: pixels both draw, and the mean RGB difference there (0-255)."""
    import numpy as np
    from rasterio.io import MemoryFile

    def rgba(content: bytes):
        with MemoryFile(content) as memory, memory.open() as image:
            pixels = image.read().astype(np.int16)
        return pixels[:3], pixels[3] > 0 if pixels.shape[0] == 4 else np.ones(pixels.shape[1:], bool)

    (a, a_opaque), (b, b_opaque) = rgba(ours), rgba(theirs)
    both = a_opaque & b_opaque
    difference = np.abs(a - b)[:, both]
    return {"drawn_by_both": float(both.mean()), "drawn_by_one": float((a_opaque ^ b_opaque).mean()),
            "mean_rgb_difference": float(difference.mean()) if difference.size else 0.0}


def measure(quick: bool = False, with_titiler: bool | None = None) -> dict:
    """Run the views on each server, in turns; ``with_titiler`` None: when its venv is there (full run: made if missing)."""
    sample = archive()
    zooms = (13,) if quick else ZOOMS
    repeats = 1 if quick else 3
    if with_titiler is None:
        with_titiler = ensure_titiler(create=not quick)
    elif with_titiler:
        ensure_titiler(create=True)
    # The page cache is shared by both servers: read the day's bands once, so neither pays the disk for the other.
    for path in sample.glob("SENTINEL2_L2A/*20210721*/B0[48].tif"):
        path.read_bytes()
    folder = Path(tempfile.mkdtemp(prefix="terracube-tiles-"))
    servers = [Terracube(folder, sample)]
    stop_sampling = threading.Event()
    peaks: dict[str, int] = {}
    loads: list[float] = []
    try:
        if with_titiler:
            servers.append(Titiler(folder, sample))
        idle = {server.name: tree_rss(server.process.pid) for server in servers}

        def sampler() -> None:
            while not stop_sampling.is_set():
                for server in servers:
                    peaks[server.name] = max(peaks.get(server.name, 0), tree_rss(server.process.pid))
                loads.append(os.getloadavg()[0])
                stop_sampling.wait(0.05)

        threading.Thread(target=sampler, daemon=True).start()
        extent = tuple(json.loads((sample / "SENTINEL2_L2A" / "collection.json").read_text())["extent"]["spatial"]["bbox"][0])
        runs = {server.name: {phase: {"tiles": [], "data": [], "views": []} for phase in (*PHASES, SERIAL)} for server in servers}
        first_view: dict[str, float] = {}
        pngs: dict[str, dict] = {}
        started = time.perf_counter()
        for repeat in range(repeats):
            for server in servers:
                template = server.new_service()
                sessions = threading.local()
                with ThreadPoolExecutor(CONNECTIONS) as pool:
                    for zoom in zooms:
                        for phase, tiles in views(zoom).items():
                            view = fetch_view(pool, sessions, template, tiles)
                            runs[server.name][phase]["tiles"] += view["tiles"]
                            runs[server.name][phase]["data"] += [with_data(tile, extent) for tile in tiles]
                            runs[server.name][phase]["views"].append(view["view"])
                            first_view.setdefault(server.name, view["view"])
                            if repeat == 0 and phase == "cold":
                                pngs.setdefault(server.name, {}).update({t: png for t, png in view["pngs"].items() if png})
                if repeat == 0:  # once: the cold tiles one at a time, on a service of their own
                    template = server.new_service()
                    with ThreadPoolExecutor(1) as pool:
                        for zoom in zooms:
                            tiles = views(zoom)["cold"]
                            for tile in tiles:
                                view = fetch_view(pool, sessions, template, [tile])
                                runs[server.name][SERIAL]["tiles"] += view["tiles"]
                                runs[server.name][SERIAL]["data"].append(with_data(tile, extent))
                            runs[server.name][SERIAL]["views"].append(sum(runs[server.name][SERIAL]["tiles"][-len(tiles):]))
                print(f"tiles: repeat {repeat + 1}/{repeats} of {server.name} done", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - started
    finally:
        stop_sampling.set()
        for server in servers:
            stop(server)
    result = {
        "zooms": list(zooms), "repeats": repeats, "seconds": seconds, "load_average": {
            "min": min(loads), "mean": statistics.mean(loads), "max": max(loads)},
        "cores": os.cpu_count(), "servers": {},
    }
    for name, phases in runs.items():
        figures = {}
        for phase, measured in phases.items():
            tiles, views_ = measured["tiles"], measured["views"]
            data = [latency for latency, inside in zip(tiles, measured["data"]) if inside]
            figures[phase] = {"n": len(tiles), "p50": statistics.median(tiles), "p95": percentile(tiles, 0.95),
                              "n_data": len(data), "data_p50": statistics.median(data), "data_p95": percentile(data, 0.95),
                              "views": len(views_), "view_p50": statistics.median(views_), "view_p95": percentile(views_, 0.95)}
        result["servers"][name] = {"phases": figures, "first_view_of_a_fresh_server": first_view[name], "idle_rss": idle[name],
                                   "peak_rss": peaks.get(name, idle[name]),
                                   "latencies": {p: [v for v, inside in zip(m["tiles"], m["data"]) if inside] for p, m in phases.items()}}
    if "titiler-openeo" in pngs:
        compared = [agreement(png, pngs["titiler-openeo"][tile]) for tile, png in pngs["terracube"].items() if tile in pngs["titiler-openeo"]]
        result["agreement"] = {key: statistics.mean(c[key] for c in compared) for key in compared[0]}
    return result


# --- the report ------------------------------------------------------------------------------
def goals(result: dict) -> list[tuple[str, bool]]:
    ours = result["servers"]["terracube"]["phases"]
    checks = [("cold tile p50 under 150 ms", ours["cold"]["data_p50"] < 0.150),
              ("cached tile p50 under 10 ms", ours["cached"]["data_p50"] < 0.010),
              ("cold first view under 1 s (p50 over the cold views)", ours["cold"]["view_p50"] < 1.0)]
    theirs = result["servers"].get("titiler-openeo")
    if theirs:
        checks.insert(1, ("cold tile p50 at least 2x faster than titiler-openeo",
                          theirs["phases"]["cold"]["data_p50"] >= 2 * ours["cold"]["data_p50"]))
    return checks


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4), constrained_layout=True)
    names = list(result["servers"])
    data, labels, positions = [], [], []
    for index, phase in enumerate(PHASES):
        for offset, name in enumerate(names):
            data.append([v * 1000 for v in result["servers"][name]["latencies"][phase]])
            labels.append(f"{phase}\n{name}")
            positions.append(index * (len(names) + 1) + offset)
    boxes = axis.boxplot(data, positions=positions, widths=0.7, whis=(5, 95), showfliers=True, patch_artist=True)
    for box, position in zip(boxes["boxes"], positions):
        box.set_facecolor(("tab:blue", "tab:orange")[position % (len(names) + 1)])
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_yscale("log")
    axis.set_ylabel("ms per tile with data (log)")
    axis.axhline(150, color="grey", linestyle="--", linewidth=0.8)
    axis.axhline(10, color="grey", linestyle=":", linewidth=0.8)
    load = result["load_average"]
    axis.set_title(f"Tile latency, 6 connections, zooms {', '.join(map(str, result['zooms']))} x {result['repeats']} "
                   f"(whiskers p5-p95; load average {load['mean']:.1f} on {result['cores']} cores)", fontsize=9)
    axis.grid(alpha=0.3, axis="y")
    figure.savefig(path, dpi=100)


def results_section(result: dict, number: int, alone: bool = False) -> list[str]:
    """The section of RESULTS.md (``bench/run`` writes it; ``--update-results`` splices it in, ``alone``)."""
    load = result["load_average"]
    measured = f" (measured {date.today().isoformat()}, by `python bench/tiles.py --update-results` alone)" if alone else ""
    lines = [
        f"## {number}. Map tiles: a browser's view of the NDVI layer, against titiler-openeo{measured}",
        "",
        "`bench/tiles.py`: the NDVI of 2021-07-21 (RdYlGn, -1..1) over the Ahr valley as XYZ tiles; at each zoom the",
        f"{COLUMNS} x {ROWS} tiles of a 1024 x 768 window centred on the tutorial's area, fetched at once over {CONNECTIONS}",
        "connections (chromium's per-host limit): the first view (cold: not drawn before by this server), a pan by two",
        "tiles east (half the tiles new), the first view again (second visit). Each repeat makes a new service on both",
        "servers (so its first view is cold again); the servers take turns. Tile: request to response; view: until its",
        "last tile arrived. titiler-openeo "
        f"({TITILER_REQUIREMENT.split('==')[1]}, its own virtualenv) reads the same COGs through a STAC API on loopback",
        "(the tests' server, assets as `file://` URLs: both read the same files from the same disk) with its own idiom",
        "for the same picture (`first`, `ndvi`, `linear_scale_range` to bytes, `colormap(rdylgn)`, PNG); it has no",
        "tile cache of its own (it sends `Cache-Control: public, max-age=3600` and leaves caching to browsers).",
        "",
        f"Zooms {', '.join(map(str, result['zooms']))}, {result['repeats']} repeats, {result['seconds']:.0f} s in all. "
        f"**Machine load while measured: load average {load['min']:.1f}-{load['max']:.1f} (mean {load['mean']:.1f}) on "
        f"{result['cores']} cores** (the benchmark's own servers and clients included; above about 2, other work shared the machine).",
        "",
        f"The row \"{SERIAL}\" asks the first view's tiles one after another on one connection (first repeat, a",
        "service of its own): a tile's own time, without the queue six connections make; its view column is the",
        "sum. terracube draws at most as many tiles at once as the machine has cores (`TILE_WORKERS`); titiler-openeo",
        "draws each request in Starlette's thread pool (40 threads).",
        "",
        "The archive is 12 x 9 km, so some tiles of a view lie outside it (most of the pan at zoom 12): both servers",
        "answer those at once (terracube a transparent PNG, titiler-openeo a 404 `NoDataAvailable`). The goals are",
        "judged on the tiles with data; the plot shows those.",
        "",
        "| server | phase | tiles (with data) | tile p50 / p95, with data (ms) | tile p50 / p95, all (ms) | views | view p50 / p95 (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, server in result["servers"].items():
        for phase, f in server["phases"].items():
            lines.append(f"| {name} | {phase} | {f['n']} ({f['n_data']}) | {f['data_p50'] * 1000:.0f} / {f['data_p95'] * 1000:.0f} | "
                         f"{f['p50'] * 1000:.0f} / {f['p95'] * 1000:.0f} | {f['views']} | {f['view_p50'] * 1000:.0f} / {f['view_p95'] * 1000:.0f} |")
    lines += ["", "| server | first view of a fresh server (ms) | memory after start | peak memory (process tree) |", "| --- | --- | --- | --- |"]
    for name, server in result["servers"].items():
        lines.append(f"| {name} | {server['first_view_of_a_fresh_server'] * 1000:.0f} | {server['idle_rss'] / 2**20:.0f} MiB | "
                     f"{server['peak_rss'] / 2**20:.0f} MiB |")
    if "agreement" in result:
        a = result["agreement"]
        lines += ["", f"Same picture: over the first repeat's cold tiles, {a['drawn_by_both']:.1%} of the pixels are drawn by both "
                  f"servers and {a['drawn_by_one']:.2%} by one only (the edge of the data); where both draw, the mean RGB difference "
                  f"is {a['mean_rgb_difference']:.1f} of 255 (colormap lookups of 256 colours, resampling at the scene's edge)."]
    lines += ["", "Goals (issue 17): " + "; ".join(f"{text}: **{'met' if met else 'missed'}**" for text, met in goals(result)) + ".",
              "", "![tile latency per phase and server](tiles.png)"]
    return lines


def update_results(result: dict, number: int = 6) -> None:
    write_section("\n".join(results_section(result, number, alone=True)) + "\n", number)


def write_section(section: str, number: int) -> None:
    """Put section ``number`` into RESULTS.md in place of an earlier one, else before the findings."""
    path = HERE / "RESULTS.md"
    text = path.read_text()
    start = text.find(f"\n## {number}. ")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + (text[end:] if end >= 0 else "")
    else:
        marker = text.find("\n## Findings")
        text = text[: marker + 1] + section + text[marker:] if marker >= 0 else text + "\n" + section
    path.write_text(text)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "stac-api":
        serve_stac_api(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one zoom, one repeat; titiler-openeo only if its venv is there (CI)")
    parser.add_argument("--titiler", choices=("auto", "yes", "no"), default="auto", help="auto: when its venv exists (full run: make it)")
    parser.add_argument("--update-results", action="store_true", help="write the section into RESULTS.md and the plot into tiles.png")
    args = parser.parse_args()
    result = measure(args.quick, {"auto": None, "yes": True, "no": False}[args.titiler])
    print(json.dumps({**result, "servers": {n: {k: v for k, v in s.items() if k != "latencies"} for n, s in result["servers"].items()}}, indent=1))
    print("\n".join(results_section(result, 6)))
    if args.update_results:
        plot(result, HERE / "tiles.png")
        update_results(result)


if __name__ == "__main__":
    main()
