"""Opaque page tokens: the offset of the next page, base64-encoded JSON."""

from __future__ import annotations

import base64
import json

from cairn.errors import InvalidParameterError

__all__ = ["decode_token", "encode_token"]


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    """The offset a token names (0 for no token); a malformed token is the caller's error."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameterError(f"Invalid page token {token!r}") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameterError(f"Invalid page token {token!r}")
    return offset
