"""What ``execute_sync`` hands ``POST /result``: a small answer in memory with its file already gone,
a large one as a file that stays until the answer has been sent."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
import rasterio

from terracube import execute
from terracube.data.catalog import Catalog
from terracube.execute import execute_sync, request_env
from terracube.settings import Settings
from tests.conftest import AFTER, TUTORIAL_SHAPE
from tests.test_tutorial_engine import tutorial_graph

TUTORIAL_NDVI = tutorial_graph(AFTER)  # the tutorial's download(): NDVI, mean over t, GTiff


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The temporary directory synchronous runs write into, to see what they leave there."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def env(data_dir):
    settings = Settings(data_dir=data_dir)
    return request_env(settings, Catalog(settings), user_id=None)


def ndvi_of(dataset) -> np.ndarray:
    assert (dataset.height, dataset.width) == TUTORIAL_SHAPE and dataset.count == 1
    values = dataset.read(1)
    assert np.isfinite(values).mean() > 0.9 and np.nanmin(values) >= -1 and np.nanmax(values) <= 1
    return values


def test_a_small_answer_is_sent_from_memory_and_leaves_no_file(env, scratch):
    answer = execute_sync(TUTORIAL_NDVI, env)
    assert answer.path is None and answer.cleanup is None
    assert answer.filename == "openEO.tif" and answer.media_type.startswith("image/tiff")
    assert list(scratch.iterdir()) == []
    with rasterio.MemoryFile(answer.content) as file, file.open() as dataset:
        ndvi_of(dataset)


def test_a_large_answer_is_a_file_until_it_has_been_sent(env, scratch, monkeypatch):
    small = execute_sync(TUTORIAL_NDVI, env)
    monkeypatch.setattr(execute, "SYNC_IN_MEMORY_BYTES", 0)  # every answer is large
    answer = execute_sync(TUTORIAL_NDVI, env)
    assert answer.content is None and answer.path.is_file() and scratch in answer.path.parents
    with rasterio.open(answer.path) as dataset, rasterio.MemoryFile(small.content) as file, file.open() as same:
        np.testing.assert_array_equal(ndvi_of(dataset), ndvi_of(same))
    answer.cleanup()  # what the route runs once the file is sent
    assert list(scratch.iterdir()) == []
