"""A map service as OGC WMTS 1.0.0, for QGIS, OpenLayers and OWSLib: ``/services/{service_id}/wmts``.

- KVP: ``<url>?SERVICE=WMTS&REQUEST=GetCapabilities`` and ``REQUEST=GetTile&LAYER=..&STYLE=default&
  TILEMATRIXSET=GoogleMapsCompatible&TILEMATRIX=z&TILEROW=y&TILECOL=x&FORMAT=image/png[&TIME=..]``,
  parameter names in any case (OGC's KVP rule).
- RESTful: ``<url>/1.0.0/WMTSCapabilities.xml`` and the tile template the capabilities publish,
  ``<url>/tile/1.0.0/{layer}/{style}[/{Time}]/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png``.

Any service type answers here (an XYZ service's tiles are the same tiles), and the tiles are the
XYZ route's own: ``api/service_tiles.py`` draws them, caches them and answers ``ETag``/304. Like
the XYZ tiles these routes are public (the unguessable service id is the credential), and a
disabled or deleted service answers 404 from the next request on.

A WMTS client expects OGC's errors, not openEO's: every refusal here is an OWS ``ExceptionReport``
(``MissingParameterValue``, ``InvalidParameterValue``, ``TileOutOfRange``, ...) with the status
WMTS gives it, which QGIS shows to its user. The routes are OGC's, not the openEO API's, so they
are hidden from the capabilities' endpoints; /openapi.json still describes them (api/openapi.py
describes every route), with the XML answers declared below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from terracube.api.deps import base_url
from terracube.api.service_tiles import MAX_OPTION_LENGTH, MAX_OPTIONS, enabled_service, owner_env, tile_response
from terracube.errors import OpenEOError, shortened
from terracube.services import tiles, wmts
from terracube.services.model import Service
from terracube.services.render import TILE_OPTIONS, parse_configuration

router = APIRouter(tags=["WMTS"])

ROOT = "/services/{service_id}/wmts"
CAPABILITIES_ROUTE = ROOT + "/" + wmts.VERSION + "/WMTSCapabilities.xml"
TILE_ROUTE = ROOT + "/tile/" + wmts.VERSION + "/{layer}/{style}/{tile_matrix_set}/{tile_matrix}/{tile_row}/{tile_col}"
TIMED_TILE_ROUTE = ROOT + "/tile/" + wmts.VERSION + "/{layer}/{style}/{time}/{tile_matrix_set}/{tile_matrix}/{tile_row}/{tile_col}"
NUMBER = re.compile(r"[0-9]{1,10}")
EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}
GET_TILE = ("LAYER", "STYLE", "FORMAT", "TILEMATRIXSET", "TILEMATRIX", "TILEROW", "TILECOL")  # WMTS's mandatory ones
LATEST = ("", "default", "current")  # TIME values meaning "the default": the latest date

XML = {"application/xml": {"schema": {"type": "string"}}}
REPORT = {"description": "An OWS ExceptionReport (WMTS 1.0.0): what is missing or wrong, the service not found.", "content": XML}
IMAGES = {"image/png": {"schema": {"type": "string", "format": "binary"}}, "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}
CAPABILITIES_ANSWERS = {200: {"description": "The WMTS capabilities (ServiceMetadata).", "content": XML}, 400: REPORT, 404: REPORT}
KVP_ANSWERS = {200: {"description": "The capabilities (GetCapabilities) or a tile (GetTile).", "content": {**XML, **IMAGES}},
               304: {"description": "The client has this tile (If-None-Match)."}, 400: REPORT, 404: REPORT}
TILE_ANSWERS = {200: {"description": "The tile.", "content": IMAGES}, 304: {"description": "The client has this tile (If-None-Match)."},
                400: REPORT, 404: REPORT}


class OWSException(Exception):
    """A refusal as WMTS words it: one or more (exceptionCode, text, locator) and the HTTP status."""

    def __init__(self, code: str, text: str, locator: str | None = None, status: int = 400, more: list | None = None):
        super().__init__(text)
        self.status = status
        self.exceptions = [(code, text, locator), *(more or [])]

    def response(self) -> Response:
        return Response(wmts.exception_report(self.exceptions), status_code=self.status, media_type=wmts.MEDIA_TYPE)


def from_openeo(error: OpenEOError) -> OWSException:
    """An openEO error of the tile renderer, in OGC's words (its status kept: never a 500 for a user's mistake)."""
    if error.code == "TileOutOfRange":
        return OWSException("TileOutOfRange", error.message, "TILEMATRIX", error.status)
    if error.code in ("ServiceConfigInvalid", "ServiceConfigUnsupported"):
        return OWSException("InvalidParameterValue", error.message, None, error.status)
    return OWSException("NoApplicableCode", f"{error.code}: {error.message}", None, error.status)


async def service_or_404(request: Request, service_id: str) -> Service:
    try:
        service = await enabled_service(request, service_id)
    except OpenEOError as error:  # no database: secondary services are not available on this server
        raise from_openeo(error) from None
    if service is None:
        raise OWSException("NoApplicableCode", f"There is no map service '{shortened(service_id)}': it was deleted or disabled, "
                           "or never existed.", None, 404)
    return service


async def layer_of(request: Request, service: Service) -> tiles.Layer:
    """The layer as its owner's graph describes it (planned and probed once per service version)."""
    env, udps = owner_env(request.app, service)
    try:
        return await run_in_threadpool(tiles.describe_layer, env, service, udps)
    except OpenEOError as error:
        raise from_openeo(error) from None


def endpoint(request: Request, service: Service) -> wmts.Endpoint:
    configuration = parse_configuration(service.configuration)  # valid: checked when the service was stored
    return wmts.Endpoint(f"{base_url(request)}/services/{service.id}/wmts", service.id, service.title or f"{service.type} service {service.id}",
                         service.description, configuration.tile_size)


async def capabilities(request: Request, service: Service, restful: bool = False) -> Response:
    layer = await layer_of(request, service)
    document = wmts.capabilities(endpoint(request, service), layer, restful)
    return Response(document, media_type=wmts.MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


def kvp(request: Request) -> dict[str, str]:
    """The query's parameters by upper-case name: OGC KVP names are case-insensitive (values are not)."""
    params = request.query_params
    if len(params) > MAX_OPTIONS or any(len(key) + len(value) > MAX_OPTION_LENGTH for key, value in params.multi_items()):
        raise OWSException("InvalidParameterValue", f"A request takes at most {MAX_OPTIONS} parameters of at most {MAX_OPTION_LENGTH} characters each.")
    return {key.upper(): value for key, value in params.items()}


def rendering_options(params: Mapping[str, str], media_type: str) -> dict[str, str]:
    """The rendering options a request may add (``colormap=viridis``, as on XYZ tiles); other unknown parameters are ignored, as WMTS asks."""
    options = {name: params[name.upper()] for name in TILE_OPTIONS if name != "format" and name.upper() in params}
    options["format"] = wmts.FORMATS[media_type]
    return options


async def get_tile(request: Request, service: Service, params: Mapping[str, str], media_type: str | None) -> Response:
    """GetTile, KVP or RESTful: the parameters checked as WMTS says, then the XYZ route's tile."""
    missing = [name for name in GET_TILE if not params.get(name) and not (name == "FORMAT" and media_type)]
    if missing:
        raise OWSException("MissingParameterValue", f"GetTile needs the parameter {missing[0]}.", missing[0],
                           more=[("MissingParameterValue", f"GetTile needs the parameter {name}.", name) for name in missing[1:]])
    if params["LAYER"] != service.id:
        raise OWSException("InvalidParameterValue", f"There is no layer '{shortened(params['LAYER'])}' here: this service's one layer is "
                           f"'{service.id}'.", "LAYER")
    if params["STYLE"] != wmts.STYLE:
        raise OWSException("InvalidParameterValue", f"There is no style '{shortened(params['STYLE'])}': the layer's one style is "
                           f"'{wmts.STYLE}' (restyle with colormap=, range=, gamma= instead).", "STYLE")
    media_type = media_type or params["FORMAT"].lower()
    if media_type not in wmts.FORMATS:
        raise OWSException("InvalidParameterValue", f"The format '{shortened(params['FORMAT'])}' is not offered: use one of "
                           f"{', '.join(wmts.FORMATS)}.", "FORMAT")
    if params["TILEMATRIXSET"] != wmts.TILE_MATRIX_SET:
        raise OWSException("InvalidParameterValue", f"There is no tile matrix set '{shortened(params['TILEMATRIXSET'])}': the layer's "
                           f"one is {wmts.TILE_MATRIX_SET}.", "TILEMATRIXSET")
    layer = await layer_of(request, service)
    levels = wmts.zoom_levels(layer)
    matrix = params["TILEMATRIX"]
    if not NUMBER.fullmatch(matrix) or int(matrix) not in levels:
        raise OWSException("InvalidParameterValue", f"There is no tile matrix '{shortened(matrix)}' in {wmts.TILE_MATRIX_SET} for this "
                           f"layer: its tile matrices are {levels.start} to {levels.stop - 1} (the zoom levels).", "TILEMATRIX")
    zoom, size = int(matrix), 2 ** int(matrix)
    for name in ("TILEROW", "TILECOL"):
        if not NUMBER.fullmatch(params[name]):
            raise OWSException("InvalidParameterValue", f"{name} is a whole number from 0; got '{shortened(params[name])}'.", name)
        if int(params[name]) >= size:
            raise OWSException("TileOutOfRange", f"{name} {params[name]} is outside tile matrix {zoom}, whose rows and columns run "
                               f"from 0 to {size - 1}.", name)
    time = params.get(wmts.TIME.upper())
    time = None if time is None or time.lower() in LATEST else time
    options = rendering_options(params, media_type)
    try:
        return await tile_response(request, service, (zoom, int(params["TILECOL"]), int(params["TILEROW"])), options, time)
    except OpenEOError as error:
        raise from_openeo(error) from None


async def answer(request: Request, service_id: str, handle) -> Response:
    """The service looked up, ``handle(service)`` run, and every refusal as an ExceptionReport."""
    try:
        return await handle(await service_or_404(request, service_id))
    except OWSException as error:
        return error.response()
    except OpenEOError as error:  # anything else openEO-worded on the way (a configuration stored before a rule changed)
        return from_openeo(error).response()


# --- routes --------------------------------------------------------------------------------------
@router.get(ROOT, response_class=Response, include_in_schema=False, responses=KVP_ANSWERS)
async def wmts_kvp(request: Request, service_id: str) -> Response:
    """The KVP endpoint: GetCapabilities and GetTile."""

    async def handle(service: Service) -> Response:
        params = kvp(request)
        missing = [name for name in ("SERVICE", "REQUEST") if not params.get(name)]
        if missing:
            raise OWSException("MissingParameterValue", f"A WMTS request needs the parameter {missing[0]}"
                               + (" (SERVICE=WMTS&REQUEST=GetCapabilities to begin)." if missing[0] == "SERVICE" else "."), missing[0])
        if params["SERVICE"].upper() != "WMTS":
            raise OWSException("InvalidParameterValue", f"This is a WMTS service, not '{shortened(params['SERVICE'])}'.", "SERVICE")
        operation = params["REQUEST"].lower()
        if operation == "getcapabilities":
            accepted = params.get("ACCEPTVERSIONS")
            if accepted and wmts.VERSION not in [v.strip() for v in accepted.split(",")]:
                raise OWSException("VersionNegotiationFailed", f"This service speaks WMTS {wmts.VERSION} only.", "AcceptVersions")
            return await capabilities(request, service)
        if operation == "gettile":
            if params.get("VERSION") and params["VERSION"] != wmts.VERSION:
                raise OWSException("InvalidParameterValue", f"This service speaks WMTS {wmts.VERSION} only.", "VERSION")
            return await get_tile(request, service, params, None)
        # WMTS answers 501 here; terracube keeps 5xx for its own faults: the request asks for what is not offered.
        raise OWSException("OperationNotSupported", f"The operation '{shortened(params['REQUEST'])}' is not offered: "
                           "this service answers GetCapabilities and GetTile.", "REQUEST")

    return await answer(request, service_id, handle)


@router.get(CAPABILITIES_ROUTE, response_class=Response, include_in_schema=False, responses=CAPABILITIES_ANSWERS)
async def wmts_capabilities(request: Request, service_id: str) -> Response:
    """The RESTful capabilities document: GetCapabilities's, its operations declared RESTful."""
    return await answer(request, service_id, lambda service: capabilities(request, service, restful=True))


def rest_tile(request: Request, service_id: str, layer: str, style: str, time: str | None, tile_matrix_set: str,
              tile_matrix: str, tile_row: str, tile_col: str):
    column, _, extension = tile_col.rpartition(".")
    media_type = EXTENSIONS.get(extension.lower())

    async def handle(service: Service) -> Response:
        if media_type is None or not column:
            raise OWSException("InvalidParameterValue", f"A tile's address ends with its column and format, such as 2128.png or "
                               f"2128.jpg; got '{shortened(tile_col)}'.", "TileCol", status=404)
        params = {key.upper(): value for key, value in kvp(request).items() if key.lower() in TILE_OPTIONS}
        params.update(LAYER=layer, STYLE=style, TILEMATRIXSET=tile_matrix_set, TILEMATRIX=tile_matrix, TILEROW=tile_row, TILECOL=column)
        if time is not None:
            params[wmts.TIME.upper()] = time
        return await get_tile(request, service, params, media_type)

    return answer(request, service_id, handle)


@router.get(TILE_ROUTE, response_class=Response, include_in_schema=False, responses=TILE_ANSWERS)
async def wmts_tile(request: Request, service_id: str, layer: str, style: str, tile_matrix_set: str, tile_matrix: str,
                    tile_row: str, tile_col: str) -> Response:
    """A RESTful tile of a layer without dates (``{TileCol}.png`` or ``.jpg``)."""
    return await rest_tile(request, service_id, layer, style, None, tile_matrix_set, tile_matrix, tile_row, tile_col)


@router.get(TIMED_TILE_ROUTE, response_class=Response, include_in_schema=False, responses=TILE_ANSWERS)
async def wmts_timed_tile(request: Request, service_id: str, layer: str, style: str, time: str, tile_matrix_set: str,
                          tile_matrix: str, tile_row: str, tile_col: str) -> Response:
    """A RESTful tile at a date of the layer's Time dimension (``default`` for the latest)."""
    return await rest_tile(request, service_id, layer, style, time, tile_matrix_set, tile_matrix, tile_row, tile_col)
