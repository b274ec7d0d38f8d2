"""Entry point ``generate``: the listings table (normalized features) and a held-out set.

Both are Delta tables written with ``cairn.data.write_table``; run as a project, each write is
recorded as an output of the run, and each commit names the run that made it.
"""

from __future__ import annotations

import argparse

from listings import normalize, raw_listings

from cairn.data import write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", required=True, help="Delta table of training rows")
    parser.add_argument("--holdout", required=True, help="Delta table of held-out rows")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--holdout-rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    train = normalize(raw_listings(args.rows, args.seed, batch="initial"))
    version = write_table(train, args.listings, mode="overwrite")
    print(f"listings: {len(train)} normalized rows -> {args.listings} version {version}")
    holdout = normalize(raw_listings(args.holdout_rows, args.seed + 1, batch="holdout"))
    version = write_table(holdout, args.holdout, mode="overwrite")
    print(f"holdout: {len(holdout)} normalized rows -> {args.holdout} version {version}")


if __name__ == "__main__":
    main()
