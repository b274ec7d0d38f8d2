"""What authentication knows: users, API tokens and the permission levels, ordered."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cairn.errors import InvalidParameterError

__all__ = ["Permission", "Token", "User", "check_username"]

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,255}")


class Permission(enum.IntEnum):
    """What a user may do with one experiment or registered model; each level includes the
    ones below it. MANAGE also deletes and grants permissions to others."""

    NO_PERMISSIONS = 0
    READ = 1
    EDIT = 2
    MANAGE = 3

    @classmethod
    def parse(cls, value: object) -> Permission:
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        names = ", ".join(cls.__members__)
        raise InvalidParameterError(f"Invalid permission {value!r}: use one of {names}")


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    is_admin: bool
    creation_time: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.user_id,
            "username": self.username,
            "is_admin": self.is_admin,
            "creation_time": self.creation_time,
        }


@dataclass(frozen=True, slots=True)
class Token:
    token_id: int
    username: str
    name: str
    creation_time: int
    revoked_time: int | None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.token_id,
            "username": self.username,
            "name": self.name,
            "creation_time": self.creation_time,
        }
        if self.revoked_time is not None:
            out["revoked_time"] = self.revoked_time
        return out


def check_username(username: object) -> str:
    """A username safe in a Basic auth header (no ``:``), a URL and a log line."""
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise InvalidParameterError(
            f"Invalid username {username!r}: use 1 to 256 letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return username
