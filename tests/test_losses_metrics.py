"""Losses and daily IC metrics against independent numpy/scipy references."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lightning_modules.losses import (
    ICLoss,
    MSELoss,
    WeightedMSELoss,
    ic_loss,
    mse,
    pearson_corr,
    weighted_mse,
)
from lightning_modules.metrics import (
    DailyIC,
    DailyRankIC,
    DailyRankICIR,
    rank_average_ties,
    spearman_corr,
    summarize_daily,
)


def make_days(n_days: int = 6, n: int = 40, seed: int = 0) -> list[tuple[np.ndarray, ...]]:
    """Days of (pred, target, mask) with ties, missing labels and masked stocks."""
    rng = np.random.default_rng(seed)
    days = []
    for _ in range(n_days):
        pred = np.round(rng.normal(size=n), 1)  # rounding creates ties
        target = np.round(0.3 * pred + rng.normal(size=n), 1)
        target[rng.random(n) < 0.1] = np.nan  # missing labels are excluded
        days.append((pred, target, rng.random(n) > 0.2))
    return days


def valid_np(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return mask & np.isfinite(target)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def test_pearson_matches_scipy_with_mask_and_nan_labels() -> None:
    for pred, target, mask in make_days():
        keep = valid_np(target, mask)
        expected = stats.pearsonr(pred[keep], target[keep])[0]
        got = pearson_corr(t(pred), t(target), t(mask))
        assert got.dtype == torch.float64
        assert got.item() == pytest.approx(expected, abs=1e-12)
    pred, target, _ = make_days(1)[0]
    keep = np.isfinite(target)
    expected = stats.pearsonr(pred[keep], target[keep])[0]
    assert pearson_corr(t(pred), t(target)).item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("pred", "target", "mask"),
    [
        ([0.3] * 5, [1.0, 2.0, 3.0, 4.0, 5.0], None),  # constant predictions
        ([1.0, 2.0, 3.0, 4.0, 5.0], [0.7] * 5, None),  # constant labels
        ([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], [True, False, False]),  # one valid stock
        ([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], [False, False, False]),  # none valid
        ([1.0, 5.0, 9.0], [2.0, 2.0, 7.0], [True, True, False]),  # constant after masking
    ],
)
def test_degenerate_days_give_zero_and_finite_gradient(
    pred: list[float], target: list[float], mask: list[bool] | None
) -> None:
    p = torch.tensor(pred, requires_grad=True)
    m = None if mask is None else torch.tensor(mask)
    corr = pearson_corr(p, torch.tensor(target), m)
    assert corr.item() == 0.0
    corr.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert spearman_corr(p.detach(), torch.tensor(target), m).item() == 0.0


def test_pearson_gradient_and_nan_prediction() -> None:
    pred = torch.randn(12, dtype=torch.float64, requires_grad=True)
    target = torch.randn(12, dtype=torch.float64)
    mask = torch.arange(12) % 4 != 0
    assert torch.autograd.gradcheck(lambda p: pearson_corr(p, target, mask), (pred,))
    bad = pred.detach().clone()
    bad[1] = float("nan")
    assert torch.isnan(pearson_corr(bad, target, mask))  # bugs are not hidden
    bad[0] = float("nan")  # ... but a masked-out NaN is ignored
    bad[1] = 0.0
    assert torch.isfinite(pearson_corr(bad, target, mask))


def test_ic_loss_is_minus_pearson() -> None:
    pred, target, mask = make_days(1)[0]
    keep = valid_np(target, mask)
    expected = -stats.pearsonr(pred[keep], target[keep])[0]
    assert ic_loss(t(pred), t(target), t(mask)).item() == pytest.approx(expected, abs=1e-12)
    assert ICLoss()(t(pred), t(target), t(mask)).item() == pytest.approx(expected, abs=1e-12)
    perfect = torch.linspace(-1, 1, 9)
    assert ic_loss(perfect, 3 * perfect + 1).item() == pytest.approx(-1.0)


def test_mse_matches_numpy() -> None:
    pred, target, mask = make_days(1)[0]
    keep = valid_np(target, mask)
    expected = np.mean((pred[keep] - target[keep]) ** 2)
    assert mse(t(pred), t(target), t(mask)).item() == pytest.approx(expected, rel=1e-12)
    assert MSELoss()(t(pred), t(target), t(mask)).item() == pytest.approx(expected, rel=1e-12)


def test_weighted_mse_weights_by_hand() -> None:
    y = torch.tensor([-1.0, 0.5, 1.0, 2.0, 3.5], dtype=torch.float64)
    pred = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.5], dtype=torch.float64)
    # s = relu(y - 1) = [0, 0, 0, 1, 2.5]; w = 1 + 2 * (sigmoid(s) - 0.5)
    w = [1.0, 1.0, 1.0, 1.4621171572600098, 1.8482836399575131]
    sq = [1.0, 0.25, 1.0, 1.0, 4.0]
    expected = sum(a * b for a, b in zip(w, sq)) / 5
    assert weighted_mse(pred, y).item() == pytest.approx(expected, rel=1e-12)
    assert WeightedMSELoss()(pred, y).item() == pytest.approx(expected, rel=1e-12)
    # tau / alpha are honoured, masked and NaN-label stocks are excluded
    y_nan = torch.cat([y, torch.tensor([float("nan"), 9.0], dtype=torch.float64)])
    p_ext = torch.cat([pred, torch.tensor([0.0, float("nan")], dtype=torch.float64)])
    mask = torch.tensor([True] * 6 + [False])
    w2 = [1 + 0.5 * (1 / (1 + math.exp(-max(v - 0.5, 0.0))) - 0.5) for v in y.tolist()]
    expected2 = sum(a * b for a, b in zip(w2, sq)) / 5
    got = WeightedMSELoss(tau=0.5, alpha=0.5)(p_ext, y_nan, mask)
    assert got.item() == pytest.approx(expected2, rel=1e-12)


def test_mse_losses_without_valid_stocks_are_zero_and_differentiable() -> None:
    pred = torch.randn(4, requires_grad=True)
    target = torch.full((4,), float("nan"))
    for loss in (mse(pred, target), weighted_mse(pred, target)):
        assert loss.item() == 0.0
        loss.backward()
        assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_bad_shapes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="same shape"):
        pearson_corr(torch.randn(3), torch.randn(4))
    with pytest.raises(ValueError, match="one day"):
        mse(torch.randn(2, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="mask"):
        weighted_mse(torch.randn(3), torch.randn(3), torch.ones(3))
    with pytest.raises(ValueError, match="statistic"):
        DailyIC(statistic="median")  # type: ignore[arg-type]


def test_rank_average_ties_matches_scipy() -> None:
    x = torch.tensor([10.0, 20.0, 20.0, 5.0, 20.0, 5.0])
    torch.testing.assert_close(rank_average_ties(x), torch.tensor([3.0, 5.0, 5.0, 1.5, 5.0, 1.5]))
    rng = np.random.default_rng(1)
    ints = rng.integers(0, 7, size=200)
    np.testing.assert_allclose(rank_average_ties(t(ints)).numpy(), stats.rankdata(ints))
    floats = rng.normal(size=50)
    np.testing.assert_array_equal(rank_average_ties(t(floats)).numpy(), stats.rankdata(floats))
    with_nan = torch.tensor([3.0, float("nan"), 1.0, 3.0])
    ranks = rank_average_ties(with_nan)
    assert torch.isnan(ranks[1])
    torch.testing.assert_close(ranks[[0, 2, 3]], torch.tensor([2.5, 1.0, 2.5]))
    assert rank_average_ties(torch.zeros(0)).shape == (0,)


def test_daily_ic_is_mean_of_per_day_scipy_values() -> None:
    days = make_days()
    ic, rank_ic = DailyIC(), DailyRankIC()
    expected_ic, expected_rank = [], []
    for pred, target, mask in days:
        keep = valid_np(target, mask)
        expected_ic.append(stats.pearsonr(pred[keep], target[keep])[0])
        expected_rank.append(stats.spearmanr(pred[keep], target[keep])[0])
        ic.update(t(pred), t(target), t(mask))
        rank_ic.update(t(pred), t(target), t(mask))
    np.testing.assert_allclose(ic.daily_values().numpy(), expected_ic, atol=1e-12)
    np.testing.assert_allclose(rank_ic.daily_values().numpy(), expected_rank, atol=1e-12)
    assert ic.compute().item() == pytest.approx(np.mean(expected_ic), abs=1e-12)
    assert rank_ic.compute().item() == pytest.approx(np.mean(expected_rank), abs=1e-12)
    assert not np.allclose(expected_ic, expected_rank)  # ranks really differ from values


def test_constant_day_counts_as_zero_in_the_mean() -> None:
    metric = DailyRankIC()
    metric.update(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 3.0, 2.0, 4.0]))
    metric.update(torch.ones(4), torch.tensor([1.0, 3.0, 2.0, 4.0]))  # constant scores
    first = stats.spearmanr([1, 2, 3, 4], [1, 3, 2, 4])[0]
    np.testing.assert_allclose(metric.daily_values().numpy(), [first, 0.0], atol=1e-7)
    assert metric.compute().item() == pytest.approx(first / 2)


def test_daily_mean_differs_from_pooled_correlation() -> None:
    x = np.linspace(-1.0, 1.0, 11)
    # a perfect ranking on both days, but day 2 has higher scores and lower returns
    days = [(x, x), (x + 10.0, x - 10.0)]
    metric = DailyIC()
    for pred, target in days:
        metric.update(t(pred), t(target))
    pooled_pred, pooled_target = (np.concatenate(side) for side in zip(*days))
    pooled = stats.pearsonr(pooled_pred, pooled_target)[0]
    assert metric.compute().item() == pytest.approx(1.0, abs=1e-12)
    assert pooled < -0.9


def test_icir_and_win_rate_use_per_day_values() -> None:
    days = make_days(n_days=7, seed=4)
    metrics = {
        "icir": DailyRankICIR(),
        "icir_pearson": DailyIC(statistic="icir"),
        "win_rate": DailyRankIC(statistic="win_rate"),
    }
    rank_values, values = [], []
    for pred, target, mask in days:
        keep = valid_np(target, mask)
        rank_values.append(stats.spearmanr(pred[keep], target[keep])[0])
        values.append(stats.pearsonr(pred[keep], target[keep])[0])
        for metric in metrics.values():
            metric.update(t(pred), t(target), t(mask))
    rank_values_np, values_np = np.array(rank_values), np.array(values)
    expected_icir = rank_values_np.mean() / rank_values_np.std(ddof=1)
    assert metrics["icir"].compute().item() == pytest.approx(expected_icir, rel=1e-10)
    expected_pearson_icir = values_np.mean() / values_np.std(ddof=1)
    got_pearson_icir = metrics["icir_pearson"].compute().item()
    assert got_pearson_icir == pytest.approx(expected_pearson_icir, rel=1e-10)
    expected_win = np.mean(rank_values_np > 0)
    assert metrics["win_rate"].compute().item() == pytest.approx(expected_win)


def test_summaries_of_too_few_days_and_reset() -> None:
    assert torch.isnan(summarize_daily(torch.tensor([0.1]), "icir"))
    assert torch.isnan(summarize_daily(torch.tensor([0.1, 0.1]), "icir"))  # zero std
    assert torch.isnan(summarize_daily(torch.zeros(0), "mean"))
    metric = DailyRankIC()
    metric.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert metric.compute().item() == pytest.approx(1.0)
    metric.reset()
    assert metric.daily_values().numel() == 0
