"""The ``terracube`` command: serve the API, build the sample archive, run a process graph."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from terracube.auth.cli import register as register_auth_commands
from terracube.browser_build import register as register_browser_commands
from terracube.jobs.cli import register as register_jobs_commands
from terracube.settings import get_settings

app = typer.Typer(help="terracube: a self-hostable openEO backend.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def build_sample_archive(built: list | None = None) -> Path:
    """Build the embedded archive if needed, with a progress bar (it takes a while only once).

    ``built``, if given, gets an entry when a build actually ran (only a build reports progress).
    """
    from terracube.data.sample import ensure_sample_archive

    settings = get_settings()
    with Progress(
        TextColumn("[bold]Building the simulated Sentinel-2 archive"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("scenes", total=None)

        def advance(done: int, total: int) -> None:
            if built is not None and not built:
                built.append(True)
            progress.update(task, completed=done, total=total)

        catalog = ensure_sample_archive(settings.sample_dir, advance, scenes=settings.sample_scenes())
    return catalog


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Interface to listen on (TERRACUBE_HOST, default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (TERRACUBE_PORT, default 8000)."),
) -> None:
    """Start the openEO API server."""
    import uvicorn

    from terracube.auth import OPEN_WARNING
    from terracube.auth.serving import serve_refusal

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    refusal = serve_refusal(settings, host)
    if refusal:
        console.print(f"[red]{refusal}[/red]")
        raise typer.Exit(2)
    if settings.auth == "none":
        console.print(f"[bold red]WARNING[/bold red]: {OPEN_WARNING}")
    build_sample_archive()
    console.print(f"terracube serving openEO API 1.2.0 at [bold]http://{host}:{port}[/bold]  (data: {settings.data_dir})")
    config = uvicorn.Config(
        "terracube.api.app:create_app", factory=True, host=host, port=port, log_level="info", server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    _Server(config).run()


# SIGTERM (or Ctrl-C): synchronous processing stops at once (its requests answer 503), requests
# still open after the grace are cancelled, then the lifespan ends (running jobs go back to the
# queue, or on a shared Dask cluster go on there for another server to take over). Whatever still
# runs at the deadline (a UDF that never returns, a Dask worker that does not close) does not keep
# the process: it ends then.
SHUTDOWN_GRACE_SECONDS = 3
SHUTDOWN_DEADLINE_SECONDS = 7


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if not self.should_exit:
                from terracube.api.sync_pool import stop_all_work

                stop_all_work()
                _exit_by_deadline()
            super().handle_exit(sig, frame)

    return Server


def _Server(config):  # noqa: N802 (a class, made when uvicorn is imported)
    return _server_class()(config)


def _exit_by_deadline() -> None:
    """End the process ``SHUTDOWN_DEADLINE_SECONDS`` from now if it has not ended by then."""
    import logging
    import os
    import threading

    def end() -> None:
        console.print(f"terracube: still shutting down after {SHUTDOWN_DEADLINE_SECONDS} s; exiting without waiting further")
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(SHUTDOWN_DEADLINE_SECONDS, end)
    timer.daemon = True
    timer.start()


register_auth_commands(app)  # terracube users / clients / keys (terracube.auth.cli)
register_jobs_commands(app)  # terracube jobs list --all (terracube.jobs.cli)
register_browser_commands(app)  # terracube build-browser (terracube.browser_build)


@app.command("build-archive")
def build_archive() -> None:
    """Build the simulated Sentinel-2 L2A archive of the Ahr valley into the data directory."""
    catalog = build_sample_archive()
    console.print(f"Sample archive ready: {catalog}")


@app.command()
def run(
    graph: Path = typer.Argument(..., exists=True, readable=True, help="A process graph JSON file."),
    out: Path = typer.Option(Path("."), help="Directory for the results."),
) -> None:
    """Run a process graph locally, with the same engine as the server, and write its results."""
    from terracube.api.auth import ANONYMOUS
    from terracube.data.catalog import Catalog
    from terracube.errors import OpenEOError
    from terracube.execute import execute, request_env

    settings = get_settings()
    build_sample_archive()
    out.mkdir(parents=True, exist_ok=True)
    try:
        # load_uploaded_files reads what was uploaded to the local server (where everyone is anonymous).
        env = request_env(settings, Catalog(settings), user_id=ANONYMOUS.user_id)
        execution = execute(json.loads(graph.read_text()), env, out)
    except OpenEOError as error:
        console.print(f"[red]{error.code}[/red]: {error.message}")
        raise typer.Exit(2) from None
    for path, media_type in execution.files:
        console.print(f"{path}  ({media_type})")
    console.print(f"done in {execution.seconds:.2f} s")


def _period(value: str) -> tuple[str, str]:
    start, sep, end = value.partition("..")
    if not sep:
        raise typer.BadParameter("give a period as START..END, e.g. 2021-07-20..2021-07-22")
    return start.strip(), end.strip()


def _bbox(value: str) -> dict:
    path = Path(value)
    if path.exists():
        from shapely.geometry import shape

        document = json.loads(path.read_text())
        geometry = document.get("geometry") or (document.get("features") or [{}])[0].get("geometry") or document
        west, south, east, north = shape(geometry).bounds
    else:
        try:
            west, south, east, north = (float(v) for v in value.split(","))
        except ValueError:
            raise typer.BadParameter("give --bbox as WEST,SOUTH,EAST,NORTH in degrees, or a GeoJSON file") from None
    return {"west": west, "south": south, "east": east, "north": north}


@app.command()
def flood(
    bbox: Optional[str] = typer.Option(None, help="WEST,SOUTH,EAST,NORTH (WGS84) or a GeoJSON file; default: the tutorial's Ahr valley box."),
    before: Optional[str] = typer.Option(None, help="Period before the event, START..END (end exclusive); default 2021-06-12..2021-06-14."),
    after: Optional[str] = typer.Option(None, help="Period after the event; default 2021-07-20..2021-07-22."),
    auto_dates: Optional[int] = typer.Option(None, "--auto-dates", help="Pick the clearest scene within N days before and after --event (local runs)."),
    event: str = typer.Option("2021-07-15", help="Event date for --auto-dates."),
    collection: str = typer.Option("SENTINEL2_L2A", help="Collection id."),
    threshold: float = typer.Option(0.2, help="NDVI drop counted as damage."),
    no_mask: bool = typer.Option(False, "--no-mask", help="Do not mask clouds and shadows with SCL (the tutorial's exact graph)."),
    out: Path = typer.Option(Path("flood"), help="Output directory."),
    backend: Optional[str] = typer.Option(None, help="Run the same process graph on this openEO backend instead of locally."),
    auth: Optional[str] = typer.Option(None, help="Login for --backend: oidc or basic."),
) -> None:
    """NDVI before and after a flood, the difference, the damaged area, a figure: the tutorial in one command."""
    import time
    from datetime import date

    from terracube.errors import OpenEOError
    from terracube.flood.analysis import FloodInputError, FloodRequest, clearest_day, run_flood

    request = FloodRequest(collection=collection, threshold=threshold, mask_clouds=not no_mask, out=out, backend=backend, auth=auth)
    if bbox:
        request.bbox = _bbox(bbox)
    if before:
        request.before = _period(before)
    if after:
        request.after = _period(after)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def progress(message: str) -> None:
            bar.update(task, description=message)

        started = time.perf_counter()
        archive_seconds = None
        try:
            if backend is None and collection == "SENTINEL2_L2A":
                progress("sample archive")
                built: list = []
                build_sample_archive(built)
                if built:  # the first run's cost, counted in the time reported: the user waited for it too
                    archive_seconds = time.perf_counter() - started
            if auto_dates:
                from terracube.data.catalog import Catalog

                catalog = Catalog(get_settings())
                progress("choosing the clearest scenes")
                request.before = clearest_day(catalog, request, date.fromisoformat(event), auto_dates, after_event=False)
                request.after = clearest_day(catalog, request, date.fromisoformat(event), auto_dates, after_event=True)
            summary = run_flood(request, progress=progress, archive_build_seconds=archive_seconds)
        except FloodInputError as error:
            console.print(f"[red]error[/red]: {error}")
            raise typer.Exit(2) from None
        except OpenEOError as error:
            console.print(f"[red]{error.code}[/red]: {error.message}")
            raise typer.Exit(2) from None
        except Exception as error:  # an unreachable backend, a refused login: say it plainly
            if backend is None:
                raise
            console.print(f"[red]error[/red]: the backend {backend} failed: {error}")
            raise typer.Exit(3) from None
    _print_summary(summary, time.perf_counter() - started)


def _print_summary(summary: dict, total_seconds: float) -> None:
    out = Console()
    if summary["simulated_data"]:
        out.print("[yellow]Simulated data[/yellow]: terracube's embedded archive, not real Sentinel-2 observations.")
    out.print(f"Area: {summary['area_ha']:.0f} ha ({summary['shape'][1]} x {summary['shape'][0]} px, {summary['crs']})")
    for name in ("before", "after"):
        part = summary[name]
        scenes = ", ".join(part["scenes"]) if part["scenes"] else "-"
        out.print(f"{name:>6}: {part['period'][0]} .. {part['period'][1]}  mean NDVI {summary['mean_ndvi_' + name]:.3f}  scenes: {scenes}")
    out.print(f"Valid pixels: {summary['valid_pixel_fraction']:.1%}   cloud masking: {summary['cloud_masking']}")
    out.print(f"NDVI dropped by more than {summary['threshold']}: [bold]{summary['damaged_area_ha']:.1f} ha[/bold]")
    for patch in summary["largest_damaged_patches"][:3]:
        out.print(f"  patch of {patch['area_ha']:.1f} ha around {patch['centre_lat']:.4f} N, {patch['centre_lon']:.4f} E")
    built = summary.get("archive_build_seconds")
    if built is not None:
        out.print(f"Built the simulated archive in {built:.1f} s (first run only); the analysis took {summary['processing_seconds']:.1f} s.")
    out.print(f"Done in {total_seconds:.1f} s. Files:")
    for path in summary["files"].values():
        out.print(f"  {path}")


@app.command("clean")
def clean() -> None:
    """Delete the sample archive; it is rebuilt on next use."""
    shutil.rmtree(get_settings().sample_dir, ignore_errors=True)


if __name__ == "__main__":
    app()
