"""Signed URLs and the results document, built from a real GeoTIFF the engine wrote."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pystac
import pytest
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.validation import validate_dict

from terracube.jobs.assets import derived_from, describe_file
from terracube.jobs.errors import ResultLinkExpired, ResultLinkInvalid
from terracube.execute import execute, request_env
from terracube.jobs.results import results_document
from terracube.jobs.signing import UrlSigner
from terracube.settings import Settings

from tests.conftest import TUTORIAL_BOUNDS, TUTORIAL_SHAPE
from tests.jobs.graphs import tutorial


def test_a_signature_is_bound_to_job_file_and_expiry():
    signer = UrlSigner(b"secret", lifetime=60)
    query = signer.sign("j-1", "openEO.tif")
    signer.verify("j-1", "openEO.tif", query["expires"], query["signature"])
    for job, name, expires in (("j-2", "openEO.tif", query["expires"]), ("j-1", "other.tif", query["expires"]), ("j-1", "openEO.tif", str(int(query["expires"]) + 1))):
        with pytest.raises(ResultLinkInvalid):
            signer.verify(job, name, expires, query["signature"])
    with pytest.raises(ResultLinkInvalid):
        UrlSigner(b"other").verify("j-1", "openEO.tif", query["expires"], query["signature"])
    with pytest.raises(ResultLinkInvalid):
        signer.verify("j-1", "openEO.tif", None, None)


def test_an_expired_link_is_result_link_expired():
    signer = UrlSigner(b"secret", lifetime=60)
    old = signer.sign("j-1", "openEO.tif", now=time.time() - 120)
    with pytest.raises(ResultLinkExpired) as raised:
        signer.verify("j-1", "openEO.tif", old["expires"], old["signature"])
    assert raised.value.status == 410


def test_the_signing_key_is_made_once_and_kept(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first, second = UrlSigner.from_settings(settings), UrlSigner.from_settings(settings)
    assert first.secret == second.secret and len(first.secret) == 64
    assert (tmp_path / "jobs-signing.key").stat().st_mode & 0o077 == 0


@pytest.fixture(scope="module")
def tutorial_result(catalog, settings, tmp_path_factory):
    directory = tmp_path_factory.mktemp("result")
    execution = execute(tutorial(), request_env(settings, catalog, user_id=None), directory)
    [(path, media_type)] = execution.files
    return describe_file(path, path.name, media_type), derived_from(tutorial(), catalog)


def test_assets_carry_projection_size_and_statistics(tutorial_result):
    asset, _ = tutorial_result
    assert asset["name"] == "openEO.tif" and asset["type"].startswith("image/tiff")
    assert asset["proj:epsg"] == 32632 and asset["proj:shape"] == list(TUTORIAL_SHAPE) and tuple(asset["proj:bbox"]) == TUTORIAL_BOUNDS
    assert asset["file:size"] > 10_000
    [band] = asset["raster:bands"]
    assert band["data_type"] == "float32"
    assert -1 <= band["statistics"]["minimum"] < band["statistics"]["mean"] < band["statistics"]["maximum"] <= 1


def test_the_sources_are_the_scenes_the_job_read(tutorial_result):
    _, sources = tutorial_result
    assert len(sources) == 1 and "20210721" in sources[0]["href"] and sources[0]["collection"] == "SENTINEL2_L2A"


def test_the_results_document_is_a_valid_stac_item(tutorial_result):
    asset, sources = tutorial_result
    finished = datetime(2025, 11, 25, 12, tzinfo=timezone.utc)
    job = SimpleNamespace(
        id="j-123", title="NDVI after", description=None, finished_at=finished, updated=finished,
        results={"assets": [asset], "derived_from": sources},
    )
    document = results_document(job, "http://server", UrlSigner(b"k"))
    # Core STAC 1.1.0 against the schemas pystac ships (extension schemas would need the internet).
    validate_dict(document, extensions=[])
    item = pystac.Item.from_dict(document)
    assert item.id == "j-123" and item.datetime is None
    assert item.common_metadata.start_datetime.date().isoformat() == "2021-07-21"
    west, south, east, north = item.bbox
    assert 7.05 < west < east < 7.12 and 50.51 < south < north < 50.55
    stac_asset = item.assets["openEO.tif"]
    assert stac_asset.href.startswith("http://server/jobs/j-123/results/assets/openEO.tif?expires=")
    assert stac_asset.roles == ["data"] and stac_asset.media_type == "image/tiff; application=geotiff"
    projection = ProjectionExtension.ext(stac_asset)
    assert projection.epsg == 32632 and projection.shape == list(TUTORIAL_SHAPE)
    assert RasterExtension.ext(stac_asset).bands[0].statistics.mean > 0.5
    assert ProjectionExtension.has_extension(item) and RasterExtension.has_extension(item)
    rels = [link.rel for link in item.links]
    assert {"self", "canonical", "derived_from"} <= set(rels)
    assert document["properties"]["openeo:status"] == "finished" and "expires" in document["properties"]
