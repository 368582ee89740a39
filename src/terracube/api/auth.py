"""Who is asking. Anonymous use is allowed on a local server; accounts come with a later issue.

Every user-scoped route takes the ``current_user`` dependency, so enforcing authentication later
changes this module only. Today a bearer token is accepted and ignored (the Python client sends
``Bearer basic//<token>`` after ``authenticate_basic()``), and ``GET /credentials/basic`` hands a
token to any user name and password.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException

router = APIRouter(tags=["account"])

BASIC_PREFIX = "basic//"


@dataclass(frozen=True)
class User:
    user_id: str
    name: str


ANONYMOUS = User("anonymous", "Anonymous")


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def current_user(request: Request) -> User:
    """The dependency every user-scoped route takes; today everyone is the anonymous user."""
    # A token (``basic//...`` or any other) is accepted and not checked yet.
    bearer_token(request)
    return ANONYMOUS


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
def basic_credentials(request: Request) -> dict:
    """Any user name and password are accepted, so ``con.authenticate_basic()`` works on a local server."""
    basic_credentials_of(request)
    return {"access_token": secrets.token_urlsafe(24)}


@router.get("/me")
def me(user: User = Depends(current_user)) -> dict:
    return {"user_id": user.user_id, "name": user.name, "links": []}
