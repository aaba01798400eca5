"""Typed market sources for configs (``class_path`` in YAML) and the panel cache.

A source says where a market comes from; :func:`load_panel` turns it into a dense
:class:`~market.panel.Panel`, cached under ``cache_dir/<key hash>/`` as memory-mappable
``.npy`` files so later runs skip parsing and validation.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

from market.panel import Panel
from market.schema import MarketData

log = logging.getLogger(__name__)


class MarketSource(ABC):
    """Where a market comes from."""

    @abstractmethod
    def load(self) -> MarketData:
        """Read (or generate) the market in canonical long form."""

    @abstractmethod
    def key(self) -> str:
        """A string identifying the data exactly (cache key, factor metadata)."""


class SyntheticMarket(MarketSource):
    """The built-in synthetic A-share-like market (docs/synthetic_market.md).

    Args:
        n_stocks: number of stocks ever listed.
        n_days: number of trading days.
        seed: generator seed; the same seed gives the same market.
        first_day: first trading day (ISO date).
    """

    def __init__(self, n_stocks: int = 500, n_days: int = 1250, seed: int = 0,
                 first_day: str = "2015-01-05") -> None:
        self.n_stocks, self.n_days, self.seed, self.first_day = n_stocks, n_days, seed, first_day

    def load(self) -> MarketData:
        from market.synthetic import generate_market

        return generate_market(n_stocks=self.n_stocks, n_days=self.n_days, seed=self.seed,
                               start=self.first_day)

    def key(self) -> str:
        return f"synthetic(n_stocks={self.n_stocks},n_days={self.n_days},seed={self.seed}," \
               f"start={self.first_day})"


class MarketDirectory(MarketSource):
    """A directory in the documented long layout (``bars/``, ``membership/``, ...).

    Args:
        root: the directory (see README, "Data schema").
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def load(self) -> MarketData:
        from market.io import read_market_dir

        return read_market_dir(self.root)

    def key(self) -> str:
        return f"dir:{Path(self.root).resolve()}"


class CNSharedMarket(MarketSource):
    """The real A-share data layout of ``../shared/data`` (2010-2019).

    Args:
        root: data directory; None = env ``DEEPFACTOR_CN_DATA`` or ``../shared/data``.
        start: first date to read (ISO), None = all.
        end: last date to read (ISO), None = all.
        industry: industry map to join (CSRC divisions or tushare industries).
    """

    def __init__(self, root: str | None = None, start: str | None = None,
                 end: str | None = None,
                 industry: Literal["csrc", "csrc_section", "tushare", "none"] = "csrc") -> None:
        self.root, self.start, self.end, self.industry = root, start, end, industry

    def _root(self) -> Path:
        from market.cn_shared import default_cn_shared_root

        root = Path(self.root) if self.root else default_cn_shared_root()
        if root is None or not root.is_dir():
            raise FileNotFoundError(f"CN data directory not found: {self.root!r} (set "
                                    "DEEPFACTOR_CN_DATA or pass root)")
        return root

    def load(self) -> MarketData:
        from market.cn_shared import read_cn_shared

        return read_cn_shared(self._root(), start=self.start, end=self.end,
                              industry=self.industry)

    def key(self) -> str:
        return f"cn_shared:{self._root().resolve()}:{self.start}:{self.end}:{self.industry}"


def cache_path(source: MarketSource, cache_dir: str | Path) -> Path:
    """``cache_dir/<sha1(source.key())[:16]>``: where :func:`load_panel` caches ``source``."""
    return Path(cache_dir) / hashlib.sha1(source.key().encode()).hexdigest()[:16]


def load_panel(source: MarketSource, cache_dir: str | None = None) -> Panel:
    """Build the source's panel, or load it from ``cache_dir`` when cached."""
    if cache_dir is None:
        return Panel.from_market(source.load())
    path = cache_path(source, cache_dir)
    if (path / "meta.json").exists():
        log.info("loading cached panel %s for %s", path, source.key())
        return Panel.load(path)
    panel = Panel.from_market(source.load())
    panel.save(path)
    (path / "source.txt").write_text(source.key())
    log.info("cached panel for %s at %s", source.key(), path)
    return panel


def __getattr__(name: str) -> type:
    if name == "QlibMarket":  # defined in market.qlib, which imports this module
        from market.qlib import QlibMarket

        return QlibMarket
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
