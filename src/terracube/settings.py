"""One settings object for the whole backend.

Values come from ``TERRACUBE_*`` environment variables, then an optional TOML file named by
``TERRACUBE_CONFIG``, then the defaults below, which work with nothing set.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "terracube"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TERRACUBE_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    # Synchronous /result is for small requests; bigger ones belong in a batch job.
    sync_max_pixels: int = 50_000_000
    # Dask chunk edge in pixels for loading; aligned with the COG tiles of the sample archive.
    chunk_size: int = 1024
    collections_file: Path | None = None
    database_url: str | None = None
    dask_scheduler: str | None = None
    title: str = "terracube"

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

    @property
    def sample_dir(self) -> Path:
        return self.data_dir / "sample"


@lru_cache
def get_settings() -> Settings:
    return Settings()
