"""File formats, both ways: writers for save_result (output) and readers for files (input).

Two tables drive ``/file_formats``: ``OUTPUT_FORMATS`` also drives the check in ``save_result``
and the writers, ``INPUT_FORMATS`` the readers of ``load_url`` and ``load_uploaded_files``, so
what the API advertises is exactly what can be written and read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from terracube.errors import FormatUnsupported

FILENAME_PREFIX = {"filename_prefix": {"type": "string", "description": "File name prefix, 'openEO' by default.", "default": "openEO"}}


@dataclass(frozen=True)
class OutputFormat:
    name: str
    title: str
    media_type: str
    gis_data_types: tuple[str, ...]
    # writer(data, directory, options, compute): ``compute`` are the keyword arguments of the
    # writer's dask computations (``ProcessEnv.compute``: a synchronous run's cancellation check).
    writer: Callable[[Any, Path, dict, dict], list[Path]]
    parameters: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    # Internal formats (a model saved by save_ml_model) are written but not offered to save_result.
    listed: bool = True
    # Checks literal ``options`` when the process graph is validated (before anything runs); raises an OpenEOError.
    check_options: Callable[[dict], None] | None = None
    # Checks the lazy value and options against the server's limits (data, options, settings) when
    # save_result is evaluated, before a pixel is computed; raises an OpenEOError.
    check_data: Callable[[Any, dict, Any], None] | None = None


@dataclass(frozen=True)
class InputFormat:
    """A format files are read in: ``reader`` turns one or more files into one value.

    Rasters become one lazy cube (several files mosaicked, the first file winning where they
    overlap); GeoJSON stays a GeoJSON document, which ``load_geojson`` makes a vector cube.
    """

    name: str
    title: str
    gis_data_types: tuple[str, ...]
    reader: Callable[[list[Path]], Any]
    aliases: tuple[str, ...] = ()


def _gtiff(data, directory, options, compute):
    from terracube.formats.gtiff import write_gtiff

    return write_gtiff(data, directory, options, compute)


def _netcdf(data, directory, options, compute):
    from terracube.formats.netcdf import write_netcdf

    return write_netcdf(data, directory, options, compute)


def _json(data, directory, options, compute):
    from terracube.formats.json import write_json

    return write_json(data, directory, options, compute)


def _vector(writer_name):
    def write(data, directory, options, compute):
        from terracube.formats import vector

        return getattr(vector, writer_name)(data, directory, options, compute)

    return write


def _picture(image_format):
    def write(data, directory, options, compute):
        from terracube.formats.picture import write_picture

        return write_picture(data, directory, options, image_format, compute)

    return write


def _check_picture(image_format):
    def check(options):
        from terracube.formats.picture import picture_options

        picture_options(options, image_format)

    return check


def _picture_parameters(image_format):
    from terracube.formats.picture import JPEG_PARAMETERS, PARAMETERS

    return JPEG_PARAMETERS if image_format == "jpeg" else PARAMETERS


def _animation(video_format):
    def write(data, directory, options, compute):
        from terracube.formats import animation

        return getattr(animation, f"write_{video_format}")(data, directory, options, compute)

    def check_options(options):
        from terracube.formats.animation import animation_options

        animation_options(options, video_format)

    def check_data(data, options, settings):
        from terracube.formats.animation import check_animation

        check_animation(data, options, settings, video_format)

    from terracube.formats.animation import PARAMETERS

    return {"writer": write, "parameters": PARAMETERS, "check_options": check_options, "check_data": check_data}


def _ml_model(data, directory, options, compute):
    from terracube.formats.ml_model import write_ml_model

    return write_ml_model(data, directory, options, compute)


OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat("GTiff", "GeoTIFF (Cloud-Optimized)", "image/tiff; application=geotiff", ("raster",), _gtiff, FILENAME_PREFIX,
                 aliases=("GEOTIFF", "TIFF", "COG")),
    OutputFormat("netCDF", "Network Common Data Form", "application/x-netcdf", ("raster", "vector"), _netcdf, FILENAME_PREFIX,
                 aliases=("NETCDF", "NC")),
    # Vector data cubes (aggregate_spatial): one feature or row per geometry, a column per band (and date).
    OutputFormat("GeoJSON", "GeoJSON (WGS84)", "application/geo+json", ("vector",), _vector("write_geojson"), FILENAME_PREFIX),
    OutputFormat("CSV", "Comma-separated values, geometry as WKT", "text/csv", ("vector", "table"), _vector("write_csv"), FILENAME_PREFIX),
    OutputFormat("Parquet", "GeoParquet", "application/vnd.apache.parquet", ("vector", "table"), _vector("write_parquet"), FILENAME_PREFIX,
                 aliases=("GEOPARQUET",)),
    # Pictures to look at (no georeference): one band through a colormap or three as RGB, drawn as map tiles are.
    OutputFormat("PNG", "Portable Network Graphics (transparent where there is no data)", "image/png", ("raster",), _picture("png"),
                 _picture_parameters("png"), check_options=_check_picture("png")),
    OutputFormat("JPEG", "JPEG (black where there is no data)", "image/jpeg", ("raster",), _picture("jpeg"),
                 _picture_parameters("jpeg"), aliases=("JPG",), check_options=_check_picture("jpeg")),
    # Time-lapses: one frame per date, each drawn as the PNG of that date is (formats/animation.py).
    OutputFormat("GIF", "Animated GIF, one frame per date (transparent where there is no data)", "image/gif", ("raster",),
                 **_animation("gif")),
    OutputFormat("MP4", "MP4 video (H.264), one frame per date (black where there is no data)", "video/mp4", ("raster",),
                 **_animation("mp4")),
    OutputFormat("JSON", "JavaScript Object Notation", "application/json", ("raster", "vector", "table", "other"), _json),
    OutputFormat("ML-MODEL", "Machine learning model (skops) with its STAC Item", "application/octet-stream; application=skops",
                 ("other",), _ml_model, listed=False),
)


def _read_gtiff(paths: list[Path]) -> Any:
    from terracube.formats.gtiff import read_gtiff

    return mosaic([read_gtiff(path) for path in paths])


def _read_netcdf(paths: list[Path]) -> Any:
    from terracube.formats.netcdf import read_netcdf

    return mosaic([read_netcdf(path) for path in paths])


def _read_geojson(paths: list[Path]) -> Any:
    from terracube.formats.vector import read_geojson

    return read_geojson(paths)


INPUT_FORMATS: tuple[InputFormat, ...] = (
    InputFormat("GTiff", "GeoTIFF", ("raster",), _read_gtiff, aliases=("GEOTIFF", "TIFF", "COG")),
    InputFormat("netCDF", "Network Common Data Form", ("raster",), _read_netcdf, aliases=("NETCDF", "NC")),
    InputFormat("GeoJSON", "GeoJSON", ("vector",), _read_geojson, aliases=("JSON",)),
)


def mosaic(cubes: list) -> Any:
    """Several cubes as one; where they overlap, the first has its way."""
    cube = cubes[0]
    for other in cubes[1:]:
        attrs = cube.attrs
        cube = cube.combine_first(other)
        cube.attrs = attrs
    return cube


def _find(formats: tuple, name: str, listed_only: bool = True):
    wanted = str(name).upper()
    for candidate in formats:
        if listed_only and not getattr(candidate, "listed", True):
            continue
        if wanted == candidate.name.upper() or wanted in candidate.aliases:
            return candidate
    return None


def output_format(name: str, internal: bool = False) -> OutputFormat:
    """The format a user asked for; ``internal`` also finds the ones only processes hand over."""
    found = _find(OUTPUT_FORMATS, name, listed_only=not internal)
    if found is None:
        raise FormatUnsupported(
            f"Output format '{name}' is not supported. Supported: {', '.join(f.name for f in OUTPUT_FORMATS if f.listed)}."
        )
    return found


def input_format(name: str) -> InputFormat:
    """The format a user asked to read files in (``load_url``, ``load_uploaded_files``)."""
    found = _find(INPUT_FORMATS, name)
    if found is None:
        raise FormatUnsupported(f"Input format '{name}' is not supported. Supported: {', '.join(f.name for f in INPUT_FORMATS)}.")
    return found


def file_formats() -> dict[str, dict]:
    """The ``/file_formats`` document."""
    output = {
        spec.name: {"title": spec.title, "gis_data_types": list(spec.gis_data_types), "parameters": spec.parameters}
        for spec in OUTPUT_FORMATS
        if spec.listed
    }
    input_ = {spec.name: {"title": spec.title, "gis_data_types": list(spec.gis_data_types), "parameters": {}} for spec in INPUT_FORMATS}
    return {"input": input_, "output": output}


def write_result(data: Any, format_name: str, options: dict, directory: Path, compute: dict | None = None) -> list[Path]:
    """Write ``data`` in a format into ``directory``; returns the files written. ``compute``: the
    keyword arguments of the writer's ``dask.compute`` (``ProcessEnv.compute``); none: dask's default."""
    directory.mkdir(parents=True, exist_ok=True)
    return output_format(format_name, internal=True).writer(data, directory, options, compute or {})
