"""Version pins: ``cairn runs reproduce`` makes a job read the table versions a run read.

The launcher passes ``$CAIRN_DATA_PINS`` (JSON ``{table URI: version}``) to the job; every
``read_table(uri)`` without an explicit version reads the pinned one instead of the latest.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from cairn.errors import InvalidParameterError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PINS_ENV", "encode_pins", "parse_pin", "pinned_version"]

PINS_ENV = "CAIRN_DATA_PINS"


def _pins() -> dict[str, int]:
    text = os.environ.get(PINS_ENV)
    if not text:
        return {}
    try:
        raw = json.loads(text)
        return {str(uri): int(version) for uri, version in raw.items()}
    except (ValueError, TypeError, AttributeError):
        raise InvalidParameterError(
            f"${PINS_ENV} must be a JSON object of table URI -> version, got {text!r}"
        ) from None


def pinned_version(uri: str) -> int | None:
    """The version pinned for this (normalized) table URI, if any."""
    return _pins().get(uri)


def encode_pins(pins: Mapping[str, int]) -> str:
    """The ``$CAIRN_DATA_PINS`` value for these pins (URIs normalized)."""
    from cairn.data.delta import normalize_uri

    return json.dumps({normalize_uri(uri): int(version) for uri, version in pins.items()})


def parse_pin(text: str) -> tuple[str, int]:
    """``URI=N`` (as given to ``--data-version``) -> (normalized URI, N)."""
    from cairn.data.delta import normalize_uri

    uri, sep, version = text.rpartition("=")
    if not sep or not uri or not version.strip().isdigit():
        raise InvalidParameterError(
            f"--data-version takes URI=VERSION with a non-negative integer version, got {text!r}"
        )
    return normalize_uri(uri), int(version)
