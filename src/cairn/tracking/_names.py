"""Readable random run names, so people can tell runs apart in lists."""

from __future__ import annotations

import random

__all__ = ["random_run_name"]

_ADJECTIVES = (
    "amber",
    "brave",
    "calm",
    "clever",
    "crisp",
    "daring",
    "eager",
    "gentle",
    "glowing",
    "golden",
    "hidden",
    "humble",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "nimble",
    "proud",
    "quiet",
    "rapid",
    "silent",
    "sleek",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
)
_NOUNS = (
    "badger",
    "beacon",
    "brook",
    "cairn",
    "comet",
    "crane",
    "delta",
    "falcon",
    "fern",
    "fjord",
    "gecko",
    "harbor",
    "heron",
    "lynx",
    "maple",
    "meadow",
    "otter",
    "pebble",
    "quartz",
    "raven",
    "ridge",
    "river",
    "summit",
    "tern",
    "thistle",
    "willow",
    "wren",
)


def random_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"
