"""Artifact path safety: normalize caller-supplied relative paths and keep them inside a root."""

from __future__ import annotations

import os
import posixpath
import re
from urllib.parse import unquote

from cairn.errors import UnsafePathError

__all__ = ["ensure_within", "normalize_artifact_path"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_DRIVE = re.compile(r"[A-Za-z]:")


def _unsafe_reason(path: str) -> str | None:
    """Why ``path`` is unsafe as a relative artifact path, or None if it is not."""
    if "\x00" in path:
        return "NUL bytes are not allowed"
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        return "absolute paths are not allowed"
    if "\\" in path:
        return "backslashes are not allowed"
    if _SCHEME.match(path):
        return "URI schemes are not allowed"
    if path.startswith("~"):
        return "'~' expansion is not allowed"
    if ".." in path.split("/"):
        return "'..' components are not allowed"
    return None


def normalize_artifact_path(path: str | None) -> str:
    """``path`` as a normalized relative POSIX path ('' for the root); UnsafePathError if unsafe.

    Unsafe: absolute, a ``..`` component (also percent-encoded, any number of times), a
    backslash, a NUL byte, a leading URI scheme (``file:``, ``s3:``) or a leading ``~``.
    """
    if path is None:
        return ""
    # Check every percent-decoding layer: a later consumer (HTTP, a URL-based filesystem)
    # may decode what we stored. Each decoding that changes the text shortens it, so this ends.
    layer = path
    while True:
        reason = _unsafe_reason(layer)
        if reason is not None:
            decoded = " (after percent-decoding)" if layer != path else ""
            raise UnsafePathError(f"Unsafe artifact path {path!r}{decoded}: {reason}")
        decoded_layer = unquote(layer)
        if decoded_layer == layer:
            break
        layer = decoded_layer
    normalized = posixpath.normpath(path) if path else "."
    if normalized == ".":
        return ""
    # normpath cannot introduce '..' or a leading '/' here, but the invariant is cheap to keep.
    reason = _unsafe_reason(normalized)
    if reason is not None:
        raise UnsafePathError(f"Unsafe artifact path {path!r}: {reason}")
    return normalized


def ensure_within(root: str, candidate: str) -> str:
    """Local ``candidate`` with symlinks resolved; UnsafePathError if it lands outside ``root``."""
    real_root = os.path.realpath(root)
    real_candidate = os.path.realpath(candidate)
    if real_candidate != real_root and os.path.commonpath([real_root, real_candidate]) != real_root:
        raise UnsafePathError(
            f"Unsafe artifact path {candidate!r}: it resolves to {real_candidate!r}, "
            f"outside the artifact root {real_root!r} (a symlink pointing out?)"
        )
    return real_candidate
