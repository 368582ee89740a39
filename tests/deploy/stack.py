"""The processes of a deployment, each started as an operator starts it, on loopback.

PostgreSQL (tests/jobs/postgres.py), an S3-compatible object store (moto's server), a ``dask
scheduler`` with ``dask worker`` processes (tests/jobs/test_external_dask.py), terracube replicas
(tests/live_server.py) and the load balancer in front of them (balancer.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

from tests.deploy.balancer import Balancer
from tests.live_server import LiveServer, free_port

# What a results store on S3 needs in every process that reads or writes it (replicas and workers):
# credentials, and the endpoint of an S3-compatible server (boto's own variable, read per client).
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "terracube-test", "AWS_SECRET_ACCESS_KEY": "terracube-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "terracube-results"


class S3Server:
    """moto's S3 server in a process of its own: a real HTTP S3 API on 127.0.0.1."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def env(self) -> dict[str, str]:
        return {**S3_CREDENTIALS, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{self.port}"}

    def start(self, attempts: int = 3) -> "S3Server":
        for _ in range(attempts):
            self.port = free_port()
            command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    requests.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                    return self
                except requests.ConnectionError:
                    time.sleep(0.1)
            self.stop()  # the port was taken meanwhile, or it never answered: another port
        raise RuntimeError("moto's S3 server did not start")

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(
            key=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"], secret=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=self.env["AWS_ENDPOINT_URL_S3"], use_listings_cache=False,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def new_database(server_url: str, name: str) -> str:
    """A database of its own on the PostgreSQL server of ``server_url``; its URL."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


class Deployment:
    """Replicas ``a`` and ``b`` of terracube behind one balancer, sharing database, data directory and results."""

    def __init__(self, env: dict[str, str], balancer: Balancer, results: str):
        self.env = env
        self.balancer = balancer
        self.results = results  # the results root: a folder or an s3:// URL
        self.replicas: dict[str, LiveServer] = {}

    def start(self, name: str) -> LiveServer:
        replica = self.replicas[name] = LiveServer(self.env).start()
        return replica

    def through(self, name: str) -> str:
        """Route the balancer's next connections to replica ``name``; the balancer's URL."""
        self.balancer.route(self.replicas[name].url)
        time.sleep(0.05)  # the closed connections' ends reach the clients, which then open new ones
        return self.balancer.url

    def pid(self, name: str) -> int:
        return self.replicas[name].process.pid

    def replica_of(self, server_id: str) -> str:
        """The replica whose job-server id (``host:pid:token``) this is."""
        pid = int(server_id.split(":")[1])
        [name] = [name for name, replica in self.replicas.items() if replica.process.pid == pid]
        return name

    def stop(self) -> None:
        for replica in self.replicas.values():
            replica.stop()
        self.balancer.close()


def sample_data_dir(folder: Path, data_dir: Path) -> Path:
    """A data directory of the deployment's own (keys, signing key, files) over the shared sample archive."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sample").symlink_to(data_dir / "sample", target_is_directory=True)
    return folder


def worker_env(s3: S3Server) -> dict[str, str]:
    return {**os.environ, **s3.env}
