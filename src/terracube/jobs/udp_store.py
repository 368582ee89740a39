"""User-defined processes, stored per user in the jobs database (table ``user_processes``).

They share the job store's engine and sessions (one database, one set of migrations), and are
kept as the process documents the user sent, so ``GET /process_graphs/{id}`` gives them back
as they were stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import JSON, String, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from terracube.graph.udp import USER_NAMESPACES, UdpLookup, referenced_processes
from terracube.jobs.errors import ProcessGraphNotFound
from terracube.jobs.store import Base, JobStore, UTCDateTime, utcnow


class UserProcess(Base):
    __tablename__ = "user_processes"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    document: Mapped[dict] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime())


class UdpStore:
    def __init__(self, store: JobStore):
        self.sessions = store.sessions

    def put(self, user_id: str, process_id: str, document: dict) -> bool:
        """Store or fully replace a process; True when it is new."""
        now = utcnow()
        with self.sessions.begin() as session:
            row = session.get(UserProcess, (user_id, process_id), with_for_update=True)
            if row is None:
                session.add(UserProcess(user_id=user_id, id=process_id, document=document, created=now, updated=now))
                return True
            row.document, row.updated = document, now
            return False

    def find(self, user_id: str, process_id: str) -> dict | None:
        with self.sessions() as session:
            row = session.get(UserProcess, (user_id, process_id))
        return row.document if row is not None else None

    def get(self, user_id: str, process_id: str) -> dict:
        document = self.find(user_id, process_id)
        if document is None:
            raise ProcessGraphNotFound(process_id)
        return document

    def list(self, user_id: str, limit: int | None = None, offset: int = 0) -> tuple[list[dict], int]:
        """A user's processes sorted by id, and how many there are in all (for paging links)."""
        with self.sessions() as session:
            total = session.scalar(select(func.count()).select_from(UserProcess).where(UserProcess.user_id == user_id)) or 0
            query = select(UserProcess.document).where(UserProcess.user_id == user_id).order_by(UserProcess.id).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return list(session.scalars(query)), total

    def delete(self, user_id: str, process_id: str) -> None:
        with self.sessions.begin() as session:
            if session.execute(delete(UserProcess).where(UserProcess.user_id == user_id, UserProcess.id == process_id)).rowcount == 0:
                raise ProcessGraphNotFound(process_id)

    def many(self, user_id: str, process_ids: Iterable[str]) -> dict[str, dict]:
        ids = sorted(set(process_ids))
        if not ids:
            return {}
        with self.sessions() as session:
            query = select(UserProcess).where(UserProcess.user_id == user_id, UserProcess.id.in_(ids))
            return {row.id: row.document for row in session.scalars(query)}

    def lookup(self, user_id: str) -> UdpLookup:
        """The evaluator's and validator's lookup for one user, remembering what it read.

        One request sees one version of each process, and a process used in many callbacks
        costs one query.
        """
        seen: dict[str, dict | None] = {}

        def lookup(process_id: str, namespace: str | None) -> dict | None:
            if namespace not in USER_NAMESPACES:
                return None
            if process_id not in seen:
                seen[process_id] = self.find(user_id, process_id)
            return seen[process_id]

        return lookup

    def snapshot(self, user_id: str, process: Any) -> dict[str, dict]:
        """The user's processes that ``process`` calls, directly or through other stored processes.

        A batch job takes them to the Dask worker, which has no database; the job runs with the
        processes as they were when it started.
        """
        found: dict[str, dict] = {}
        pending = [process]
        while pending:
            wanted = {pid for pid, ns in referenced_processes(pending.pop()) if ns in USER_NAMESPACES and pid not in found}
            for process_id, document in self.many(user_id, wanted).items():
                found[process_id] = document
                pending.append(document)
        return found
