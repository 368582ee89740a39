"""Signed, expiring result URLs: downloads work without credentials, as the openEO API intends.

A signature is the HMAC-SHA256 of job id, file name and expiry under a secret that is generated
once into the data directory (or set with ``TERRACUBE_SIGNING_SECRET``, which several API
servers behind one load balancer must share).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from terracube.jobs.errors import ResultLinkExpired, ResultLinkInvalid
from terracube.settings import Settings

DEFAULT_LIFETIME = 7 * 24 * 3600  # a week, like CDSE's result links


def _secret_from_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Created exclusively and private; a concurrent first start reads the winner's key.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    for _ in range(50):
        value = path.read_text().strip()
        if value:
            return value.encode()
        time.sleep(0.02)
    raise RuntimeError(f"The signing key file {path} is empty.")


class UrlSigner:
    def __init__(self, secret: bytes, lifetime: int = DEFAULT_LIFETIME):
        self.secret = secret
        self.lifetime = lifetime

    @classmethod
    def from_settings(cls, settings: Settings) -> "UrlSigner":
        secret = settings.signing_secret
        key = secret.encode() if secret else _secret_from_file(Path(settings.data_dir) / "jobs-signing.key")
        return cls(key, settings.result_url_lifetime)

    def signature(self, job_id: str, name: str, expires: int) -> str:
        message = f"{job_id}\n{name}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def sign(self, job_id: str, name: str, now: float | None = None) -> dict[str, str]:
        """Query parameters for a link to ``name`` of ``job_id``, valid for ``lifetime`` seconds."""
        expires = int((now or time.time()) + self.lifetime)
        return {"expires": str(expires), "signature": self.signature(job_id, name, expires)}

    def verify(self, job_id: str, name: str, expires: str | None, signature: str | None) -> None:
        try:
            deadline = int(expires or "")
        except ValueError:
            raise ResultLinkInvalid() from None
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500 for a bad link).
        given = (signature or "").encode("utf-8", "surrogatepass")
        if not given or not hmac.compare_digest(self.signature(job_id, name, deadline).encode(), given):
            raise ResultLinkInvalid()
        if deadline < time.time():
            raise ResultLinkExpired()
