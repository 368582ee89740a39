"""The ML-MODEL format: a random forest as a skops file with a STAC Item beside it.

The model is written with skops (``model.skops``), not pickle: loading a pickle runs whatever code
its author put in it, so a backend that loads models from URLs must not use it. skops rebuilds
only the types we allow (``TRUSTED_TYPES``: a random forest's tree arrays), and refuses anything
else, which makes loading a model from any http(s) URL safe. Beside it goes ``model.json``, a STAC
Item with the ml-model extension naming the task and the input bands, as the spec asks.

``save_ml_model`` and ``load_ml_model`` (``processes/ml_io.py``) hand models to and take them from
here; a model is anything with a ``task``, its ``bands`` and a fitted scikit-learn ``estimator``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from terracube.errors import ProcessParameterInvalid

FORMAT_NAME = "ML-MODEL"  # the internal output format save_ml_model hands to the writers
FILE_VERSION = "terracube-ml-model/1"
MODEL_MEDIA_TYPE = "application/octet-stream; application=skops"
CHECKPOINT_ROLE = "ml-model:checkpoint"
ML_MODEL_EXTENSION = "https://stac-extensions.github.io/ml-model/v1.0.0/schema.json"
# Beyond skops's own defaults (numpy, builtins, sklearn estimators), a forest needs its trees.
TRUSTED_TYPES = frozenset({"sklearn.tree._tree.Tree"})


def write_ml_model(model: Any, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    """The writer behind ``FORMAT_NAME``: the STAC Item first, the model last (a sync request answers the last file).

    ``compute`` is not used: the model's training table is read when it is fitted (``processes/ml.py``)."""
    import skops.io as sio

    if not all(hasattr(model, name) for name in ("task", "bands", "estimator")):
        raise ProcessParameterInvalid(f"The ML-MODEL format holds ml-models (from save_ml_model), not {type(model).__name__}.")
    payload = {"format": FILE_VERSION, "task": model.task, "bands": list(model.bands), "estimator": model.estimator}
    model_path = directory / "model.skops"
    item_path = directory / "model.json"
    item_path.write_text(json.dumps(stac_item(model, model_path.name), indent=2))
    sio.dump(payload, model_path)
    return [item_path, model_path]


def stac_item(model: Any, href: str) -> dict:
    forest = model.estimator
    classes = getattr(forest, "classes_", None)  # a classifier's labels; a regressor has none
    return {
        "stac_version": "1.0.0",
        "stac_extensions": [ML_MODEL_EXTENSION],
        "type": "Feature",
        "id": "ml-model",
        "geometry": None,
        "properties": {
            "datetime": None,
            "start_datetime": "1970-01-01T00:00:00Z",  # a model has no time; STAC asks for one
            "end_datetime": "9999-12-31T23:59:59Z",
            "ml-model:type": "ml-model",
            "ml-model:learning_approach": "supervised",
            "ml-model:prediction_type": model.task,
            "ml-model:architecture": "random-forest",
            "ml-model:training-processor-type": "cpu",
            "ml-model:training-os": "linux",
            "terracube:bands": list(model.bands),
            "terracube:num_trees": len(forest.estimators_),
            **({"terracube:classes": [float(c) for c in classes]} if classes is not None else {}),
        },
        "assets": {
            "model": {"href": href, "type": MODEL_MEDIA_TYPE, "title": "scikit-learn random forest (skops)", "roles": [CHECKPOINT_ROLE]},
        },
        "links": [],
    }


def is_json(content: bytes) -> bool:
    """Is this (probably) the STAC Item rather than the model? A skops file is a zip archive."""
    return content[:1] in (b"{", b"[") or content[:3] == b"\xef\xbb\xbf"


def checkpoint_href(content: bytes, where: str) -> str:
    """The model asset of a STAC Item: the one with the ml-model checkpoint role, or a ``.skops`` file."""
    try:
        item = json.loads(content)
    except ValueError:
        raise ProcessParameterInvalid(f"{where} is neither a STAC Item nor a model file.") from None
    if not isinstance(item, dict):
        raise ProcessParameterInvalid(f"{where} is not a STAC Item.")
    assets = item.get("assets") if isinstance(item.get("assets"), dict) else {}
    found = [
        a["href"] for a in assets.values()
        if isinstance(a, dict) and isinstance(a.get("href"), str)
        and (CHECKPOINT_ROLE in (a.get("roles") or []) or urlparse(a["href"]).path.endswith(".skops"))
    ]
    if not found:
        raise ProcessParameterInvalid(f"The STAC Item at {where} has no model asset (role '{CHECKPOINT_ROLE}').")
    if len(found) > 1:
        raise ProcessParameterInvalid(f"The STAC Item at {where} has {len(found)} models; give the URL of the one to load.")
    return found[0]


def read_ml_model(content: bytes, where: str) -> dict:
    """A model file's payload: ``task``, ``bands`` and the fitted ``estimator``; only trusted types are rebuilt."""
    import skops.io as sio

    try:
        untrusted = set(sio.get_untrusted_types(data=content))
    except Exception:  # noqa: BLE001 - not a skops file at all: zip, JSON schema and key errors alike
        raise ProcessParameterInvalid(f"{where} is not a model saved by save_ml_model (a skops file).") from None
    refused = untrusted - TRUSTED_TYPES
    if refused:
        raise ProcessParameterInvalid(f"{where} contains types that are not loaded for safety: {sorted(refused)}.")
    try:
        payload = sio.loads(content, trusted=sorted(untrusted))
    except Exception as error:  # noqa: BLE001 - any failure to rebuild a model is a bad file, not a server fault
        raise ProcessParameterInvalid(f"{where} could not be read as a model: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_VERSION:
        raise ProcessParameterInvalid(f"{where} is not a model saved by save_ml_model.")
    return payload
