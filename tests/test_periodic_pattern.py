"""The checkerboard score at any integer period (``functional.periodic``): planted tiles and seams read at
their periods within their bounds, clean photographs read 0, powers of two give the metric's readings.

Photographs are the package's own (``tests/_photos.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _photos import grid_pattern, load_photos, photo_crops

from lightning_checkerboard.functional import (
    periodic_pattern_periods,
    periodic_pattern_reading,
    periodic_pattern_reading_from_sums,
    periodic_pattern_statistics,
)
from lightning_checkerboard.functional.checkerboard import CheckerboardSums, _grid_layout, _grid_periods
from lightning_checkerboard.functional.checkerboard_noise import _within_cells
from lightning_checkerboard.functional.spectrum import hann_window_2d
from lightning_checkerboard.metrics import CheckerboardScore


def crops(count: int, size: int, seed: int, low: float = 0.1, high: float = 0.9) -> torch.Tensor:
    """``count`` seeded crops of the photographs at least ``size`` px on both sides, float32 in [low, high]."""
    rng = np.random.default_rng(seed)
    photos = [p for p in load_photos() if min(p.shape[:2]) >= size]
    out = []
    for i in range(count):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1)
        out.append(photo[top : top + size, left : left + size].transpose(2, 0, 1))
    return torch.from_numpy(low + (high - low) * np.stack(out)).float()


def seam(period: int, size: int, rms_levels: float) -> torch.Tensor:
    """A tiled decoder's seam: one bright row and one bright column every ``period`` px, zero mean, RMS given."""
    lines = (torch.arange(size) % period == 0).double()
    grid = torch.maximum(lines[:, None], lines[None, :])
    grid = (grid - grid.mean()) / (grid - grid.mean()).square().mean().sqrt()
    return (grid * rms_levels / 255.0).expand(3, size, size).float()


def truth_by_period(pattern: torch.Tensor, period: int) -> dict[int, float]:
    """RMS, in 8-bit levels, of a period-``period`` pattern on the bins of each exact period (its own DFT)."""
    tile = pattern[0, :period, :period].double()
    power = (torch.fft.fft2(tile).abs() / period**2).square().flatten()[1:]
    periods = _grid_periods(period)
    return {p: math.sqrt(float(power[periods == p].sum())) * 255.0 for p in periodic_pattern_periods(period)}


def values(reading: dict[str, torch.Tensor]) -> dict[str, float]:
    return {key: float(value) for key, value in reading.items()}


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_power_of_two_period_reads_exactly_what_the_metric_reads(levels):
    period = 2**levels
    size = max(64, 8 * period)
    images = crops(12, size, seed=levels) + grid_pattern(period, size, 1.5, seed=levels).float()
    metric = CheckerboardScore(levels=levels)
    metric.update(images)
    expected = metric.diagnostics()
    reading = periodic_pattern_reading(images, period)
    keys = ["score", "upper", "effective_images"]
    for p in [2**k for k in range(1, levels + 1)]:
        keys += [f"amplitude_period_{p}", f"upper_period_{p}"]
    assert list(reading) == keys
    for key in keys:
        assert torch.equal(reading[key], expected[key]), key


@pytest.mark.parametrize(
    ("period", "size", "rms", "low"),
    [(3, 96, 2.0, 0.8), (6, 96, 2.0, 0.75), (12, 192, 2.0, 0.8), (48, 288, 4.0, 0.5)],
)
def test_planted_tile_reads_at_its_periods_within_its_bounds(period, size, rms, low):
    """A random ``P x P`` tile on photographs: every exact period of it is bounded, the total read near its RMS.

    Readings are low where the tile spreads its energy over many bins next to DC (period 48: 2303 bins,
    the longest periods on the photographs' steep spectrum); the bound holds everywhere.
    """
    pattern = grid_pattern(period, size, rms, seed=period).float()
    truth = truth_by_period(pattern, period)
    reading = values(periodic_pattern_reading(crops(32, size, seed=period) + pattern, period))
    assert [k for k in reading if k.startswith("amplitude_period_")] == [f"amplitude_period_{p}" for p in truth]
    assert low * rms <= reading["score"] <= 1.1 * rms
    assert reading["score"] <= reading["upper"] and reading["upper"] >= rms
    for p, amplitude in truth.items():
        assert reading[f"upper_period_{p}"] >= amplitude, p
    squares = sum(reading[f"amplitude_period_{p}"] ** 2 for p in truth)
    assert squares == pytest.approx(reading["score"] ** 2, rel=1e-5)


@pytest.mark.parametrize(("pattern_period", "period"), [(3, 12), (6, 12), (24, 48)])
def test_pattern_of_a_divisor_lights_only_the_periods_dividing_its_own(pattern_period, period):
    size = 96 if period == 12 else 288
    pattern = grid_pattern(pattern_period, size, 3.0, seed=pattern_period).float()
    reading = values(periodic_pattern_reading(crops(32, size, seed=7) + pattern, period))
    own = [p for p in periodic_pattern_periods(period) if pattern_period % p == 0]
    others = [p for p in periodic_pattern_periods(period) if pattern_period % p]
    assert sum(reading[f"amplitude_period_{p}"] ** 2 for p in own) >= (0.5 * 3.0) ** 2
    assert all(reading[f"amplitude_period_{p}"] == 0.0 for p in others), reading


@pytest.mark.parametrize(("period", "size"), [(12, 192), (48, 288)])
def test_seam_every_period_pixels_reads_within_its_bound(period, size):
    """One bright row and column every ``P`` px (a tiled decode's seam): energy at every divisor of ``P``."""
    pattern = seam(period, size, 3.0)
    truth = truth_by_period(pattern, period)
    reading = values(periodic_pattern_reading(crops(32, size, seed=period + 1) + pattern, period))
    assert 1.5 <= reading["score"] <= 3.3
    assert reading["upper"] >= 3.0
    for p, amplitude in truth.items():
        assert reading[f"upper_period_{p}"] >= amplitude, p
    # The per-bin limits hold jointly: a subset of periods (the seam's, away from a 2**k decoder's grid)
    # summed in squares still bounds the pattern on that subset.
    seam_periods = [p for p in truth if 8 % p]
    bound = math.sqrt(sum(reading[f"upper_period_{p}"] ** 2 for p in seam_periods))
    assert bound >= math.sqrt(sum(truth[p] ** 2 for p in seam_periods))
    assert bound < reading["upper"]


@pytest.mark.parametrize(("period", "size"), [(3, 96), (6, 96), (12, 96), (48, 288)])
def test_clean_photographs_read_zero_with_a_finite_bound(period, size):
    reading = values(periodic_pattern_reading(crops(32, size, seed=size + period), period))
    assert reading["score"] == 0.0
    assert 0.0 < reading["upper"] < math.inf
    assert reading["effective_images"] > 16
    assert all(reading[f"amplitude_period_{p}"] == 0.0 for p in periodic_pattern_periods(period))


def test_equal_cells_hold_no_pattern_at_the_periods_dividing_them():
    """Nearest upsampling by 6 paints 6x6 cells alike: no energy within them, none read at periods 2, 3, 6."""
    blocks = F.interpolate(crops(32, 16, seed=3), scale_factor=6, mode="nearest")
    within = _within_cells(blocks, 6)
    assert within.shape == (32, 3) and torch.count_nonzero(within) == 0
    coarse = _within_cells(blocks, 12)  # divisors 2, 3, 4, 6, 12: only 4 and 12 cut across the 6x6 cells
    assert torch.count_nonzero(coarse[:, [0, 1, 3]]) == 0 and bool((coarse[:, [2, 4]] > 0).all())
    reading = values(periodic_pattern_reading(blocks, 6))
    assert reading["score"] == 0.0


@pytest.mark.parametrize("period", [6, 12, 16, 48])
def test_within_cell_energy_equals_its_definition(period):
    """Window-weighted variance inside each ``d x d`` cell, computed cell by cell from its definition."""
    images = torch.rand(2, 3, 4 * period, 4 * period, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    weight = hann_window_2d(4 * period, 4 * period, dtype=torch.float64).square()
    weight = weight / weight.sum()
    expected = []
    for d in periodic_pattern_periods(period):
        cells = images.unfold(2, d, d).unfold(3, d, d)  # (B, C, H/d, W/d, d, d)
        variance = cells.var(dim=(-2, -1), unbiased=False).mean(dim=1)
        share = weight.unfold(0, d, d).unfold(1, d, d).sum(dim=(-2, -1))
        expected.append((variance * share).sum(dim=(-2, -1)))
    torch.testing.assert_close(_within_cells(images, period), torch.stack(expected, dim=1), rtol=1e-12, atol=0)


def test_statistics_of_batches_add_up_to_the_reading_of_all():
    images = crops(24, 96, seed=5).double() + grid_pattern(6, 96, 1.0, seed=6)
    first = periodic_pattern_statistics(images[:10], 6)
    second = periodic_pattern_statistics(images[10:], 6)
    total = CheckerboardSums(*(a + b for a, b in zip(first, second)))
    streamed = periodic_pattern_reading_from_sums(total, 6)
    whole = periodic_pattern_reading(images, 6)
    assert list(streamed) == list(whole)
    for key in whole:
        torch.testing.assert_close(streamed[key], whole[key], rtol=1e-9, atol=1e-9)


def test_uint8_images_read_like_their_float_values():
    images = (crops(16, 96, seed=9) + grid_pattern(12, 96, 3.0, seed=2).float()).mul(255).round()
    as_uint8 = values(periodic_pattern_reading(images.to(torch.uint8), 12))
    as_float = values(periodic_pattern_reading(images / 255, 12))
    assert as_uint8 == pytest.approx(as_float, rel=1e-5, abs=1e-6)


def test_float64_batch_reads_a_planted_period_6_pattern_as_float32_does():
    pattern = grid_pattern(6, 96, 4.0, seed=3)
    images = crops(16, 96, seed=4).double() + pattern
    reading = values(periodic_pattern_reading(images, 6))
    assert reading == pytest.approx(values(periodic_pattern_reading(images.float(), 6)), rel=1e-3, abs=1e-3)
    for p, truth in truth_by_period(pattern, 6).items():
        assert reading[f"amplitude_period_{p}"] == pytest.approx(truth, abs=0.3)
        assert reading[f"upper_period_{p}"] >= truth


def test_one_image_alone_reads_like_copies_of_it_not_more():
    photo = crops(1, 96, seed=5, low=0.25, high=0.75)
    for period in (6, 8):
        alone, copies = values(periodic_pattern_reading(photo, period)), values(periodic_pattern_reading(
            photo.repeat(4, 1, 1, 1), period))
        assert alone["score"] == 0.0 and copies["score"] == 0.0 and math.isinf(alone["upper"])
    planted = values(periodic_pattern_reading(photo + grid_pattern(6, 96, 12.0, seed=1).float(), 6))
    assert planted["score"] == pytest.approx(12.0, abs=1.5)


def test_long_period_layout_stays_small_and_chance_detections_stay_far_below_the_bound():
    """Period 96 at 384 px: 9215 grid bins, 21 gathered bins each (one reference ring fits).

    With that many bins the 3-standard-error margin lets a few through by chance on a small set: 8 crops
    of the 7 photographs large enough read 0.01-0.15 levels (3 seeds), against a bound of about 50.
    """
    block, strips_u, strips_v = _grid_layout(384, 384, 96, torch.device("cpu"))
    assert block.shape == (96**2 - 1, 9) and strips_u.shape == strips_v.shape == (96**2 - 1, 6)
    images = crops(8, 384, seed=1)
    reading = values(periodic_pattern_reading(images, 96))
    assert len(reading) == 3 + 2 * len(periodic_pattern_periods(96))
    # One ring only: the bend cannot be measured and the bound counts the blocks' whole energy (finite).
    assert 20.0 < reading["upper"] < math.inf
    assert reading["score"] < 0.3
    assert values(periodic_pattern_reading(images, 96, z=4.0))["score"] == 0.0


def _reading(*args, **kwargs):
    return lambda: periodic_pattern_reading(*args, **kwargs)


_RAND = torch.rand(2, 3, 48, 48)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (_reading(_RAND, 1), ValueError, r"^period must be an integer >= 2; got 1\.$"),
        (_reading(_RAND, 6.0), ValueError, r"^period must be .*; got 6\.0\.$"),
        (_reading(_RAND, True), ValueError, r"^period must be .*; got True\.$"),
        (lambda: periodic_pattern_reading(torch.rand(2, 3, 48, 50), 6), ValueError,
         r"^`images` height and width must be divisible by the period 6 .*48 x 50$"),
        (lambda: periodic_pattern_reading(torch.rand(2, 3, 144, 144), 48), ValueError,
         r"^`images` are too small for period=48: H and W must be at least 192 .*144 x 144$"),
        (lambda: periodic_pattern_reading(torch.rand(3, 48, 48), 6), ValueError, r"^`images` must have 4 dimensions"),
        (_reading(_RAND * 2, 6), ValueError, r"^float `images` must lie in \[0, 1\]"),
        (_reading(torch.zeros(2, 3, 48, 48, dtype=torch.int32), 6), TypeError, r"^`images` must be"),
        (lambda: periodic_pattern_reading([[0.5]], 6), TypeError, r"^`images` must be a torch.Tensor"),
        (_reading(_RAND, 6, alpha=1.5), ValueError, r"^alpha must be"),
        (_reading(_RAND, 6, kappa=-1.0), ValueError, r"^kappa must be"),
        (lambda: periodic_pattern_periods(0), ValueError, r"^period must be an integer >= 2; got 0\.$"),
        (lambda: periodic_pattern_reading_from_sums(periodic_pattern_statistics(_RAND, 6), 12),
         ValueError, r"^`sums` hold 35 grid bins, the period 12 has 143; got period=12$"),
    ],
)
def test_bad_arguments_give_one_line_errors(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--periods", "16", "--sizes", "100"],
         "--sizes: 100 px does not fit period 16 (a multiple of it, at least 64)"),
        (["--periods", "16", "32", "--sizes", "128", "256", "512"],
         "--sizes takes one size per period (2) or one for all; got 3"),
        (["--periods", "1"], "--periods must be integers >= 2; got 1"),
        (["--sizes", "64"], "--sizes needs --periods"),
        (["--periods", "12", "--sizes", "60"], "--sizes: 60 px is not a multiple of 8"),
    ],
)
def test_calibration_long_mode_refuses_bad_flags_in_one_line(argv, message, capsys):
    from _recipes import load_recipe

    with pytest.raises(SystemExit) as info:
        load_recipe("calibrate_score").main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_calibration_long_mode_reads_each_period_on_its_own_grid(tmp_path, monkeypatch):
    from _recipes import load_recipe

    recipe = load_recipe("calibrate_score")
    monkeypatch.setattr(recipe, "IMAGES", 6)
    monkeypatch.setattr(recipe, "AMPLITUDES", (8.0,))
    monkeypatch.setattr(recipe, "KINDS", ("photos", "smooth"))
    rows = recipe.calibrate(1, kinds=("photos", "smooth"), grids=[(16, 64), (24, 96)])
    assert {(r["grid"], r["size"], r["period"]) for r in rows} == {(16, 64, 0), (16, 64, 16), (24, 96, 0), (24, 96, 24)}
    text = recipe.render(rows, {"command": "python recipes/reports/calibrate_score.py --periods 16 24", "date": "d",
                                "machine": "m"}, 1)
    assert "period 16 at 64 px (`levels=4`)" in text and "period 24 at 96 px (`periodic_pattern_reading`)" in text
    assert "| photos | " in text and "| 96 | 24 |" in text
