"""save_ml_model and load_ml_model: a model as a file a user can download and load back.

The file is written with skops (``model.skops``), not pickle: loading a pickle runs whatever code
its author put in it, so a backend that loads models from URLs must not use it. skops rebuilds
only the types we allow (``TRUSTED_TYPES``: a random forest's tree arrays), and refuses anything
else, which makes loading a model from any http(s) URL safe. Beside it goes ``model.json``, a STAC
Item with the ml-model extension naming the task and the input bands, as the spec asks.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from terracube.errors import OpenEOError, ProcessParameterInvalid
from terracube.processes.env import ProcessEnv, SavedResult
from terracube.processes.load_stac import check_location
from terracube.processes.ml import CLASSIFICATION, MlModel, require_model

FORMAT_NAME = "ML-MODEL"  # the internal output format save_ml_model hands to the writers
FILE_VERSION = "terracube-ml-model/1"
MODEL_MEDIA_TYPE = "application/octet-stream; application=skops"
CHECKPOINT_ROLE = "ml-model:checkpoint"
ML_MODEL_EXTENSION = "https://stac-extensions.github.io/ml-model/v1.0.0/schema.json"
# Beyond skops's own defaults (numpy, builtins, sklearn estimators), a forest needs its trees.
TRUSTED_TYPES = frozenset({"sklearn.tree._tree.Tree"})
MAX_BYTES = 512 * 1024**2
TIMEOUT = 60


# --- save -----------------------------------------------------------------------------------


def save_ml_model(data: Any, options: dict | None = None, *, env: ProcessEnv) -> bool:
    model = require_model(data, "data")
    if options:
        raise ProcessParameterInvalid(f"save_ml_model takes no options here, got {sorted(options)}.")
    env.saved_results.append(SavedResult(model, FORMAT_NAME, {}, env.node_id))
    return True


def write_ml_model(data: Any, directory: Path, options: dict) -> list[Path]:
    """The writer behind ``FORMAT_NAME``: the STAC Item first, the model last (a sync request answers the last file)."""
    import skops.io as sio

    model = require_model(data, "data")
    payload = {"format": FILE_VERSION, "task": model.task, "bands": list(model.bands), "estimator": model.estimator}
    model_path = directory / "model.skops"
    item_path = directory / "model.json"
    item_path.write_text(json.dumps(stac_item(model, model_path.name), indent=2))
    sio.dump(payload, model_path)
    return [item_path, model_path]


def stac_item(model: MlModel, href: str) -> dict:
    forest = model.estimator
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
            **({"terracube:classes": [float(c) for c in forest.classes_]} if model.task == CLASSIFICATION else {}),
        },
        "assets": {
            "model": {"href": href, "type": MODEL_MEDIA_TYPE, "title": "scikit-learn random forest (skops)", "roles": [CHECKPOINT_ROLE]},
        },
        "links": [],
    }


# --- load -----------------------------------------------------------------------------------


def load_ml_model(id: str, *, env: ProcessEnv) -> MlModel:
    if not isinstance(id, str) or not id.strip():
        raise ProcessParameterInvalid("load_ml_model: 'id' must be the URL of a STAC Item of a saved model or of a model file.")
    if urlparse(id).scheme in ("http", "https"):
        return model_from_bytes(_model_bytes_from_url(id), id)
    if "/" not in id and "\\" not in id and not id.endswith((".skops", ".json")):
        raise ProcessParameterInvalid(
            f"load_ml_model: loading by batch job id ({id!r}) is not supported; give the URL of the job's results "
            "(GET /jobs/{job_id}/results gives it) or of its model asset."
        )
    path = Path(check_location(id, env.settings, "load_ml_model"))
    if not path.is_file():
        raise OpenEOError(f"load_ml_model: there is no file at {id}.", code="FileNotFound", status=400)
    if path.suffix == ".json":
        href = _checkpoint_href(_json(path.read_bytes(), id), id)
        target = Path(check_location(str(path.parent / href) if not Path(href).is_absolute() else href, env.settings, "load_ml_model"))
        return model_from_bytes(target.read_bytes(), str(target))
    return model_from_bytes(path.read_bytes(), id)


def _model_bytes_from_url(url: str) -> bytes:
    content = _get(url)
    if content[:1] in (b"{", b"[") or content[:3] == b"\xef\xbb\xbf":
        href = _checkpoint_href(_json(content, url), url)
        return _get(urljoin(url, href))
    return content


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            content = response.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:
        raise OpenEOError(f"load_ml_model: could not read {url}: {error}", code="FileNotFound", status=400) from None
    if len(content) > MAX_BYTES:
        raise ProcessParameterInvalid(f"load_ml_model: {url} is larger than {MAX_BYTES // 1024**2} MiB.")
    return content


def _json(content: bytes, where: str) -> dict:
    try:
        document = json.loads(content)
    except ValueError:
        raise ProcessParameterInvalid(f"load_ml_model: {where} is neither a STAC Item nor a model file.") from None
    if not isinstance(document, dict):
        raise ProcessParameterInvalid(f"load_ml_model: {where} is not a STAC Item.")
    return document


def _checkpoint_href(item: dict, where: str) -> str:
    """The model asset of a STAC Item: the one with the ml-model checkpoint role, or a ``.skops`` file."""
    assets = item.get("assets") if isinstance(item.get("assets"), dict) else {}
    found = [
        a["href"] for a in assets.values()
        if isinstance(a, dict) and isinstance(a.get("href"), str)
        and (CHECKPOINT_ROLE in (a.get("roles") or []) or urlparse(a["href"]).path.endswith(".skops"))
    ]
    if not found:
        raise ProcessParameterInvalid(f"load_ml_model: the STAC Item at {where} has no model asset (role '{CHECKPOINT_ROLE}').")
    if len(found) > 1:
        raise ProcessParameterInvalid(
            f"load_ml_model: the STAC Item at {where} has {len(found)} models; give the URL of the one to load."
        )
    return found[0]


def model_from_bytes(content: bytes, where: str) -> MlModel:
    import skops.io as sio

    try:
        untrusted = set(sio.get_untrusted_types(data=content))
    except Exception:  # noqa: BLE001 - not a skops file at all: zip, JSON schema and key errors alike
        raise ProcessParameterInvalid(f"load_ml_model: {where} is not a model saved by save_ml_model (a skops file).") from None
    refused = untrusted - TRUSTED_TYPES
    if refused:
        raise ProcessParameterInvalid(f"load_ml_model: {where} contains types that are not loaded for safety: {sorted(refused)}.")
    try:
        payload = sio.loads(content, trusted=sorted(untrusted))
    except Exception as error:  # noqa: BLE001 - any failure to rebuild a model is a bad file, not a server fault
        raise ProcessParameterInvalid(f"load_ml_model: {where} could not be read as a model: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_VERSION:
        raise ProcessParameterInvalid(f"load_ml_model: {where} is not a model saved by save_ml_model.")
    return MlModel(payload["task"], [str(b) for b in payload["bands"]], fitted=payload["estimator"])
