"""The Browser's build step, run by every ``pip install`` of terracube (editable or not).

Everything else about the package is in pyproject.toml. This file adds one command, ``build_browser``,
to setuptools' ``build``, before ``build_py`` copies the package data: it runs ``npm ci`` and
``npm run build`` in web/, writing into src/terracube/web_dist/ (src/terracube/browser_build.py
says when, and what happens without npm: the install still succeeds; docs/browser.md).
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build

HERE = Path(__file__).resolve().parent


def _browser_build():
    """src/terracube/browser_build.py, loaded by path: terracube's dependencies are not in pip's build environment."""
    spec = importlib.util.spec_from_file_location("terracube_browser_build", HERE / "src" / "terracube" / "browser_build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class BuildBrowser(Command):
    description = "build the Browser's front-end (web/, npm and Vite) into terracube/web_dist"
    user_options: list = []
    editable_mode = False

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        # On standard error: pip shows it with -v (and always when the install fails).
        _browser_build().build_on_install(web=HERE / "web", say=lambda message: print(message, file=sys.stderr))

    # Its output lies in the source tree as package data: build_py installs it, nothing to map here.
    def get_outputs(self) -> list:
        return []

    def get_output_mapping(self) -> dict:
        return {}


class BuildWithBrowser(build):
    sub_commands = [("build_browser", None), *build.sub_commands]


setup(cmdclass={"build": BuildWithBrowser, "build_browser": BuildBrowser})
