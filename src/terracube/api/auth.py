"""Who is asking. Anonymous use is allowed on a local server; accounts come with a later issue."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import APIRouter, Request

router = APIRouter()


@dataclass(frozen=True)
class User:
    user_id: str
    name: str


ANONYMOUS = User("anonymous", "Anonymous")


def current_user(request: Request) -> User:
    """The dependency every user-scoped route takes; today everyone is the anonymous user."""
    return ANONYMOUS


@router.get("/credentials/basic", tags=["account"])
def basic_credentials() -> dict:
    """Any user name and password are accepted, so ``con.authenticate_basic()`` works against a local server."""
    return {"access_token": secrets.token_urlsafe(24)}


@router.get("/me", tags=["account"])
def me(request: Request) -> dict:
    user = current_user(request)
    return {"user_id": user.user_id, "name": user.name, "links": []}
