"""The openEO API's errors about who is asking (errors.json, "Account Management")."""

from __future__ import annotations

from terracube.errors import OpenEOError


class AuthenticationRequired(OpenEOError):
    code, status = "AuthenticationRequired", 401


class AuthenticationSchemeInvalid(OpenEOError):
    code, status = "AuthenticationSchemeInvalid", 403


class TokenInvalid(OpenEOError):
    code, status = "TokenInvalid", 403


class CredentialsInvalid(OpenEOError):
    code, status = "CredentialsInvalid", 403
