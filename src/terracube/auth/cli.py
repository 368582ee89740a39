"""``terracube users``, ``terracube clients`` and ``terracube keys``: accounts are managed on the server's machine.

They work on the deployment the settings name (``TERRACUBE_DATABASE_URL``, ``TERRACUBE_DATA_DIR``),
whether or not a server runs: a running server sees a new account within seconds.
Passwords are asked for twice on a terminal, and read from the first line of standard input
otherwise, so scripts can do ``echo "$PASSWORD" | terracube users add alice``.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone

import typer
from rich.console import Console
from rich.table import Table

from terracube.settings import get_settings

users_app = typer.Typer(help="Accounts: add, list, change passwords, remove.", no_args_is_help=True)
clients_app = typer.Typer(help="Clients for scripts and CI (the OpenID Connect client credentials flow).", no_args_is_help=True)
keys_app = typer.Typer(help="The built-in issuer's signing keys.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the ``users``, ``clients`` and ``keys`` commands to the ``terracube`` command,
    and have every command refuse a wrong configuration first, in plain words."""
    app.add_typer(users_app, name="users")
    app.add_typer(clients_app, name="clients")
    app.add_typer(keys_app, name="keys")
    app.callback()(check_configuration)


def check_configuration() -> None:
    # Settings are read by every command; a mistake (an [[oidc_providers]] table taking the
    # built-in issuer's id, say) is said once, without a traceback around it.
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as error:
        problems = "\n".join(f"  - {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        _fail(f"the configuration (TERRACUBE_* variables, TERRACUBE_CONFIG file) is not valid:\n{problems}")


def _store():
    # Imported here: ``terracube serve`` and ``run`` should not pay for the accounts' modules at every start.
    from terracube.auth.store import AuthStore

    return AuthStore.open(get_settings())


def _account_error() -> type[Exception]:
    from terracube.auth.store import AccountError

    return AccountError


def _fail(message: str) -> None:
    err.print(f"[red]error[/red]: {message}")
    raise typer.Exit(1)


def read_password(prompt: str = "Password") -> str:
    if sys.stdin.isatty():
        return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


# What `users add` and `users quota` take (auth/quotas.py applies them).
CPU_HELP = "CPU hours a month: a number (0: no limit) or 'default' (TERRACUBE_QUOTA_CPU_HOURS)."
STORAGE_HELP = "Storage for files and job results: bytes, or with a unit (500MB, 5GiB); 0: no limit; 'default' (TERRACUBE_QUOTA_STORAGE_BYTES)."


# --- users -----------------------------------------------------------------------------------
@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="The login name."),
    admin: bool = typer.Option(False, "--admin", help="An administrator."),
    owns_local_data: bool = typer.Option(
        False, "--owns-local-data", help="Take over what this server stored in laptop mode (the local user's jobs, files, processes)."
    ),
    cpu_hours: str | None = typer.Option(None, "--cpu-hours", help=CPU_HELP),
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
) -> None:
    """Add an account; from now on the server needs a login (accounts mode)."""
    quotas = _quota_values(cpu_hours, storage)
    store = _store()
    try:
        user = store.add_user(name, read_password(), admin=admin, owns_local_data=owns_local_data)
        if quotas:
            store.set_quota(name, **quotas)
    except _account_error() as error:
        _fail(str(error))
    finally:
        store.close()
    out.print(f"Added {'administrator' if admin else 'user'} {user.name} (user id {user.user_id}).")


# --- quotas and usage ------------------------------------------------------------------------
UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """``1048576``, ``500MB``, ``5 GiB`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).lower() not in UNITS:
        raise typer.BadParameter(f"{text!r} is not a size: bytes, or a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB.")
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def _quota_values(cpu_hours: str | None, storage: str | None) -> dict:
    values: dict = {}
    if cpu_hours is not None:
        if cpu_hours.strip().lower() == "default":
            values["quota_cpu_hours"] = None
        else:
            try:
                values["quota_cpu_hours"] = float(cpu_hours)
            except ValueError:
                raise typer.BadParameter(f"--cpu-hours {cpu_hours!r}: a number of hours, 0 for no limit, or 'default'.") from None
            if values["quota_cpu_hours"] < 0:
                raise typer.BadParameter("--cpu-hours cannot be negative (0 means no limit).")
    if storage is not None:
        values["quota_storage_bytes"] = None if storage.strip().lower() == "default" else parse_bytes(storage)
    return values


def _quotas(store):
    from terracube.auth.quotas import Quotas

    return Quotas(get_settings(), store.sessions)


def _hours(seconds: float | None) -> str:
    return "no limit" if seconds is None else f"{seconds / 3600:.3f}"


def _size(value: int | None) -> str:
    from terracube.auth.quotas import human_bytes

    return "no limit" if value is None else human_bytes(value).split(" (")[0]


@users_app.command("quota")
def users_quota(
    name: str = typer.Argument(..., help="The login name."),
    cpu_hours: str | None = typer.Option(None, "--cpu-hours", help=CPU_HELP),
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
) -> None:
    """Show or set a user's quotas (CPU hours a month, storage); without options, show them."""
    values = _quota_values(cpu_hours, storage)
    store = _store()
    try:
        account = store.set_quota(name, **values) if values else store.account(name)
        limits = _quotas(store).limits(account.id, account)
    except _account_error() as error:
        _fail(str(error))
    finally:
        store.close()
    cpu_source = "default" if account.quota_cpu_hours is None else "own"
    storage_source = "default" if account.quota_storage_bytes is None else "own"
    cpu = "no limit" if limits.cpu_seconds is None else f"{_hours(limits.cpu_seconds)} hours a month"
    out.print(f"{name}: CPU {cpu} ({cpu_source}), storage {_size(limits.storage_bytes)} ({storage_source}).")


@users_app.command("usage")
def users_usage(
    month: str | None = typer.Option(None, "--month", help="The month, YYYY-MM (UTC); default: this month."),
) -> None:
    """Every user's usage of a month against their quotas (enforced in accounts mode)."""
    from terracube.auth.quotas import month_bounds

    when = None
    if month:
        try:
            when = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc)
        except ValueError:
            raise typer.BadParameter(f"--month {month!r}: use YYYY-MM, e.g. 2026-11.") from None
    store = _store()
    try:
        quotas = _quotas(store)
        start, reset = month_bounds(when or quotas.now())
        sums = quotas.months(start)
        accounts = {account.id: account for account in store.accounts()}
        table = Table("name", "user id", "CPU hours", "CPU quota", "requests", "jobs", "pixels read", "storage", "storage quota",
                      title=f"Usage in {start:%Y-%m} (UTC; quotas reset {reset:%Y-%m-%d})")
        for user_id in [*accounts, *sorted(set(sums) - set(accounts))]:
            account = accounts.get(user_id)
            used = sums.get(user_id)
            limits = quotas.limits(user_id, account)
            table.add_row(
                account.name if account else "(no account)", user_id, f"{(used.cpu_seconds if used else 0) / 3600:.4f}",
                _hours(limits.cpu_seconds), str(used.requests if used else 0), str(used.jobs if used else 0),
                f"{used.pixels if used else 0:,}", _size(quotas.storage_used(user_id)), _size(limits.storage_bytes),
            )
    finally:
        store.close()
    out.print(table)


@users_app.command("list")
def users_list() -> None:
    """List the accounts: local ones (a password) and those created by logins through other OpenID Connect providers."""
    store = _store()
    try:
        accounts, clients = store.accounts(), store.clients()
    finally:
        store.close()
    if not accounts:
        out.print("No accounts: the server runs in laptop mode (one local user, loopback addresses only).")
        return
    # "login": a password here, or the OpenID Connect provider (and subject) the user comes from.
    table = Table("name", "user id", "login", "admin", "clients", "created")
    for account in accounts:
        count = sum(1 for client in clients if client.user_id == account.id)
        login = f"{account.provider} ({account.subject})" if account.provider else "password"
        table.add_row(account.name, account.id, login, "yes" if account.admin else "", str(count), _when(account.created))
    out.print(table)


@users_app.command("passwd")
def users_passwd(name: str = typer.Argument(..., help="The login name.")) -> None:
    """Set a new password; the user's tokens and refresh tokens end now."""
    store = _store()
    try:
        store.set_password(name, read_password("New password"))
    except _account_error() as error:
        _fail(str(error))
    finally:
        store.close()
    out.print(f"Password of {name} changed; its earlier logins are over.")


@users_app.command("remove")
def users_remove(
    name: str = typer.Argument(..., help="The login name."),
    delete_data: bool = typer.Option(False, "--delete-data", help="Also delete the user's jobs, results, processes and files."),
) -> None:
    """Remove an account and its clients; its jobs and files stay unless --delete-data is given."""
    from terracube.auth.userdata import count_user_data, delete_user_data

    settings = get_settings()
    store = _store()
    try:
        user_id = store.remove_user(name)
    except _account_error() as error:
        _fail(str(error))
    finally:
        store.close()
    if delete_data:
        data = delete_user_data(settings, user_id)
        out.print(f"Removed {name} ({user_id}) and deleted {data.jobs} jobs, {data.processes} processes, {data.files} files.")
    else:
        data = count_user_data(settings, user_id)
        out.print(f"Removed {name} ({user_id}); kept {data.jobs} jobs, {data.processes} processes, {data.files} files under that id.")


# --- clients ---------------------------------------------------------------------------------
@clients_app.command("add")
def clients_add(
    name: str = typer.Argument(..., help="A name for the client, e.g. 'ci' or 'nightly-export'."),
    user: str = typer.Option(..., "--user", help="The user the client acts for."),
) -> None:
    """Make a client id and secret (shown once) for the client credentials flow."""
    store = _store()
    try:
        client_id, secret = store.add_client(name, user)
    except _account_error() as error:
        _fail(str(error))
    finally:
        store.close()
    out.print(f"client_id: {client_id}\nclient_secret: {secret}")
    err.print(
        f"The secret is shown only this once. The client acts as {user}; in Python:\n"
        f"  con.authenticate_oidc_client_credentials(client_id=..., client_secret=...)\n"
        f"or set OPENEO_AUTH_METHOD=client_credentials, OPENEO_AUTH_CLIENT_ID and OPENEO_AUTH_CLIENT_SECRET."
    )


@clients_app.command("list")
def clients_list() -> None:
    """List the clients (never their secrets)."""
    store = _store()
    try:
        clients = store.clients()
    finally:
        store.close()
    table = Table("client id", "name", "user")
    for client in clients:
        table.add_row(client.client_id, client.name, client.user_name)
    out.print(table)


@clients_app.command("remove")
def clients_remove(client_id: str = typer.Argument(..., help="The client id.")) -> None:
    """Remove a client; its secret stops working at once."""
    store = _store()
    try:
        store.remove_client(client_id)
    except _account_error() as error:
        _fail(str(error))
    finally:
        store.close()
    out.print(f"Removed client {client_id}.")


# --- keys ------------------------------------------------------------------------------------
@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key; tokens signed with the old one stay valid until they expire."""
    from terracube.auth.service import key_ring

    ring = key_ring(get_settings())
    new, removed = ring.rotate()
    out.print(f"New signing key {new.kid}. Older keys still verify for {ring.keep_seconds / 3600:.1f} hours, then are deleted at the next rotation.")
    for entry in removed:
        out.print(f"Deleted the expired key {entry.kid}.")


@keys_app.command("list")
def keys_list() -> None:
    """List the signing keys and whether they still verify tokens."""
    import time

    from terracube.auth.service import key_ring

    ring = key_ring(get_settings())
    accepted = {entry.kid for entry in ring.accepted()}
    current = ring.current().kid
    # Plain lines, not a table: key ids are long, and scripts read this.
    for entry in ring.entries():
        state = "signs" if entry.kid == current else ("verifies" if entry.kid in accepted else "expired")
        created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(entry.created))
        out.print(f"{entry.kid}  {created}  {state}", soft_wrap=True)
