"""Running process graphs: synchronously for /result and the CLI (``execute``), and as batch jobs.

Batch jobs: ``JobService`` (service.py) is what the API starts in its lifespan; the store
(store.py, SQL + Alembic migrations), the Dask runner (worker.py), the results root (storage.py),
signed URLs (signing.py) and the documents (results.py, assets.py) are its parts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JobService"]


def __getattr__(name: str) -> Any:
    # Lazy, so ``terracube.jobs.execute`` (every /result) does not import SQLAlchemy and distributed.
    if name == "JobService":
        from terracube.jobs.service import JobService

        return JobService
    raise AttributeError(name)
