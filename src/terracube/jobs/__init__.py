"""Batch jobs: ``JobService`` (service.py) is what the API starts in its lifespan.

Its parts: the store (store.py, SQL + Alembic migrations), the Dask runner (worker.py, which runs
graphs through the one execution path, ``terracube.execute``), the results root (storage.py),
signed URLs (signing.py) and the documents (results.py, assets.py).
"""
