"""Build a market's dense panel once and cache it memory-mappable (``python -m market``).

    python -m market convert --source synthetic --out .cache/panels
    python -m market convert --source synthetic:n_stocks=300,n_days=500,seed=1 --out ...
    python -m market convert --source cn_shared --out .cache/panels   # ../shared/data
    python -m market convert --source cn_shared:/data/cn --start 2015-01-01 --out ...
    python -m market convert --source qlib:~/.qlib/qlib_data/cn_data --out ...
    python -m market convert --source dir:/data/my_market --out ...
    python -m market info .cache/panels      # every cached panel there, or one panel dir

The panel is written to ``<out>/<hash of the source key>/`` (``Panel.save``: one ``.npy``
per array + ``meta.json``, plus ``source.txt``): the layout of
:func:`market.sources.load_panel`, so ``--data.cache_dir=<out>`` picks it up as it is.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from market.panel import Panel
from market.qlib import QlibMarket
from market.sources import (CNSharedMarket, MarketDirectory, MarketSource, SyntheticMarket,
                            cache_path)

SOURCE_KINDS = ("synthetic", "cn_shared", "qlib", "dir")


def parse_source(spec: str, start: str | None = None, end: str | None = None,
                 industry: str = "csrc") -> MarketSource:
    """A source from ``synthetic[:k=v,...]``, ``cn_shared[:root]``, ``qlib:<root>``, ``dir:<root>``.

    start/end (ISO dates) apply to cn_shared and qlib; industry (csrc, csrc_section,
    tushare, none) to cn_shared. Synthetic options: n_stocks, n_days, seed (ints), start.
    """
    kind, _, arg = spec.partition(":")
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source {spec!r}: use one of synthetic[:n_stocks=..,n_days=..,"
                         f"seed=..], cn_shared[:root], qlib:<root>, dir:<root>")
    if kind in ("synthetic", "dir") and (start or end):
        raise ValueError(f"--start/--end apply to cn_shared and qlib sources, not {kind}")
    if kind == "synthetic":
        return SyntheticMarket(**_synthetic_options(arg))
    if kind == "cn_shared":
        return CNSharedMarket(root=arg or None, start=start, end=end,
                              industry=industry)  # type: ignore[arg-type]
    if not arg:
        raise ValueError(f"source {kind!r} needs a directory: {kind}:<root>")
    return QlibMarket(arg, start=start, end=end) if kind == "qlib" else MarketDirectory(arg)


def _synthetic_options(arg: str) -> dict[str, int | str]:
    allowed = {"n_stocks": int, "n_days": int, "seed": int, "start": str}
    out: dict[str, int | str] = {}
    for item in filter(None, arg.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise ValueError(f"synthetic option {item!r}: use key=value with key in "
                             f"{list(allowed)}")
        try:
            out[key] = allowed[key](value)
        except ValueError as exc:
            raise ValueError(f"synthetic option {key}={value!r} is not an integer") from exc
    return out




@dataclass
class Conversion:
    """The outcome of :func:`convert`: the panel (memory-mapped), its folder and timings (s)."""

    panel: Panel
    path: Path
    cached: bool
    seconds: dict[str, float] = field(default_factory=dict)


def convert(source: MarketSource, out: str | Path, force: bool = False) -> Conversion:
    """Read ``source``, build its panel, save it under :func:`cache_path`, reload it (mmap).

    An existing panel is kept (``cached=True``, only reloaded) unless ``force``. Timings:
    ``read`` (source to long bars), ``build`` (``Panel.from_market``), ``save`` and
    ``reload`` (``Panel.load`` memory-mapped), wall-clock seconds.
    """
    path, seconds = cache_path(source, out), {}
    cached = (path / "meta.json").exists() and not force
    if not cached:
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        market = source.load()
        t1 = time.perf_counter()
        panel = Panel.from_market(market)
        t2 = time.perf_counter()
        panel.save(path)
        (path / "source.txt").write_text(source.key())
        seconds = {"read": t1 - t0, "build": t2 - t1, "save": time.perf_counter() - t2}
        del market, panel
    t0 = time.perf_counter()
    panel = Panel.load(path, mmap=True)
    seconds["reload"] = time.perf_counter() - t0
    return Conversion(panel, path, cached, seconds)


def describe(panel: Panel, path: Path | None = None) -> str:
    """A human summary: shape, dates, valid share, fields, universes, indices, report, size."""
    d, s = panel.shape
    valid = int(np.asarray(panel.valid).sum())
    lines = [f"shape      {d} days x {s} stocks ({panel.dates[0]} .. {panel.dates[-1]})",
             f"valid      {valid:,} stock-days with a traded bar ({valid / max(d * s, 1):.1%} "
             f"of the grid)",
             f"fields     {', '.join(sorted(panel.fields))}",
             f"size       market cap known on {_share_known(panel):.1%} of the traded stock-days"
             " (size groups and size neutralization need total_shares)",
             "universes  " + (", ".join(f"{k} ({np.asarray(v).sum(1).mean():.0f}/day)"
                                        for k, v in sorted(panel.universes.items())) or "none"),
             f"indices    {panel.index_codes or 'none'}",
             f"industries {len(panel.industry_names)} buckets (incl. unknown)",
             "report     " + ", ".join(f"{k}={v:,}" for k, v in panel.report.items())]
    if path is not None:
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        source = (path / "source.txt").read_text() if (path / "source.txt").exists() else "?"
        lines = [f"path       {path}", f"source     {source}", *lines,
                 f"disk       {size / 2**20:,.1f} MiB"]
    return "\n".join(lines)


def _share_known(panel: Panel) -> float:
    valid = np.asarray(panel.valid)
    return float(np.isfinite(np.asarray(panel["total_shares"])[valid]).mean()) if valid.any() \
        else 0.0


def info(path: str | Path) -> str:
    """:func:`describe` for one panel folder, or for every panel folder inside ``path``."""
    p = Path(path)
    if (p / "meta.json").exists():
        return describe(Panel.load(p), p)
    found = sorted(d for d in p.iterdir() if (d / "meta.json").exists()) if p.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no cached panel in {p} (no meta.json there or one level down)")
    return "\n\n".join(describe(Panel.load(d), d) for d in found)
