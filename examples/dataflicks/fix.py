"""Entry point ``fix``: a corrected table version, the rows of one batch normalized.

Reads the latest version, z-scores the features of the rows that came in ``batch`` (they were
loaded in raw units) and overwrites the table: a new version; the bad one stays in the history.
"""

from __future__ import annotations

import argparse

import pandas as pd
from listings import normalize

from cairn.data import read_table, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, help="the listings Delta table")
    parser.add_argument("--batch", required=True, help="the batch loaded in raw units")
    args = parser.parse_args()

    table = read_table(args.table)
    bad = table["batch"] == args.batch
    if not bad.any():
        raise SystemExit(f"no rows of batch {args.batch!r} in {args.table}")
    fixed = pd.concat([table[~bad], normalize(table[bad])], ignore_index=True)
    version = write_table(fixed, args.table, mode="overwrite")
    print(f"normalized the {int(bad.sum())} rows of batch {args.batch!r} -> version {version}")


if __name__ == "__main__":
    main()
