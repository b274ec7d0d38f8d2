"""Locks the public surface and the promise that ``import cairn`` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cairn

SRC = Path(__file__).resolve().parents[1] / "src" / "cairn"


def test_public_names_are_locked() -> None:
    assert sorted(cairn.__all__) == sorted(
        [
            "ActiveRun",
            "TrackingClient",
            "__version__",
            "active_run",
            "create_experiment",
            "delete_tag",
            "download_artifacts",
            "end_run",
            "flush",
            "get_artifact_uri",
            "get_experiment",
            "get_experiment_by_name",
            "get_run",
            "get_tracking_uri",
            "list_artifacts",
            "log_artifact",
            "log_artifacts",
            "log_dict",
            "log_figure",
            "log_input",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "log_text",
            "register_model",
            "search_runs",
            "set_experiment",
            "set_tag",
            "set_tags",
            "set_tracking_uri",
            "start_run",
        ]
    )
    for name in cairn.__all__:
        assert getattr(cairn, name) is not None


def test_flavor_modules_resolve_lazily_from_a_bare_import() -> None:
    code = (
        "import sys, cairn\n"
        "assert 'cairn.sklearn' not in sys.modules\n"
        "print(cairn.sklearn.save_model.__module__, cairn.pyfunc.load_model.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.split() == ["cairn.models.flavors.sklearn", "cairn.models.pyfunc"]


def test_import_cairn_loads_nothing_heavy() -> None:
    code = (
        "import sys, cairn\n"
        "names = ('sqlalchemy', 'pandas', 'numpy', 'fsspec', 'alembic', 'rich', 'click')\n"
        "heavy = [m for m in names"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lower_layers_never_import_cli_or_server() -> None:
    lower = ["tracking", "models", "projects", "data", "entities.py", "errors.py", "_config.py"]
    offenders = []
    for part in lower:
        target = SRC / part
        files = [target] if target.is_file() else sorted(target.rglob("*.py"))
        for path in files:
            for name in _imports(path):
                if name.startswith(("cairn.cli", "cairn.server")):
                    offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


def test_sqlalchemy_only_in_sql_store_package() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(n.split(".")[0] in ("sqlalchemy", "alembic") for n in _imports(path))
        and "stores/sql" not in path.as_posix()
    ]
    assert offenders == []
