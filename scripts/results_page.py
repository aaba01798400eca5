"""Write a results page (markdown + copied plots) from a backtest report and rolling runs.

``python scripts/results_page.py --report runs/cn_reproduction/report
--experiments runs/cn_reproduction/experiments/* --intro docs/_reproduction_intro.md
--out docs/reproduction.md --img docs/img/reproduction``

Everything numeric comes from the backtest report's ``results.json`` (written by
``python -m backtest report``) and the experiments' ``summary.json``: Rank IC / ICIR / win
rate at 10 and 20 days per universe, the model correlation matrix, the top-group
portfolio per universe, the style exposures, and the rolling tables. The intro file holds
the hand-written part (setup, commands, comparison with the report); ``{tables}`` in it is
replaced by the generated tables. Plots are copied (PNG only: numbers and figures, never
market data).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rolling_tables import tables as rolling_tables  # noqa: E402


def _fmt(v, pct: bool = False) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:.1%}" if pct else f"{v:.3f}"


def ic_table(res: dict, horizons=(10, 20)) -> str:
    rows = [r for r in res["tables"]["ic_summary"] if r["metric"] == "rank_ic"]
    factors = list(dict.fromkeys(r["factor"] for r in rows))
    universes = list(dict.fromkeys(r["universe"] for r in rows))
    head = "| universe | factor | " + " | ".join(
        f"Rank IC {h}d | ICIR {h}d | win {h}d" for h in horizons) + " |"
    out = [head, "|---|---|" + "---|---|---|" * len(horizons)]
    for u in universes:
        for f in factors:
            cells = []
            for h in horizons:
                r = next((x for x in rows if x["factor"] == f and x["universe"] == u
                          and x["horizon"] == h), None)
                cells += [_fmt(r and r["mean"]), _fmt(r and r["icir"]),
                          _fmt(r and r["win_rate"], pct=True)] if r else ["-"] * 3
            out.append(f"| {u} | {f} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def correlation_table(res: dict) -> str:
    rows = res["tables"].get("factor_correlation")
    if not rows:
        return "(one factor: no correlation matrix)"
    names = [r["factor"] for r in rows]
    out = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    out += [f"| {r['factor']} | " + " | ".join(_fmt(r[n]) for n in names) + " |" for r in rows]
    return "\n".join(out)


def groups_table(res: dict) -> str:
    out = ["| universe | factor | groups | top group ann. | top excess ann. | top Sharpe | "
           "top max DD | top IR | turnover | bottom ann. | universe EW ann. |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["tables"]["groups_summary"]:
        out.append(f"| {r['universe']} | {r['factor']} | {r['n_groups']} | "
                   f"{_fmt(r['top_ann_return'], True)} | {_fmt(r['top_ann_excess'], True)} | "
                   f"{_fmt(r['top_sharpe'])} | {_fmt(r['top_max_drawdown'], True)} | "
                   f"{_fmt(r['top_info_ratio'])} | {_fmt(r['top_turnover'], True)} | "
                   f"{_fmt(r['bottom_ann_return'], True)} | "
                   f"{_fmt(r['benchmark_ann_return'], True)} |")
    return "\n".join(out)


def style_table(res: dict) -> str:
    rows = res["tables"].get("style_exposure") or []
    if not rows:
        return "(styles not computed)"
    styles = list(dict.fromkeys(r["style"] for r in rows))
    factors = list(dict.fromkeys(r["factor"] for r in rows))
    out = ["| factor | " + " | ".join(styles) + " |", "|---|" + "---|" * len(styles)]
    for f in factors:
        vals = {r["style"]: r["exposure"] for r in rows if r["factor"] == f}
        out.append(f"| {f} | " + " | ".join(_fmt(vals.get(s)) for s in styles) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", required=True, type=Path)
    p.add_argument("--experiments", nargs="*", default=[], type=Path)
    p.add_argument("--intro", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--img", required=True, type=Path)
    p.add_argument("--plots", nargs="*", default=["cumulative_ic", "ic_decay",
                                                   "group_returns_all", "top_group_excess",
                                                   "yearly_excess", "style_exposure"])
    args = p.parse_args()
    res = json.loads((args.report / "results.json").read_text())
    args.img.mkdir(parents=True, exist_ok=True)
    rel = Path(os.path.relpath(args.img, args.out.parent))
    figures = []
    for name in args.plots:
        src = args.report / "plots" / f"{name}.png"
        if src.exists():
            shutil.copyfile(src, args.img / src.name)
            figures.append(f"![{name}]({rel.as_posix()}/{src.name})")
    parts = [
        "### Rank IC per universe (backtest report, `ic_summary`)", ic_table(res),
        "### Model correlation (mean daily rank correlation, `factor_correlation`)",
        correlation_table(res),
        "### Weekly group test (`groups_summary`; no costs)", groups_table(res),
        "### Style exposure (mean daily rank correlation with CNE5-style factors)",
        style_table(res),
        "### Rolling windows (each experiment's `summary.json`; Rank IC against the training "
        "label)", "\n\n".join(rolling_tables(e) for e in args.experiments) or "-",
        "### Figures (from the report's `plots/`)", "\n\n".join(figures) or "-",
        f"Backtest timings (s): `{json.dumps(res.get('timings_s', {}))}`"]
    text = args.intro.read_text().replace("{tables}", "\n\n".join(parts))
    args.out.write_text(text)
    print(f"wrote {args.out} and {len(figures)} figures in {args.img}")


if __name__ == "__main__":
    main()
