"""The collections file: how an operator declares openEO collections over STAC archives.

A TOML file (``TERRACUBE_COLLECTIONS_FILE``) with one ``[[collection]]`` table per collection;
the entries shipped in ``collections.toml`` beside this module (Earth Search, CDSE, Planetary
Computer) are read first and stay disabled until the operator's file enables them by id.
Credentials are named by environment variable, never written into the file.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class BandConfig(BaseModel):
    """One openEO band: its name as CDSE spells it and the STAC asset that holds it."""

    name: str
    asset: str
    common_name: str | None = None
    center_wavelength: float | None = None
    gsd: float = 10
    scale: float | None = None
    offset: float | None = None
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
    native_crs: str | None = None  # None: the UTM zone of the request's centre
    # GDAL/AWS settings taken from environment variables: {"AWS_ACCESS_KEY_ID": "CDSE_S3_ACCESS_KEY"}.
    credentials: dict[str, str] = Field(default_factory=dict)
    gdal_options: dict[str, str] = Field(default_factory=dict)
    # A hook that signs asset URLs: "planetary_computer" or "module:function".
    sign: str | None = None
    harmonize_baseline: bool = False
    license: str = "proprietary"
    providers: list[dict] = Field(default_factory=list)


def _parse(text: str) -> dict[str, dict]:
    return {entry["id"]: entry for entry in tomllib.loads(text).get("collection", [])}


def load_collection_configs(path: Path | None) -> list[CollectionConfig]:
    """Shipped entries, overlaid by the operator's file (a table with the same id is merged into the shipped one)."""
    shipped = _parse((resources.files("terracube.data") / "collections.toml").read_text(encoding="utf-8"))
    for entry in shipped.values():
        entry.setdefault("enabled", False)
    own = _parse(Path(path).read_text(encoding="utf-8")) if path else {}
    merged = dict(shipped)
    for collection_id, entry in own.items():
        merged[collection_id] = {**shipped.get(collection_id, {}), **entry}
    return [CollectionConfig(**entry) for entry in merged.values()]
