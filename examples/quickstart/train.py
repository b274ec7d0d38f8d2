"""Quickstart: train a few regressors on generated data and track every run with Cairn.

Run it from any folder; runs land in that folder's ``.cairn/`` store (or $CAIRN_TRACKING_URI).
Then look at them with ``cairn runs list -e quickstart``. Every run logs its model; the best
one is registered as ``quickstart-regressor`` with the alias ``champion``, so it loads as
``models:/quickstart-regressor@champion``.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_regression
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

import cairn
import cairn.sklearn
from cairn.models.registry import RegistryClient

MODEL_NAME = "quickstart-regressor"


def train_ridge(alpha: float, X_train, X_test, y_train, y_test) -> tuple[float, str]:
    with cairn.start_run(run_name=f"ridge-alpha-{alpha}", nested=True):
        cairn.log_params({"model": "ridge", "alpha": alpha})
        model = Ridge(alpha=alpha).fit(X_train, y_train)
        return _evaluate(model, X_test, y_test)


def train_boosting(
    n_estimators: int, learning_rate: float, X_train, X_test, y_train, y_test
) -> tuple[float, str]:
    with cairn.start_run(run_name=f"gbr-{n_estimators}-{learning_rate}", nested=True):
        cairn.log_params(
            {"model": "gbr", "n_estimators": n_estimators, "learning_rate": learning_rate}
        )
        model = GradientBoostingRegressor(
            n_estimators=n_estimators, learning_rate=learning_rate, random_state=0
        ).fit(X_train, y_train)
        # A learning curve: the test error after each boosting stage, one metric step each.
        for step, y_stage in enumerate(model.staged_predict(X_test)):
            cairn.log_metric("stage_rmse", mean_squared_error(y_test, y_stage) ** 0.5, step=step)
        return _evaluate(model, X_test, y_test)


def _evaluate(model, X_test, y_test) -> tuple[float, str]:
    """Log metrics, a plot and the model; returns (rmse, model URI)."""
    predicted = model.predict(X_test)
    rmse = float(mean_squared_error(y_test, predicted) ** 0.5)
    cairn.log_metrics(
        {
            "rmse": rmse,
            "mae": float(mean_absolute_error(y_test, predicted)),
            "r2": float(r2_score(y_test, predicted)),
        }
    )
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.scatter(y_test, predicted, s=8)
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    cairn.log_figure(figure, "plots/predicted_vs_actual.png")
    plt.close(figure)
    cairn.log_dict({"test_rows": int(np.shape(y_test)[0])}, "eval/summary.json")
    info = cairn.sklearn.log_model(model, "model", input_example=X_test[:5])
    return rmse, info.model_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiment", default="quickstart")
    args = parser.parse_args()

    X, y = make_regression(n_samples=2000, n_features=20, noise=15.0, random_state=42)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    split = train_test_split(X, y, test_size=0.25, random_state=0)
    cairn.set_experiment(args.experiment)
    with cairn.start_run(run_name="sweep", description="Ridge and boosting sweep") as parent:
        results = [train_ridge(alpha, *split) for alpha in (0.1, 1.0, 10.0, 100.0)]
        results += [
            train_boosting(n_estimators, learning_rate, *split)
            for n_estimators, learning_rate in ((50, 0.1), (150, 0.05))
        ]
    print(f"Logged sweep {parent.info.run_id} with 6 child runs to {cairn.get_tracking_uri()}")

    best_rmse, best_uri = min(results)
    version = cairn.register_model(best_uri, MODEL_NAME)
    RegistryClient().set_registered_model_alias(MODEL_NAME, "champion", version.version)
    print(f"Registered {best_uri} (rmse {best_rmse:.2f}) as {MODEL_NAME} v{version.version}")


if __name__ == "__main__":
    main()
