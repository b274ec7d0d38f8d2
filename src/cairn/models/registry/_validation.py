"""Checks on registry input: model names, versions, aliases, tags, descriptions (pure functions)."""

from __future__ import annotations

import re
from typing import Any

from cairn.entities import ModelVersionStage
from cairn.errors import InvalidParameterError, NotFoundError
from cairn.tracking._validation import check_key, check_text

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_MODEL_NAME_LENGTH",
    "MAX_VERSION",
    "check_alias",
    "check_description",
    "check_model_name",
    "check_source",
    "check_stage",
    "check_tag",
    "parse_version",
]

MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 5000
MAX_TAG_VALUE_LENGTH = 100_000  # MLflow's registry limit (prompt texts live in version tags)
MAX_SOURCE_LENGTH = 10_000
MAX_VERSION = 2**31 - 1  # versions are INTEGER columns

_ALIAS_RE = re.compile(r"^[\w\-]+$")
# ``models:/name/3``, ``models:/name@v3`` and ``models:/name/latest`` name versions already, so
# an alias spelled like a version would be ambiguous.
_VERSION_LIKE_RE = re.compile(r"^[vV]?\d+$")


def check_model_name(name: Any, what: str = "model name") -> str:
    """Return ``name`` if it can name a registered model, else raise saying why."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(f"Invalid {what} {name!r}: expected a non-empty string")
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidParameterError(
            f"Invalid {what} '{name[:40]}...': {len(name)} characters, the limit is "
            f"{MAX_MODEL_NAME_LENGTH}"
        )
    if "/" in name or ":" in name:
        # Either would make ``models:/<name>/<version>`` URIs ambiguous.
        raise InvalidParameterError(f"Invalid {what} {name!r}: names cannot contain '/' or ':'")
    if name.strip() in (".", ".."):
        raise InvalidParameterError(f"Invalid {what} {name!r}: '.' and '..' are reserved")
    return check_text(name, what)


def parse_version(version: Any) -> int:
    """A version number from an int or a decimal string; one that cannot exist is not found."""
    if isinstance(version, bool):
        version = str(version)
    if isinstance(version, int):
        number = version
    else:
        text = str(version).strip()
        if not re.fullmatch(r"[+-]?\d{1,30}", text):
            raise InvalidParameterError(
                f"Invalid model version {version!r}: expected a positive integer such as 3"
            )
        number = int(text)
    if not 1 <= number <= MAX_VERSION:
        if number < 1:
            raise InvalidParameterError(f"Invalid model version {version!r}: versions start at 1")
        raise NotFoundError(f"Model version {number} does not exist")
    return number


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not alias:
        raise InvalidParameterError(f"Invalid alias {alias!r}: expected a non-empty string")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameterError(
            f"Invalid alias '{alias[:40]}...': {len(alias)} characters, the limit is "
            f"{MAX_ALIAS_LENGTH}"
        )
    if not _ALIAS_RE.match(alias):
        raise InvalidParameterError(
            f"Invalid alias {alias!r}: aliases may only contain letters, digits, underscores "
            "and dashes"
        )
    if alias.lower() == "latest":
        raise InvalidParameterError(
            f"Invalid alias {alias!r}: 'latest' is reserved (models:/<name>/latest means the "
            "newest version)"
        )
    if _VERSION_LIKE_RE.match(alias):
        raise InvalidParameterError(
            f"Invalid alias {alias!r}: it looks like a version number; choose a name such as "
            "'champion'"
        )
    return alias


def check_tag(key: Any, value: Any) -> tuple[str, str]:
    check_key(key, "tag")
    text = check_text(value if isinstance(value, str) else str(value), f"value of tag '{key}'")
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidParameterError(
            f"Value of tag '{key}' is {len(text)} characters; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    return key, text


def check_description(description: Any) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidParameterError(f"Invalid description {description!r}: expected a string")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidParameterError(
            f"Description is {len(description)} characters; the limit is {MAX_DESCRIPTION_LENGTH}"
        )
    return check_text(description, "description")


def check_source(source: Any) -> str:
    if not isinstance(source, str) or not source.strip():
        raise InvalidParameterError(
            f"Invalid model source {source!r}: expected the URI or path of the model's files"
        )
    if len(source) > MAX_SOURCE_LENGTH:
        raise InvalidParameterError(
            f"Model source is {len(source)} characters; the limit is {MAX_SOURCE_LENGTH}"
        )
    return check_text(source, "model source")


def check_stage(stage: Any) -> ModelVersionStage:
    """A stage by name, case-insensitively (``production`` is ``Production``)."""
    for candidate in ModelVersionStage:
        if isinstance(stage, str) and stage.lower() == candidate.value.lower():
            return candidate
    choices = ", ".join(s.value for s in ModelVersionStage)
    raise InvalidParameterError(f"Invalid stage {stage!r}: use one of {choices}")
