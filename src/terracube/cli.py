"""The ``terracube`` command: serve the API, build the sample archive, run a process graph."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from terracube.settings import get_settings

app = typer.Typer(help="terracube: a self-hostable openEO backend.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def build_sample_archive() -> Path:
    """Build the embedded archive if needed, with a progress bar (it takes a while only once)."""
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
        catalog = ensure_sample_archive(settings.sample_dir, lambda done, total: progress.update(task, completed=done, total=total))
    return catalog


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Interface to listen on (TERRACUBE_HOST, default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (TERRACUBE_PORT, default 8000)."),
) -> None:
    """Start the openEO API server."""
    import uvicorn

    settings = get_settings()
    build_sample_archive()
    host = host or settings.host
    port = port or settings.port
    console.print(f"terracube serving openEO API 1.2.0 at [bold]http://{host}:{port}[/bold]  (data: {settings.data_dir})")
    uvicorn.run("terracube.api.app:create_app", factory=True, host=host, port=port, log_level="info")


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
    from terracube.data.catalog import Catalog
    from terracube.errors import OpenEOError
    from terracube.jobs.execute import execute

    settings = get_settings()
    build_sample_archive()
    out.mkdir(parents=True, exist_ok=True)
    try:
        execution = execute(json.loads(graph.read_text()), Catalog(settings), settings, out)
    except OpenEOError as error:
        console.print(f"[red]{error.code}[/red]: {error.message}")
        raise typer.Exit(2) from None
    for path, media_type in execution.files:
        console.print(f"{path}  ({media_type})")
    console.print(f"done in {execution.seconds:.2f} s")


@app.command("clean")
def clean() -> None:
    """Delete the sample archive; it is rebuilt on next use."""
    shutil.rmtree(get_settings().sample_dir, ignore_errors=True)


if __name__ == "__main__":
    app()
