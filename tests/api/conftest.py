"""A live server over the session's sample archive, and the official client connected to it."""

import json
from types import SimpleNamespace

import pytest

from tests.api.server import start_server, stop_server

EDITOR = "https://editor.openeo.org"


@pytest.fixture(scope="session")
def server(data_dir):
    # Laptop mode answers web pages only from allowed origins: the Web Editor's, as a user would set it.
    # load_url from the tests' file servers on 127.0.0.1: the operator allows loopback (users' URLs may not reach it otherwise).
    url, process = start_server({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_ALLOWED_ORIGINS": json.dumps([EDITOR]),
                                 "TERRACUBE_ALLOWED_FETCH_HOSTS": json.dumps(["127.0.0.1"])})
    yield SimpleNamespace(url=url, process=process)
    stop_server(process)


@pytest.fixture(scope="session")
def con(server):
    import openeo

    # Generous: a first request may build the sample archive (about half a minute).
    return openeo.connect(server.url, default_timeout=300)
