"""Markdown tables of rolling experiments from their ``summary.json`` (for the docs pages).

``python scripts/rolling_tables.py runs/rolling_synthetic/experiments/{gru_ic,decompgru_ic}``

Per experiment: each cell's best epoch, validation and test Rank IC (against the training
label: the DataModule's neutralized, standardized 10-day forward return) and seconds; then
the seed ensemble's Rank IC per test year and over all years, with its ICIR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def tables(root: Path) -> str:
    summary = json.loads((root / "summary.json").read_text())
    lines = [f"**{root.name}**", "",
             "| window | seed | best epoch | val Rank IC | test Rank IC | test ICIR | seconds |",
             "|---|---|---|---|---|---|---|"]
    for c in summary["cells"]:
        lines.append(f"| {c['year']} | {c['seed']} | {c.get('best_epoch')} | "
                     f"{c.get('best_val_rank_ic', float('nan')):.4f} | "
                     f"{c['test/rank_ic']:.4f} | {c['test/rank_icir']:.2f} | "
                     f"{c.get('seconds', float('nan')):.0f} |")
    ic = summary["rank_ic"]
    cols = sorted(ic["all"], key=lambda k: (k != "score", k))
    names = ["ensemble" if k == "score" else k.replace("score_", "") for k in cols]
    years = sorted(k for k in ic if k.isdigit())
    lines += ["", "| factor | " + " | ".join(years) + " | all years | ICIR |",
              "|---|" + "---|" * (len(years) + 2)]
    for col, name in zip(cols, names):
        lines.append(f"| {name} | " + " | ".join(f"{ic[y][col]:.4f}" for y in years)
                     + f" | {ic['all'][col]:.4f} | {ic['all_icir'][col]:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(tables(Path(p)) for p in sys.argv[1:]))
