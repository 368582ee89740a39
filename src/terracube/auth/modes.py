"""The three modes a server can be in (docs/auth.md); ``service.py`` says which one applies."""

from __future__ import annotations

import enum


class Mode(str, enum.Enum):
    LAPTOP = "laptop"  # TERRACUBE_AUTH=auto and no account: one local user, no login needed
    ACCOUNTS = "accounts"  # an account exists, or TERRACUBE_AUTH=required: a token on every private route
    OPEN = "open"  # TERRACUBE_AUTH=none: everyone is the local user, on purpose
