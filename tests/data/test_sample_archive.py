"""The embedded archive behaves like Sentinel-2 L2A on CDSE, and says it is simulated."""

from __future__ import annotations

from datetime import date

import numpy as np
import pystac
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from terracube.data.sample import BANDS, SAMPLE_COLLECTION_ID, ensure_sample_archive, render_scene
from terracube.data.sample.acquisitions import acquisitions

from terracube.settings import Settings
from tests.conftest import TUTORIAL_BOUNDS


@pytest.fixture(scope="module")
def sample(data_dir):
    catalog = pystac.Catalog.from_file(str(data_dir / "sample" / "catalog.json"))
    collection = catalog.get_child(SAMPLE_COLLECTION_ID)
    items = {item.datetime.date(): item for item in collection.get_items(recursive=True)}
    return catalog, collection, items


def test_catalog_is_valid_stac_and_says_it_is_simulated(sample):
    catalog, collection, items = sample
    # Structural validation (pystac's JSON-schema validation would fetch schemas from the internet).
    for obj in (catalog, collection, *items.values()):
        assert obj.to_dict()["stac_version"]
    assert "SIMULATED" in collection.description and "simulated" in catalog.description.lower()
    assert all(item.properties["terracube:simulated"] for item in items.values())
    names = [band["name"] for band in collection.summaries.to_dict()["eo:bands"]]
    assert names == [band["name"] for band in BANDS] and "B10" not in names


def test_acquisitions_follow_the_real_orbits(sample):
    _, _, items = sample
    assert min(items) >= date(2021, 6, 1) and max(items) <= date(2021, 8, 31)
    gaps = [(b - a).days for a, b in zip(sorted(items), sorted(items)[1:])]
    assert set(gaps) <= {2, 3}
    after = items[date(2021, 7, 21)]
    assert after.properties["platform"] == "sentinel-2a" and after.properties["sat:relative_orbit"] == 8
    assert items[date(2021, 6, 13)].properties["sat:relative_orbit"] == 108
    assert after.properties["eo:cloud_cover"] < 5 and items[date(2021, 6, 13)].properties["eo:cloud_cover"] < 5


def test_assets_are_cogs_on_the_tile_grid(sample):
    _, _, items = sample
    item = items[date(2021, 7, 21)]
    bounds = set()
    for name, gsd in (("B04", 10), ("B8A", 20), ("B01", 60), ("SCL", 20)):
        href = item.assets[name].get_absolute_href()
        valid, errors, _ = cog_validate(href, quiet=True)
        assert valid, errors
        with rasterio.open(href) as src:
            assert src.crs.to_epsg() == 32632 and src.res == (gsd, gsd)
            assert src.nodata == 0 and src.dtypes[0] == ("uint8" if name == "SCL" else "uint16")
            assert src.bounds.left % 60 == 0 and src.bounds.top % 60 == 0
            bounds.add(tuple(src.bounds))
    assert len(bounds) == 1  # all resolutions share the archive's bounds


def _box_window(src):
    return rasterio.windows.from_bounds(*TUTORIAL_BOUNDS, transform=src.transform)


def test_ndvi_over_the_tutorial_box_is_calibrated_to_cdse(sample):
    _, _, items = sample
    means = {}
    for day in (date(2021, 6, 13), date(2021, 7, 21)):
        item = items[day]
        with rasterio.open(item.assets["B04"].get_absolute_href()) as red_src, rasterio.open(item.assets["B08"].get_absolute_href()) as nir_src:
            red = red_src.read(1, window=_box_window(red_src)).astype("float32")
            nir = nir_src.read(1, window=_box_window(nir_src)).astype("float32")
        ndvi = (nir - red) / (nir + red)
        assert ndvi.shape == (303, 449) and -1 <= ndvi.min() and ndvi.max() <= 1
        means[day] = ndvi.mean()
    assert 0.65 < means[date(2021, 7, 21)] < 0.76  # real CDSE figure: 0.718
    assert means[date(2021, 6, 13)] > means[date(2021, 7, 21)]


def test_cloudy_scenes_are_flagged_in_scl(sample):
    _, _, items = sample
    cloudy = max(items.values(), key=lambda item: item.properties["eo:cloud_cover"])
    assert cloudy.properties["eo:cloud_cover"] > 20
    with rasterio.open(cloudy.assets["SCL"].get_absolute_href()) as src:
        scl = src.read(1)
    share = np.isin(scl, (8, 9, 10)).mean() * 100
    assert share == pytest.approx(cloudy.properties["eo:cloud_cover"], abs=0.01)
    assert (scl == 3).any() and (scl == 6).any() and (scl == 4).any()
    with rasterio.open(cloudy.assets["B02"].get_absolute_href()) as src:
        blue = src.read(1, out_shape=scl.shape)
    assert blue[np.isin(scl, (8, 9))].mean() > 3 * blue[scl == 4].mean()  # clouds are bright


def test_a_scene_renders_identically_twice():
    scene = acquisitions()[5]
    first, second = render_scene(scene), render_scene(scene)
    assert all(np.array_equal(first[name], second[name]) for name in first)


def test_a_complete_archive_is_not_rebuilt(data_dir):
    catalog = data_dir / "sample" / "catalog.json"
    before = catalog.stat().st_mtime_ns
    assert ensure_sample_archive(data_dir / "sample") == catalog
    assert catalog.stat().st_mtime_ns == before


def test_a_half_built_archive_is_never_taken_for_complete(tmp_path, monkeypatch):
    import terracube.data.sample as sample_module

    def crash(staging, *args):
        (staging / "SENTINEL2_L2A").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(sample_module, "_build", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_sample_archive(tmp_path / "sample")
    assert not (tmp_path / "sample").exists()
    assert not list(tmp_path.glob("_sample_building_*"))


def test_an_archive_of_some_days_is_rebuilt_for_other_days(tmp_path):
    from terracube.data.sample import chosen_acquisitions

    one = chosen_acquisitions("2021-07-21")
    catalog = ensure_sample_archive(tmp_path / "sample", scenes=one)
    days = [item.datetime.date().isoformat() for item in pystac.Catalog.from_file(str(catalog)).get_items(recursive=True)]
    assert days == ["2021-07-21"]
    built = (tmp_path / "sample" / "catalog.json").stat().st_mtime_ns
    ensure_sample_archive(tmp_path / "sample", scenes=one)  # the same days: kept
    assert (tmp_path / "sample" / "catalog.json").stat().st_mtime_ns == built
    two = chosen_acquisitions("2021-06-13, 2021-07-21")
    catalog = ensure_sample_archive(tmp_path / "sample", scenes=two)
    days = sorted(item.datetime.date().isoformat() for item in pystac.Catalog.from_file(str(catalog)).get_items(recursive=True))
    assert days == ["2021-06-13", "2021-07-21"]


def test_a_day_without_an_acquisition_is_refused_when_the_settings_are_read():
    with pytest.raises(ValueError, match="no acquisition on 2021-07-22"):
        Settings(sample_days="2021-07-21,2021-07-22")
