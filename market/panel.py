"""Dense ``[day, stock]`` panel built once from canonical long bars, cached, memory-mappable.

Every compute path (features, labels, backtest) reads these arrays, never the long
frame: no per-stock Python loops, windows are strided views over them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from market.schema import MarketData, validate_bars, validate_membership

PRICE_FIELDS = ("open", "high", "low", "close", "vwap", "preclose")
FLOAT_FIELDS = (*PRICE_FIELDS, "volume", "amount", "total_shares", "float_shares", "adj_close")
UNKNOWN_INDUSTRY = "unknown"


@dataclass
class Panel:
    """Dense market panel.

    dates: [D] datetime64[D] trading calendar (union of all bar dates).
    codes: [S] stock codes, sorted.
    fields: name -> [D, S] float arrays, NaN where the stock has no bar. Prices raw CNY
        (float32 except ``adj_close``, float64: back-adjusted close, total-return index
        in price units of the stock's first bar); ``preclose`` is the exchange previous
        close (or the previous bar's close when the source had none).
    valid: [D, S] bool, the stock has a bar with volume > 0 (else suspended / not listed).
    listed: [D, S] bool, between the stock's first and last bar (inclusive).
    is_st: [D, S] bool.
    industry: [D, S] int16 index into ``industry_names`` (the ``unknown`` bucket included).
    universes: name -> [D, S] bool point-in-time membership.
    index_close: index code -> [D] float64 levels (NaN where absent).
    index_codes: universe name -> index code.
    report: counts of documented data handling (fills, fallbacks), for the run log.
    """

    dates: np.ndarray
    codes: np.ndarray
    fields: dict[str, np.ndarray]
    valid: np.ndarray
    listed: np.ndarray
    is_st: np.ndarray
    industry: np.ndarray
    industry_names: list[str]
    universes: dict[str, np.ndarray] = field(default_factory=dict)
    index_close: dict[str, np.ndarray] = field(default_factory=dict)
    index_codes: dict[str, str] = field(default_factory=dict)
    report: dict[str, int] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dates), len(self.codes)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]

    def market_cap(self, free_float: bool = False) -> np.ndarray:
        """[D, S] close * shares (total by default), NaN where unknown."""
        shares = self.fields["float_shares" if free_float else "total_shares"]
        return self.fields["close"].astype(np.float64) * shares

    def date_index(self, date: str | np.datetime64, side: str = "left") -> int:
        """Index of the first trading day >= date (side='left') or > date ('right')."""
        return int(np.searchsorted(self.dates, np.datetime64(date, "D"), side=side))

    @classmethod
    def from_market(cls, market: MarketData) -> "Panel":
        """Validate ``market.bars`` and build the dense panel."""
        bars = validate_bars(market.bars, market.source)
        dates = np.sort(bars["date"].unique().to_numpy()).astype("datetime64[D]")
        codes = np.sort(bars["code"].unique().to_numpy().astype(str))
        di = np.searchsorted(dates, bars["date"].to_numpy().astype("datetime64[D]"))
        si = bars["code"].replace_strict(codes.tolist(), list(range(len(codes))),
                                         return_dtype=pl.Int32).to_numpy()
        shape, report = (len(dates), len(codes)), {}
        fields = {name: _dense(bars, name, di, si, shape) for name in
                  ("open", "high", "low", "close", "volume", "amount", "vwap", "preclose",
                   "total_shares", "float_shares", "adj_factor") if name in bars.columns}
        has_bar = np.zeros(shape, bool)
        has_bar[di, si] = True
        valid = has_bar & (np.nan_to_num(fields["volume"]) > 0)
        report["zero_volume_bars"] = int((has_bar & ~valid).sum())
        listed = _listed(has_bar)
        _fill_vwap(fields, valid, report)
        _fill_preclose(fields, has_bar)
        fields["adj_close"] = _adjusted_close(fields, has_bar)
        fields.pop("adj_factor", None)
        for name in ("total_shares", "float_shares"):
            fields.setdefault(name, np.full(shape, np.nan, np.float32))
        is_st = np.zeros(shape, bool)
        if "is_st" in bars.columns:
            is_st[di, si] = bars["is_st"].fill_null(False).to_numpy()
        industry, names = _industry(bars, di, si, has_bar, listed, report)
        universes = {name: membership_mask(validate_membership(m, f"{market.source}:{name}"),
                                           dates, codes)
                     for name, m in market.memberships.items()}
        index_close = _index_levels(market.index_close, dates)
        return cls(dates, codes, fields, valid, listed, is_st, industry, names, universes,
                   index_close, dict(market.index_codes), report)

    def save(self, directory: str | Path) -> None:
        """Write one ``.npy`` per array plus ``meta.json`` (atomic per file)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays = {"dates": self.dates.astype("int64"), "codes": self.codes.astype("U"),
                  "valid": self.valid, "listed": self.listed, "is_st": self.is_st,
                  "industry": self.industry,
                  **{f"field__{k}": v for k, v in self.fields.items()},
                  **{f"universe__{k}": v for k, v in self.universes.items()},
                  **{f"index__{k}": v for k, v in self.index_close.items()}}
        for name, arr in arrays.items():
            tmp = d / f".{name}.tmp.npy"
            np.save(tmp, arr)
            tmp.replace(d / f"{name}.npy")
        meta = {"industry_names": self.industry_names, "index_codes": self.index_codes,
                "report": self.report, "arrays": sorted(arrays)}
        tmp = d / ".meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(d / "meta.json")

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "Panel":
        """Load a panel written by :meth:`save` (memory-mapped by default)."""
        d = Path(directory)
        meta = json.loads((d / "meta.json").read_text())
        mode = "r" if mmap else None
        arr = {n: np.load(d / f"{n}.npy", mmap_mode=mode) for n in meta["arrays"]}

        def group(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: v for k, v in arr.items() if k.startswith(prefix)}

        return cls(np.asarray(arr["dates"]).astype("datetime64[D]"),
                   np.asarray(arr["codes"]).astype(str), group("field__"), arr["valid"],
                   arr["listed"], arr["is_st"], arr["industry"], meta["industry_names"],
                   group("universe__"), group("index__"), meta["index_codes"], meta["report"])


def _dense(bars: pl.DataFrame, name: str, di: np.ndarray, si: np.ndarray,
           shape: tuple[int, int]) -> np.ndarray:
    dtype = np.float64 if name in ("adj_factor", "preclose", "close") else np.float32
    out = np.full(shape, np.nan, dtype)
    out[di, si] = bars[name].cast(pl.Float64).to_numpy()
    return out


def _listed(has_bar: np.ndarray) -> np.ndarray:
    ever = np.maximum.accumulate(has_bar, axis=0)
    later = np.maximum.accumulate(has_bar[::-1], axis=0)[::-1]
    return ever & later


def _fill_vwap(fields: dict[str, np.ndarray], valid: np.ndarray, report: dict[str, int]) -> None:
    """vwap: given > amount/volume > typical price (OHLC mean), the last counted."""
    vwap = fields.get("vwap")
    if vwap is None:
        vwap = np.full(valid.shape, np.nan, np.float32)
    if "amount" in fields:
        with np.errstate(divide="ignore", invalid="ignore"):
            derived = fields["amount"] / fields["volume"]
        vwap = np.where(np.isnan(vwap) & valid, derived, vwap)
    typical = (fields["open"] + fields["high"] + fields["low"] + fields["close"]) / 4
    fallback = valid & ~np.isfinite(vwap)
    report["vwap_from_ohlc_mean"] = int(fallback.sum())
    vwap = np.where(fallback, typical, vwap)
    # amount/volume outside [low, high] means inconsistent units: clip into the bar's range
    clipped = valid & ((vwap < fields["low"]) | (vwap > fields["high"]))
    report["vwap_clipped_to_range"] = int(clipped.sum())
    fields["vwap"] = np.clip(vwap, fields["low"], fields["high"]).astype(np.float32)


def _fill_preclose(fields: dict[str, np.ndarray], has_bar: np.ndarray) -> None:
    """Where the source had no preclose, use the previous bar's close (no corporate actions)."""
    close = fields["close"]
    idx = np.where(has_bar, np.arange(close.shape[0])[:, None], -1)
    last = np.maximum.accumulate(idx, axis=0)
    prev = np.vstack([np.full((1, close.shape[1]), -1), last[:-1]])
    prev_close = np.where(prev >= 0, np.take_along_axis(close, np.maximum(prev, 0), 0), np.nan)
    pre = fields.get("preclose")
    fields["preclose"] = prev_close if pre is None else np.where(np.isnan(pre), prev_close, pre)


def _adjusted_close(fields: dict[str, np.ndarray], has_bar: np.ndarray) -> np.ndarray:
    """Back-adjusted close: Qlib factor if given, else chained close/preclose total returns."""
    close = fields["close"].astype(np.float64)
    if "adj_factor" in fields and not np.isnan(fields["adj_factor"][has_bar]).any():
        return close * fields["adj_factor"]
    with np.errstate(divide="ignore", invalid="ignore"):
        logret = np.log(close / fields["preclose"])
    logret = np.where(has_bar & np.isfinite(logret), logret, 0.0)
    first = has_bar & ~np.vstack([np.zeros((1, has_bar.shape[1]), bool),
                                  np.maximum.accumulate(has_bar, axis=0)[:-1]])
    logret[first] = 0.0
    base = np.nanmax(np.where(first, close, np.nan), axis=0)
    adj = base * np.exp(np.cumsum(logret, axis=0))
    return np.where(has_bar, adj, np.nan)


def _industry(bars: pl.DataFrame, di: np.ndarray, si: np.ndarray, has_bar: np.ndarray,
              listed: np.ndarray, report: dict[str, int]) -> tuple[np.ndarray, list[str]]:
    shape = has_bar.shape
    if "industry" in bars.columns:
        col = bars["industry"].fill_null(UNKNOWN_INDUSTRY)
        col = pl.select(pl.when(col == "").then(pl.lit(UNKNOWN_INDUSTRY)).otherwise(col)).to_series()
    else:
        col = pl.Series([UNKNOWN_INDUSTRY] * len(bars))
    names = sorted(set(col.unique().to_list()) | {UNKNOWN_INDUSTRY})
    out = np.full(shape, names.index(UNKNOWN_INDUSTRY), np.int16)
    out[di, si] = col.replace_strict(names, list(range(len(names))),
                                     return_dtype=pl.Int16).to_numpy()
    # a suspended day keeps the stock's last known industry
    idx = np.where(has_bar, np.arange(shape[0])[:, None], 0)
    out = np.take_along_axis(out, np.maximum.accumulate(idx, axis=0), 0)
    unknown = listed & (out == names.index(UNKNOWN_INDUSTRY))
    report["stock_days_unknown_industry"] = int(unknown.sum())
    return out, names


def membership_mask(intervals: pl.DataFrame, dates: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """[D, S] bool from ``code, start, end`` intervals (inclusive); unknown codes ignored."""
    mask = np.zeros((len(dates) + 1, len(codes)), np.int32)
    code_arr = intervals["code"].to_numpy().astype(str)
    si = np.searchsorted(codes, code_arr)
    known = (si < len(codes)) & (codes[np.minimum(si, len(codes) - 1)] == code_arr)
    start = np.searchsorted(dates, intervals["start"].to_numpy().astype("datetime64[D]"), "left")
    end = np.searchsorted(dates, intervals["end"].to_numpy().astype("datetime64[D]"), "right")
    np.add.at(mask, (start[known], si[known]), 1)
    np.add.at(mask, (end[known], si[known]), -1)
    return np.cumsum(mask, axis=0)[:-1] > 0


def _index_levels(index_close: pl.DataFrame | None, dates: np.ndarray) -> dict[str, np.ndarray]:
    if index_close is None:
        return {}
    out = {}
    for (code,), grp in index_close.group_by("index_code"):
        levels = np.full(len(dates), np.nan)
        d = grp["date"].to_numpy().astype("datetime64[D]")
        pos = np.searchsorted(dates, d)
        ok = (pos < len(dates)) & (dates[np.minimum(pos, len(dates) - 1)] == d)
        levels[pos[ok]] = grp["close"].to_numpy()[ok]
        out[str(code)] = levels
    return out
