"""``python -m backtest report --factors F.parquet --data auto --out runs/backtest``."""

import sys

from backtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
