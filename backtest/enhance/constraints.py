"""Typed risk constraints and trading settings of an index-enhancement portfolio, and presets.

All weights are fractions of the portfolio's value (1.0 = 100%). Exposures are active
exposures ``(w - b)ᵀX`` against the benchmark weights ``b``: styles in units of the
per-day standardized style factor, industries in weight (0.02 = 2 percentage points).

Presets (SPEC section 6):
- ``report1`` (Huachuang, DecompGRU): deviation <= 0.8%, constituents >= 80%, every
  style |exposure| <= 0.3, industry <= 0.02, two-sided turnover <= 30%, 0.25% round
  trip, trade at the close of the next week's first day.
- ``report2_csi500`` / ``report2_csi1000`` (Haitong, multi-granularity), the settings of
  their per-year tables: whole-market selection, industry neutral, deviation 1%
  (CSI 500); constituents >= 80%, industry neutral, deviation 1% (CSI 1000); size
  neutral (CSI 500) or within ±0.2 (CSI 1000), other styles ±0.8, one-sided turnover
  <= 30%, 0.3% round trip, trade at the next day's VWAP. Their "valuation neutral"
  needs fundamentals, which the data does not have: it is not modelled.
  :func:`report2` builds the other cells of their grid (deviation 0.5% / 1%, industry
  neutral / 2%, universe all / constituents >= 80%).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Literal

TurnoverKind = Literal["one_sided", "two_sided"]
Universe = Literal["all", "constituents"]
TradePrice = Literal["close", "vwap"]
Solver = Literal["CLARABEL", "HIGHS", "SCS", "OSQP"]


@dataclass(frozen=True)
class EnhanceConstraints:
    """Constraints of one rebalance: maximize ``Σ μᵢwᵢ`` subject to these.

    Args:
        max_deviation: d, ``|wᵢ - bᵢ| <= d`` for every stock (0.008 = 0.8 points).
        min_constituent_weight: c, ``Σ_{i in index} wᵢ >= c``; 0 = no constraint.
        universe: stocks that may be bought: ``all`` = every scored, tradable stock;
            ``constituents`` = benchmark members only.
        style_bound: default band s, ``|(w - b)ᵀX_k| <= s`` per style k; None = no
            style constraint (for styles not in ``style_bounds``).
        style_bounds: per-style bands overriding ``style_bound`` (0 = neutral), e.g.
            ``{"size": 0.0}``; a style named here must be in the style data.
        industry_bound: g, ``|(w - b)ᵀ1_j| <= g`` per industry j (0 = neutral); None =
            no industry constraint.
        max_turnover: τ per rebalance against the pre-trade (drifted) weights; None = none.
        turnover_kind: ``two_sided`` = ``Σ|wᵢ - w⁰ᵢ|``; ``one_sided`` =
            ``0.5 Σ|wᵢ - w⁰ᵢ|`` (= total buys = total sells, as the portfolio stays
            fully invested).
    """

    max_deviation: float = 0.008
    min_constituent_weight: float = 0.8
    universe: Universe = "all"
    style_bound: float | None = 0.3
    style_bounds: dict[str, float] = field(default_factory=dict)
    industry_bound: float | None = 0.02
    max_turnover: float | None = 0.3
    turnover_kind: TurnoverKind = "two_sided"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_deviation) and 0 < self.max_deviation <= 1):
            raise ValueError(f"max_deviation must be in (0, 1], got {self.max_deviation}")
        if not 0 <= self.min_constituent_weight <= 1:
            raise ValueError("min_constituent_weight must be in [0, 1] (a weight share), "
                             f"got {self.min_constituent_weight}")
        for name in ("style_bound", "industry_bound", "max_turnover"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 or None, got {value}")
        for style, value in self.style_bounds.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"style_bounds[{style!r}] must be >= 0, got {value}")
        if self.universe not in ("all", "constituents"):
            raise ValueError(f"universe must be 'all' or 'constituents', got {self.universe!r}")
        if self.turnover_kind not in ("one_sided", "two_sided"):
            raise ValueError(f"turnover_kind must be 'one_sided' or 'two_sided', "
                             f"got {self.turnover_kind!r}")

    def style_band(self, style: str) -> float | None:
        """The band of one style: ``style_bounds`` if named there, else ``style_bound``."""
        return self.style_bounds.get(style, self.style_bound)

    def two_sided_turnover_cap(self) -> float | None:
        """τ expressed as a cap on ``Σ|wᵢ - w⁰ᵢ|`` (one-sided caps doubled)."""
        if self.max_turnover is None:
            return None
        return self.max_turnover * (2.0 if self.turnover_kind == "one_sided" else 1.0)


@dataclass(frozen=True)
class TradingSettings:
    """How the simulation trades.

    Args:
        cost_round_trip: cost of buying and later selling, as a fraction of value; each
            side pays half on its traded value (0.0025 = 0.25% round trip).
        trade_price: ``close`` or ``vwap`` of the trade day (the first trading day of
            the week after the signal day).
        solver: cvxpy solver; CLARABEL (interior point, LP and QP) by default, HIGHS
            for the pure LP.
    """

    cost_round_trip: float = 0.0025
    trade_price: TradePrice = "close"
    solver: Solver = "CLARABEL"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cost_round_trip) and 0 <= self.cost_round_trip < 1):
            raise ValueError(f"cost_round_trip must be in [0, 1), got {self.cost_round_trip}")
        if self.trade_price not in ("close", "vwap"):
            raise ValueError(f"trade_price must be 'close' or 'vwap', got {self.trade_price!r}")
        if self.solver not in ("CLARABEL", "HIGHS", "SCS", "OSQP"):
            raise ValueError(f"unknown solver {self.solver!r}")


@dataclass(frozen=True)
class RelaxStep:
    """One step of the relaxation ladder: widens bands (``math.inf`` = drop the constraint).

    name: recorded per rebalance date. ``turnover``, ``style``, ``industry`` multiply
    the respective bands, and a band is at least ``style_floor`` / ``industry_floor``
    (so a neutral band, 0, can open up); ``constituent`` multiplies the minimum
    constituent weight (0 = drop).
    """

    name: str
    turnover: float = 1.0
    style: float = 1.0
    industry: float = 1.0
    constituent: float = 1.0
    style_floor: float = 0.0
    industry_floor: float = 0.0


    def relaxes(self, other: "RelaxStep") -> bool:
        """True if every band of this step is at least as wide as in ``other``."""
        def wider(scale: float, floor: float, o_scale: float, o_floor: float) -> bool:
            return scale == math.inf or (scale >= o_scale and floor >= o_floor)

        return (self.turnover >= other.turnover and self.constituent <= other.constituent
                and wider(self.style, self.style_floor, other.style, other.style_floor)
                and wider(self.industry, self.industry_floor, other.industry,
                          other.industry_floor))


INF = math.inf
# Tried until the problem is feasible; each step relaxes the previous one (so the first
# feasible step can be found by bisection). First neutral bands open a little (±0.05 for
# a style, ±0.5% for an industry: tradability often makes exact neutrality impossible),
# then turnover doubles (a slower path to the target), then bands widen, the turnover
# cap goes, bands go, the constituent floor goes. Deviation, budget, long-only and
# tradability are never relaxed.
DEFAULT_LADDER: tuple[RelaxStep, ...] = (
    RelaxStep("as specified"),
    RelaxStep("neutral bands opened (styles >= 0.05, industries >= 0.005)",
              style_floor=0.05, industry_floor=0.005),
    RelaxStep("turnover x2, neutral bands opened", turnover=2.0, style_floor=0.05,
              industry_floor=0.005),
    RelaxStep("turnover x2, styles x2 (>= 0.05), industries x2 (>= 0.005)", turnover=2.0,
              style=2.0, style_floor=0.05, industry=2.0, industry_floor=0.005),
    RelaxStep("no turnover cap, styles x2 (>= 0.05), industries x2 (>= 0.005)",
              turnover=INF, style=2.0, style_floor=0.05, industry=2.0, industry_floor=0.005),
    RelaxStep("no turnover cap, styles x4 (>= 0.1), industries x4 (>= 0.02)",
              turnover=INF, style=4.0, style_floor=0.1, industry=4.0, industry_floor=0.02),
    RelaxStep("no turnover/style/industry caps", turnover=INF, style=INF, industry=INF),
    RelaxStep("only deviation, budget and tradability", turnover=INF, style=INF,
              industry=INF, constituent=0.0),
)


def report1() -> tuple[EnhanceConstraints, TradingSettings]:
    """Report 1 (Huachuang): the same settings for CSI 300, 500 and 1000."""
    return (EnhanceConstraints(max_deviation=0.008, min_constituent_weight=0.8,
                               style_bound=0.3, industry_bound=0.02, max_turnover=0.3,
                               turnover_kind="two_sided"),
            TradingSettings(cost_round_trip=0.0025, trade_price="close"))


def report2(benchmark: Literal["csi500", "csi1000"], deviation: float = 0.01,
            industry: Literal["neutral", "2%"] = "neutral",
            universe: Literal["all", "constituents80"] = "all"
            ) -> tuple[EnhanceConstraints, TradingSettings]:
    """One cell of report 2's grid (Haitong): size neutral for CSI 500, ±0.2 for CSI 1000."""
    if benchmark not in ("csi500", "csi1000"):
        raise ValueError(f"report 2 covers csi500 and csi1000, got {benchmark!r}")
    if industry not in ("neutral", "2%") or universe not in ("all", "constituents80"):
        raise ValueError(f"industry must be 'neutral'|'2%' and universe 'all'|"
                         f"'constituents80', got {industry!r}, {universe!r}")
    size_band = 0.0 if benchmark == "csi500" else 0.2
    return (EnhanceConstraints(max_deviation=deviation,
                               min_constituent_weight=0.8 if universe != "all" else 0.0,
                               style_bound=0.8, style_bounds={"size": size_band},
                               industry_bound=0.0 if industry == "neutral" else 0.02,
                               max_turnover=0.3, turnover_kind="one_sided"),
            TradingSettings(cost_round_trip=0.003, trade_price="vwap"))


PRESETS: dict[str, Callable[[], tuple[EnhanceConstraints, TradingSettings]]] = {
    "report1": report1,
    "report2_csi500": lambda: report2("csi500", 0.01, "neutral", "all"),
    "report2_csi1000": lambda: report2("csi1000", 0.01, "neutral", "constituents80"),
}


def preset(name: str, overrides: Mapping[str, object] | None = None
           ) -> tuple[EnhanceConstraints, TradingSettings]:
    """A named preset with field overrides (any field of either dataclass), validated again.

    An override of None sets that field to None (e.g. ``{"style_bound": None}`` drops
    the style bands).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    cons, trading = PRESETS[name]()
    given = dict(overrides or {})
    cons_names = {f.name for f in fields(EnhanceConstraints)}
    trade_names = {f.name for f in fields(TradingSettings)}
    unknown = set(given) - cons_names - trade_names
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: "
                         f"{sorted(cons_names | trade_names)}")
    cons = replace(cons, **{k: v for k, v in given.items() if k in cons_names})
    trading = replace(trading, **{k: v for k, v in given.items() if k in trade_names})
    return cons, trading
