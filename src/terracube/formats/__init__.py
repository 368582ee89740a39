"""File formats for save_result (output) and for reading files (input).

One table, ``OUTPUT_FORMATS``, drives ``/file_formats``, the check in ``save_result`` and the
writers, so what the API advertises is exactly what can be written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from terracube.errors import FormatUnsupported


@dataclass(frozen=True)
class OutputFormat:
    name: str
    title: str
    media_type: str
    extension: str
    gis_data_types: tuple[str, ...]
    writer: Callable[[Any, Path, dict], list[Path]]
    parameters: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    # Internal formats (a model saved by save_ml_model) are written but not offered to save_result.
    listed: bool = True


def _gtiff(data, directory, options):
    from terracube.formats.gtiff import write_gtiff

    return write_gtiff(data, directory, options)


def _netcdf(data, directory, options):
    from terracube.formats.netcdf import write_netcdf

    return write_netcdf(data, directory, options)


def _json(data, directory, options):
    from terracube.formats.json import write_json

    return write_json(data, directory, options)


def _vector(writer_name):
    def write(data, directory, options):
        from terracube.formats import vector

        return getattr(vector, writer_name)(data, directory, options)

    return write


def _ml_model(data, directory, options):
    from terracube.processes.ml_io import write_ml_model

    return write_ml_model(data, directory, options)


OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(
        "GTiff",
        "GeoTIFF (Cloud-Optimized)",
        "image/tiff; application=geotiff",
        "tif",
        ("raster",),
        _gtiff,
        {
            "filename_prefix": {"type": "string", "description": "File name prefix, 'openEO' by default.", "default": "openEO"},
        },
        aliases=("GEOTIFF", "TIFF", "COG"),
    ),
    OutputFormat(
        "netCDF",
        "Network Common Data Form",
        "application/x-netcdf",
        "nc",
        ("raster", "vector"),
        _netcdf,
        {
            "filename_prefix": {"type": "string", "description": "File name prefix, 'openEO' by default.", "default": "openEO"},
        },
        aliases=("NETCDF", "NC"),
    ),
    # Vector data cubes (aggregate_spatial): one feature or row per geometry, a column per band (and date).
    OutputFormat("GeoJSON", "GeoJSON (WGS84)", "application/geo+json", "geojson", ("vector",), _vector("write_geojson"),
                 {"filename_prefix": {"type": "string", "description": "File name prefix, 'openEO' by default.", "default": "openEO"}}),
    OutputFormat("CSV", "Comma-separated values, geometry as WKT", "text/csv", "csv", ("vector", "table"), _vector("write_csv"),
                 {"filename_prefix": {"type": "string", "description": "File name prefix, 'openEO' by default.", "default": "openEO"}}),
    OutputFormat("Parquet", "GeoParquet", "application/vnd.apache.parquet", "parquet", ("vector", "table"),
                 _vector("write_parquet"), {"filename_prefix": {"type": "string", "description": "File name prefix, 'openEO' by default.", "default": "openEO"}}, aliases=("GEOPARQUET",)),
    OutputFormat("JSON", "JavaScript Object Notation", "application/json", "json", ("raster", "vector", "table", "other"), _json),
    OutputFormat(
        "ML-MODEL", "Machine learning model (skops) with its STAC Item", "application/octet-stream; application=skops", "skops",
        ("other",), _ml_model, listed=False,
    ),
)


def output_format(name: str, internal: bool = False) -> OutputFormat:
    """The format a user asked for; ``internal`` also finds the ones only processes hand over."""
    wanted = name.upper()
    for candidate in OUTPUT_FORMATS:
        if not (candidate.listed or internal):
            continue
        if wanted == candidate.name.upper() or wanted in candidate.aliases:
            return candidate
    raise FormatUnsupported(
        f"Output format '{name}' is not supported. Supported: {', '.join(f.name for f in OUTPUT_FORMATS if f.listed)}."
    )


def file_formats() -> dict[str, dict]:
    """The ``/file_formats`` document."""
    output = {
        spec.name: {
            "title": spec.title,
            "gis_data_types": list(spec.gis_data_types),
            "parameters": spec.parameters,
        }
        for spec in OUTPUT_FORMATS
        if spec.listed
    }
    readable = {"GTiff": "GeoTIFF", "netCDF": "Network Common Data Form", "JSON": "JavaScript Object Notation"}
    input_ = {name: {"title": title, "gis_data_types": ["raster"] if name != "JSON" else ["vector", "other"], "parameters": {}} for name, title in readable.items()}
    return {"input": input_, "output": output}


def write_result(data: Any, format_name: str, options: dict, directory: Path) -> list[Path]:
    """Write ``data`` in a format into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    return output_format(format_name, internal=True).writer(data, directory, options)
