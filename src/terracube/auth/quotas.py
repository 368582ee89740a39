"""Usage records and the users' quotas (docs/auth.md, "Usage and quotas").

Every synchronous request and every run of a batch job leaves one row in the ``usage`` table
(``models.UsageRecord``) with what ``terracube.usage`` measured. A user's processing quota is CPU
hours per calendar month (UTC): the sum of this month's rows; it resets at 00:00 UTC on the first
day of the next month. The storage quota is bytes: the user's uploaded files plus the files of
their finished jobs' results. Each limit is the account's override (``users.quota_*``) or the
settings' default; 0 or None means no limit.

The quotas apply in accounts mode only (``enforced``): in laptop mode the one local user owns the
machine. Usage is recorded in every mode. A check refuses new work only; work already running
(a job, an upload in progress before the quota changed) is never stopped half-way.

The clock is a function (``now``), so the month boundary can be tested without touching time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, TYPE_CHECKING

from sqlalchemy import case, func, select
from sqlalchemy.orm import sessionmaker

from terracube.auth.models import Account, UsageRecord
from terracube.errors import OpenEOError
from terracube.files.store import FileStore
from terracube.jobs.store import Job, utcnow
from terracube.usage import Usage

if TYPE_CHECKING:
    from terracube.settings import Settings

Clock = Callable[[], datetime]
GiB = 2**30


class PaymentRequired(OpenEOError):
    code, status = "PaymentRequired", 402


class StorageQuotaExceeded(OpenEOError):
    code, status = "StorageQuotaExceeded", 400


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) of ``now``: its first instant, and the first instant of the next (the reset)."""
    now = now.astimezone(timezone.utc)
    start = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
    reset = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, reset


def human_bytes(value: int | float) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit} ({int(value):,} bytes)"
    return f"{int(value):,} bytes"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class MonthUsage:
    """A user's sums over one month."""

    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    pixels: int = 0
    peak_memory: int = 0  # the largest of the month's peaks
    requests: int = 0  # synchronous requests
    jobs: int = 0  # runs of batch jobs


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float | None  # a month's; None: no limit
    storage_bytes: int | None  # None: no limit


def _limit(override: float | int | None, default: float | int | None) -> float | int | None:
    value = default if override is None else override
    return value if value else None  # 0 and None: no limit


class Quotas:
    def __init__(self, settings: Settings, sessions: sessionmaker, now: Clock | None = None):
        self.settings = settings
        self.sessions = sessions
        self.now = now or utcnow

    # --- usage -----------------------------------------------------------------------------
    def record(self, user_id: str, kind: str, usage: Usage, job_id: str | None = None, at: datetime | None = None) -> None:
        """One row for one piece of work (``kind`` "sync" or "job"), dated when it ended."""
        row = UsageRecord(
            user_id=user_id, kind=kind, job_id=job_id, cpu_seconds=round(usage.cpu_seconds, 3),
            peak_memory=int(usage.peak_memory), wall_seconds=round(usage.wall_seconds, 3),
            pixels=int(usage.pixels_read), at=at or self.now(),
        )
        with self.sessions.begin() as session:
            session.add(row)

    def _sums(self, when: datetime | None, user_id: str | None) -> dict[str, MonthUsage]:
        start, reset = month_bounds(when or self.now())
        query = (
            select(
                UsageRecord.user_id, func.sum(UsageRecord.cpu_seconds), func.sum(UsageRecord.wall_seconds),
                func.sum(UsageRecord.pixels), func.max(UsageRecord.peak_memory),
                func.sum(case((UsageRecord.kind == "sync", 1), else_=0)), func.sum(case((UsageRecord.kind == "job", 1), else_=0)),
            )
            .where(UsageRecord.at >= start, UsageRecord.at < reset)
            .group_by(UsageRecord.user_id)
        )
        if user_id is not None:
            query = query.where(UsageRecord.user_id == user_id)
        with self.sessions() as session:
            rows = session.execute(query).all()
        return {
            row[0]: MonthUsage(round(row[1] or 0.0, 3), round(row[2] or 0.0, 3), int(row[3] or 0), int(row[4] or 0), int(row[5] or 0), int(row[6] or 0))
            for row in rows
        }

    def month(self, user_id: str, when: datetime | None = None) -> MonthUsage:
        """``user_id``'s usage in the month of ``when`` (default: now)."""
        return self._sums(when, user_id).get(user_id, MonthUsage())

    def months(self, when: datetime | None = None) -> dict[str, MonthUsage]:
        """Every user's usage in the month of ``when``, by user id."""
        return self._sums(when, None)

    # --- limits ----------------------------------------------------------------------------
    def limits(self, user_id: str, account: Account | None = None) -> Limits:
        if account is None:
            with self.sessions() as session:
                account = session.get(Account, user_id)
        hours = _limit(account.quota_cpu_hours if account else None, self.settings.quota_cpu_hours)
        storage = _limit(account.quota_storage_bytes if account else None, self.settings.quota_storage_bytes)
        return Limits(hours * 3600.0 if hours else None, int(storage) if storage else None)

    def storage_used(self, user_id: str) -> int:
        """Bytes of ``user_id``'s uploaded files and finished jobs' result files."""
        files = FileStore.from_settings(self.settings).user(user_id).used_bytes()
        with self.sessions() as session:
            results = session.scalars(select(Job.results).where(Job.user_id == user_id, Job.results.is_not(None)))
            jobs = sum(int(asset.get("file:size") or 0) for result in results for asset in (result or {}).get("assets", []))
        return files + jobs

    # --- checks ----------------------------------------------------------------------------
    def check_processing(self, user_id: str) -> None:
        """``PaymentRequired`` (402) when this month's CPU time has reached the user's quota."""
        limit = self.limits(user_id).cpu_seconds
        if limit is None:
            return
        used = self.month(user_id).cpu_seconds
        if round(used, 3) >= round(limit, 3):
            _, reset = month_bounds(self.now())
            raise PaymentRequired(
                f"Your processing quota for this month is used up: {used / 3600:.4f} of {limit / 3600:.4f} CPU hours "
                f"({used:.3f} of {limit:.3f} CPU seconds). It resets on {_when(reset)}; "
                "until then new synchronous requests and batch jobs are refused (running jobs go on)."
            )

    def check_storage(self, user_id: str) -> None:
        """``StorageQuotaExceeded`` (400) when the user's files and results leave no room: no new job starts."""
        limit = self.limits(user_id).storage_bytes
        if limit is None:
            return
        used = self.storage_used(user_id)
        if used >= limit:
            raise StorageQuotaExceeded(
                f"Your storage quota is used up: {human_bytes(used)} of {human_bytes(limit)} in files and job results, "
                "so a new job could not store its results. Delete files (DELETE /files/...) or jobs (DELETE /jobs/...) first."
            )

    def upload_room(self, user_id: str, replacing: int = 0) -> int | None:
        """How many bytes one upload may have (``replacing``: the size of the file it overwrites); None: no limit."""
        limit = self.limits(user_id).storage_bytes
        if limit is None:
            return None
        return max(0, limit - self.storage_used(user_id) + replacing)

    def upload_refused(self, user_id: str, size: int, room: int) -> StorageQuotaExceeded:
        limit = self.limits(user_id).storage_bytes or 0
        return StorageQuotaExceeded(
            f"This upload needs {human_bytes(size)} or more, but only {human_bytes(room)} of your storage quota of "
            f"{human_bytes(limit)} is free (files and job results). Nothing was stored."
        )

    # --- what /me shows ----------------------------------------------------------------------
    def summary(self, user_id: str, enforced: bool) -> dict[str, Any]:
        """``budget`` (CPU hours left this month), ``storage`` ({free, quota}) and the month's figures.

        Without an enforced limit (laptop mode, or no limit) ``budget`` and ``storage`` are null, as the API asks.
        """
        now = self.now()
        start, reset = month_bounds(now)
        limits = self.limits(user_id)
        used = self.month(user_id)
        stored = self.storage_used(user_id)
        cpu_limit = limits.cpu_seconds if enforced else None
        storage_limit = limits.storage_bytes if enforced else None
        return {
            "budget": round(max(0.0, cpu_limit - used.cpu_seconds) / 3600, 6) if cpu_limit is not None else None,
            "storage": {"free": max(0, storage_limit - stored), "quota": storage_limit} if storage_limit is not None else None,
            "usage": {
                "month": start.strftime("%Y-%m"),
                "resets": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "budget_unit": "cpu-hours",
                "cpu": {"value": used.cpu_seconds, "unit": "cpu-seconds"},
                "cpu_quota": {"value": cpu_limit, "unit": "cpu-seconds"} if cpu_limit is not None else None,
                "duration": {"value": used.wall_seconds, "unit": "seconds"},
                "input_pixel": {"value": used.pixels, "unit": "pixel"},
                "peak_memory": {"value": used.peak_memory, "unit": "b"},
                "storage": {"value": stored, "unit": "b"},
                "requests": used.requests,
                "jobs": used.jobs,
            },
        }


# --- the app's quotas ------------------------------------------------------------------------
def quotas_for(app: Any) -> Quotas:
    """The quotas of ``app``: its settings, its accounts database, and ``app.state.clock`` if a test set one."""
    from terracube.auth.service import auth_service

    service = auth_service(app)
    return Quotas(service.settings, service.store.sessions, getattr(app.state, "clock", None))


def enforced(app: Any) -> bool:
    """Quotas refuse work in accounts mode only; laptop and open mode have one local user."""
    from terracube.auth import auth_mode
    from terracube.auth.modes import Mode

    return auth_mode(app) is Mode.ACCOUNTS
