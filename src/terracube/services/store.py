"""Secondary services and their logs, stored in the jobs database (tables ``services``, ``service_logs``).

Like the user-defined processes, they share the job store's engine and migrations. Every lookup
the API makes is by owner and id, so another user's service answers as a missing one. The tiles
look a service up by id alone (the unguessable id is their credential) and see only enabled ones:
disabling or deleting a service stops its tiles with the next request.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from terracube.errors import ServiceNotFound, shortened
from terracube.jobs.store import LOG_LEVELS, Base, JobStore, UTCDateTime, log_query, utcnow
from terracube.services.errors import ServiceLimitExceeded
from terracube.services.model import Service

# Tile failures are logged per service; a map showing a broken layer asks for hundreds of tiles,
# so only the newest entries are kept.
MAX_LOG_ENTRIES = 500


class ServiceRow(Base):
    __tablename__ = "services"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(16))
    process: Mapped[dict] = mapped_column(JSON)
    configuration: Mapped[dict] = mapped_column(JSON)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    log_level: Mapped[str] = mapped_column(String(16))
    plan: Mapped[str | None] = mapped_column(String(255))
    budget: Mapped[float | None] = mapped_column(Float)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime())

    def service(self) -> Service:
        return Service(
            id=self.id, user_id=self.user_id, type=self.type, process=self.process, configuration=self.configuration or {},
            title=self.title, description=self.description, enabled=self.enabled, created=self.created, version=self.version,
        )


class ServiceLog(Base):
    __tablename__ = "service_logs"

    # A global sequence: the entry id the openEO ``offset`` parameter refers to.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(64), ForeignKey("services.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[Any | None] = mapped_column(JSON)


@dataclass(frozen=True)
class StoredService:
    """A service with what only its owner sees: the openEO properties that do not change its tiles."""

    service: Service
    log_level: str = "info"
    plan: str | None = None
    budget: float | None = None
    updated: datetime | None = None


def new_service_id() -> str:
    """192 random bits, URL-safe: the id is the credential of a tile URL, so it must be unguessable."""
    return secrets.token_urlsafe(24)


def _stored(row: ServiceRow) -> StoredService:
    return StoredService(row.service(), row.log_level, row.plan, row.budget, row.updated)


class ServiceStore:
    def __init__(self, store: JobStore):
        self.sessions = store.sessions

    def count(self, user_id: str) -> int:
        """How many services ``user_id`` has."""
        with self.sessions() as session:
            return self._count(session, user_id)

    @staticmethod
    def _count(session, user_id: str) -> int:
        return session.scalar(select(func.count()).select_from(ServiceRow).where(ServiceRow.user_id == user_id)) or 0

    def add(self, service: Service, *, log_level: str = "info", plan: str | None = None, budget: float | None = None,
            limit: int | None = None) -> Service:
        """Store a new service (its id made by ``new_service_id``); returns it with its creation time.

        ``limit``: the most services its owner may have (``ServiceLimitExceeded`` beyond). Counted
        after the insert, in its transaction: on SQLite, where writes take turns, two requests at
        once cannot both take the last place; on PostgreSQL only requests within the same
        milliseconds could.
        """
        now = utcnow()
        service = replace(service, created=now, version=1)
        row = ServiceRow(
            id=service.id, user_id=service.user_id, type=service.type, process=service.process,
            configuration=service.configuration, title=service.title, description=service.description,
            enabled=service.enabled, version=1, log_level=log_level, plan=plan, budget=budget, created=now, updated=now,
        )
        with self.sessions.begin() as session:
            session.add(row)
            if limit is not None:
                session.flush()
                if self._count(session, service.user_id) > limit:
                    raise ServiceLimitExceeded(limit)  # rolls the insert back
        return service

    def get(self, user_id: str, service_id: str) -> StoredService:
        """``user_id``'s service ``service_id``; anyone else's answers ``ServiceNotFound`` as a missing one does."""
        with self.sessions() as session:
            row = session.get(ServiceRow, service_id)
        if row is None or row.user_id != user_id:
            raise ServiceNotFound(shortened(service_id))
        return _stored(row)

    def list(self, user_id: str, limit: int | None = None, offset: int = 0) -> tuple[list[StoredService], int]:
        """A user's services, newest first, and how many there are in all (for paging links)."""
        with self.sessions() as session:
            total = self._count(session, user_id)
            query = (
                select(ServiceRow).where(ServiceRow.user_id == user_id)
                .order_by(ServiceRow.created.desc(), ServiceRow.id.desc()).offset(offset)
            )
            if limit is not None:
                query = query.limit(limit)
            return [_stored(row) for row in session.scalars(query)], total

    def update(self, user_id: str, service_id: str, expected_version: int, **fields: Any) -> Service | None:
        """Change a service and start its next version; None if it changed since ``expected_version`` was read.

        The caller checked the changed service as it was at that version: a concurrent change in
        between must be checked again with it, so it gets None and reads the service anew.
        """
        query = (
            update(ServiceRow)
            .where(ServiceRow.id == service_id, ServiceRow.user_id == user_id, ServiceRow.version == expected_version)
            .values(**fields, version=expected_version + 1, updated=utcnow())
        )
        with self.sessions.begin() as session:
            changed = session.execute(query).rowcount == 1
            row = session.get(ServiceRow, service_id, populate_existing=True)
            if row is None or row.user_id != user_id:  # deleted meanwhile, or never theirs: as missing
                raise ServiceNotFound(shortened(service_id))
            return row.service() if changed else None

    def delete(self, user_id: str, service_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(ServiceLog).where(ServiceLog.service_id.in_(
                select(ServiceRow.id).where(ServiceRow.id == service_id, ServiceRow.user_id == user_id)
            )))
            if session.execute(delete(ServiceRow).where(ServiceRow.id == service_id, ServiceRow.user_id == user_id)).rowcount == 0:
                raise ServiceNotFound(shortened(service_id))

    # --- the tiles' lookup -------------------------------------------------------------------
    def enabled(self, service_id: str) -> Service | None:
        """The service whose tiles are asked for, by id alone; None when missing or disabled."""
        with self.sessions() as session:
            row = session.get(ServiceRow, service_id)
        return row.service() if row is not None and row.enabled else None

    def enabled_version(self, service_id: str) -> int | None:
        """The version of an enabled service, None when it is missing or disabled: one short query by
        the primary key, without the process graph and configuration that ``enabled`` reads."""
        with self.sessions() as session:
            return session.scalar(select(ServiceRow.version).where(ServiceRow.id == service_id, ServiceRow.enabled))

    # --- logs ----------------------------------------------------------------------------------
    def add_log(self, service_id: str, level: str, message: str, *, code: str | None = None, data: Any = None) -> bool:
        """Store an entry unless it is below the service's ``log_level``; the oldest beyond ``MAX_LOG_ENTRIES`` go."""
        level = level if level in LOG_LEVELS else "info"
        with self.sessions.begin() as session:
            log_level = session.scalar(select(ServiceRow.log_level).where(ServiceRow.id == service_id))
            if log_level is None or LOG_LEVELS.index(level) < LOG_LEVELS.index(log_level):
                return False
            session.add(ServiceLog(service_id=service_id, time=utcnow(), level=level, code=code, message=message, data=data))
            session.flush()
            oldest_kept = (
                select(ServiceLog.id).where(ServiceLog.service_id == service_id)
                .order_by(ServiceLog.id.desc()).offset(MAX_LOG_ENTRIES - 1).limit(1).scalar_subquery()
            )
            session.execute(delete(ServiceLog).where(ServiceLog.service_id == service_id, ServiceLog.id < oldest_kept))
        return True

    def logs(self, service_id: str, offset: str | None = None, level: str = "debug", limit: int | None = None) -> list[ServiceLog]:
        with self.sessions() as session:
            return list(session.scalars(log_query(ServiceLog, ServiceLog.service_id == service_id, offset, level, limit)))


class EnabledVersions:
    """The versions of enabled services whose tiles were asked for lately, each trusted ``max_age`` seconds.

    A tile must stop with its service: every tile request checks that its service is enabled, and
    which version it is. ``lookup`` asks the database (``ServiceStore.enabled_version``, one short
    query); ``recent`` answers from memory when that was at most ``max_age`` seconds ago, so a map
    asking for a dozen tiles at once queries once. This server process's own changes (PATCH,
    DELETE) ``forget`` their service here at once; another process's (replicas on one database)
    show here within ``max_age``. Disabled and unknown services are not remembered: asking again
    costs a query, as it did.
    """

    def __init__(self, store: ServiceStore, max_age: float = 1.0, size: int = 10_000, services: int = 256):
        self.store = store
        self.max_age = max_age
        self.size = size
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # id -> (version, when read)
        # A version of a service never changes (every PATCH makes a new one), so it is kept as read.
        self._services: OrderedDict[tuple[str, int], Service] = OrderedDict()
        self.services_size = services
        self._forgets = 0  # how many forgets so far: a lookup that saw one happen while it ran keeps nothing
        self._lock = threading.Lock()

    def recent(self, service_id: str) -> int | None:
        """The version read at most ``max_age`` seconds ago, or None (then ``lookup``)."""
        with self._lock:
            seen = self._seen.get(service_id)
        if seen is None or time.monotonic() - seen[1] > self.max_age:
            return None
        return seen[0]

    def lookup(self, service_id: str) -> int | None:
        """The enabled service's version from the database, or None when it is missing or disabled."""
        started = time.monotonic()  # before the query: a change committed while it runs is seen within max_age
        with self._lock:
            forgets = self._forgets
        version = self.store.enabled_version(service_id)
        with self._lock:
            if version is None or forgets != self._forgets:  # a change here meanwhile: its version may be the old one
                self._seen.pop(service_id, None)
            else:
                self._seen[service_id] = (version, started)
                self._seen.move_to_end(service_id)
                while len(self._seen) > self.size:
                    self._seen.popitem(last=False)
        return version

    def service(self, service_id: str, version: int) -> Service | None:
        """The service at ``version`` if it was read here before, else None (then ``read``)."""
        with self._lock:
            return self._services.get((service_id, version))

    def read(self, service_id: str) -> Service | None:
        """The enabled service as the database has it now (``ServiceStore.enabled``), kept by version."""
        service = self.store.enabled(service_id)
        if service is not None:
            with self._lock:
                self._services[(service.id, service.version)] = service
                while len(self._services) > self.services_size:
                    self._services.popitem(last=False)
        return service

    def forget(self, service_id: str) -> None:
        with self._lock:
            self._forgets += 1
            self._seen.pop(service_id, None)
            for key in [key for key in self._services if key[0] == service_id]:
                del self._services[key]
