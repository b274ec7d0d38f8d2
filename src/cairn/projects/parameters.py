"""Entry-point parameters: type-checked before anything runs, resolved to the text a command gets.

Types: ``float``, ``int``, ``string``, ``path`` (a local file or folder, made absolute, which must
exist; or a URI that fsspec downloads before the command starts) and ``uri`` (local paths made
absolute, anything else passed as is). Relative paths given by the user resolve against the
caller's working directory; relative defaults against the project folder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cairn.errors import InvalidParameterError, ProjectExecutionError, ProjectSpecError
from cairn.tracking.client import make_param

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cairn.projects.spec import EntryPoint

__all__ = ["check_type", "localize", "resolve_parameters"]


def _remote_scheme(value: str) -> str | None:
    scheme = urlsplit(value).scheme.lower()
    return scheme if len(scheme) > 1 and scheme != "file" else None


def _local_path(value: str) -> str:
    return urlsplit(value).path if value.lower().startswith("file:") else value


def check_type(kind: str, text: str) -> str | None:
    """None when ``text`` is a valid ``kind``; otherwise what it should have been."""
    if kind == "float":
        try:
            float(text)
        except ValueError:
            return "a float"
    elif kind == "int":
        try:
            int(text)
        except ValueError:
            return "an integer"
    elif kind in ("path", "uri") and not text.strip():
        return "a path" if kind == "path" else "a URI"
    return None


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    raise ProjectSpecError(
        f"Parameter {name!r}: {type(value).__name__} values cannot be passed on a command line"
    )


def _resolve_one(kind: str, name: str, text: str, base: Path, entry: str) -> str:
    problem = check_type(kind, text)
    if problem is not None:
        raise ProjectSpecError(
            f"Parameter {name!r} of entry point {entry!r} must be {problem}, got {text!r}"
        )
    if kind == "int":
        return str(int(text))
    if kind in ("path", "uri") and _remote_scheme(text) is None:
        path = (base / Path(_local_path(text)).expanduser()).resolve()
        if kind == "path" and not path.exists():
            raise ProjectSpecError(
                f"Parameter {name!r} of entry point {entry!r} is a path, but {path} does not exist"
            )
        return str(path)
    return text


def resolve_parameters(
    entry_point: EntryPoint, given: Mapping[str, Any], *, cwd: Path, project_dir: Path
) -> dict[str, str]:
    """Every parameter the command gets, type-checked: declared ones first, then extras."""
    values: dict[str, str] = {}
    for name, param in entry_point.parameters.items():
        if name in given:
            values[name] = _resolve_one(
                param.type, name, _as_text(name, given[name]), cwd, entry_point.name
            )
        elif param.default is not None:
            values[name] = _resolve_one(
                param.type, name, param.default, project_dir, entry_point.name
            )
        else:
            raise ProjectSpecError(
                f"Entry point {entry_point.name!r} needs parameter {name!r} ({param.type}): "
                f"pass -P {name}=VALUE"
            )
    for name, value in given.items():
        if name not in entry_point.parameters:
            values[name] = _as_text(name, value)
    for name, value in values.items():
        try:
            make_param(name, value)  # the run logs each one: refuse what it would refuse
        except InvalidParameterError as exc:
            raise ProjectSpecError(exc.message) from exc
    return values


def localize(entry_point: EntryPoint, values: Mapping[str, str], dest: Path) -> dict[str, str]:
    """``values`` with each remote ``path`` parameter downloaded under ``dest`` (fsspec)."""
    out = dict(values)
    for name, param in entry_point.parameters.items():
        value = values.get(name)
        if param.type != "path" or value is None or _remote_scheme(value) is None:
            continue
        import fsspec

        target = dest / name
        try:
            fs, remote = fsspec.core.url_to_fs(value)
            if not fs.exists(remote):
                raise FileNotFoundError(value)
            if fs.isdir(remote):
                fs.get(remote, str(target), recursive=True)
                out[name] = str(target)
            else:
                target.mkdir(parents=True, exist_ok=True)
                local = target / Path(remote.rstrip("/")).name
                fs.get(remote, str(local))
                out[name] = str(local)
        except (OSError, ValueError, ImportError) as exc:
            raise ProjectExecutionError(
                f"Could not download parameter {name!r} from {value}: {exc}"
            ) from exc
    return out
