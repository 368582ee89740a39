import pytest

from tests.live_server import LiveServer


@pytest.fixture(scope="session")
def server(data_dir):
    live = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir)}).start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def con(server):
    import openeo

    return openeo.connect(server.url)
