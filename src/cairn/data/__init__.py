"""Versioned Delta tables with run lineage.

``write_table`` / ``read_table`` / ``history`` / ``restore`` / ``diff`` over delta-rs, and
``read_table_spark`` for a Spark DataFrame of a version; reads and writes inside a run are
recorded on it, so a model can be traced back to the exact table versions it was trained on.
``deltalake`` and ``pyspark`` load on first use, not on ``import cairn.data``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Commit",
    "TableDiff",
    "TableInput",
    "TableSnapshot",
    "diff",
    "history",
    "log_input",
    "read_table",
    "read_table_spark",
    "restore",
    "table_info",
    "table_inputs",
    "write_table",
]

_LAZY = {
    "Commit": "cairn.data.tables",
    "TableDiff": "cairn.data.diff",
    "TableInput": "cairn.data.lineage",
    "TableSnapshot": "cairn.data.snapshot",
    "diff": "cairn.data.diff",
    "history": "cairn.data.tables",
    "log_input": "cairn.data.lineage",
    "read_table": "cairn.data.tables",
    "read_table_spark": "cairn.data.spark",
    "restore": "cairn.data.tables",
    "table_info": "cairn.data.tables",
    "table_inputs": "cairn.data.lineage",
    "write_table": "cairn.data.tables",
}

if TYPE_CHECKING:
    from cairn.data.diff import TableDiff, diff
    from cairn.data.lineage import TableInput, log_input, table_inputs
    from cairn.data.snapshot import TableSnapshot
    from cairn.data.spark import read_table_spark
    from cairn.data.tables import (
        Commit,
        history,
        read_table,
        restore,
        table_info,
        write_table,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cairn.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


# ``diff`` names both a submodule and the function it defines. Importing the submodule anywhere
# (``from cairn.data.diff import TableDiff``) rebinds the package attribute to the module, and
# ``cairn.data.diff(...)`` then fails; bound here once, after that import, the function stays.
from cairn.data.diff import diff  # noqa: E402
