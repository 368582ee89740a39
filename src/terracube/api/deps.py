"""What the routers need from the application: its settings and its one catalog.

The catalog is created on the first request that needs it, never at import or in ``create_app``:
opening it may mean building the embedded sample archive or reaching a remote STAC API, and a
server (or a test) that only lists processes should not pay for that. A test may put its own
catalog on ``app.state.catalog`` before the first request.
"""

from __future__ import annotations

import threading

from fastapi import Depends, FastAPI, Request

from terracube.api.auth import User, current_user
from terracube.execute import request_env
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings

_lock = threading.Lock()


def base_url(request: Request) -> str:
    """The server's own URL as the client reached it, for the links in answers."""
    return str(request.base_url).rstrip("/")


def app_settings(app: FastAPI) -> Settings:
    return app.state.settings


def app_catalog(app: FastAPI):
    """The app's catalog (``terracube.data.catalog.Catalog``), created once, on first use."""
    catalog = getattr(app.state, "catalog", None)
    if catalog is None:
        with _lock:
            catalog = getattr(app.state, "catalog", None)
            if catalog is None:
                from terracube.data.catalog import Catalog

                catalog = app.state.catalog = Catalog(app_settings(app))
    return catalog


def udp_store(app: FastAPI):
    """The store of user-defined processes (``terracube.jobs.udp_store.UdpStore``), None before the app started.

    It lives in the jobs database, so the job service opens it in the app's lifespan (``api.jobs.install``).
    """
    return getattr(app.state, "udps", None)


def udp_lookup(request: Request, user: User):
    """The lookup of ``user``'s own processes that validation and evaluation take, or None without a store."""
    store = udp_store(request.app)
    return store.lookup(user.user_id) if store is not None else None


def user_env(request: Request, user: User = Depends(current_user)) -> ProcessEnv:
    """Dependency: what ``user``'s process graphs are validated and run with on this app.

    Built by ``terracube.execute.request_env``, as the job worker and the CLI build theirs. A plain
    ``def``: the first request opens the catalog, which must not block the event loop. A user who
    is not the local one logged in with an account: their UDFs run confined or not at all.
    """
    return request_env(app_settings(request.app), app_catalog(request.app), user_id=user.user_id, accounts=not user.local)


def get_settings(request: Request) -> Settings:
    """Dependency: the settings of the app serving this request."""
    return app_settings(request.app)


def get_catalog(request: Request):
    """Dependency: the catalog of the app serving this request."""
    return app_catalog(request.app)
