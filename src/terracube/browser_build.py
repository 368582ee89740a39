"""Building the Browser's front-end (``web/``, npm and Vite) into package data, ``terracube/web_dist``.

Three callers, one function: the project's ``setup.py`` runs ``build_browser`` on every
``pip install`` (editable or not), ``terracube build-browser`` runs it by hand, and the server
(``api/browser.py``) asks ``built_dir`` whether there is anything to serve.

The build never fails an install: without Node.js and npm, or when npm fails (no registry, say),
the install goes on, the server says at ``/browser`` that the Browser was not built and how to
build it, and logs it once. ``TERRACUBE_BROWSER_BUILD`` changes that: ``skip`` builds nothing,
``require`` fails the install when the build fails (CI).

This module imports nothing but the standard library: ``setup.py`` loads it by path in pip's
isolated build environment, where terracube's dependencies are not installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
OUT_DIR = PACKAGE_DIR / "web_dist"  # what Vite writes (web/vite.config.ts) and the server serves
STAMP = ".source-digest"  # in OUT_DIR: the digest of the sources it was built from
MODES = ("auto", "skip", "require")
# The files a build depends on: a change to any of them makes the next install build again.
SOURCE_GLOBS = ("package.json", "package-lock.json", "index.html", "vite.config.ts", "tsconfig.json", "src/**/*", "public/**/*")
BUILD_HINT = "terracube build-browser (or: npm --prefix web ci && npm --prefix web run build)"


class BrowserBuildFailed(RuntimeError):
    """The build was required (``TERRACUBE_BROWSER_BUILD=require``, or by hand) and did not succeed."""


@dataclass
class BuildResult:
    built: bool  # web_dist holds a build of these sources now
    message: str  # what happened, in words


def source_dir(start: Path = PACKAGE_DIR) -> Path | None:
    """The ``web/`` folder of the checkout this package lives in (src/terracube -> ../../web), if there is one."""
    candidate = start.parents[1] / "web"
    return candidate if (candidate / "package.json").exists() else None


def sources_digest(web: Path) -> str:
    """A digest of the Browser's sources (names and contents), node_modules excluded."""
    digest = hashlib.sha256()
    files = sorted({path for pattern in SOURCE_GLOBS for path in web.glob(pattern) if path.is_file()})
    for path in files:
        digest.update(path.relative_to(web).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def built_dir(out: Path = OUT_DIR) -> Path | None:
    """The folder of a complete build (its index.html present), or None."""
    return out if (out / "index.html").is_file() else None


def up_to_date(web: Path, out: Path = OUT_DIR) -> bool:
    stamp = out / STAMP
    return built_dir(out) is not None and stamp.is_file() and stamp.read_text().strip() == sources_digest(web)


def _run(command: list[str], web: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=web, capture_output=True, text=True, timeout=timeout)


def build_browser(web: Path | None = None, out: Path = OUT_DIR, force: bool = False, timeout: float = 900) -> BuildResult:
    """``npm ci`` and ``npm run build`` in ``web``, into ``out``; nothing to do when ``out`` was built from these sources.

    Returns what happened; never raises for a missing npm or a failed build (see ``require``).
    """
    web = web or source_dir()
    if web is None:
        if built_dir(out):
            return BuildResult(True, f"No web/ sources here; the Browser built before is in {out}.")
        return BuildResult(False, "The Browser's sources (web/) are not here: install terracube from its repository or source archive.")
    if not force and up_to_date(web, out):
        return BuildResult(True, f"The Browser is up to date in {out}.")
    npm = shutil.which("npm")
    if npm is None:
        return BuildResult(False, f"npm was not found (install Node.js 18 or newer with npm), so the Browser was not built. Then: {BUILD_HINT}")
    digest = sources_digest(web)
    # The output folder goes first: a half-built one must never look complete.
    shutil.rmtree(out, ignore_errors=True)
    steps = ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build", "--", "--outDir", str(out), "--emptyOutDir"])
    for step in steps:
        try:
            done = _run(step, web, timeout)
        except (OSError, subprocess.TimeoutExpired) as error:
            return BuildResult(False, f"`{' '.join(step[1:3])}` in {web} did not finish: {error}. Then: {BUILD_HINT}")
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            shutil.rmtree(out, ignore_errors=True)
            return BuildResult(False, f"`npm {step[1]}` in {web} failed (exit {done.returncode}):\n{tail}\nThen: {BUILD_HINT}")
    if built_dir(out) is None:
        return BuildResult(False, f"The build wrote no index.html into {out}. Then: {BUILD_HINT}")
    (out / STAMP).write_text(digest + "\n")
    return BuildResult(True, f"Built the Browser into {out}.")


def build_on_install(out: Path = OUT_DIR, web: Path | None = None, say=print) -> BuildResult:
    """The install's step (setup.py): build unless ``TERRACUBE_BROWSER_BUILD=skip``; fail only if it is ``require``."""
    mode = os.environ.get("TERRACUBE_BROWSER_BUILD", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise BrowserBuildFailed(f"TERRACUBE_BROWSER_BUILD is {mode!r}; it is one of {', '.join(MODES)}")
    if mode == "skip":
        return BuildResult(built_dir(out) is not None, "TERRACUBE_BROWSER_BUILD=skip: the Browser was not built.")
    result = build_browser(web, out)
    say(("terracube: " if result.built else "terracube: WARNING: ") + result.message)
    if not result.built and mode == "require":
        raise BrowserBuildFailed(result.message)
    return result


def register(app) -> None:
    """``terracube build-browser`` (typer is imported by the caller, cli.py, not here)."""
    import typer

    @app.command("build-browser")
    def build_browser_command(
        source: Path = typer.Option(None, "--source", help="the web/ folder (default: the checkout's)"),
        force: bool = typer.Option(False, "--force", help="build even if the sources did not change"),
    ) -> None:
        """Build the Browser (web/: npm ci, vite build) into the package, for `terracube serve` at /browser."""
        result = build_browser(source, OUT_DIR, force=force)
        typer.echo(result.message, err=not result.built)
        if not result.built:
            raise typer.Exit(1)
