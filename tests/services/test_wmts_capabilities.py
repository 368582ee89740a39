"""WMTS 1.0.0 in process (FastAPI's TestClient) over the sample archive: what QGIS and OWSLib read.

The capabilities are checked against what a WMTS client needs (the layer, its extent, formats,
style, the GoogleMapsCompatible matrices as the OGC's well-known scale set defines them, the TIME
dimension, the tile template), the tiles against the XYZ tiles they must equal, and every refusal
against the OWS exception report a client expects. OWSLib against a live server is in
test_wmts_owslib.py.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from terracube.api.app import create_app
from terracube.settings import Settings
from tests.auth.conftest import add_users, basic_token, bearer
from tests.services.layers import AHR_TILE, ndvi_layer, tile_path

NS = {"wmts": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1", "xlink": "http://www.w3.org/1999/xlink"}
# OGC 07-057r7 (WMTS 1.0.0), Annex E.4: GoogleMapsCompatible's scale denominator at level 0 and its corner.
LEVEL_0_SCALE = 559082264.0287178
TOP_LEFT = (-20037508.3427892, 20037508.3427892)
WEEK = ["2021-07-16", "2021-07-22"]  # the scenes of 16, 18 and 21 July


def timed_layer(temporal_extent=WEEK) -> dict:
    graph = ndvi_layer()
    graph["process_graph"]["load"]["arguments"]["temporal_extent"] = temporal_extent
    return graph


def timeless_layer() -> dict:
    """The NDVI averaged over the week: no dates left, so no TIME dimension."""
    graph = timed_layer()
    graph["process_graph"]["ndvi"].pop("result")
    graph["process_graph"]["mean"] = {"process_id": "reduce_dimension", "result": True, "arguments": {
        "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
            "mean": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}
    return graph


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("services-wmts")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{folder / 'terracube.db'}", results_root=str(folder / "results"),
                        tile_cache_dir=folder / "tiles")
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def create(client: TestClient, process: dict, type: str = "WMTS", **body) -> str:
    response = client.post("/services", json={"type": type, "process": process, **body})
    assert response.status_code == 201, response.text
    return response.headers["OpenEO-Identifier"]


@pytest.fixture(scope="module")
def timed(client) -> str:
    return create(client, timed_layer(), title="NDVI, a week of July 2021", configuration={"colormap": "RdYlGn", "range": [-0.2, 0.9]})


def capabilities(client: TestClient, service_id: str, **query) -> ET.Element:
    response = client.get(f"/services/{service_id}/wmts", params=query or {"SERVICE": "WMTS", "REQUEST": "GetCapabilities"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def text(element: ET.Element, path: str) -> str:
    found = element.find(path, NS)
    assert found is not None, f"no {path}"
    return found.text


def scene_dates(data_dir, first: str, last: str) -> list[str]:
    """The dates of the sample archive's scenes in [first, last), read from its folder names."""
    folders = (data_dir / "sample" / "SENTINEL2_L2A").iterdir()
    days = sorted({f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in (p.name.split("_")[2][:8] for p in folders if p.is_dir())})
    return [day for day in days if first <= day < last]


def tile_column_row(longitude: float, latitude: float, zoom: int) -> tuple[int, int]:
    """The slippy-map formula (OpenStreetMap wiki), written out independently of the server's code."""
    n = 2**zoom
    column = int((longitude + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(latitude))) / math.pi) / 2 * n)
    return column, row


def report(response, status: int) -> list[tuple[str, str | None, str]]:
    """The (exceptionCode, locator, text) of an OWS ExceptionReport answered with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{{{NS['ows']}}}ExceptionReport" and root.get("version") == "1.1.0"
    found = [(e.get("exceptionCode"), e.get("locator"), text(e, "ows:ExceptionText")) for e in root.findall("ows:Exception", NS)]
    assert found and all(message for _, _, message in found)
    return found


def get_tile(client, service_id, z, x, y, **extra):
    query = {"SERVICE": "WMTS", "REQUEST": "GetTile", "VERSION": "1.0.0", "LAYER": service_id, "STYLE": "default",
             "TILEMATRIXSET": "GoogleMapsCompatible", "TILEMATRIX": str(z), "TILEROW": str(y), "TILECOL": str(x), "FORMAT": "image/png"}
    query.update(extra)
    return client.get(f"/services/{service_id}/wmts", params={k: v for k, v in query.items() if v is not None})


# --- capabilities ----------------------------------------------------------------------------------
def test_the_capabilities_describe_one_layer_as_a_wmts_client_needs_it(client, timed, data_dir):
    root = capabilities(client, timed)
    assert root.tag == f"{{{NS['wmts']}}}Capabilities" and root.get("version") == "1.0.0"
    assert text(root, "ows:ServiceIdentification/ows:ServiceType") == "OGC WMTS"
    assert text(root, "ows:ServiceIdentification/ows:ServiceTypeVersion") == "1.0.0"
    operations = {op.get("name"): op for op in root.findall("ows:OperationsMetadata/ows:Operation", NS)}
    assert set(operations) == {"GetCapabilities", "GetTile"}
    get = operations["GetTile"].find("ows:DCP/ows:HTTP/ows:Get", NS)
    assert get.get(f"{{{NS['xlink']}}}href") == f"http://localhost/services/{timed}/wmts?"
    assert text(get, "ows:Constraint/ows:AllowedValues/ows:Value") == "KVP"

    [layer] = root.findall("wmts:Contents/wmts:Layer", NS)
    assert text(layer, "ows:Identifier") == timed and text(layer, "ows:Title") == "NDVI, a week of July 2021"
    west, south = map(float, text(layer, "ows:WGS84BoundingBox/ows:LowerCorner").split())
    east, north = map(float, text(layer, "ows:WGS84BoundingBox/ows:UpperCorner").split())
    collection = client.get("/collections/SENTINEL2_L2A").json()["extent"]["spatial"]["bbox"][0]
    assert (west, south, east, north) == pytest.approx(tuple(collection), abs=1e-9)
    assert [f.text for f in layer.findall("wmts:Format", NS)] == ["image/png", "image/jpeg"]
    [style] = layer.findall("wmts:Style", NS)
    assert text(style, "ows:Identifier") == "default" and style.get("isDefault") == "true"

    [dimension] = layer.findall("wmts:Dimension", NS)
    assert text(dimension, "ows:Identifier") == "Time" and text(dimension, "wmts:UOM") == "ISO8601"
    values = [v.text for v in dimension.findall("wmts:Value", NS)]
    assert [v[:10] for v in values] == scene_dates(data_dir, *WEEK) and len(values) == 3
    assert text(dimension, "wmts:Default") == values[-1], "the default is the latest date, which tiles draw without TIME"

    [template] = [r.get("template") for r in layer.findall("wmts:ResourceURL", NS) if r.get("format") == "image/png"]
    assert template == (f"http://localhost/services/{timed}/wmts/tile/1.0.0/{timed}/{{Style}}/{{Time}}/{{TileMatrixSet}}/"
                        "{TileMatrix}/{TileRow}/{TileCol}.png")
    assert {r.get("resourceType") for r in layer.findall("wmts:ResourceURL", NS)} == {"tile"}
    assert root.find("wmts:ServiceMetadataURL", NS).get(f"{{{NS['xlink']}}}href") == f"http://localhost/services/{timed}/wmts/1.0.0/WMTSCapabilities.xml"


def test_the_tile_matrix_set_is_google_maps_compatible_at_the_layers_zoom_levels(client, timed):
    root = capabilities(client, timed)
    attributes = client.get(f"/services/{timed}").json()["attributes"]["layers"][0]
    [matrix_set] = root.findall("wmts:Contents/wmts:TileMatrixSet", NS)
    assert text(matrix_set, "ows:Identifier") == "GoogleMapsCompatible"
    assert text(matrix_set, "ows:SupportedCRS") == "urn:ogc:def:crs:EPSG::3857"
    assert text(matrix_set, "wmts:WellKnownScaleSet") == "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"
    matrices = matrix_set.findall("wmts:TileMatrix", NS)
    zooms = [int(text(m, "ows:Identifier")) for m in matrices]
    assert zooms == list(range(attributes["minzoom"], attributes["maxzoom"] + 1))
    assert zooms[0] == 10, "10 m pixels in Europe: zoom 10 is the first whose tiles read at most 16 M source pixels"
    for zoom, matrix in zip(zooms, matrices):
        assert float(text(matrix, "wmts:ScaleDenominator")) == pytest.approx(LEVEL_0_SCALE / 2**zoom, rel=1e-9)
        assert tuple(map(float, text(matrix, "wmts:TopLeftCorner").split())) == pytest.approx(TOP_LEFT, abs=1e-6)
        assert [int(text(matrix, f"wmts:{n}")) for n in ("TileWidth", "TileHeight", "MatrixWidth", "MatrixHeight")] == [256, 256, 2**zoom, 2**zoom]


def test_the_tile_matrix_limits_cover_the_layers_extent(client, timed):
    [layer] = capabilities(client, timed).findall("wmts:Contents/wmts:Layer", NS)
    west, south = map(float, text(layer, "ows:WGS84BoundingBox/ows:LowerCorner").split())
    east, north = map(float, text(layer, "ows:WGS84BoundingBox/ows:UpperCorner").split())
    link = layer.find("wmts:TileMatrixSetLink", NS)
    assert text(link, "wmts:TileMatrixSet") == "GoogleMapsCompatible"
    limits = {int(text(m, "wmts:TileMatrix")): m for m in link.findall("wmts:TileMatrixSetLimits/wmts:TileMatrixLimits", NS)}
    for zoom, matrix in limits.items():
        (min_col, min_row), (max_col, max_row) = tile_column_row(west, north, zoom), tile_column_row(east, south, zoom)
        got = [int(text(matrix, f"wmts:{n}")) for n in ("MinTileRow", "MaxTileRow", "MinTileCol", "MaxTileCol")]
        assert got == [min_row, max_row, min_col, max_col], zoom
    z, x, y = AHR_TILE
    matrix = limits[z]
    assert int(text(matrix, "wmts:MinTileCol")) <= x <= int(text(matrix, "wmts:MaxTileCol"))
    assert int(text(matrix, "wmts:MinTileRow")) <= y <= int(text(matrix, "wmts:MaxTileRow"))


def test_kvp_names_are_case_insensitive_and_the_restful_document_is_the_same(client, timed):
    kvp = client.get(f"/services/{timed}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities").content
    assert client.get(f"/services/{timed}/wmts?service=WMTS&request=GetCapabilities&version=1.0.0").content == kvp  # as OWSLib asks
    assert client.get(f"/services/{timed}/wmts?Service=WMTS&Request=getcapabilities&AcceptVersions=1.0.0").content == kvp
    restful = client.get(f"/services/{timed}/wmts/1.0.0/WMTSCapabilities.xml")
    assert restful.status_code == 200 and restful.headers["content-type"].startswith("application/xml")
    kvp_root, restful_root = ET.fromstring(kvp), ET.fromstring(restful.content)
    assert ET.tostring(restful_root.find("wmts:Contents", NS)) == ET.tostring(kvp_root.find("wmts:Contents", NS))
    # The encoding the operations declare is what tells a client to fill the ResourceURL templates.
    encodings = {op.get("name"): text(op, "ows:DCP/ows:HTTP/ows:Get/ows:Constraint/ows:AllowedValues/ows:Value")
                 for op in restful_root.findall("ows:OperationsMetadata/ows:Operation", NS)}
    assert encodings == {"GetCapabilities": "RESTful", "GetTile": "RESTful"}


def test_a_layer_without_dates_has_no_time_dimension(client):
    service_id = create(client, timeless_layer())
    [layer] = capabilities(client, service_id).findall("wmts:Contents/wmts:Layer", NS)
    assert layer.find("wmts:Dimension", NS) is None
    template = [r.get("template") for r in layer.findall("wmts:ResourceURL", NS) if r.get("format") == "image/png"][0]
    assert "{Time}" not in template
    z, x, y = AHR_TILE
    url = template.replace("http://localhost", "").format(Style="default", TileMatrixSet="GoogleMapsCompatible", TileMatrix=z, TileRow=y, TileCol=x)
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


# --- tiles -------------------------------------------------------------------------------------------
def test_get_tile_answers_the_xyz_tile_kvp_and_restful(client, timed):
    z, x, y = AHR_TILE
    xyz = client.get(tile_path(timed, z, x, y))
    assert xyz.status_code == 200
    kvp = get_tile(client, timed, z, x, y)
    assert kvp.status_code == 200 and kvp.headers["content-type"] == "image/png"
    assert kvp.content == xyz.content and kvp.headers["ETag"] == xyz.headers["ETag"]
    image = Image.open(io.BytesIO(kvp.content))
    assert (image.format, image.size) == ("PNG", (256, 256))
    restful = client.get(f"/services/{timed}/wmts/tile/1.0.0/{timed}/default/default/GoogleMapsCompatible/{z}/{y}/{x}.png")
    assert restful.status_code == 200 and restful.content == xyz.content
    assert client.get(f"/services/{timed}/wmts", params={"SERVICE": "WMTS", "REQUEST": "GetTile"},
                      headers={"If-None-Match": xyz.headers["ETag"]}).status_code == 400  # parameters first
    cached = client.get(f"/services/{timed}/wmts/tile/1.0.0/{timed}/default/default/GoogleMapsCompatible/{z}/{y}/{x}.png",
                        headers={"If-None-Match": xyz.headers["ETag"]})
    assert cached.status_code == 304 and not cached.content


def test_jpeg_and_rendering_options(client, timed):
    z, x, y = AHR_TILE
    jpeg = get_tile(client, timed, z, x, y, FORMAT="image/jpeg")
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    restful = client.get(f"/services/{timed}/wmts/tile/1.0.0/{timed}/default/default/GoogleMapsCompatible/{z}/{y}/{x}.jpg")
    assert restful.content == jpeg.content
    viridis = get_tile(client, timed, z, x, y, colormap="viridis")
    assert viridis.status_code == 200 and viridis.content == client.get(tile_path(timed, z, x, y) + "?colormap=viridis").content
    assert viridis.content != get_tile(client, timed, z, x, y).content


def test_a_time_value_draws_that_date(client, timed, data_dir):
    z, x, y = AHR_TILE
    [dimension] = capabilities(client, timed).findall("wmts:Contents/wmts:Layer/wmts:Dimension", NS)
    values = [v.text for v in dimension.findall("wmts:Value", NS)]
    pictures = {value: get_tile(client, timed, z, x, y, TIME=value) for value in values}
    assert all(p.status_code == 200 and p.headers["content-type"] == "image/png" for p in pictures.values())
    assert len({p.content for p in pictures.values()}) == len(values), "each date draws its own picture"
    assert pictures[values[-1]].content == get_tile(client, timed, z, x, y).content, "no TIME: the default, the latest date"
    assert get_tile(client, timed, z, x, y, time=values[0]).content == pictures[values[0]].content  # any case of the name
    assert get_tile(client, timed, z, x, y, TIME=values[0][:10]).content == pictures[values[0]].content  # a day names its scene
    restful = client.get(f"/services/{timed}/wmts/tile/1.0.0/{timed}/default/{values[0]}/GoogleMapsCompatible/{z}/{y}/{x}.png")
    assert restful.content == pictures[values[0]].content


def test_any_service_type_answers_wmts(client):
    xyz = create(client, ndvi_layer(), type="XYZ")
    [layer] = capabilities(client, xyz).findall("wmts:Contents/wmts:Layer", NS)
    assert text(layer, "ows:Identifier") == xyz
    z, x, y = AHR_TILE
    assert get_tile(client, xyz, z, x, y).content == client.get(tile_path(xyz, z, x, y)).content


# --- refusals ------------------------------------------------------------------------------------------
def test_missing_parameters_are_named(client, timed):
    assert report(client.get(f"/services/{timed}/wmts"), 400) == [
        ("MissingParameterValue", "SERVICE", "A WMTS request needs the parameter SERVICE (SERVICE=WMTS&REQUEST=GetCapabilities to begin).")]
    assert report(client.get(f"/services/{timed}/wmts?SERVICE=WMTS"), 400)[0][:2] == ("MissingParameterValue", "REQUEST")
    missing = report(client.get(f"/services/{timed}/wmts?SERVICE=WMTS&REQUEST=GetTile"), 400)
    assert [(code, locator) for code, locator, _ in missing] == [
        ("MissingParameterValue", name) for name in ("LAYER", "STYLE", "FORMAT", "TILEMATRIXSET", "TILEMATRIX", "TILEROW", "TILECOL")]
    z, x, y = AHR_TILE
    assert report(get_tile(client, timed, z, x, y, TILEROW=None), 400) == [("MissingParameterValue", "TILEROW", "GetTile needs the parameter TILEROW.")]


@pytest.mark.parametrize("change, code, locator", [
    ({"LAYER": "rivers"}, "InvalidParameterValue", "LAYER"),
    ({"STYLE": "fancy"}, "InvalidParameterValue", "STYLE"),
    ({"FORMAT": "image/gif"}, "InvalidParameterValue", "FORMAT"),
    ({"TILEMATRIXSET": "WorldCRS84Quad"}, "InvalidParameterValue", "TILEMATRIXSET"),
    ({"TILEMATRIX": "9"}, "InvalidParameterValue", "TILEMATRIX"),  # below the layer's first matrix (the zoom budget)
    ({"TILEMATRIX": "19"}, "InvalidParameterValue", "TILEMATRIX"),  # above its last (max_zoom 18)
    ({"TILEMATRIX": "EPSG:3857:12"}, "InvalidParameterValue", "TILEMATRIX"),
    ({"TILEROW": "-1"}, "InvalidParameterValue", "TILEROW"),
    ({"TILECOL": "x"}, "InvalidParameterValue", "TILECOL"),
    ({"TILEROW": "4096"}, "TileOutOfRange", "TILEROW"),  # zoom 12 has rows 0 to 4095
    ({"TILECOL": "99999999"}, "TileOutOfRange", "TILECOL"),
    ({"VERSION": "2.0.0"}, "InvalidParameterValue", "VERSION"),
    ({"SERVICE": "WMS"}, "InvalidParameterValue", "SERVICE"),
    ({"REQUEST": "GetFeatureInfo"}, "OperationNotSupported", "REQUEST"),
    ({"TIME": "the day after"}, "InvalidParameterValue", None),
    ({"TIME": "NaT"}, "InvalidParameterValue", None),  # pandas's "not a time" is no date either
    ({"colormap": "rainbowish"}, "InvalidParameterValue", None),
])
def test_bad_values_are_ogc_exceptions(client, timed, change, code, locator):
    z, x, y = AHR_TILE
    [(found_code, found_locator, message)] = report(get_tile(client, timed, z, x, y, **change), 400)
    assert (found_code, found_locator) == (code, locator), message


def test_restful_refusals(client, timed):
    z, x, y = AHR_TILE
    root = f"/services/{timed}/wmts/tile/1.0.0"
    assert report(client.get(f"{root}/{timed}/default/default/GoogleMapsCompatible/{z}/{y}/{x}.gif"), 404)[0][:2] == ("InvalidParameterValue", "TileCol")
    assert report(client.get(f"{root}/other/default/default/GoogleMapsCompatible/{z}/{y}/{x}.png"), 400)[0][:2] == ("InvalidParameterValue", "LAYER")
    assert report(client.get(f"{root}/{timed}/default/GoogleMapsCompatible/{z}/{y}/{2**z}.png"), 400)[0][:2] == ("TileOutOfRange", "TILECOL")
    assert report(client.get(f"{root}/{timed}/default/default/GoogleMapsCompatible/5/{y}/{x}.png"), 400)[0][:2] == ("InvalidParameterValue", "TILEMATRIX")


def test_a_disabled_or_deleted_service_answers_404_at_once(client):
    service_id = create(client, timed_layer())
    z, x, y = AHR_TILE
    urls = [f"/services/{service_id}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities", f"/services/{service_id}/wmts/1.0.0/WMTSCapabilities.xml",
            f"/services/{service_id}/wmts/tile/1.0.0/{service_id}/default/default/GoogleMapsCompatible/{z}/{y}/{x}.png"]
    assert [client.get(url).status_code for url in urls] + [get_tile(client, service_id, z, x, y).status_code] == [200] * 4

    assert client.patch(f"/services/{service_id}", json={"enabled": False}).status_code == 204
    for answer in [client.get(url) for url in urls] + [get_tile(client, service_id, z, x, y)]:
        [(code, _, message)] = report(answer, 404)
        assert code == "NoApplicableCode" and service_id in message
    assert client.patch(f"/services/{service_id}", json={"enabled": True}).status_code == 204
    assert get_tile(client, service_id, z, x, y).status_code == 200

    assert client.delete(f"/services/{service_id}").status_code == 204
    assert [client.get(url).status_code for url in urls] + [get_tile(client, service_id, z, x, y).status_code] == [404] * 4
    assert report(client.get("/services/no-such-service/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"), 404)


def test_wmts_routes_are_not_openeo_endpoints(client):
    paths = {endpoint["path"] for endpoint in client.get("/").json()["endpoints"]}
    assert not any("/wmts" in path for path in paths)


def test_with_accounts_wmts_needs_no_token(data_dir, tmp_path):
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{tmp_path / 'terracube.db'}", results_root=str(tmp_path / "results"),
                        tile_cache_dir=tmp_path / "tiles")
    add_users(settings, "alice")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as accounts:
        alice = bearer(basic_token(accounts, "alice"))
        response = accounts.post("/services", json={"type": "WMTS", "process": ndvi_layer()}, headers=alice)
        assert response.status_code == 201, response.text
        service_id = response.headers["OpenEO-Identifier"]
        assert accounts.get(f"/services/{service_id}").status_code == 401  # the service's metadata is private
        assert capabilities(accounts, service_id).find("wmts:Contents/wmts:Layer", NS) is not None
        z, x, y = AHR_TILE
        tile = get_tile(accounts, service_id, z, x, y)
        assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"


def test_documents_stay_xml_whatever_the_user_wrote(client):
    """Characters XML cannot hold (a title's control character, one echoed from a URL) never break a document."""
    service_id = create(client, ndvi_layer(), title="NDVI\u0001 <after> & \u0000before")
    [layer] = capabilities(client, service_id).findall("wmts:Contents/wmts:Layer", NS)
    assert text(layer, "ows:Title") == "NDVI\ufffd <after> & \ufffdbefore"
    z, x, y = AHR_TILE
    [(code, _, message)] = report(client.get(f"/services/{service_id}/wmts/tile/1.0.0/{service_id}/default/%00/GoogleMapsCompatible/{z}/{y}/{x}.png"), 400)
    assert code == "InvalidParameterValue" and "'\ufffd'" in message
