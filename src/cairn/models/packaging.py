"""Steps every flavor's ``save_model`` and ``log_model`` share.

A flavor writes its own files, then hands the folder here to add the input example, the
signature (inferred from the example when not given), the environment files and ``MLmodel``.
``log_model`` saves into a temporary folder and uploads it as run artifacts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import AlreadyExistsError
from cairn.models.mlmodel import Model, ModelInfo

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

    from cairn.models.signature import ModelSignature

__all__ = ["finish_model", "log_model", "prepare_folder"]


def prepare_folder(path: str | os.PathLike[str]) -> Path:
    """Create the model folder; refuse to write over a non-empty one."""
    target = Path(path).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExistsError(f"{target} already exists and is not empty; choose another path")
    target.mkdir(parents=True, exist_ok=True)
    return target


def finish_model(
    path: Path,
    mlmodel: Model,
    *,
    signature: ModelSignature | None,
    input_example: Any,
    requirements: Iterable[str],
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
    predict: Callable[[Any], Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Write example, signature, environment and ``MLmodel``; returns the model description."""
    from cairn.models.environment import write_environment

    if input_example is not None:
        from cairn.models.input_example import normalize_example, save_input_example

        example = normalize_example(input_example)
        mlmodel.saved_input_example_info = save_input_example(path, example)
        if signature is None:
            signature = _infer_from_example(example, predict)
    mlmodel.signature = signature
    if metadata:
        mlmodel.metadata = metadata
    env = write_environment(path, requirements, extra_pip_requirements, pip_requirements)
    pyfunc_conf = mlmodel.flavors.get("python_function")
    if pyfunc_conf is not None:
        pyfunc_conf.setdefault("env", env)
    mlmodel.save(path)
    return mlmodel


def _infer_from_example(example: Any, predict: Callable[[Any], Any] | None) -> ModelSignature:
    from cairn.models.signature import infer_schema, infer_signature

    output = None
    if predict is not None:
        try:
            output = predict(example)
        except Exception:
            output = None
    signature = infer_signature(example)
    if output is not None:
        try:
            return type(signature)(signature.inputs, infer_schema(output))
        except Exception:
            return signature
    return signature


def log_model(
    save: Callable[..., Model],
    artifact_path: str,
    *,
    registered_model_name: str | None = None,
    **save_kwargs: Any,
) -> ModelInfo:
    """Save with ``save(path, mlmodel=..., **save_kwargs)`` and upload it into the active run."""
    from cairn.tracking import fluent

    run_id = fluent._active_run_id()
    client = fluent._get_client()
    with tempfile.TemporaryDirectory(prefix="cairn-log-model-") as tmp:
        local = Path(tmp) / "model"
        mlmodel = save(
            local, mlmodel=Model(artifact_path=artifact_path, run_id=run_id), **save_kwargs
        )
        client.log_artifacts(run_id, local, artifact_path)
    model_uri = f"runs:/{run_id}/{artifact_path}"
    if registered_model_name:
        import cairn

        cairn.register_model(model_uri, registered_model_name)
    return ModelInfo(
        model_uri=model_uri,
        artifact_path=artifact_path,
        run_id=run_id,
        flavors=mlmodel.flavors,
        signature=mlmodel.signature,
        model_uuid=mlmodel.model_uuid,
        utc_time_created=mlmodel.utc_time_created,
    )
