"""One settings object for the whole backend.

Values come from ``TERRACUBE_*`` environment variables, then an optional TOML file named by
``TERRACUBE_CONFIG``, then the defaults below, which work with nothing set.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from terracube.auth.providers import ExternalProviders


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "terracube"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TERRACUBE_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    # The embedded archive's acquisition days to build ("2021-06-13,2021-07-21"); empty: all 37.
    # Fewer days build faster (about a second each) where the whole summer is not needed.
    sample_days: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Synchronous /result is for small requests; bigger ones belong in a batch job.
    sync_max_pixels: int = 50_000_000
    # Its own bounded pool (api/sync_pool.py): runs at once, requests waiting beyond them, requests one
    # user may have running or waiting (beyond either: 503 InfrastructureBusy), and seconds one run
    # may take before it is stopped (408 RequestTimeout, pointing to batch jobs).
    sync_workers: int = Field(default=2, ge=1)
    sync_queue: int = Field(default=8, ge=0)
    sync_queue_per_user: int = Field(default=3, ge=1)
    sync_timeout: float = Field(default=300.0, gt=0)
    # Dask threads one synchronous run computes on (0: as many as the machine has cores), and the
    # nice value of the pool's threads and of every thread they start (Linux: a thread's own
    # priority), so the light routes' event loop gets a core before synchronous work does.
    sync_threads: int = Field(default=0, ge=0)
    sync_nice: int = Field(default=10, ge=0, le=19)
    # Seconds a thread may hold the GIL while another waits (sys.setswitchinterval, Python's default
    # 0.005), set while the server runs: the light routes' event loop waits less behind Python work.
    sync_switch_interval: float = Field(default=0.001, gt=0, le=0.1)
    # Values one cube or array of a synchronous request may hold, checked on its shape before it
    # is computed (resample_spatial's output grid, array_create's repeat, ...): docs/processes.md#limits.
    sync_max_values: int = Field(default=100_000_000, ge=1)
    # The same for every request, batch jobs included: no job may build an absurd cube.
    max_cube_values: int = Field(default=50_000_000_000, ge=1)
    # Elements of an array a process computes at once in Python (array_create, array_concat, ...),
    # unlike a cube, which is computed chunk by chunk.
    max_array_length: int = Field(default=10_000_000, ge=1)
    # Process calls one request's graph may make while it is built (stored processes and
    # callbacks included): 30 stored processes that each call the previous one twice would be 2^31.
    max_evaluations: int = Field(default=100_000, ge=1)
    # Animations (save_result as GIF or MP4, docs/services.md#time-lapses-gif-and-mp4): frames (dates) one may have,
    # and pixels in one frame; beyond them 400 FormatUnsuitable, for batch jobs too.
    animation_max_frames: int = Field(default=100, ge=1)
    animation_max_frame_pixels: int = Field(default=2_000_000, ge=1)
    # Dask chunk edge in pixels for loading, at most; a multiple of the COG tiles (256) is best.
    chunk_size: int = 2048
    # Smaller chunks when a chunk's stack of every scene and band would need more bytes than this
    # (a reduction over time holds the whole stack of a chunk at once): data/chunks.py.
    chunk_memory: int = 2**30
    collections_file: Path | None = None
    database_url: str | None = None
    dask_scheduler: str | None = None
    title: str = "terracube"

    # Batch jobs (docs/jobs.md).
    results_root: str | None = None  # a folder or an fsspec URL (s3://...); default <data_dir>/results
    max_concurrent_jobs: int = Field(default=4, ge=1)  # jobs running at once on this server's cluster
    max_concurrent_jobs_per_user: int = Field(default=2, ge=1)
    dask_workers: int = Field(default=1, ge=1)  # LocalCluster size, when no dask_scheduler is set
    dask_threads_per_worker: int | None = None  # None: one per core
    dask_processes: bool = False  # False: workers are threads of the API process (starts in about a second)
    dask_memory_limit: str = "auto"
    dask_dashboard_address: str | None = None  # e.g. ":8787" to serve Dask's dashboard
    signing_secret: str | None = None  # shared by all API servers of one deployment; default: a key file
    result_url_lifetime: int = Field(default=7 * 24 * 3600, ge=60)  # seconds a signed result URL stays valid

    # Quotas in accounts mode (docs/auth.md#usage-and-quotas); `terracube users quota` overrides them
    # per user. 0 or None: no limit. CPU hours a calendar month (UTC); bytes of files and job results.
    quota_cpu_hours: float | None = Field(default=10.0, ge=0)
    quota_storage_bytes: int | None = Field(default=5 * 2**30, ge=0)

    # Users' uploaded files (docs/api.md, /files): a folder; default <data_dir>/files.
    files_root: Path | None = None
    max_upload_bytes: int = Field(default=2 * 2**30, ge=1)  # one upload's size limit
    upload_idle_timeout: float = Field(default=60.0, gt=0)  # seconds an upload may send nothing before it is given up (408)

    # Request limits (docs/api.md, "Limits"): beyond them the answer is a 4xx, never work or a 500.
    max_json_bytes: int = Field(default=10 * 2**20, ge=1)  # a JSON request body's size (413 beyond)
    max_json_depth: int = Field(default=200, ge=2)  # nesting of arrays and objects in a JSON body
    max_graph_nodes: int = Field(default=10_000, ge=1)  # nodes in a process graph, callbacks included
    # Callbacks nested in callbacks; each nests the JSON about 4 deeper, so 32 fits max_json_depth's 200.
    max_graph_depth: int = Field(default=32, ge=1)

    # Map services (docs/services.md). A tile covering more source pixels (one band of one scene at the
    # collection's finest resolution) than this is refused: it sets each service's lowest zoom level.
    tile_max_source_pixels: int = Field(default=4096 * 4096, ge=256 * 256)
    tile_cache_dir: Path | None = None  # drawn tiles; default <data_dir>/tiles
    tile_cache_bytes: int = Field(default=2**30, ge=0)  # the cache's size bound (least recently used out first); 0: no cache
    tile_memory_bytes: int = Field(default=64 * 2**20, ge=0)  # the hottest tiles also in each server process's memory; 0: none
    max_services_per_user: int = Field(default=100, ge=1)  # map services one user may have (POST /services beyond: 400)

    # Remote archives (docs/collections.md).
    stac_timeout: float = 20.0  # seconds to wait for a STAC API's answer
    stac_retries: int = 2
    stac_max_items: int = 10_000  # scenes one search may return before it is refused as too big
    stac_cache_seconds: float = 3600.0  # how long a remote collection's description is reused
    stac_error_cache_seconds: float = 30.0  # how long an unreachable archive is not asked again
    cog_timeout: int = 30  # GDAL's HTTP timeout for reading imagery
    cog_retries: int = 3
    # Local folders load_stac may read besides data_dir: the server's disk is not its users'.
    load_stac_local_dirs: list[Path] = Field(default_factory=list)
    # URLs users put into graphs (load_url, load_stac, load_ml_model) may not reach loopback, private,
    # link-local or reserved addresses, except these host names, addresses and networks ("10.1.2.0/24").
    allowed_fetch_hosts: list[str] = Field(default_factory=list)

    # UDFs (docs/udf.md): each runs in a child process under these limits.
    udf_timeout: float = Field(default=60.0, gt=0)  # seconds one UDF process may run
    udf_memory_limit: int = Field(default=2 * 2**30, ge=0)  # bytes of address space (RLIMIT_AS); 0: none
    udf_max_values: int = Field(default=50_000_000, ge=1)  # cube size apply_datacube takes at once
    # "auto": confined by bubblewrap where it works, else a plain child process; "bubblewrap": or refused.
    udf_sandbox: Literal["auto", "bubblewrap"] = "auto"

    # Web pages (origins such as "https://editor.openeo.org") that may call a laptop-mode server (docs/api.md).
    allowed_origins: list[str] = Field(default_factory=list)

    # The operator's other OpenID Connect providers, as [[oidc_providers]] tables (docs/auth.md#other-issuers).
    oidc_providers: ExternalProviders = Field(default_factory=list)

    # Accounts and login (docs/auth.md). "auto": laptop mode (one local user, no login) until the
    # first account exists, then accounts mode; "required": accounts mode always; "none": open to
    # everyone as the local user, on purpose (logged loudly at every start).
    auth: Literal["auto", "required", "none"] = "auto"
    # The server's URL as its users reach it (behind a proxy, say); the built-in issuer is
    # <public_url>/oidc. Default: the URL of each request.
    public_url: str | None = None
    access_token_lifetime: int = Field(default=3600, ge=60)  # seconds an OIDC access token is valid
    basic_token_lifetime: int = Field(default=3600, ge=60)  # seconds a /credentials/basic token is valid
    refresh_token_lifetime: int = Field(default=30 * 24 * 3600, ge=300)  # seconds a refresh token is valid unused
    device_code_lifetime: int = Field(default=600, ge=60)  # seconds to enter a device flow's user code
    device_poll_interval: int = Field(default=5, ge=1, le=60)  # seconds a device flow's client waits between polls (RFC 8628's default)
    # Live (unexpired) device codes of the built-in issuer: per requesting address, and in all. Anybody
    # may ask for them, so without a bound a script could fill the database (docs/auth.md).
    device_codes_per_address: int = Field(default=20, ge=1)
    device_codes_max: int = Field(default=1000, ge=1)
    # Failed password logins (Basic, and the issuer's login pages) allowed within the window, per
    # user name and client address, and per address whatever the names; then 429 (docs/auth.md).
    login_failures_per_name: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=20, ge=1)
    login_failure_window: int = Field(default=60, ge=1)  # seconds
    # Where the default public client may send authorization codes, besides this server's own
    # pages and loopback addresses (RFC 8252): browser clients such as the openEO Web Editor.
    auth_redirect_urls: list[str] = Field(default_factory=lambda: ["https://editor.openeo.org/"])

    # The Browser (docs/browser.md): an XYZ base map URL for its map (https://.../{z}/{x}/{y}.png), which
    # the page's Content-Security-Policy then allows; default none: no request leaves the server.
    browser_basemap: str | None = None
    # Where the built Browser is; default the package's own build (terracube/web_dist, made at install).
    browser_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("TERRACUBE_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @field_validator("sample_days")
    @classmethod
    def _known_sample_days(cls, days: str) -> str:
        if days.strip():
            from terracube.data.sample import chosen_acquisitions

            chosen_acquisitions(days)  # a day without an acquisition is refused at start, not at first use
        return days

    @property
    def sample_dir(self) -> Path:
        return self.data_dir / "sample"

    def sample_scenes(self):
        """The acquisitions the embedded archive is built from (``sample_days``), all of them by default."""
        from terracube.data.sample import chosen_acquisitions

        return chosen_acquisitions(self.sample_days)


@lru_cache
def get_settings() -> Settings:
    return Settings()
