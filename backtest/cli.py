"""``python -m backtest <subcommand>``: a small registry of subcommands.

A subcommand is ``name -> (help, add_arguments(parser), run(args) -> exit code)``. To add
one, import its two functions here and add an entry to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from backtest import ensemble, report_command
from backtest.enhance import cli as enhance_cli

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

SUBCOMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "report": ("score factor files: IC, groups, top-k, correlations, styles -> HTML/JSON",
               report_command.add_arguments, report_command.run),
    "enhance": ("index-enhancement portfolio (cvxpy) vs csi300/500/1000 -> weights, NAV, HTML",
                enhance_cli.add_arguments, enhance_cli.run_command),
    "ensemble": ("output ensemble: mean of per-day z-scored factor files -> one factor file",
                 ensemble.add_arguments, ensemble.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backtest",
                                     description="Torch-free factor backtests.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, run) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns its exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return int(args._run(args))
