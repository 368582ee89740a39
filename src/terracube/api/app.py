"""The FastAPI application: ``create_app()`` is what ``terracube serve`` and the tests run."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from terracube import __version__
from terracube.api import auth, capabilities, collections, processes, processing
from terracube.api.errors import install_error_handlers
from terracube.data.catalog import Catalog
from terracube.settings import Settings, get_settings

EXPOSED_HEADERS = ["Location", "OpenEO-Identifier", "OpenEO-Costs", "Link", "Content-Disposition", "Content-Range", "Accept-Ranges"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = FastAPI(title="terracube", version=__version__, description="A self-hostable openEO backend (openEO API 1.2.0).")
    app.state.settings = settings
    # Creating the catalog is cheap; the sample archive is built on the first request that reads it.
    app.state.catalog = Catalog(settings)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    install_error_handlers(app)
    for module in (capabilities, auth, processes, collections, processing):
        app.include_router(module.router)
    return app
