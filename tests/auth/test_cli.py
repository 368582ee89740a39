"""``terracube users``, ``clients``, ``keys`` and ``serve``'s refusal, run as an operator runs them; the store on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from terracube.auth.keys import KeyRing
from terracube.auth.serving import serve_refusal
from terracube.auth.service import is_loopback_host
from terracube.auth.store import AccountError, AuthStore
from terracube.jobs.store import JobStore
from terracube.settings import Settings
from tests.auth.conftest import add_users, client_credentials, terracube, terracube_program


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "TERRACUBE_DATA_DIR": str(tmp_path / "data")}


def test_users_add_list_passwd_remove(env, tmp_path):
    added = terracube(env, "users", "add", "alice", "--admin", password="alice's long password")
    assert "Added administrator alice" in added.stdout
    terracube(env, "users", "add", "bob", password="bob's long password")
    taken = terracube(env, "users", "add", "alice", password="another long one", check=False)
    assert taken.returncode == 1 and "exists already" in taken.stderr
    short = terracube(env, "users", "add", "carol", password="short", check=False)
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    bad_name = terracube(env, "users", "add", "../etc", password="long enough pw", check=False)
    assert bad_name.returncode == 1 and "not a valid user name" in bad_name.stderr
    listing = terracube(env, "users", "list").stdout
    assert "alice" in listing and "bob" in listing and "yes" in listing and "carol" not in listing

    settings = Settings(data_dir=tmp_path / "data")
    store = AuthStore.open(settings)
    assert store.check_password("alice", "alice's long password").admin is True
    terracube(env, "users", "passwd", "alice", password="a new long password")
    assert store.check_password("alice", "alice's long password") is None
    assert store.check_password("alice", "a new long password").name == "alice"
    missing = terracube(env, "users", "passwd", "nobody", password="whatever long", check=False)
    assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr

    # Removing keeps the user's jobs unless asked: they stay under the user id.
    bob_id = store.account("bob").id
    jobs = JobStore.from_settings(settings)
    jobs.migrate()
    jobs.create(bob_id, {"process_graph": {}})
    jobs.create(bob_id, {"process_graph": {}})
    files = tmp_path / "data" / "files" / bob_id
    files.mkdir(parents=True)
    (files / "notes.txt").write_text("bob's")
    kept = terracube(env, "users", "remove", "bob").stdout
    assert "kept 2 jobs, 0 processes, 1 files" in kept and jobs.list(bob_id)[1] == 2
    terracube(env, "users", "add", "bob", password="bob's long password")
    new_bob = store.account("bob").id
    assert new_bob != bob_id  # a new account never inherits a removed one's data
    jobs.create(new_bob, {"process_graph": {}})
    (tmp_path / "data" / "files" / new_bob).mkdir(parents=True)
    deleted = terracube(env, "users", "remove", "bob", "--delete-data").stdout
    assert "deleted 1 jobs" in deleted and jobs.list(new_bob)[1] == 0 and not (tmp_path / "data" / "files" / new_bob).exists()
    assert jobs.list(bob_id)[1] == 2
    jobs.close()
    store.close()


def test_the_installed_command_runs_as_a_program(env, tmp_path):
    """The other tests call the CLI in this process; this runs the program an operator's shell runs."""
    added = terracube_program(env, "users", "add", "dora", password="dora's long password")
    assert added.returncode == 0 and "Added user dora" in added.stdout, added.stderr
    refused = terracube_program(env, "users", "add", "dora", password="dora's long password")
    assert refused.returncode == 1 and "exists already" in refused.stderr
    assert "dora" in terracube_program(env, "users", "list").stdout


def test_the_first_account_can_take_over_what_laptop_mode_stored(env, tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    jobs = JobStore.from_settings(settings)
    jobs.migrate()
    jobs.create("anonymous", {"process_graph": {}})
    terracube(env, "users", "add", "me", "--owns-local-data", password="my long password")
    store = AuthStore.open(settings)
    assert store.account("me").id == "anonymous" and jobs.list("anonymous")[1] == 1
    with pytest.raises(AccountError, match="belongs to another account"):
        store.add_user("you", "your long password", owns_local_data=True)
    store.close()
    jobs.close()


def test_clients_add_shows_the_secret_once_and_keeps_only_its_digest(env, tmp_path):
    terracube(env, "users", "add", "alice", password="alice's long password")
    result = terracube(env, "clients", "add", "ci", "--user", "alice")
    client_id, secret = client_credentials(result.stdout)
    assert "shown only this once" in result.stderr
    assert client_id in terracube(env, "clients", "list").stdout and secret not in terracube(env, "clients", "list").stdout
    database = (tmp_path / "data" / "terracube.db").read_bytes()
    assert secret.encode() not in database and b"alice's long password" not in database
    nobody = terracube(env, "clients", "add", "ci", "--user", "nobody", check=False)
    assert nobody.returncode == 1
    terracube(env, "clients", "remove", client_id)
    assert client_id not in terracube(env, "clients", "list").stdout


def test_keys_rotate_keeps_the_old_key_until_its_tokens_expire(env, tmp_path):
    folder = tmp_path / "data" / "keys"
    ring = KeyRing(folder, keep_seconds=3600)
    first = ring.current()
    rotated = terracube(env, "keys", "rotate").stdout
    assert "New signing key" in rotated
    listing = terracube(env, "keys", "list").stdout
    assert f"{first.kid}" in listing and "verifies" in listing and "signs" in listing
    # A ring that was running all along notices the new key by itself, within a second.
    time.sleep(1.05)
    second = ring.current()
    assert second.kid != first.kid
    assert {entry.kid for entry in ring.accepted()} == {first.kid, second.kid}
    assert {key["kid"] for key in ring.jwks()["keys"]} == {first.kid, second.kid}
    # Once the old key's tokens can no longer be valid, it stops counting; the next rotation deletes it.
    ring.keep_seconds = 0
    assert [entry.kid for entry in ring.accepted()] == [second.kid]
    third, removed = ring.rotate()
    assert [entry.kid for entry in removed] == [first.kid] and not (folder / f"{first.kid}.json").exists()
    assert ring.current().kid == third.kid


def test_serve_refuses_other_hosts_without_accounts(env, tmp_path):
    refused = subprocess.run([sys.executable, "-m", "terracube.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2
    message = " ".join((refused.stdout + refused.stderr).split())
    assert "will not serve on 0.0.0.0 without accounts" in message
    assert "terracube users add" in message and "TERRACUBE_AUTH=none" in message and "127.0.0.1" in message
    assert not (tmp_path / "data" / "sample").exists()  # refused before any work

    settings = Settings(data_dir=tmp_path / "data")
    assert serve_refusal(settings, "127.0.0.1") is None and serve_refusal(settings, "localhost") is None
    assert serve_refusal(settings, "::1") is None
    assert serve_refusal(settings, "192.168.1.20") is not None and serve_refusal(settings, "::") is not None
    assert serve_refusal(Settings(data_dir=tmp_path / "data", auth="none"), "0.0.0.0") is None
    assert serve_refusal(Settings(data_dir=tmp_path / "data", auth="required"), "0.0.0.0") is None
    add_users(settings, "alice")
    assert serve_refusal(settings, "0.0.0.0") is None
    assert is_loopback_host("127.0.0.2") and not is_loopback_host("no-such-host.invalid")


def test_the_store_on_postgresql(postgres_url, tmp_path):
    from terracube.auth.grants import GrantStore

    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)
    store = AuthStore.open(settings)
    alice = store.add_user("alice", "alice's long password", admin=True)
    assert store.check_password("alice", "alice's long password") == alice and store.count_users() == 1
    client_id, _ = store.add_client("ci", "alice")
    grants = GrantStore(store.sessions)
    first = grants.issue_refresh_token(alice, "terracube-public", "openid offline_access", 600)
    row = grants.use_refresh_token(first)
    assert row.user_id == alice.user_id
    second = grants.issue_refresh_token(alice, "terracube-public", "openid offline_access", 600, parent=row)
    assert grants.use_refresh_token(second) is not None
    assert grants.use_refresh_token(first) is None  # its successor was used: a copy, refused
    assert grants.use_refresh_token(second) is None  # and the family with it
    store.remove_user("alice")
    assert store.client(client_id) is None and store.count_users() == 0
    store.close()


def test_expired_codes_are_deleted_when_new_device_codes_are_asked_for(tmp_path):
    # The device endpoint is public: what anybody asked for and nobody used must not pile up.
    from sqlalchemy import func, select

    from terracube.auth.grants import GrantStore
    from terracube.auth.models import DeviceCode

    store = AuthStore.open(Settings(data_dir=tmp_path / "data"))
    before_restart = GrantStore(store.sessions)
    before_restart.add_device_code("old-device-code", "BCDF-GHJK", "terracube-public", None, lifetime=-1, interval=5)
    before_restart.add_device_code("live-device-code", "LMNP-QRST", "terracube-public", None, lifetime=600, interval=5)

    def codes() -> int:
        with store.sessions() as session:
            return session.scalar(select(func.count()).select_from(DeviceCode))

    assert codes() == 2
    # The next server's first device code purges what expired; the live one stays.
    GrantStore(store.sessions).add_device_code("new-device-code", "VWXZ-BCDF", "terracube-public", None, lifetime=600, interval=5)
    assert codes() == 2
    assert before_restart.device_code("live-device-code") is not None
    store.close()
