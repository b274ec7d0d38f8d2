"""The Dataflicks listings: how rows are generated, and the normalization the table expects.

The ``listings`` table holds one row per rental listing: features z-scored against the feature
store's reference statistics (``REFERENCE``), the nightly ``price`` in euros, and the ``batch``
(load) the row came from. Prices are a fixed linear function of the raw features plus noise, so
a linear model on normalized features predicts them to within the noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Feature -> (reference mean, reference standard deviation), in raw units.
REFERENCE = {
    "rooms": (3.0, 1.4),
    "area_m2": (78.0, 28.0),
    "distance_km": (3.0, 2.9),
    "rating": (4.4, 0.3),
    "age_years": (40.0, 23.0),
}
FEATURES = list(REFERENCE)
TARGET = "price"
NOISE_EUR = 10.0


def raw_listings(rows: int, seed: int, batch: str) -> pd.DataFrame:
    """``rows`` listings in raw units (rooms, m², km, stars, years) with their prices."""
    rng = np.random.default_rng(seed)
    rooms = np.clip(rng.poisson(2.0, rows) + 1, 1, 7).astype(float)
    area = np.clip(25 + 18 * rooms + rng.normal(0, 14, rows), 15, None).round(1)
    distance = np.clip(rng.exponential(3.0, rows), 0.1, 15).round(2)
    rating = np.clip(3 + 2 * rng.beta(5, 2, rows), 1, 5).round(2)
    age = rng.uniform(0, 80, rows).round(0)
    price = (
        150
        + 5 * rooms
        + 1.8 * area
        - 8 * distance
        + 40 * (rating - 4)
        - 0.5 * age
        + rng.normal(0, NOISE_EUR, rows)
    )
    return pd.DataFrame(
        {
            "rooms": rooms,
            "area_m2": area,
            "distance_km": distance,
            "rating": rating,
            "age_years": age,
            TARGET: price.round(2),
            "batch": batch,
        }
    )


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with every feature z-scored against ``REFERENCE`` (other columns unchanged)."""
    out = frame.copy()
    for name, (mean, std) in REFERENCE.items():
        out[name] = (out[name] - mean) / std
    return out
