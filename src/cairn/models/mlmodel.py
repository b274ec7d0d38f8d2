"""The ``MLmodel`` file: what a model folder holds and how to load it.

Field names follow the convention MLflow users know (``flavors``, ``signature``,
``saved_input_example_info``, ``run_id``, ``model_uuid``, ``utc_time_created``), so folders
written by either tool read in the other. Cairn adds ``cairn_version``; unknown fields are kept
and written back untouched.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import ModelFormatError
from cairn.models.signature import ModelSignature

if TYPE_CHECKING:
    import os

__all__ = ["MLMODEL_FILE", "PYFUNC_FLAVOR", "Model", "ModelInfo"]

MLMODEL_FILE = "MLmodel"
PYFUNC_FLAVOR = "python_function"

# Written by us, so not kept in ``extra`` when read back.
_KNOWN = {
    "artifact_path",
    "flavors",
    "run_id",
    "model_uuid",
    "utc_time_created",
    "cairn_version",
    "signature",
    "saved_input_example_info",
    "metadata",
}


@dataclass
class Model:
    """The parsed ``MLmodel`` file of one model folder."""

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifact_path: str | None = None
    run_id: str | None = None
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    utc_time_created: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    )
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add_flavor(self, name: str, **params: Any) -> Model:
        self.flavors[name] = params
        return self

    def flavor(self, name: str) -> dict[str, Any]:
        """The configuration of flavor ``name``; a clear error when the model lacks it."""
        conf = self.flavors.get(name)
        if conf is None:
            have = ", ".join(sorted(self.flavors)) or "none"
            raise ModelFormatError(f"the model has no {name!r} flavor (it has: {have})")
        return conf

    def to_dict(self) -> dict[str, Any]:
        from cairn import __version__

        out: dict[str, Any] = dict(self.extra)
        if self.artifact_path is not None:
            out["artifact_path"] = self.artifact_path
        out["flavors"] = self.flavors
        out["cairn_version"] = __version__
        out["model_uuid"] = self.model_uuid
        if self.run_id is not None:
            out["run_id"] = self.run_id
        if self.saved_input_example_info is not None:
            out["saved_input_example_info"] = self.saved_input_example_info
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        if self.metadata is not None:
            out["metadata"] = self.metadata
        out["utc_time_created"] = self.utc_time_created
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``MLmodel`` into the folder ``path``."""
        import yaml

        target = Path(path)
        target = target / MLMODEL_FILE if target.is_dir() else target
        target.write_text(yaml.safe_dump(self.to_dict(), default_flow_style=False))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        flavors = data.get("flavors")
        if not isinstance(flavors, dict) or not flavors:
            raise ModelFormatError("the MLmodel file lists no flavors")
        signature = data.get("signature")
        created = data.get("utc_time_created")
        return cls(
            flavors={str(k): dict(v or {}) for k, v in flavors.items()},
            artifact_path=data.get("artifact_path"),
            run_id=data.get("run_id"),
            model_uuid=str(data.get("model_uuid") or uuid.uuid4().hex),
            utc_time_created=str(created) if created else "",
            signature=ModelSignature.from_dict(signature) if signature else None,
            saved_input_example_info=data.get("saved_input_example_info"),
            metadata=data.get("metadata"),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read the ``MLmodel`` of a model folder (or the file itself)."""
        import yaml

        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE
        if not target.is_file():
            raise ModelFormatError(f"no MLmodel file at {target}: is {Path(path)} a model folder?")
        try:
            data = yaml.safe_load(target.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ModelFormatError(
                f"the MLmodel file at {target} is not valid YAML: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise ModelFormatError(f"the MLmodel file at {target} is not a YAML mapping")
        return cls.from_dict(data)


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` returns: where the model went and what it is."""

    model_uri: str
    artifact_path: str
    run_id: str
    flavors: dict[str, dict[str, Any]]
    signature: ModelSignature | None
    model_uuid: str
    utc_time_created: str
