"""Market-side arrays of the backtest cached beside the panel cache (opt-in).

Everything the tests compute from the market alone — forward-filled prices, tradability
masks, trade prices, forward returns and their row sorts, style exposures — is the same
for every factor scored on that market. With ``--cache-dir`` (the panel cache) the report
stores them as ``.npy`` files under ``<panel cache>/derived/<code version>/`` and later
reports memory-map them instead of recomputing them.

The code version is a hash of the source of every module that computes these arrays, so
any change to a definition starts a fresh directory (the older ones are deleted when a
new one is created). Writes go to a temporary directory renamed into place: an
interrupted run leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# modules whose code defines the cached arrays (a change to any of them invalidates all)
DEFINING_MODULES = ("market.tradability", "market.returns", "backtest.context",
                    "backtest.portfolio", "backtest.jit", "backtest.kernels",
                    "backtest.styles", "backtest.market_cache")


def code_version() -> str:
    """First 16 hex digits of the SHA-1 of the defining modules' source files (every
    ``.py`` file of a package)."""
    digest = hashlib.sha1()
    for name in DEFINING_MODULES:
        path = Path(importlib.import_module(name).__file__)
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
        for f in files:
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


class MarketCache:
    """``get(name, compute)``: named groups of arrays, memory-mapped once stored.

    root: ``<panel cache>/derived``; entries live under ``root/<code_version()>/<name>/``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dir = self.root / code_version()
        self.hits: list[str] = []
        self.misses: list[str] = []

    def get(self, name: str, compute: Callable[[], Mapping[str, np.ndarray]]
            ) -> dict[str, np.ndarray]:
        """The arrays stored under ``name`` (read-only memory maps), computing and storing
        them first when absent."""
        path = self.dir / name
        if (path / "complete").exists():  # lists the keys in their original order
            self.hits.append(name)
            keys = (path / "complete").read_text().split()
            return {k: np.load(path / f"{k}.npy", mmap_mode="r") for k in keys}
        self.misses.append(name)
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        self._store(path, arrays)
        return arrays

    def _store(self, path: Path, arrays: Mapping[str, np.ndarray]) -> None:
        if not self.dir.exists():
            self._drop_old_versions()
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=self.dir))
        try:
            for key, arr in arrays.items():
                if not key.isidentifier():
                    raise ValueError(f"market cache key {key!r} is not a plain name")
                np.save(tmp / f"{key}.npy", arr)
            (tmp / "complete").write_text("\n".join(arrays))
            tmp.rename(path)
        except OSError as err:  # another process stored it first, or a read-only cache
            log.warning("market cache: could not store %s (%s)", path, err)
            shutil.rmtree(tmp, ignore_errors=True)

    def _drop_old_versions(self) -> None:
        if not self.root.is_dir():
            return
        for old in self.root.iterdir():
            if old.is_dir() and old.name != self.dir.name:
                log.info("market cache: removing %s (older code version)", old)
                shutil.rmtree(old, ignore_errors=True)


__all__ = ["DEFINING_MODULES", "MarketCache", "code_version"]
