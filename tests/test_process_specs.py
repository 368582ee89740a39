"""The specs served by /processes are the official ones, and every registered process has one."""

import json
from pathlib import Path

import pytest

from terracube.processes.registry import default_registry, load_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "openeo-processes"


def test_every_registered_process_is_bound_to_its_own_spec():
    registry = default_registry()
    assert len(registry) > 20
    for definition in registry:
        assert definition.spec["id"] == definition.id
        assert "parameters" in definition.spec and "returns" in definition.spec


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/openeo-processes is not beside this checkout")
def test_the_shipped_specs_are_the_official_ones_unchanged():
    registry = default_registry()
    for definition in registry:
        official = SHARED / f"{definition.id}.json"
        if not official.exists():
            official = SHARED / "proposals" / f"{definition.id}.json"
        if official.exists():
            assert load_spec(definition.id) == json.loads(official.read_text()), definition.id
