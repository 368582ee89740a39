"""What checking a token costs a request: the login check of accounts mode, timed.

Three figures (``python bench/auth.py [--quick]``, or as part of ``bench/run``):

- the built-in issuer's token: ``AuthService.identify`` (the app-wide dependency's work: parse the
  ``Authorization`` header, verify the RS256 JWT against the key ring, look the account up, from
  its five-second cache as a running server does), in process;
- an external issuer's token: ``ExternalIssuers.identity`` for a JWT of the small OpenID Connect
  issuer of the tests (``tests/auth/oidc_issuer.py``, its own process on a loopback port, as a
  Keycloak realm), its keys fetched once and cached, as a running server has them;
- the whole request: ``GET /me`` through uvicorn and a keep-alive HTTP session, a server in accounts
  mode with a ``/credentials/basic`` token against a server in laptop mode (no token), both running
  at once and asked in turns; the median of each, and the median of the paired differences.

Medians, because a two-core machine shared with other work has outliers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from tutorial import free_port, wait_for_health  # noqa: E402 - bench/ is a folder of scripts, not a package

PASSWORD = "a long enough password"


def median_ms(call, repeat: int) -> float:
    call()  # the first call warms caches (key ring, account, JWKS), as a running server's are
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def settings_in(folder: Path):
    from terracube.settings import Settings

    return Settings(data_dir=folder, database_url=f"sqlite:///{folder / 'terracube.db'}", results_root=str(folder / "results"))


def builtin_token_ms(folder: Path, repeat: int) -> float:
    from terracube.auth.service import AuthService
    from terracube.auth.store import AuthStore

    settings = settings_in(folder)
    store = AuthStore.open(settings)
    user = store.add_user("bench", PASSWORD)
    store.close()
    service = AuthService(settings)
    issuer = "http://127.0.0.1:8000/oidc"
    token = service.tokens.access_token(issuer, user, "terracube-public", "openid", 3600)
    header = f"Bearer oidc/terracube/{token}"
    try:
        assert service.identify(header, issuer).user_id == user.user_id
        return median_ms(lambda: service.identify(header, issuer), repeat)
    finally:
        service.close()


def external_token_ms(repeat: int) -> float:
    from terracube.auth.external import ExternalIssuers
    from terracube.auth.providers import ExternalProvider

    issuer = subprocess.Popen(
        [sys.executable, "-m", "tests.auth.oidc_issuer", "--port", "0", "--client", "bench:bench-secret", "--audience", "terracube"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])},
    )
    try:
        started = json.loads(issuer.stdout.readline())
        token = requests.post(f"{started['url']}/test/mint", json={"claims": {"sub": "someone"}}, timeout=10).json()["token"]
        provider = ExternalProvider.model_validate({"id": "egi", "issuer": started["issuer"], "title": "bench", "audience": "terracube"})
        issuers = ExternalIssuers([provider])
        assert issuers.identity("egi", token).sub == "someone"
        return median_ms(lambda: issuers.identity("egi", token), repeat)
    finally:
        issuer.terminate()
        issuer.wait(10)


def start_server(folder: Path, wait: bool = True) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {**os.environ, "TERRACUBE_DATA_DIR": str(folder), "TERRACUBE_DATABASE_URL": f"sqlite:///{folder / 'terracube.db'}",
           "TERRACUBE_RESULTS_ROOT": str(folder / "results")}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "terracube.api.app:create_app", "--factory", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    if wait:
        wait_for_health(url, process)
    return url, process


def me_ms(folder: Path, repeat: int) -> dict:
    """``GET /me`` on a laptop-mode and an accounts-mode server at once, in turns, so that the
    machine's drift and other work slow both alike."""
    from terracube.auth.store import AuthStore

    laptop_dir, accounts_dir = folder / "laptop", folder / "accounts"
    laptop_dir.mkdir()
    accounts_dir.mkdir()
    store = AuthStore.open(settings_in(accounts_dir))
    store.add_user("bench", PASSWORD)
    store.close()
    servers = [start_server(laptop_dir, wait=False), start_server(accounts_dir, wait=False)]
    try:
        (laptop_url, _), (accounts_url, _) = [(wait_for_health(url, process), process) for url, process in servers]
        laptop, accounts = requests.Session(), requests.Session()
        assert laptop.get(f"{laptop_url}/me", timeout=10).json()["user_id"] == "anonymous"  # laptop mode: no token needed
        token = accounts.get(f"{accounts_url}/credentials/basic", auth=("bench", PASSWORD), timeout=10).json()["access_token"]
        accounts.headers["Authorization"] = f"Bearer basic//{token}"
        assert accounts.get(f"{accounts_url}/me", timeout=10).json()["name"] == "bench"
        times: dict[str, list[float]] = {"laptop": [], "accounts": []}
        for _ in range(repeat):
            for mode, session, url in (("laptop", laptop, laptop_url), ("accounts", accounts, accounts_url)):
                started = time.perf_counter()
                session.get(f"{url}/me", timeout=10).raise_for_status()
                times[mode].append(time.perf_counter() - started)
        pairs = [a - b for a, b in zip(times["accounts"], times["laptop"])]
        return {"me_laptop_ms": statistics.median(times["laptop"]) * 1000, "me_accounts_ms": statistics.median(times["accounts"]) * 1000,
                "me_added_ms": statistics.median(pairs) * 1000}
    finally:
        for _, process in servers:
            process.terminate()
            process.wait(30)


def measure(quick: bool = False) -> dict:
    repeat, requests_repeat = (300, 150) if quick else (5000, 2000)
    with tempfile.TemporaryDirectory(prefix="terracube-bench-auth-") as tmp:
        folder = Path(tmp)
        (folder / "builtin").mkdir()
        return {
            "identify_builtin_ms": builtin_token_ms(folder / "builtin", repeat),
            "identify_external_ms": external_token_ms(repeat),
            **me_ms(folder, requests_repeat),
            "repeat": repeat,
            "requests_repeat": requests_repeat,
        }


def results_section(figures: dict, number: int) -> list[str]:
    """The section of RESULTS.md (``bench/run`` writes it)."""
    return [
        f"## {number}. Checking a token",
        "",
        "What accounts mode adds to a request (`bench/auth.py`): the median time to check a valid access",
        "token, in process, and the median added latency of `GET /me` through uvicorn, a server in",
        "accounts mode (with a `/credentials/basic` token) against one in laptop mode (no token), both",
        f"running at once and asked in turns ({figures['requests_repeat']} requests each; the added latency is the",
        "median of the paired differences, as this machine's other work moves both medians).",
        "",
        "| what | median (ms) |",
        "| --- | --- |",
        f"| `AuthService.identify`, a token of the built-in issuer (RS256, account from the cache) | {figures['identify_builtin_ms']:.3f} |",
        f"| `ExternalIssuers.identity`, a JWT of an external issuer (RS256, its keys cached) | {figures['identify_external_ms']:.3f} |",
        f"| `GET /me`, laptop mode | {figures['me_laptop_ms']:.2f} |",
        f"| `GET /me`, accounts mode | {figures['me_accounts_ms']:.2f} |",
        f"| added by accounts mode, per request | {figures['me_added_ms']:.2f} |",
        "",
        "The target is under 1 ms a request for the login check. The external issuer is the tests' own",
        "(`tests/auth/oidc_issuer.py`, a separate process); its validator is timed on its own, keys already fetched.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (CI's smoke run)")
    print(json.dumps(measure(parser.parse_args().quick), indent=1))


if __name__ == "__main__":
    main()
