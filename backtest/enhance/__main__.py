"""``python -m backtest.enhance ...``: the ``enhance`` subcommand on its own."""

import sys

from backtest.enhance.cli import main

sys.exit(main())
