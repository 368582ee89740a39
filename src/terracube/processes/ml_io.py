"""save_ml_model and load_ml_model: a model as a file a user can download and load back.

The file format (a skops file and its STAC Item, what is trusted when loading) is
``formats/ml_model.py``'s; this module is the processes: ``save_ml_model`` hands the model to the
writers as the internal ``ML-MODEL`` output format, ``load_ml_model`` finds the model file (a URL,
through ``data/network.py``, or a path the server may read) and rebuilds the model.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from terracube.data.network import download, redact
from terracube.errors import FileNotFound, ProcessParameterInvalid
from terracube.formats.ml_model import FORMAT_NAME, checkpoint_href, is_json, read_ml_model
from terracube.processes.env import ProcessEnv, SavedResult
from terracube.processes.load_stac import check_location
from terracube.processes.ml import MlModel, require_model

MAX_BYTES = 512 * 1024**2


# --- save -----------------------------------------------------------------------------------


def save_ml_model(data: Any, options: dict | None = None, *, env: ProcessEnv) -> bool:
    model = require_model(data, "data")
    if options:
        raise ProcessParameterInvalid(f"save_ml_model takes no options here, got {sorted(options)}.")
    env.saved_results.append(SavedResult(model, FORMAT_NAME, {}, env.node_id))
    return True


# --- load -----------------------------------------------------------------------------------


def load_ml_model(id: str, *, env: ProcessEnv) -> MlModel:
    if not isinstance(id, str) or not id.strip():
        raise ProcessParameterInvalid("load_ml_model: 'id' must be the URL of a STAC Item of a saved model or of a model file.")
    if urlparse(id).scheme in ("http", "https"):
        return model_from_bytes(_model_bytes_from_url(id, env), redact(id))
    if "/" not in id and "\\" not in id and not id.endswith((".skops", ".json")):
        raise ProcessParameterInvalid(
            f"load_ml_model: loading by batch job id ({id!r}) is not supported; give the URL of the job's results "
            "(GET /jobs/{job_id}/results gives it) or of its model asset."
        )
    path = Path(check_location(id, env.settings, "load_ml_model"))
    if not path.is_file():
        raise FileNotFound(id)
    if path.suffix == ".json":
        href = checkpoint_href(path.read_bytes(), id)
        target = Path(check_location(str(path.parent / href) if not Path(href).is_absolute() else href, env.settings, "load_ml_model"))
        return model_from_bytes(target.read_bytes(), str(target))
    return model_from_bytes(path.read_bytes(), id)


def _model_bytes_from_url(url: str, env: ProcessEnv) -> bytes:
    content = _get(url, env)
    if is_json(content):
        return _get(urljoin(url, checkpoint_href(content, redact(url))), env)
    return content


def _get(url: str, env: ProcessEnv) -> bytes:
    buffer = io.BytesIO()
    download(url, buffer, env.settings, max_bytes=MAX_BYTES, doing="Downloading the model")
    return buffer.getvalue()


def model_from_bytes(content: bytes, where: str) -> MlModel:
    payload = read_ml_model(content, where)
    return MlModel(payload["task"], [str(b) for b in payload["bands"]], fitted=payload["estimator"])
