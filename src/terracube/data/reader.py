"""Reading COGs for odc-stac: the collection's GDAL environment, signing and harmonisation per read.

odc-stac hands every pixel read to a *reader driver*; terracube's driver carries what one
collection needs and applies it where the read happens, in whichever dask worker thread that is:

- the GDAL environment (HTTP timeouts and retries, COG-friendly settings, the collection's own
  ``gdal_options`` and credentials) is entered around each task, so two collections with
  different S3 endpoints or keys can be read side by side (odc-stac's ``configure_rio`` is one
  process-wide setting and cannot do that);
- asset URLs are signed when they are opened, not when the graph is built, so a short-lived token
  (Planetary Computer's SAS tokens last about an hour) is fresh even late in a long batch job;
- the assets of a user's STAC items (a driver with a ``guard``) are not read by GDAL's own HTTP
  client, which follows redirects and resolves names out of the fetch guard's sight: their bytes
  come through the guard (``guarded_read``);
- the Sentinel-2 processing-baseline 04.00 offset is removed from each scene's pixels before
  the scenes of a day are mosaicked, so a mosaic never mixes offset and plain values;
- a failed read becomes an openEO error naming the asset (without its token) and the cause.
"""

from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

import numpy as np
import pystac
import rasterio
from odc.loader._rio import GlobalContext, LocalContext, RioDriver, rio_env, rio_read
from odc.stac._mdtools import StacMDParser
from rasterio.session import Session

from terracube.data.fetch_guard import FetchGuard
from terracube.data.network import ArchiveAccessDenied, ArchiveUnavailable, redact, redact_text

# Sentinel-2 processing baseline 04.00 (from 25 January 2022) adds 1000 to every L2A reflectance
# digital number (BOA_ADD_OFFSET = -1000). CDSE's SENTINEL2_L2A removes it so old and new scenes compare.
BASELINE_OFFSET = 1000.0

# GDAL settings for reading COGs over HTTP and S3: open without listing directories or probing
# side-car files, read the header in one request, merge adjacent ranges, keep a block cache, and
# never wait longer than the timeout for a byte.
COG_DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "GDAL_HTTP_RETRY_CODES": "429,500,502,503,504",
}



def gdal_environment(options: dict[str, str], timeout: float, retries: int) -> dict[str, str]:
    return {
        **COG_DEFAULTS,
        "GDAL_HTTP_TIMEOUT": str(int(timeout)),
        "GDAL_HTTP_CONNECTTIMEOUT": str(int(min(timeout, 10))),
        "GDAL_HTTP_MAX_RETRY": str(int(retries)),
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        **{key: str(value) for key, value in options.items()},
    }


class CredentialSession(Session):
    """A rasterio session that hands GDAL its credentials as configuration options.

    rasterio refuses AWS keys as plain ``Env`` options and its ``AWSSession`` needs boto3; this
    session needs neither and works for any GDAL credential option (S3, HTTP basic auth, headers).
    """

    def __init__(self, options: dict[str, str] | None = None):
        self._options = dict(options or {})

    @classmethod
    def hascreds(cls, config: dict) -> bool:
        return True

    @property
    def credentials(self) -> dict[str, str]:
        return dict(self._options)

    def get_credential_options(self) -> dict[str, str]:
        return dict(self._options)

    def __repr__(self) -> str:  # never print a secret
        return f"CredentialSession({sorted(self._options)})"


def baseline(item: pystac.Item) -> float | None:
    """The item's Sentinel-2 processing baseline: the STAC property, or the ``N0400`` in its product name."""
    properties = item.properties
    for key in ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline"):
        value = properties.get(key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
    for key in ("s2:product_uri", "s2:granule_id"):
        match = re.search(r"_N(\d{2})(\d{2})(?:_|\.|$)", str(properties.get(key, "")))
        if match:
            return float(f"{match[1]}.{match[2]}")
    match = re.search(r"_N(\d{2})(\d{2})_", item.id)
    return float(f"{match[1]}.{match[2]}") if match else None


def needs_baseline_offset(item: pystac.Item) -> bool:
    """True when the item's digital numbers still carry the +1000 of baseline 04.00 and later."""
    properties = item.properties
    # Earth Search reprocessed part of its archive and says so; the flag wins over the baseline.
    for flag in ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied"):
        if properties.get(flag) is True:
            return False
    value = baseline(item)
    return value is not None and value >= 4.0


class SourceParser(StacMDParser):
    """odc-stac's STAC metadata parser, telling each asset's read what the collection knows about it:
    the baseline offset to remove (reflectance bands of items that carry it) and the nodata value
    that overrides the file's own (from the collections file)."""

    def __init__(self, stac_cfg: dict, reflectance_assets: frozenset[str], nodata: dict[str, float] | None = None):
        super().__init__(stac_cfg)
        self.reflectance_assets = reflectance_assets
        self.nodata = dict(nodata or {})

    def driver_data(self, md: Any, band_key) -> Any:
        data = super().driver_data(md, band_key)
        if data is not None:
            return data
        extra = {}
        if band_key[0] in self.reflectance_assets and needs_baseline_offset(md):
            extra["offset"] = BASELINE_OFFSET
        if band_key[0] in self.nodata:
            extra["nodata"] = self.nodata[band_key[0]]
        return extra or None


def _gdal_env(options: dict[str, str], credentials: dict[str, str] | None):
    return rio_env(session=CredentialSession(credentials), **options)


class ArchiveDriver(RioDriver):
    """odc-stac's rasterio driver with one collection's environment, signing and harmonisation."""

    def __init__(
        self,
        gdal_options: dict[str, str],
        credentials: dict[str, str] | None = None,
        sign: str | None = None,
        md_parser: StacMDParser | None = None,
        label: str = "",
        guard: FetchGuard | None = None,
    ):
        super().__init__(md_parser=md_parser)
        self.gdal_options = dict(gdal_options)
        self.credentials = dict(credentials or {})
        self.sign = sign
        self.label = label
        self.guard = guard  # the assets are a user's: read through the fetch guard

    def __repr__(self) -> str:
        return f"ArchiveDriver({self.label!r})"

    def capture_env(self) -> dict[str, Any]:
        return {"options": self.gdal_options, "credentials": self.credentials}

    @contextmanager
    def restore_env(self, env: dict[str, Any], load_state: GlobalContext) -> Iterator[LocalContext]:
        with _gdal_env(env.get("options", {}), env.get("credentials")):
            yield load_state.local_ctx(LocalContext)

    def environment(self):
        """The collection's GDAL environment, for reads that do not go through odc-stac."""
        return _gdal_env(self.gdal_options, self.credentials)

    def signed(self, uri: str) -> str:
        """``uri`` as it is opened: signed now, so that a token is fresh at the moment of the read."""
        if not self.sign:
            return uri
        from terracube.data.signing import url_signer

        try:
            return url_signer(self.sign)(uri)
        except ArchiveUnavailable:
            raise
        except Exception as error:
            raise ArchiveUnavailable(f"Signing the asset URL {redact(uri)} failed: {redact_text(str(error))[:300]}") from None

    def gdal_path(self, uri: str):
        """A context giving the path GDAL opens for ``uri``: the URL signed now, or for a user's
        asset over http(s) its bytes through the fetch guard (this server's own result links excepted)."""
        if self.guard is None or not uri.lower().startswith(("http://", "https://")) or self.guard.trusted(uri):
            return nullcontext(self.signed(uri))
        from terracube.data.guarded_read import guarded_path

        timeout = float(self.gdal_options.get("GDAL_HTTP_TIMEOUT", 30))
        retries = int(self.gdal_options.get("GDAL_HTTP_MAX_RETRY", 0))
        return guarded_path(uri, self.guard, (min(timeout, 10.0), timeout), retries)

    def open(self, src, ctx) -> "ArchiveReader":
        data = src.driver_data if isinstance(src.driver_data, dict) else {}
        return ArchiveReader(src, ctx, src.uri, data.get("offset", 0.0), data.get("nodata"), self.label, self)


class ArchiveReader:
    def __init__(self, src, ctx, uri: str, offset: float, nodata: float | None, label: str, driver: ArchiveDriver):
        self._src = src
        self._ctx = ctx
        self._uri = uri
        self._offset = offset
        self._nodata = nodata
        self._label = label
        self._driver = driver

    def read(self, cfg, dst_geobox, *, dst=None, selection=None):
        # Source nodata: the collections file's value over the file's own; the STAC item's
        # (raster:bands) when the file has none. The output's nodata is NaN either way.
        if self._nodata is not None:
            cfg = cfg.patch(src_nodata_override=self._nodata)
        elif cfg.meta is not None and cfg.meta.nodata is not None and not np.isnan(cfg.meta.nodata):
            cfg = cfg.patch(src_nodata_fallback=cfg.meta.nodata)
        try:
            with self._driver.gdal_path(self._uri) as path:
                roi, pixels = rio_read(self._src.patch(uri=path), cfg, dst_geobox, dst=dst, selection=selection)
        except rasterio.errors.RasterioError as error:
            raise read_failure(error, self._uri, self._label) from None
        if self._offset and pixels.size and np.issubdtype(pixels.dtype, np.floating):
            valid = np.isfinite(pixels)
            np.subtract(pixels, self._offset, out=pixels, where=valid)
            np.maximum(pixels, 0, out=pixels, where=valid)
        return roi, pixels


def read_failure(error: BaseException, uri: str, label: str = "") -> ArchiveUnavailable:
    """An openEO error for a COG read that failed: which asset, and what the archive said."""
    text = redact_text(str(error))
    where = f"Reading {redact(uri)}" + (f" (collection {label})" if label else "")
    status = re.search(r"HTTP (?:response )?code:? ?(\d{3})", text)
    if status and status[1] in ("401", "403"):
        return ArchiveAccessDenied(
            f"{where} was refused (HTTP {status[1]}): the archive denies access. "
            "The server's credentials for this archive are missing or wrong; tell its operator."
        )
    if "timed out" in text.lower() or "timeout" in text.lower():
        return ArchiveUnavailable(f"{where} timed out: the archive did not answer in time. Try again later.", status=504)
    if status:
        return ArchiveUnavailable(f"{where} failed: the archive answered HTTP {status[1]}.")
    return ArchiveUnavailable(f"{where} failed: {text[:300]}")
