"""The collections file: how an operator declares openEO collections over STAC archives.

A TOML file (``TERRACUBE_COLLECTIONS_FILE``) with one ``[[collection]]`` table per collection;
the entries shipped in ``collections.toml`` beside this module (Earth Search, CDSE, Planetary
Computer) are read first and stay disabled until the operator's file enables them by id. A table
may also start from another entry with ``extends = "EARTH_SEARCH_S2_L2A"`` under its own id (e.g.
``SENTINEL2_L2A``, so CDSE scripts run unchanged). Credentials are named by environment variable,
never written into the file; ``docs/collections.md`` explains every field.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# GDAL options that carry secrets: they belong in ``credentials`` (by variable name), never in the file.
SECRET_OPTIONS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GDAL_HTTP_USERPWD", "GDAL_HTTP_HEADERS",
                  "GDAL_HTTP_BEARER", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING",
                  "GS_ACCESS_KEY_ID", "GS_SECRET_ACCESS_KEY", "OSS_SECRET_ACCESS_KEY"}


class CollectionsFileError(ValueError):
    """The collections file is not valid; the message names the file, the entry and the field."""


class BandConfig(BaseModel):
    """One openEO band: its name as CDSE spells it and the STAC asset that holds it."""

    name: str
    asset: str
    common_name: str | None = None
    center_wavelength: float | None = None
    gsd: float = 10
    # Documented in /collections (raster:bands); pixels stay digital numbers, as CDSE serves them.
    scale: float | None = None
    offset: float | None = None
    # Overrides the items' own nodata (raster:bands) when set.
    nodata: float | None = None
    # Reflectance bands get the Sentinel-2 processing-baseline 04.00 harmonisation.
    reflectance: bool = False


class CollectionConfig(BaseModel):
    id: str
    title: str | None = None
    description: str = ""
    enabled: bool = True
    # A STAC API root (searched with pystac-client) or a static catalog / collection JSON.
    stac_url: str
    stac_collection: str
    kind: Literal["api", "static"] = "api"
    bands: list[BandConfig] = Field(default_factory=list)
    native_crs: str | None = None  # None: the scenes' own CRS, or the UTM zone of the request's centre
    # GDAL settings taken from environment variables: {"AWS_ACCESS_KEY_ID": "CDSE_S3_ACCESS_KEY"}.
    credentials: dict[str, str] = Field(default_factory=dict)
    gdal_options: dict[str, str] = Field(default_factory=dict)
    # HTTP headers for the STAC API, from environment variables: {"Authorization": "MY_STAC_TOKEN"}.
    stac_headers: dict[str, str] = Field(default_factory=dict)
    # A hook that signs asset URLs: "planetary_computer" or "module:function".
    sign: str | None = None
    harmonize_baseline: bool = False
    license: str = "proprietary"
    providers: list[dict] = Field(default_factory=list)

    @field_validator("credentials", "stac_headers")
    @classmethod
    def _names_not_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for key, variable in value.items():
            if not _VARIABLE.fullmatch(str(variable)):
                raise ValueError(f"'{key}' must name an environment variable (letters, digits, _), not hold a secret")
        return value

    @field_validator("gdal_options")
    @classmethod
    def _no_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        secret = sorted(SECRET_OPTIONS & {key.upper() for key in value})
        if secret:
            raise ValueError(f"{', '.join(secret)} must not be written in the file: name its environment variable in 'credentials'")
        return {key: str(v) for key, v in value.items()}

    @model_validator(mode="after")
    def _unique_bands(self) -> "CollectionConfig":
        names = [band.name for band in self.bands]
        if len(names) != len(set(names)):
            raise ValueError("band names must be unique")
        return self


def _parse(text: str, where: str) -> dict[str, dict]:
    try:
        entries = tomllib.loads(text).get("collection", [])
    except tomllib.TOMLDecodeError as error:
        raise CollectionsFileError(f"{where} is not valid TOML: {error}") from None
    parsed = {}
    for entry in entries:
        if "id" not in entry:
            raise CollectionsFileError(f"{where}: every [[collection]] needs an 'id'")
        parsed[entry["id"]] = entry
    return parsed


def shipped_entries() -> dict[str, dict]:
    entries = _parse((resources.files("terracube.data") / "collections.toml").read_text(encoding="utf-8"), "the shipped collections.toml")
    for entry in entries.values():
        entry.setdefault("enabled", False)
    return entries


def load_collection_configs(path: Path | str | None) -> list[CollectionConfig]:
    """Shipped entries, overlaid by the operator's file (a table with the same id is merged into the shipped one)."""
    shipped = shipped_entries()
    own = _parse(Path(path).read_text(encoding="utf-8"), str(path)) if path else {}
    merged = dict(shipped)
    for collection_id, entry in own.items():
        base_id = entry.get("extends", collection_id)
        # An entry extends the shipped one or one declared above it, as already overlaid by this file.
        base = merged.get(base_id) if base_id != collection_id else shipped.get(collection_id)
        if "extends" in entry and base is None:
            raise CollectionsFileError(f"{path}: collection '{collection_id}' extends '{base_id}', which is not declared above it")
        combined = {**(base or {}), **{k: v for k, v in entry.items() if k != "extends"}, "id": collection_id}
        if base_id != collection_id:
            combined["enabled"] = entry.get("enabled", True)  # a new id is meant to be served
        merged[collection_id] = combined
    configs = []
    for collection_id, entry in merged.items():
        try:
            configs.append(CollectionConfig(**entry))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            raise CollectionsFileError(f"{path or 'collections.toml'}: collection '{collection_id}': {problems}") from None
    return configs
