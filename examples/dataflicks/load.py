"""Entry point ``load_bad``: a partner feed appends listings in raw units (not normalized).

The rows are right in every other way (valid prices, the table's schema), so the write is
accepted: a new table version that the next scheduled retrain reads without complaint.
"""

from __future__ import annotations

import argparse

from listings import raw_listings

from cairn.data import write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, help="the listings Delta table")
    parser.add_argument("--batch", default="partner-feed")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    rows = raw_listings(args.rows, args.seed, batch=args.batch)  # the bug: normalize() skipped
    version = write_table(rows, args.table, mode="append")
    print(f"{args.batch}: appended {len(rows)} rows -> {args.table} version {version}")


if __name__ == "__main__":
    main()
