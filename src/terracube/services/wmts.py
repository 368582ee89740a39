"""The documents of OGC WMTS 1.0.0 for a map service: its capabilities and its exception reports.

A service is one WMTS layer in one tile matrix set, ``GoogleMapsCompatible``: the Web Mercator
grid of the XYZ tiles (morecantile's ``WebMercatorQuad``), with the well-known scale set that
QGIS, OpenLayers and OWSLib know. The tile matrices are the layer's zoom levels (``Layer.min_zoom``
to ``max_zoom``), named by their zoom, so ``TILEMATRIX=12&TILEROW=y&TILECOL=x`` is the XYZ tile
``12/x/y``. A cube that keeps dates gets a ``Time`` dimension listing them, its latest the default.

Only documents here, built with ``xml.etree`` (no template text, so every value is escaped); the
routes are in ``api/service_wmts.py``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from terracube.services.grid import MAX_LATITUDE
from terracube.services.tiles import Layer

WMTS = "http://www.opengis.net/wmts/1.0"
OWS = "http://www.opengis.net/ows/1.1"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA = "http://www.opengis.net/wmts/1.0 http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd"
EXCEPTION_SCHEMA = "http://www.opengis.net/ows/1.1 http://schemas.opengis.net/ows/1.1.0/owsExceptionReport.xsd"
# QGIS reads capabilities without namespaces, by the conventional prefixes: WMTS elements unprefixed
# (the default namespace), ``ows:`` and ``xlink:``. ElementTree's prefixes are per namespace, process-wide.
for _prefix, _uri in (("", WMTS), ("ows", OWS), ("xlink", XLINK), ("xsi", XSI)):
    ET.register_namespace(_prefix, _uri)

VERSION = "1.0.0"
TILE_MATRIX_SET = "GoogleMapsCompatible"
WELL_KNOWN_SCALE_SET = "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"
CRS = "urn:ogc:def:crs:EPSG::3857"
STYLE = "default"
TIME = "Time"  # the dimension's identifier: the KVP parameter TIME and the {Time} of the tile template
FORMATS = {"image/png": "png", "image/jpeg": "jpg"}  # media type -> the tile URL's extension
MEDIA_TYPE = "application/xml"


@dataclass(frozen=True)
class Endpoint:
    """Where a service's WMTS answers: ``kvp`` the URL of its KVP requests, ``rest`` the root of its resources."""

    kvp: str  # <base>/services/{id}/wmts
    layer: str  # the layer's identifier: the service id, as in the service's attributes
    title: str
    abstract: str | None = None
    tile_size: int = 256

    @property
    def capabilities_url(self) -> str:
        return f"{self.kvp}/{VERSION}/WMTSCapabilities.xml"

    def tile_template(self, extension: str, timed: bool) -> str:
        """The RESTful tile URL, with WMTS's own placeholders (the layer is this one, written out)."""
        time = "{Time}/" if timed else ""
        return f"{self.kvp}/tile/{VERSION}/{self.layer}/{{Style}}/{time}{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.{extension}"


def _wmts(tag: str) -> str:
    return f"{{{WMTS}}}{tag}"


def _ows(tag: str) -> str:
    return f"{{{OWS}}}{tag}"


# Characters XML 1.0 cannot hold at all, even escaped; ElementTree would write them and break the document.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """``value`` as XML can carry it: a title or an echoed request may hold control characters."""
    return NOT_XML.sub("\ufffd", str(value))


def _add(parent: ET.Element, tag: str, text: object | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {name: xml_text(value) for name, value in attributes.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _number(value: float) -> str:
    return repr(float(value))  # the shortest text that reads back as the same double


# --- GetCapabilities ---------------------------------------------------------------------------
def capabilities(endpoint: Endpoint, layer: Layer, restful: bool = False) -> bytes:
    """The ServiceMetadata document: ``GetCapabilities``'s (KVP), or the RESTful one (``restful``).

    They differ in the encoding their operations declare, which is how clients (OWSLib, QGIS) choose
    between KVP requests and the ResourceURL templates; the contents are the same.
    """
    root = ET.Element(_wmts("Capabilities"), {"version": VERSION, f"{{{XSI}}}schemaLocation": SCHEMA})
    identification = _add(root, _ows("ServiceIdentification"))
    _add(identification, _ows("Title"), endpoint.title)
    if endpoint.abstract:
        _add(identification, _ows("Abstract"), endpoint.abstract)
    _add(identification, _ows("ServiceType"), "OGC WMTS")
    _add(identification, _ows("ServiceTypeVersion"), VERSION)
    provider = _add(root, _ows("ServiceProvider"))
    _add(provider, _ows("ProviderName"), "terracube")
    _operations(_add(root, _ows("OperationsMetadata")), endpoint, restful)
    contents = _add(root, _wmts("Contents"))
    _layer(_add(contents, _wmts("Layer")), endpoint, layer)
    _tile_matrix_set(_add(contents, _wmts("TileMatrixSet")), layer, endpoint.tile_size)
    _add(root, _wmts("ServiceMetadataURL"), **{f"{{{XLINK}}}href": endpoint.capabilities_url})
    ET.indent(root)  # people read capabilities too
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def _operations(metadata: ET.Element, endpoint: Endpoint, restful: bool) -> None:
    """Both operations, over KVP at the service's URL, or RESTful (the tiles then by their ResourceURL template)."""
    urls = {"GetCapabilities": endpoint.capabilities_url, "GetTile": f"{endpoint.kvp}/tile/{VERSION}/"} if restful else {}
    for name in ("GetCapabilities", "GetTile"):
        operation = _add(metadata, _ows("Operation"), name=name)
        href = urls.get(name, endpoint.kvp + "?")
        get = _add(_add(_add(operation, _ows("DCP")), _ows("HTTP")), _ows("Get"), **{f"{{{XLINK}}}href": href})
        values = _add(_add(get, _ows("Constraint"), name="GetEncoding"), _ows("AllowedValues"))
        _add(values, _ows("Value"), "RESTful" if restful else "KVP")


def _layer(element: ET.Element, endpoint: Endpoint, layer: Layer) -> None:
    # The order is the schema's: ows:Title .. ows:Identifier, Style, Format, Dimension, TileMatrixSetLink, ResourceURL.
    _add(element, _ows("Title"), endpoint.title)
    if endpoint.abstract:
        _add(element, _ows("Abstract"), endpoint.abstract)
    west, south, east, north = layer.bbox_wgs84
    box = _add(element, _ows("WGS84BoundingBox"), crs="urn:ogc:def:crs:OGC:2:84")
    _add(box, _ows("LowerCorner"), f"{_number(west)} {_number(south)}")
    _add(box, _ows("UpperCorner"), f"{_number(east)} {_number(north)}")
    _add(element, _ows("Identifier"), endpoint.layer)
    style = _add(element, _wmts("Style"), isDefault="true")
    _add(style, _ows("Title"), "As the service's configuration draws it")
    _add(style, _ows("Identifier"), STYLE)
    for media_type in FORMATS:
        _add(element, _wmts("Format"), media_type)
    if layer.times:
        dimension = _add(element, _wmts("Dimension"))
        _add(dimension, _ows("Title"), "Date")
        _add(dimension, _ows("Abstract"), "The dates of the process graph's result; the latest is drawn when none is asked for.")
        _add(dimension, _ows("Identifier"), TIME)
        _add(dimension, _wmts("UOM"), "ISO8601")
        _add(dimension, _wmts("Default"), layer.times[-1])
        for value in layer.times:
            _add(dimension, _wmts("Value"), value)
    link = _add(element, _wmts("TileMatrixSetLink"))
    _add(link, _wmts("TileMatrixSet"), TILE_MATRIX_SET)
    limits = _add(link, _wmts("TileMatrixSetLimits"))
    for zoom in zoom_levels(layer):
        (min_col, min_row), (max_col, max_row) = tile_limits(layer.bbox_wgs84, zoom)
        matrix = _add(limits, _wmts("TileMatrixLimits"))
        for tag, value in (("TileMatrix", zoom), ("MinTileRow", min_row), ("MaxTileRow", max_row), ("MinTileCol", min_col), ("MaxTileCol", max_col)):
            _add(matrix, _wmts(tag), value)
    for media_type, extension in FORMATS.items():
        _add(element, _wmts("ResourceURL"), format=media_type, resourceType="tile", template=endpoint.tile_template(extension, bool(layer.times)))


def zoom_levels(layer: Layer) -> range:
    return range(layer.min_zoom, layer.max_zoom + 1)


def tile_limits(bbox: tuple[float, float, float, float], zoom: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The first and last (column, row) at ``zoom`` that touch the WGS84 box: WMTS's TileMatrixLimits."""
    west, south, east, north = bbox
    grid = _web_mercator_quad()
    first = grid.tile(west, min(north, MAX_LATITUDE), zoom, truncate=True)
    last = grid.tile(east, max(south, -MAX_LATITUDE), zoom, truncate=True)
    end = 2**zoom - 1
    return (first.x, first.y), (min(last.x, end), min(last.y, end))


def _web_mercator_quad():
    import morecantile

    return morecantile.tms.get("WebMercatorQuad")


def _tile_matrix_set(element: ET.Element, layer: Layer, tile_size: int) -> None:
    """GoogleMapsCompatible from morecantile's WebMercatorQuad, at the layer's zoom levels.

    A service of 512-pixel tiles draws each z/x/y tile at twice the detail: the same matrices with
    tiles of 512 pixels and half the scale, which is no longer the well-known scale set.
    """
    grid = _web_mercator_quad()
    _add(element, _ows("Identifier"), TILE_MATRIX_SET)
    _add(element, _ows("SupportedCRS"), CRS)
    if tile_size == 256:
        _add(element, _wmts("WellKnownScaleSet"), WELL_KNOWN_SCALE_SET)
    for zoom in zoom_levels(layer):
        matrix = grid.matrix(zoom)
        entry = _add(element, _wmts("TileMatrix"))
        _add(entry, _ows("Identifier"), zoom)
        _add(entry, _wmts("ScaleDenominator"), _number(matrix.scaleDenominator * matrix.tileWidth / tile_size))
        _add(entry, _wmts("TopLeftCorner"), " ".join(_number(v) for v in matrix.pointOfOrigin))
        _add(entry, _wmts("TileWidth"), tile_size)
        _add(entry, _wmts("TileHeight"), tile_size)
        _add(entry, _wmts("MatrixWidth"), matrix.matrixWidth)
        _add(entry, _wmts("MatrixHeight"), matrix.matrixHeight)


# --- exceptions --------------------------------------------------------------------------------
def exception_report(exceptions: list[tuple[str, str, str | None]]) -> bytes:
    """An OWS 1.1 ``ExceptionReport``: (exceptionCode, text, locator or None) for each problem found."""
    root = ET.Element(_ows("ExceptionReport"), {"version": "1.1.0", f"{{{XSI}}}schemaLocation": EXCEPTION_SCHEMA,
                                                "{http://www.w3.org/XML/1998/namespace}lang": "en"})
    for code, text, locator in exceptions:
        attributes = {"exceptionCode": code, **({"locator": locator} if locator else {})}
        _add(_add(root, _ows("Exception"), **attributes), _ows("ExceptionText"), text)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)
