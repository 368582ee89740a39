"""The deployment the tests/deploy tests run against, started once per results store.

PostgreSQL, moto's S3 server and the Dask scheduler with two workers start once for the module;
for each results store (a shared folder, then S3) a database of its own, a data directory of its
own (signing keys, the results signing key, uploaded files) and two replicas behind a balancer,
in accounts mode with one account, made with ``terracube users add`` as an operator makes it.
"""

from __future__ import annotations

import secrets

import pytest
from distributed import Client

from tests.auth.conftest import PASSWORDS, terracube
from tests.deploy.balancer import Balancer
from tests.deploy.stack import BUCKET, Deployment, S3Server, new_database, sample_data_dir, worker_env
from tests.jobs.conftest import postgres_url  # noqa: F401  (a fixture: the PostgreSQL server)
from tests.jobs.test_external_dask import DaskCluster

# Jobs one replica runs at once: fewer than the race test's jobs, so both replicas must take some.
JOBS_PER_REPLICA = 3


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    server.filesystem().mkdir(BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(s3):
    dask = DaskCluster(workers=2, env=worker_env(s3)).start()
    yield dask
    dask.stop()


@pytest.fixture(scope="module")
def dask_client(cluster):
    with Client(cluster.address, timeout="30s") as client:
        yield client


@pytest.fixture(scope="module", params=["directory", "s3"])
def deployment(request, postgres_url, data_dir, s3, cluster, tmp_path_factory):  # noqa: F811
    kind = request.param
    folder = tmp_path_factory.mktemp(f"deploy-{kind}")
    results = f"s3://{BUCKET}/{folder.name}" if kind == "s3" else str(folder / "results")
    balancer = Balancer()
    env = {
        "TERRACUBE_DATA_DIR": str(sample_data_dir(folder / "data", data_dir)),
        "TERRACUBE_DATABASE_URL": new_database(postgres_url, f"deploy_{kind}_{secrets.token_hex(4)}"),
        "TERRACUBE_RESULTS_ROOT": results,
        "TERRACUBE_DASK_SCHEDULER": cluster.address,
        "TERRACUBE_PUBLIC_URL": balancer.url,
        "TERRACUBE_MAX_CONCURRENT_JOBS": str(JOBS_PER_REPLICA),
        "TERRACUBE_MAX_CONCURRENT_JOBS_PER_USER": "20",
        **s3.env,
    }
    terracube(env, "users", "add", "alice", password=PASSWORDS["alice"])
    deployed = Deployment(env, balancer, results)
    deployed.kind = kind
    deployed.s3 = s3
    try:
        deployed.start("a")
        deployed.start("b")
        yield deployed
    finally:
        deployed.stop()
