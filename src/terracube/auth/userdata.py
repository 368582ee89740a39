"""What a user stored: counted, or deleted with their account (``terracube users remove --delete-data``).

Jobs (with their logs and results), user-defined processes and uploaded files are kept by other
rooms, keyed by the user id; this module only asks those rooms' stores.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select

if TYPE_CHECKING:
    from terracube.settings import Settings


@dataclass
class UserData:
    jobs: int
    processes: int
    files: int


def _stores(settings: Settings):
    from terracube.jobs.storage import ResultStorage, results_root
    from terracube.jobs.store import JobStore

    store = JobStore.from_settings(settings)
    store.migrate()
    return store, ResultStorage(results_root(settings))


def count_user_data(settings: Settings, user_id: str) -> UserData:
    from terracube.files.store import user_files_dir
    from terracube.jobs.udp_store import UserProcess

    store, _ = _stores(settings)
    try:
        jobs = store.list(user_id, limit=0)[1]
        with store.sessions() as session:
            processes = session.scalar(select(func.count()).select_from(UserProcess).where(UserProcess.user_id == user_id)) or 0
    finally:
        store.close()
    folder = user_files_dir(settings, user_id)
    files = sum(1 for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0
    return UserData(jobs, processes, files)


def delete_user_data(settings: Settings, user_id: str) -> UserData:
    """Delete every job (and its results), process and file of ``user_id``; returns how many there were."""
    from terracube.files.store import user_files_dir
    from terracube.jobs.udp_store import UserProcess

    counted = count_user_data(settings, user_id)
    store, storage = _stores(settings)
    try:
        jobs, _ = store.list(user_id)
        for job in jobs:
            store.delete(job.id)
            storage.discard(job.id)
        with store.sessions.begin() as session:
            session.execute(delete(UserProcess).where(UserProcess.user_id == user_id))
    finally:
        store.close()
    shutil.rmtree(user_files_dir(settings, user_id), ignore_errors=True)
    return counted
