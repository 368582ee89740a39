"""The issuer's signing keys: made at first start, kept in ``<data_dir>/keys``, rotated on request.

Each key is one JSON file (mode 0600, in a 0700 folder): the private JWK, when it was made and
when it was retired. The newest key that is not retired signs; a retired key still verifies
until every token it signed has expired (``keep_seconds`` after its retirement), so
``terracube keys rotate`` never logs anybody out. Servers sharing the folder (replicas, or the
CLI rotating under a running server) see a change at their next look, at most a second later,
and at once when a token names a key they do not know.

RS256 is what OpenID Connect requires every issuer to offer, and what every relying party can
check; joserfc does the JOSE work.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import KeySet, RSAKey

ALGORITHM = "RS256"
RSA_BITS = 2048
LOOK_INTERVAL = 1.0  # seconds between two looks at the folder


@dataclass
class SigningKey:
    key: RSAKey
    created: float
    retired: float | None = None

    @property
    def kid(self) -> str:
        return self.key.kid


def _new_key() -> RSAKey:
    key = RSAKey.generate_key(RSA_BITS, private=True)
    # The RFC 7638 thumbprint: a stable, collision-free name for the key.
    return RSAKey.import_key(key.as_dict(private=True), {"kid": key.thumbprint(), "use": "sig", "alg": ALGORITHM})


class KeyRing:
    def __init__(self, directory: Path, keep_seconds: float):
        self.directory = Path(directory)
        self.keep_seconds = keep_seconds
        self._keys: list[SigningKey] = []
        self._key_set: tuple[float, KeySet] | None = None
        self._seen: float | None = None
        self._looked = 0.0
        self._lock = threading.Lock()

    # --- files -----------------------------------------------------------------------------
    @contextmanager
    def _folder_lock(self):
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        with open(self.directory / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _write(self, entry: SigningKey) -> None:
        document = {"created": entry.created, "retired": entry.retired, "jwk": entry.key.as_dict(private=True)}
        temporary = self.directory / f".{entry.kid}.json.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(document, handle)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.directory / f"{entry.kid}.json")

    def _read(self) -> list[SigningKey]:
        keys = []
        for path in sorted(self.directory.glob("*.json")):
            document = json.loads(path.read_text())
            keys.append(SigningKey(RSAKey.import_key(document["jwk"]), document["created"], document.get("retired")))
        return sorted(keys, key=lambda entry: entry.created)

    def _mtime(self) -> float | None:
        try:
            return self.directory.stat().st_mtime
        except FileNotFoundError:
            return None

    # --- loading ---------------------------------------------------------------------------
    def _load(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._keys and now - self._looked < LOOK_INTERVAL:
            return
        with self._lock:
            self._looked = now
            mtime = self._mtime()
            if self._keys and mtime == self._seen and not force:
                return
            keys = self._read() if mtime is not None else []
            if not any(entry.retired is None for entry in keys):
                with self._folder_lock():  # first start: one process makes the key, the others read it
                    keys = self._read()
                    if not any(entry.retired is None for entry in keys):
                        entry = SigningKey(_new_key(), time.time())
                        self._write(entry)
                        keys.append(entry)
                mtime = self._mtime()
            self._keys, self._seen, self._key_set = keys, mtime, None

    def entries(self) -> list[SigningKey]:
        """Every key in the folder, oldest first."""
        self._load()
        return list(self._keys)

    def current(self) -> SigningKey:
        """The key that signs now: the newest one not retired."""
        self._load()
        return [entry for entry in self._keys if entry.retired is None][-1]

    def accepted(self) -> list[SigningKey]:
        """Keys whose signatures count: the current ones, and retired ones whose tokens may not have expired."""
        self._load()
        now = time.time()
        return [entry for entry in self._keys if entry.retired is None or now - entry.retired < self.keep_seconds]

    def key_set(self, kid: str | None = None) -> KeySet:
        """The accepted keys for verifying; an unknown ``kid`` makes the ring look at the folder again first."""
        self._load()
        if kid is not None and kid not in {entry.kid for entry in self._keys}:
            self._load(force=time.monotonic() - self._looked > 0.1)
        cached = self._key_set
        if cached is None or time.monotonic() - cached[0] > LOOK_INTERVAL:
            # Rebuilt now and then, as retired keys reach the end of their grace.
            cached = self._key_set = (time.monotonic(), KeySet([entry.key for entry in self.accepted()]))
        return cached[1]

    def jwks(self) -> dict:
        """The public keys as a JWK Set, for ``/oidc/jwks``."""
        return {"keys": [entry.key.as_dict(private=False) for entry in self.accepted()]}

    # --- rotation --------------------------------------------------------------------------
    def rotate(self) -> tuple[SigningKey, list[SigningKey]]:
        """A new current key; the others are retired now, and those retired long enough are deleted."""
        with self._folder_lock():
            now = time.time()
            keys, removed = self._read(), []
            for entry in keys:
                if entry.retired is None:
                    entry.retired = now
                    self._write(entry)
                elif now - entry.retired >= self.keep_seconds:
                    (self.directory / f"{entry.kid}.json").unlink(missing_ok=True)
                    removed.append(entry)
            new = SigningKey(_new_key(), now)
            self._write(new)
        self._load(force=True)
        return new, removed
