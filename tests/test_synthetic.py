"""Tests of the synthetic market generator: contracts, frictions, stylized facts, signals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from market.panel import Panel
from market.schema import validate_bars
from market.synthetic import SyntheticMarketData, generate_market, oracle_factor, oracle_scores
from market.synthetic_measure import daily_rank_ic, hand_factor, history_mask, neutralized_label
from market.synthetic_universe import UNIVERSES

TICK_TOL = 0.005 + 1e-9  # a limit price is preclose * (1 +- limit) rounded to 0.01 CNY


@pytest.fixture(scope="module")
def market() -> SyntheticMarketData:
    return generate_market(n_stocks=300, n_days=750, seed=3)


@pytest.fixture(scope="module")
def panel(market: SyntheticMarketData) -> Panel:
    return Panel.from_market(market)


@pytest.fixture(scope="module")
def bars(market: SyntheticMarketData) -> pl.DataFrame:
    """Bars with the daily return, the limit and a flag for each stock's first (listing) bar."""
    return market.bars.sort("code", "date").with_columns(
        ret=pl.col("close") / pl.col("preclose") - 1,
        limit=pl.when(pl.col("is_st")).then(0.05).otherwise(0.10),
        first=pl.col("date") == pl.col("date").min().over("code"),
        prev_close=pl.col("close").shift(1).over("code"),
    )


@pytest.fixture(scope="module")
def medium() -> tuple[SyntheticMarketData, Panel]:
    market = generate_market(n_stocks=600, n_days=500, seed=11)
    return market, Panel.from_market(market)


def test_deterministic_for_a_seed_and_different_for_another() -> None:
    a, b = (generate_market(n_stocks=60, n_days=150, seed=5) for _ in range(2))
    c = generate_market(n_stocks=60, n_days=150, seed=6)
    assert a.bars.equals(b.bars)
    assert a.index_close.equals(b.index_close)
    assert all(a.memberships[u].equals(b.memberships[u]) for u in UNIVERSES)
    assert np.array_equal(oracle_scores(a), oracle_scores(b), equal_nan=True)
    assert not a.bars.equals(c.bars)
    assert not np.allclose(a.bars["close"].head(100), c.bars["close"].head(100))


def test_schema_validation_and_panel(market: SyntheticMarketData, panel: Panel) -> None:
    checked = validate_bars(market.bars, market.source)
    assert checked.columns[:7] == ["date", "code", "open", "high", "low", "close", "volume"]
    assert set(market.bars.columns) == {"date", "code", "open", "high", "low", "close", "volume",
                                        "amount", "vwap", "preclose", "total_shares",
                                        "float_shares", "industry", "is_st"}
    assert market.bars["code"].str.contains(r"^(SH60|SZ00)\d{4}$").all()
    assert market.source == "synthetic(seed=3, n_stocks=300, n_days=750)"
    assert market.index_codes == {"csi300": "SH000300", "csi500": "SH000905", "csi1000": "SH000852"}
    assert panel.shape == (750, 300)
    weekday = (panel.dates.astype(np.int64) + 3) % 7
    assert (weekday < 5).all() and panel.dates[0] == np.datetime64("2015-01-05")
    assert panel.report["vwap_from_ohlc_mean"] == panel.report["vwap_clipped_to_range"] == 0
    assert panel.report["stock_days_unknown_industry"] == 0
    assert 5 <= len(set(market.bars["industry"])) <= 10


def test_price_limits_hold_and_are_hit(bars: pl.DataFrame) -> None:
    regular = bars.filter(~pl.col("first"))
    over = regular.filter(pl.col("ret").abs() > pl.col("limit") + TICK_TOL / pl.col("preclose"))
    assert over.height == 0, over.head()
    limit_up = ((pl.col("preclose") * (1 + pl.col("limit")) * 100 + 0.5).floor() / 100)
    limit_down = ((pl.col("preclose") * (1 - pl.col("limit")) * 100 + 0.5).floor() / 100)
    hits_up = regular.filter((pl.col("close") - limit_up).abs() < 1e-9).height
    hits_down = regular.filter((pl.col("close") - limit_down).abs() < 1e-9).height
    assert hits_up >= 50 and hits_down >= 50
    assert regular.filter(pl.col("is_st") & (pl.col("ret").abs() > 0.049)).height > 0
    on_tick = (bars["close"] * 100 - (bars["close"] * 100).round()).abs().max()
    assert on_tick < 1e-6


def test_ohlc_vwap_volume_consistency(bars: pl.DataFrame) -> None:
    bad = bars.filter((pl.col("low") > pl.min_horizontal("open", "close"))
                      | (pl.col("high") < pl.max_horizontal("open", "close"))
                      | (pl.col("vwap") < pl.col("low")) | (pl.col("vwap") > pl.col("high"))
                      | (pl.col("low") <= 0))
    assert bad.height == 0, bad.head()
    assert (bars["volume"] > 0).all() and (bars["volume"] % 100 == 0).all()
    rel = (bars["amount"] - bars["vwap"] * bars["volume"]).abs() / bars["amount"]
    assert rel.max() < 1e-9
    # volume reacts to |return|: log-volume change is correlated with |return|
    moves = bars.with_columns(dlv=pl.col("volume").log().diff().over("code")).drop_nulls("dlv")
    assert np.corrcoef(moves["ret"].abs(), moves["dlv"])[0, 1] > 0.1


def test_suspensions_listings_delistings_are_missing_rows(market: SyntheticMarketData,
                                                          panel: Panel) -> None:
    gaps = panel.listed & ~panel.valid
    share = gaps.sum() / panel.listed.sum()
    assert 0.01 < share < 0.08
    runs = gaps[1:] & gaps[:-1]
    assert (runs[1:] & runs[:-1]).sum() > 0  # spells of 3+ days exist
    per_code = market.bars.group_by("code").agg(pl.col("date").min().alias("first"),
                                               pl.col("date").max().alias("last"),
                                               pl.len().alias("rows"))
    listed_later = per_code.filter(pl.col("first") > panel.dates[0])
    assert 0.1 * 300 <= listed_later.height <= 0.3 * 300
    stopped = per_code.filter(pl.col("last") < panel.dates[-60])
    assert stopped.height >= 1
    assert market.bars.select(pl.struct("date", "code").n_unique()).item() == market.bars.height
    assert int(panel.valid.sum()) == market.bars.height


def test_ipo_first_days_and_st_episodes(bars: pl.DataFrame, panel: Panel) -> None:
    ipo = bars.filter(pl.col("first") & (pl.col("date") > panel.dates[0]))
    assert ipo["ret"].max() <= 0.44 + 0.01 and ipo["ret"].median() > 0.3
    st_days = bars["is_st"].mean()
    assert 0.002 < st_days < 0.1
    assert bars.filter(pl.col("is_st"))["code"].n_unique() >= 3


def test_corporate_actions_and_share_changes(bars: pl.DataFrame) -> None:
    consecutive = bars.drop_nulls("prev_close")
    ex_days = consecutive.filter((pl.col("preclose") - pl.col("prev_close")).abs() > 1e-9)
    assert ex_days.height >= 20
    assert (ex_days["preclose"] < ex_days["prev_close"]).all()  # dividends and splits only lower it
    changes = bars.group_by("code").agg(pl.col("total_shares").n_unique().alias("t"),
                                        pl.col("float_shares").n_unique().alias("f"))
    assert changes.filter(pl.col("t") > 1).height >= 10
    assert changes.filter(pl.col("f") > 1).height >= 10
    assert (bars["float_shares"] <= bars["total_shares"] * (1 + 1e-9)).all()


def test_membership_counts_follow_size_rank(market: SyntheticMarketData, panel: Panel) -> None:
    starts = sorted(set(market.memberships["csi300"]["start"].to_list()))
    months = panel.dates.astype("datetime64[M]")
    reviews = {m for m in months[1:] if m != months[0] and str(m).endswith(("-06", "-12"))}
    assert len(starts) == 1 + len(reviews) >= 5  # day 0, then every June and December
    cap = panel.market_cap(free_float=True)
    first_bar = panel.listed.argmax(axis=0)
    last_bar = len(panel.dates) - 1 - panel.listed[::-1].argmax(axis=0)
    for start in starts:
        t = panel.date_index(np.datetime64(start))
        r = max(t - 1, 0)
        listed = (first_bar <= r) & (r <= last_bar) if t else first_bar == 0
        n_listed = int(listed.sum())
        members = {}
        for name, (_, lo, hi) in UNIVERSES.items():
            rows = market.memberships[name].filter(pl.col("start") == start)
            members[name] = np.searchsorted(panel.codes, rows["code"].to_numpy())
            assert abs(rows.height - (round(hi * n_listed) - round(lo * n_listed))) <= 1
        if t:  # larger universes hold larger stocks; no ST member
            seen = {n: m[panel.valid[r, m]] for n, m in members.items()}
            assert cap[r, seen["csi300"]].min() >= cap[r, seen["csi500"]].max()
            assert cap[r, seen["csi500"]].min() >= cap[r, seen["csi1000"]].max()
            assert not panel.is_st[r, np.concatenate(list(seen.values()))].any()
        assert len(set(np.concatenate(list(members.values())))) == sum(map(len, members.values()))


def test_index_levels(market: SyntheticMarketData, panel: Panel) -> None:
    levels = market.index_close
    assert levels.group_by("index_code").len().sort("index_code")["len"].to_list() == [750] * 3
    ew = np.nanmean(np.where(panel.valid, panel["close"] / panel["preclose"] - 1, np.nan), axis=1)
    for code in ("SH000300", "SH000905", "SH000852"):
        level = panel.index_close[code]
        assert level[0] == 1000.0 and (level > 0).all()
        assert np.corrcoef(np.diff(np.log(level)), ew[1:])[0, 1] > 0.8


def test_fat_tails_and_volatility_clustering(bars: pl.DataFrame, panel: Panel) -> None:
    ret = bars.filter(~pl.col("first"))["ret"].to_numpy()
    z = (ret - ret.mean()) / ret.std()
    assert (z ** 4).mean() - 3 > 1
    ret = np.where(panel.valid, panel["close"] / panel["preclose"] - 1, np.nan)
    market_ret = np.nanmean(ret, axis=1)
    a = np.abs(market_ret - market_ret.mean())
    acf = [np.corrcoef(a[k:], a[:-k])[0, 1] for k in range(1, 11)]
    assert np.mean(acf) > 0.03


def test_small_caps_are_more_volatile(panel: Panel) -> None:
    ret = np.where(panel.valid, panel["close"] / panel["preclose"] - 1, np.nan)
    vol = np.nanstd(ret, axis=0)
    size = np.nanmean(np.log(panel.market_cap()), axis=0)
    small, large = size < np.quantile(size, 1 / 3), size > np.quantile(size, 2 / 3)
    assert np.median(vol[small]) > 1.15 * np.median(vol[large])


def test_oracle_and_random_rank_ic(medium: tuple[SyntheticMarketData, Panel]) -> None:
    market, panel = medium
    label, mask = neutralized_label(panel), history_mask(panel)
    oracle = oracle_scores(market)
    assert oracle.shape == panel.shape
    assert np.array_equal(np.isfinite(oracle), panel.valid)
    assert np.nanmean(daily_rank_ic(oracle, label, mask)) > 0.1
    noise = np.random.default_rng(0).standard_normal(panel.shape)
    assert abs(np.nanmean(daily_rank_ic(noise, label, mask))) < 0.02
    assert np.nanmean(daily_rank_ic(hand_factor(panel), label, mask)) > 0.02


@pytest.mark.filterwarnings("ignore:All-NaN slice")
def test_reversal_is_stronger_in_small_caps(medium: tuple[SyntheticMarketData, Panel]) -> None:
    market, panel = medium
    label, mask = neutralized_label(panel), history_mask(panel)
    reversal = oracle_scores(market, "reversal")
    size = np.log(panel.market_cap())
    cut = np.nanquantile(np.where(mask, size, np.nan), [1 / 3, 2 / 3], axis=1)
    small = np.nanmean(daily_rank_ic(reversal, label, mask & (size < cut[0][:, None])))
    large = np.nanmean(daily_rank_ic(reversal, label, mask & (size > cut[1][:, None])))
    assert small > 0.08 and small > large + 0.05


def test_signal_scale_zero_removes_the_planted_signals() -> None:
    market = generate_market(n_stocks=600, n_days=500, seed=11, signal_scale=0.0)
    panel = Panel.from_market(market)
    assert np.nanmax(np.abs(oracle_scores(market))) == 0.0
    label, mask = neutralized_label(panel), history_mask(panel)
    ic = np.nanmean(daily_rank_ic(hand_factor(panel), label, mask))
    assert abs(ic) < 0.02


def test_oracle_factor_frame(market: SyntheticMarketData) -> None:
    frame = oracle_factor(market)
    assert frame.columns == ["date", "code", "score"] and frame.height == market.bars.height
    assert frame["score"].is_finite().all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_stocks"):
        generate_market(n_stocks=5)
    with pytest.raises(ValueError, match="signal_scale"):
        generate_market(n_stocks=20, n_days=30, signal_scale=-1)
    no_latent = generate_market(n_stocks=20, n_days=30, keep_latent=False)
    with pytest.raises(ValueError, match="keep_latent"):
        oracle_scores(no_latent)
