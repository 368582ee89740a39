"""Where batch jobs and their logs live: SQL through SQLAlchemy 2, schema by Alembic.

A SQLite file in the data directory by default, PostgreSQL (or anything SQLAlchemy speaks) by URL.
The store is the truth about a job: the API answers from it, the runner changes it only with
conditional updates (``transition``), so a late message from a canceled or superseded run can
never overwrite a newer state.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, create_engine, delete, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from terracube.jobs.errors import JobNotFound
from terracube.settings import Settings

ACTIVE = ("queued", "running")
LOG_LEVELS = ("debug", "info", "warning", "error")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timestamps go in and come out as aware UTC datetimes, on SQLite (naive) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    process: Mapped[dict] = mapped_column(JSON)
    plan: Mapped[str | None] = mapped_column(String(255))
    budget: Mapped[float | None] = mapped_column(Float)
    log_level: Mapped[str] = mapped_column(String(16), default="info")
    # Back-end specific properties of POST /jobs ("job options"), kept as given.
    options: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default="created")
    progress: Mapped[float | None] = mapped_column(Float)
    # Every start increments it; messages from the runner carry it, so stale ones are ignored.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    usage: Mapped[dict | None] = mapped_column(JSON)
    # The API server (``JobServer.id``) that submitted the job to Dask and watches it; None while waiting.
    owner: Mapped[str | None] = mapped_column(String(128), index=True)
    # What GET /jobs/{id}/results describes: assets with their metadata, sources, extent.
    results: Mapped[dict | None] = mapped_column(JSON)


class JobLog(Base):
    __tablename__ = "job_logs"

    # A global sequence: the entry id the openEO ``offset`` parameter refers to.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64), ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[Any | None] = mapped_column(JSON)


class JobServer(Base):
    """An API server that runs jobs: how others tell whether the owner of a running job is alive."""

    __tablename__ = "job_servers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat: Mapped[datetime] = mapped_column(UTCDateTime())


def new_job_id() -> str:
    """Sortable by creation time at a glance, unguessable after it (CDSE's ids also start with ``j-``)."""
    return f"j-{utcnow():%y%m%d%H%M%S}{secrets.token_hex(8)}"


def database_url(settings: Settings) -> str:
    url = settings.database_url
    if not url:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(settings.data_dir) / 'terracube.db'}"
    # ``postgresql://`` means psycopg2 to SQLAlchemy; terracube ships psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            cursor = connection.cursor()
            # WAL: readers never wait for the runner's writes; foreign keys: logs go with their job.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision with the migrations shipped in this package."""
    quiet = logging.getLogger("alembic")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # "Running upgrade ..." at every start is noise; failures still show
    try:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        quiet.setLevel(level)


def log_query(model, owner, offset: str | None, level: str, limit: int | None):
    """The openEO logs query of a job's or a service's log table: ``owner`` selects whose, entries at
    ``level`` or above after ``offset`` (an id this server issued), oldest first."""
    minimum = LOG_LEVELS.index(level) if level in LOG_LEVELS else 0
    query = select(model).where(owner, model.level.in_(LOG_LEVELS[minimum:]))
    if offset:
        try:
            query = query.where(model.id > int(offset))
        except ValueError:
            pass  # an offset we never issued: start from the beginning
    query = query.order_by(model.id)
    return query if limit is None else query.limit(limit)


class JobStore:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "JobStore":
        return cls(database_url(settings))

    def migrate(self) -> None:
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- jobs ------------------------------------------------------------------------------
    def create(self, user_id: str, process: dict, **fields: Any) -> Job:
        now = utcnow()
        job = Job(id=new_job_id(), user_id=user_id, process=process, status="created", attempt=0, created=now, updated=now, **fields)
        with self.sessions.begin() as session:
            session.add(job)
        return job

    def get(self, job_id: str, user_id: str | None = None) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
        if job is None or (user_id is not None and job.user_id != user_id):
            raise JobNotFound(job_id)
        return job

    def list(self, user_id: str, limit: int | None = None, offset: int = 0) -> tuple[list[Job], int]:
        with self.sessions() as session:
            total = session.scalar(select(func.count()).select_from(Job).where(Job.user_id == user_id)) or 0
            query = select(Job).where(Job.user_id == user_id).order_by(Job.created.desc(), Job.id.desc()).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return list(session.scalars(query)), total

    def with_status(self, statuses: Iterable[str]) -> list[Job]:
        """Jobs in these states, oldest queue position first (the dispatcher's order)."""
        with self.sessions() as session:
            query = select(Job).where(Job.status.in_(list(statuses))).order_by(Job.queued_at, Job.created, Job.id)
            return list(session.scalars(query))

    def update(self, job_id: str, **fields: Any) -> None:
        fields.setdefault("updated", utcnow())
        with self.sessions.begin() as session:
            session.execute(update(Job).where(Job.id == job_id).values(**fields))

    def transition(
        self, job_id: str, from_statuses: Iterable[str], to_status: str, *, attempt: int | None = None, **fields: Any
    ) -> bool:
        """Set the status only if the job is still in one of ``from_statuses`` (and on ``attempt``)."""
        query = update(Job).where(Job.id == job_id, Job.status.in_(list(from_statuses)))
        if attempt is not None:
            query = query.where(Job.attempt == attempt)
        values = {"status": to_status, "updated": utcnow(), **fields}
        with self.sessions.begin() as session:
            return session.execute(query.values(**values)).rowcount == 1

    def queue(self, job_id: str) -> int | None:
        """created/finished/error/canceled -> queued with a new attempt number; None if already active."""
        with self.sessions.begin() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None:
                raise JobNotFound(job_id)
            if job.status in ACTIVE:
                return None
            now = utcnow()
            job.attempt += 1
            job.status, job.progress, job.updated, job.queued_at = "queued", 0.0, now, now
            job.started_at = job.finished_at = job.usage = job.results = job.owner = None
            return job.attempt

    def requeue(self, job_id: str, from_statuses: Iterable[str]) -> bool:
        """Back to ``queued`` under a new attempt number (restart recovery, clean shutdown)."""
        with self.sessions.begin() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None or job.status not in list(from_statuses):
                return False
            job.attempt += 1
            job.status, job.progress, job.updated, job.started_at, job.owner = "queued", 0.0, utcnow(), None, None
            return True

    def claim(self, job_id: str, attempt: int, owner: str) -> bool:
        """Take a queued job for this server; False if another server (or a cancel) got there first."""
        query = update(Job).where(Job.id == job_id, Job.status == "queued", Job.attempt == attempt, Job.owner.is_(None))
        with self.sessions.begin() as session:
            return session.execute(query.values(owner=owner, updated=utcnow())).rowcount == 1

    def take_over(self, job_id: str, attempt: int, owner: str, new_owner: str) -> bool:
        """Make ``new_owner`` watch a job whose owner died; False if another server (or a cancel) got there first."""
        query = update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE), Job.attempt == attempt, Job.owner == owner)
        with self.sessions.begin() as session:
            return session.execute(query.values(owner=new_owner, updated=utcnow())).rowcount == 1

    def states(self, job_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
        """(status, attempt) of these jobs; a deleted job is missing."""
        ids = list(job_ids)
        if not ids:
            return {}
        with self.sessions() as session:
            return {row.id: (row.status, row.attempt) for row in session.execute(select(Job.id, Job.status, Job.attempt).where(Job.id.in_(ids)))}

    def active_by_user(self) -> dict[str, int]:
        """Jobs submitted to Dask (by any server) per user: what the per-user limit counts."""
        query = select(Job.user_id, func.count()).where(Job.status.in_(ACTIVE), Job.owner.is_not(None)).group_by(Job.user_id)
        with self.sessions() as session:
            return {user: count for user, count in session.execute(query)}

    # --- servers ---------------------------------------------------------------------------
    def register_server(self, server_id: str, host: str, pid: int) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            session.merge(JobServer(id=server_id, host=host, pid=pid, started=now, heartbeat=now))

    def heartbeat(self, server_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(update(JobServer).where(JobServer.id == server_id).values(heartbeat=utcnow()))

    def servers(self) -> list[JobServer]:
        with self.sessions() as session:
            return list(session.scalars(select(JobServer)))

    def forget_server(self, server_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(JobServer).where(JobServer.id == server_id))

    def delete(self, job_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(JobLog).where(JobLog.job_id == job_id))
            session.execute(delete(Job).where(Job.id == job_id))

    # --- logs ------------------------------------------------------------------------------
    def add_log(
        self,
        job_id: str,
        level: str,
        message: str,
        *,
        attempt: int | None = None,
        node_id: str | None = None,
        code: str | None = None,
        data: Any = None,
        time: datetime | None = None,
    ) -> bool:
        """Store an entry unless it is below the job's ``log_level`` or from a superseded attempt."""
        level = level if level in LOG_LEVELS else "info"
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is None or (attempt is not None and attempt != job.attempt):
                return False
            if LOG_LEVELS.index(level) < LOG_LEVELS.index(job.log_level or "info"):
                return False
            session.add(
                JobLog(
                    job_id=job_id, attempt=job.attempt if attempt is None else attempt, time=time or utcnow(), level=level,
                    code=code, message=message, node_id=node_id, data=data,
                )
            )
        return True

    def logs(self, job_id: str, offset: str | None = None, level: str = "debug", limit: int | None = None) -> list[JobLog]:
        with self.sessions() as session:
            return list(session.scalars(log_query(JobLog, JobLog.job_id == job_id, offset, level, limit)))

    def last_error(self, job_id: str) -> JobLog | None:
        with self.sessions() as session:
            query = select(JobLog).where(JobLog.job_id == job_id, JobLog.level == "error").order_by(JobLog.id.desc()).limit(1)
            return session.scalars(query).first()
