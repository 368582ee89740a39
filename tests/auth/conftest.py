"""Fixtures of the auth tests: apps and live servers with their own database and keys.

Every app or server here has its own data directory (database, keys, files, results), so the
accounts and keys of one test never meet another's. None of them reads the sample archive.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.auth.external import ExternalIssuers
from terracube.auth.providers import ExternalProvider
from terracube.auth.store import AuthStore
from terracube.settings import Settings
from tests.jobs.conftest import postgres_url  # noqa: F401  (a fixture, for the PostgreSQL store test)

PASSWORDS = {"alice": "alice's long password", "bob": "bob's long password"}


def add_users(settings: Settings, *names: str) -> dict[str, str]:
    """Accounts straight in the store; returns their user ids by name."""
    store = AuthStore.open(settings)
    try:
        return {name: store.add_user(name, PASSWORDS[name]).user_id for name in names}
    finally:
        store.close()


def client_for(app) -> TestClient:
    # A loopback base URL: authlib refuses OAuth over plain HTTP anywhere else (RFC 6749 3.1, 10.9).
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def laptop(tmp_path) -> TestClient:
    return client_for(create_app(Settings(data_dir=tmp_path / "data")))


@pytest.fixture
def accounts_settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def accounts(accounts_settings) -> TestClient:
    """An app with two accounts, alice and bob (``client.user_ids``)."""
    user_ids = add_users(accounts_settings, "alice", "bob")
    client = client_for(create_app(accounts_settings))
    client.user_ids = user_ids
    return client


def basic_token(client, name: str, password: str | None = None) -> str:
    response = client.get("/credentials/basic", auth=(name, PASSWORDS.get(name, "") if password is None else password))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str, prefix: str = "basic//") -> dict:
    return {"Authorization": f"Bearer {prefix}{token}"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


def server_env(folder) -> dict[str, str]:
    """A live server of its own: data directory (keys, files), database and results in ``folder``."""
    return {
        "TERRACUBE_DATA_DIR": str(folder),
        "TERRACUBE_DATABASE_URL": f"sqlite:///{folder / 'terracube.db'}",
        "TERRACUBE_RESULTS_ROOT": str(folder / "results"),
        # The tests approve a device login before the client's first poll: no need to wait RFC 8628's 5 s for it.
        "TERRACUBE_DEVICE_POLL_INTERVAL": "1",
    }


# --- the command line ------------------------------------------------------------------------
def terracube(env: dict, *args: str, password: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``terracube ARGS`` as an operator runs it, the password on standard input as scripts give it.

    In this process, through click's runner with ``env`` as the environment and the settings read
    afresh: a subprocess per command cost a second each, dozens of times per run.
    ``test_the_installed_command_runs_as_a_program`` runs the real program once.
    """
    from typer.testing import CliRunner

    from terracube.cli import app
    from terracube.settings import get_settings

    # The CLI's rich consoles fix their width when imported; a program would read COLUMNS at its start.
    width = int(env["COLUMNS"]) if env.get("COLUMNS", "").isdigit() else 80
    for console in _cli_consoles():
        console.width = width
    get_settings.cache_clear()
    try:
        outcome = CliRunner().invoke(app, list(args), input=password + "\n" if password is not None else "", env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    result = subprocess.CompletedProcess(["terracube", *args], outcome.exit_code, outcome.stdout, outcome.stderr)
    if check:
        assert result.returncode == 0, f"terracube {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def _cli_consoles() -> list:
    from rich.console import Console

    import terracube.auth.cli
    import terracube.cli
    import terracube.jobs.cli

    modules = (terracube.cli, terracube.auth.cli, terracube.jobs.cli)
    return [value for module in modules for value in vars(module).values() if isinstance(value, Console)]


def terracube_program(env: dict, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    """``terracube ARGS`` run as its own program, as the operator's shell runs it."""
    return subprocess.run(
        [sys.executable, "-m", "terracube.cli", *args], input=password + "\n" if password is not None else "",
        capture_output=True, text=True, env=env, timeout=120,
    )


def client_credentials(output: str) -> tuple[str, str]:
    return re.search(r"client_id: (\S+)", output).group(1), re.search(r"client_secret: (\S+)", output).group(1)


# --- the device flow, approved as a person does on the issuer's page --------------------------
def approver(base_url: str, name: str, password: str, seen: list[str] | None = None):
    """A ``display`` for ``authenticate_oidc``: when the client shows the link, post the approve form."""

    def display(*args, **kwargs) -> None:
        message = " ".join(str(a) for a in args)
        found = re.search(r"(https?://\S+/oidc/device)\?user_code=([A-Z-]+)", message)
        if found:
            if seen is not None:
                seen.append(found.group(2))
            page = requests.get(f"{found.group(1)}?user_code={found.group(2)}", timeout=10)
            assert page.status_code == 200 and found.group(2) in page.text
            form = {"user_code": found.group(2), "name": name, "password": password, "decision": "approve"}
            answer = requests.post(found.group(1), data=form, timeout=30)
            assert answer.status_code == 200 and "Approved" in answer.text, answer.text

    return display


@pytest.fixture
def openeo_home(tmp_path, monkeypatch) -> Path:
    """The official client's configuration and refresh token store, in the test's folder."""
    home = tmp_path / "openeo-client"
    home.mkdir()
    monkeypatch.setenv("OPENEO_CONFIG_HOME", str(home))
    for name in ("OPENEO_AUTH_METHOD", "OPENEO_AUTH_CLIENT_ID", "OPENEO_AUTH_CLIENT_SECRET", "OPENEO_AUTH_PROVIDER_ID"):
        monkeypatch.delenv(name, raising=False)
    return home


# --- another OpenID Connect issuer, in its own process (tests/auth/oidc_issuer.py) -------------
ROOT = Path(__file__).resolve().parents[2]
AUDIENCE = "terracube"
ENTITLEMENT = "urn:mace:egi.eu:group:vo.terracube.eu:role=member#aai.egi.eu"


class IssuerProcess:
    """``python -m tests.auth.oidc_issuer`` on a free port, and the test routes it offers."""

    def __init__(self, clients: tuple[str, ...] = ("ci-client:ci-secret",)):
        client_args = [arg for client in clients for arg in ("--client", client)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.auth.oidc_issuer", "--port", "0", *client_args, "--audience", AUDIENCE],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        started = json.loads(self.process.stdout.readline())
        self.url, self.issuer = started["url"], started["issuer"]

    def mint(self, **body) -> str:
        return requests.post(f"{self.url}/test/mint", json=body, timeout=10).json()["token"]

    def rotate(self, key_type: str = "RSA") -> str:
        return requests.post(f"{self.url}/test/rotate", json={"type": key_type}, timeout=30).json()["kid"]

    def stats(self) -> dict:
        return requests.get(f"{self.url}/test/stats", timeout=10).json()

    def delay(self, seconds: float) -> None:
        requests.post(f"{self.url}/test/delay", json={"seconds": seconds}, timeout=10)

    def config(self, **fields) -> dict:
        """The provider's ``[[oidc_providers]]`` table, as a dict."""
        config = {"id": "egi", "issuer": self.issuer, "title": "Test Check-in", "audience": AUDIENCE,
                  "default_clients": [{"id": "openeo-public", "grant_types": ["urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"]}]}
        return {**config, **fields}

    def provider(self, **fields) -> ExternalProvider:
        return ExternalProvider.model_validate(self.config(**fields))

    def validator(self, **options) -> ExternalIssuers:
        provider = options.pop("provider", None) or self.provider()
        return ExternalIssuers([provider], **options)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="module")
def issuer():
    process = IssuerProcess()
    yield process
    process.stop()


@pytest.fixture
def own_issuer():
    """An issuer of the test's own, for tests that rotate its keys or stop it."""
    process = IssuerProcess()
    yield process
    process.stop()
