"""Entry point ``train``: a ridge regression of the nightly price on the listings table.

Reads the training table and the held-out table with ``cairn.data.read_table`` (inside the run,
so both table versions are recorded as its inputs), logs the error on the held-out set, logs the
model with its signature, registers it as the next version of ``--model-name`` and, the first
time (or with ``--promote yes``), points the ``champion`` alias at it.
"""

from __future__ import annotations

import argparse

import numpy as np
from listings import FEATURES, TARGET
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

import cairn
import cairn.sklearn
from cairn.data import read_table, table_inputs
from cairn.data.delta import normalize_uri
from cairn.errors import NotFoundError
from cairn.models import infer_signature
from cairn.models.registry import RegistryClient

CHAMPION = "champion"


def _version_read(run_id: str, uri: str) -> int:
    """The version of ``uri`` this run recorded as read (the latest, or a reproduce pin)."""
    target = normalize_uri(uri)
    for item in table_inputs(cairn.get_run(run_id)):
        if item.role == "input" and item.uri == target:
            return item.version
    raise RuntimeError(f"run {run_id} recorded no read of {target}")


def _promote(client: RegistryClient, name: str, version: str, promote: str) -> bool:
    if promote == "no":
        return False
    if promote == "auto":
        try:
            client.get_model_version_by_alias(name, CHAMPION)
            return False  # a champion exists: moving it is a decision, not a side effect
        except NotFoundError:
            pass
    client.set_registered_model_alias(name, CHAMPION, version)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, help="the listings Delta table")
    parser.add_argument("--holdout", required=True, help="the held-out Delta table")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--model-name", default="dataflicks-pricing")
    parser.add_argument("--promote", choices=["auto", "yes", "no"], default="auto")
    args = parser.parse_args()

    with cairn.start_run() as run:
        run_id = run.info.run_id
        train = read_table(args.table, columns=[*FEATURES, TARGET])
        holdout = read_table(args.holdout, columns=[*FEATURES, TARGET])
        version = _version_read(run_id, args.table)
        cairn.log_params(
            {
                "data_version": version,
                "train_rows": len(train),
            }
        )

        model = Ridge(alpha=args.alpha).fit(train[FEATURES], train[TARGET])
        predicted = model.predict(holdout[FEATURES])
        metrics = {
            "mae": float(mean_absolute_error(holdout[TARGET], predicted)),
            "rmse": float(np.sqrt(mean_squared_error(holdout[TARGET], predicted))),
            "r2": float(r2_score(holdout[TARGET], predicted)),
        }
        cairn.log_metrics(metrics)
        signature = infer_signature(train[FEATURES], model.predict(train[FEATURES]))
        info = cairn.sklearn.log_model(
            model, "model", signature=signature, input_example=holdout[FEATURES].head(3)
        )

    client = RegistryClient()
    registered = client.register_model(
        info.model_uri,
        args.model_name,
        tags={"mae": f"{metrics['mae']:.2f}", "data_version": str(version)},
    )
    promoted = _promote(client, args.model_name, registered.version, args.promote)
    print(
        f"trained on {args.table} version {version} ({len(train)} rows): "
        f"holdout mae {metrics['mae']:.2f}, rmse {metrics['rmse']:.2f}, r2 {metrics['r2']:.3f}"
    )
    print(
        f"registered {args.model_name} version {registered.version}"
        + (f", alias {CHAMPION} -> version {registered.version}" if promoted else "")
    )


if __name__ == "__main__":
    main()
