"""Models benchmark driver: scoring server, batch predict and Spark UDF, Cairn vs MLflow.

    .venv/bin/python bench/models.py                 # every part, full sizes
    .venv/bin/python bench/models.py --quick         # shorter runs, fewer repeats
    .venv/bin/python bench/models.py --only serve --json results.json

Each part lives in its own module (``models_serve``, ``models_predict``, ``models_spark``) and
measures both tools in the same run on the same model folder; this driver runs the chosen parts
in turn and prints one table of ratios. Exit status: 0 all targets met, 1 a target missed or the
tools' outputs disagreed, 2 a part failed to run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py, beside this script

if TYPE_CHECKING:
    from collections.abc import Sequence

PARTS = {"serve": "models_serve", "predict": "models_predict", "spark": "models_spark"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats")
    parser.add_argument(
        "--only", action="append", choices=sorted(PARTS), help="run only this part (repeatable)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    env = _harness.environment()
    print(
        f"Cairn {env['cairn']} ({env['cairn_commit'] or 'no git'}) vs MLflow {env['mlflow']} | "
        f"Python {env['python']} | {env['cpus']} CPUs | "
        f"load {env['load_average_at_start'][0]:.2f} | {'quick' if args.quick else 'full'} sizes",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    for part in args.only or list(PARTS):
        print(f"==> {part}", file=sys.stderr, flush=True)
        module = importlib.import_module(PARTS[part])  # bench/ is on sys.path as the script dir
        rows.extend(module.run(args.quick, verbose=not args.quiet))
    print()
    print(_harness.render_rows(rows))
    print()
    for row in rows:
        print(f"- {row['name']}: " + (row.get("method") or f"ERROR {row.get('error')}"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "quick": args.quick, "scenarios": rows}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    results = {row.get("result") for row in rows}
    if "ERROR" in results:
        return 2
    # INVALID: the two tools' outputs disagree, so the figure means nothing.
    return 1 if results & {"FAIL", "INVALID"} else 0


if __name__ == "__main__":
    sys.exit(main())
