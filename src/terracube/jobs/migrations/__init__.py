"""Alembic migrations of the job store; run by ``terracube.jobs.store.migrate`` at startup."""
