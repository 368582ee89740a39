"""``terracube jobs``: the operator's view of every user's batch jobs, on the server's machine.

The API shows each user their own jobs only, admins included (docs/auth.md, "Private by
construction"); whoever runs this command has the server's database, so it may see them all. It
reads the deployment the settings name (``TERRACUBE_DATABASE_URL``, ``TERRACUBE_DATA_DIR``), with or
without a running server.
"""

from __future__ import annotations

from datetime import timezone
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from terracube.settings import get_settings

jobs_app = typer.Typer(help="Batch jobs of every user (the API shows each user only their own).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the ``jobs`` commands to the ``terracube`` command."""
    app.add_typer(jobs_app, name="jobs")


def _fail(message: str) -> None:
    err.print(f"[red]error[/red]: {message}")
    raise typer.Exit(1)


def _user_names(settings) -> dict[str, str]:
    """User id -> login name, for the accounts that exist (a removed user's jobs show the id)."""
    from terracube.auth.store import AuthStore

    store = AuthStore.open(settings)
    try:
        return {account.id: account.name for account in store.accounts()}
    finally:
        store.close()


@jobs_app.command("list")
def jobs_list(
    every: bool = typer.Option(False, "--all", help="Every user's jobs."),
    user: Optional[str] = typer.Option(None, "--user", help="One user's jobs: a login name, or a user id (a removed user's, or 'anonymous')."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many, newest first."),
) -> None:
    """List batch jobs, newest first: id, user, status, created, title."""
    from sqlalchemy import select  # here: other commands (serve, run) need not load it

    from terracube.jobs.store import Job, JobStore

    if every == (user is not None):
        _fail("say whose jobs: --all, or --user NAME.")
    settings = get_settings()
    names = _user_names(settings)
    query = select(Job).order_by(Job.created.desc(), Job.id.desc())
    if user is not None:
        ids = [user_id for user_id, name in names.items() if name == user] or [user]
        query = query.where(Job.user_id.in_(ids))
    if limit is not None:
        query = query.limit(limit)
    store = JobStore.from_settings(settings)
    try:
        store.migrate()
        with store.sessions() as session:
            jobs = list(session.scalars(query))
    finally:
        store.close()
    if not jobs:
        if user is not None and user not in names.values() and user not in names:
            _fail(f"there is no user named {user!r} and no job stored under that user id.")
        out.print("No jobs.")
        return
    table = Table("id", "user", "status", "created", "title")
    table.columns[0].no_wrap = True  # ids are what the operator copies
    for job in jobs:
        created = job.created.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        table.add_row(job.id, names.get(job.user_id, job.user_id), job.status, created, job.title or "")
    out.print(table)
