"""Who is asking: the ``User`` every user-scoped route receives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    admin: bool = False
    # The one user of laptop mode (and of TERRACUBE_AUTH=none): owns everything, logs in with nothing.
    local: bool = False

    def get_user_id(self) -> str:  # what authlib asks a user for
        return self.user_id


# Its id is what the server stored everything under before accounts existed, so it keeps owning it.
LOCAL_USER = User("anonymous", "Anonymous", local=True)
