"""Who is asking: ``/credentials/basic``, ``/credentials/oidc``, ``/me``, and the ``current_user`` dependency.

The work is the auth room's (``terracube.auth``): accounts, the built-in OpenID Connect issuer,
token checks. In laptop mode (no accounts) everyone is the local user and any login succeeds;
in accounts mode ``GET /credentials/basic`` checks the password and answers with a short-lived
access token of the built-in issuer, which the client sends back as ``Bearer basic//TOKEN``.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from terracube.api.errors import error_response
from terracube.auth.access import current_user
from terracube.auth.errors import CredentialsInvalid
from terracube.auth.issuer import DEFAULT_CLIENT_GRANTS, DEFAULT_CLIENT_ID
from terracube.auth.providers import credentials_oidc_entries
from terracube.auth.quotas import enforced, quotas_for
from terracube.auth.service import PROVIDER_ID, auth_service
from terracube.auth.limits import TooManyLoginAttempts
from terracube.auth.user import LOCAL_USER, User

router = APIRouter(tags=["account"])

ANONYMOUS = LOCAL_USER  # the name earlier code used for the local user
BASIC_CLIENT_ID = "basic"  # what a /credentials/basic token names as its client

__all__ = ["ANONYMOUS", "User", "current_user", "router"]


def basic_credentials_of(request: Request) -> tuple[str, str]:
    """User name and password of an ``Authorization: Basic ...`` header; 401 without one."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        if not sep or not user:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(
            401,
            "Send a user name and password with HTTP Basic authentication (Authorization: Basic ...).",
            headers={"WWW-Authenticate": 'Basic realm="terracube"'},
        ) from None
    return user, password


@router.get("/credentials/basic")
async def basic_credentials(request: Request) -> JSONResponse:
    """A short-lived access token for a right name and password (any, in laptop mode)."""
    name, password = basic_credentials_of(request)
    service = auth_service(request.app)

    def login() -> str:
        user = service.check_password(name, password, origin=request.client.host if request.client else "")
        if user is None:
            raise CredentialsInvalid("Wrong user name or password.")
        lifetime = service.settings.basic_token_lifetime
        return service.tokens.access_token(service.issuer(request), user, BASIC_CLIENT_ID, None, lifetime)

    try:
        token = await run_in_threadpool(login)
    except TooManyLoginAttempts as error:  # refused before the password was hashed (auth/limits.py)
        return error_response(error.status, error.code, error.message, error.id, headers={"Retry-After": str(error.retry_after)})
    return JSONResponse({"access_token": token}, headers={"Cache-Control": "no-store"})


@router.get("/credentials/oidc")
def oidc_providers(request: Request) -> dict:
    """The built-in issuer, first and so the default, with a public client for the device and PKCE flows;
    then the operator's other providers (``[[oidc_providers]]``, docs/auth.md)."""
    service = auth_service(request.app)
    settings = service.settings
    return {
        "providers": [
            {
                "id": PROVIDER_ID,
                "issuer": service.issuer(request),
                "title": settings.title,
                "description": f"Log in with your {settings.title} account (terracube users add). "
                "On a laptop server without accounts, every login succeeds at once.",
                "scopes": ["openid", "offline_access"],
                "default_clients": [
                    {
                        "id": DEFAULT_CLIENT_ID,
                        "grant_types": DEFAULT_CLIENT_GRANTS,
                        "redirect_urls": [f"{service.base_url(request)}/", *settings.auth_redirect_urls],
                    }
                ],
                "links": [{"rel": "about", "href": f"{service.issuer(request)}/.well-known/openid-configuration", "title": "OpenID Connect discovery"}],
            },
            *credentials_oidc_entries(settings.oidc_providers),
        ]
    }


@router.get("/me")
def me(request: Request, user: User = Depends(current_user)) -> dict:
    """Who the user is and what is left: ``budget`` in CPU hours of this month, ``storage`` in bytes.

    terracube has no currency, so its budget is CPU hours (``usage.budget_unit`` says so); both are
    null where no limit applies (laptop mode, or no quota). ``usage`` holds the month's figures.
    """
    summary = quotas_for(request.app).summary(user.user_id, enforced(request.app))
    return {"user_id": user.user_id, "name": user.name, **summary, "links": []}
