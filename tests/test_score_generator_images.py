"""The checkerboard score on the images generators make: equal-phase blocks, smooth upsampled content,
near-duplicates and copies.

Photographs are the package's own (``tests/_photos.py``); the calibration recipe
(``recipes/reports/calibrate_score.py``) measures the same properties on other photographs.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _photos import load_photos, photo_crops

from lightning_checkerboard.functional import checkerboard_statistics, grid_bin_periods
from lightning_checkerboard.functional.checkerboard_diagnostics import reference_bend
from lightning_checkerboard.metrics import CheckerboardScore


def diagnostics_of(images: torch.Tensor) -> dict[str, float]:
    metric = CheckerboardScore(levels=3)
    metric.update(images.clamp(0, 1))
    return {key: float(value) for key, value in metric.diagnostics().items()}


def tile(period: int, size: int, rms_levels: float, seed: int) -> torch.Tensor:
    """A random zero-mean ``period x period`` tile repeated over ``size`` px, RMS ``rms_levels / 255``."""
    if period == 2:
        block = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    else:
        block = torch.randn(period, period, generator=torch.Generator().manual_seed(seed))
        block = (block - block.mean()) / block.std(unbiased=False)
    return block.repeat(size // period, size // period) * rms_levels / 255.0


def period_share(pattern: torch.Tensor, period: int) -> float:
    """RMS, in 8-bit levels, of the part of ``pattern`` on the period-``period`` grid bins."""
    stats = checkerboard_statistics(pattern.expand(1, 3, *pattern.shape).double(), levels=3)
    return math.sqrt(float(stats.peak[0, grid_bin_periods(3) == period].sum())) * 255.0


def smooth_crops(count: int, size: int, seed: int) -> torch.Tensor:
    """Generator-like images: crops brought down 8x and back up by three bilinear x2 stages."""
    x = F.avg_pool2d(photo_crops(count, size, seed=seed, low=0.1, high=0.9).float(), 8)
    for _ in range(3):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return x


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_equal_phase_blocks_read_no_checkerboard_at_any_size(stages):
    """Nearest upsampling paints every sub-pixel phase alike: 2**k x 2**k blocks hold no checkerboard.

    Measured: 0.000 at 64, 128 and 256 px over 256 crops (and over 4096).
    """
    blocks = photo_crops(256, 32, seed=21).float()
    for _ in range(stages):
        blocks = F.interpolate(blocks, scale_factor=2, mode="nearest")
    result = diagnostics_of(blocks)
    assert result["score"] <= 0.1
    assert max(result[f"amplitude_period_{p}"] for p in (2, 4, 8)) <= 0.1


def test_a_checkerboard_on_block_images_still_reads_its_amplitude():
    blocks = F.interpolate(photo_crops(64, 32, seed=22, low=0.1, high=0.9).float(), scale_factor=2, mode="nearest")
    result = diagnostics_of(blocks + tile(2, 64, 2.0, seed=0))
    assert result["score"] == pytest.approx(2.0, rel=0.05)
    assert result["upper"] >= 2.0


@pytest.mark.parametrize(("period", "amplitude"), [(4, 0.1), (4, 0.3), (8, 0.1), (8, 0.5), (8, 1.0)])
def test_the_bound_covers_a_pattern_on_smooth_generator_like_images(period, amplitude):
    """Upsampled content has a notch on the grid frequencies, so the reference strips over-predict the
    block and the score reads a pattern low there; the bound allows for that (it missed every one of
    these before the reference's bend was allowed for: the score plus a noise of about 0)."""
    images = smooth_crops(64, 64, seed=23)
    pattern = tile(period, 64, amplitude, seed=period)
    result = diagnostics_of(images + pattern)
    assert result["upper"] >= amplitude
    assert result[f"upper_period_{period}"] >= period_share(pattern, period)
    assert result["score"] <= result["upper"]


def test_smooth_images_read_no_pattern_and_a_small_bound():
    result = diagnostics_of(smooth_crops(64, 64, seed=24))
    assert result["score"] == 0.0
    assert result["upper"] < 0.5  # measured 0.15: upsampled content leaves little on the grid bins


def test_near_duplicate_crops_widen_the_bound_instead_of_firing():
    """64 crops from one window 1.3x their size (any two overlap by 70 % per axis or more), as a
    mode-collapsed generator makes them: they count as far fewer than 64 images."""
    photo = torch.from_numpy(load_photos()[0].transpose(2, 0, 1).copy()).float()
    generator = torch.Generator().manual_seed(25)
    top, left = 120, 200
    crops = []
    for _ in range(64):
        dy, dx = torch.randint(0, 84 - 64 + 1, (2,), generator=generator).tolist()
        crops.append(photo[:, top + dy : top + dy + 64, left + dx : left + dx + 64])
    near = diagnostics_of(torch.stack(crops))
    independent = diagnostics_of(photo_crops(64, 64, seed=25).float())
    assert near["score"] == 0.0
    assert near["effective_images"] < 8
    assert independent["effective_images"] == 64
    assert near["upper"] > independent["upper"]


def test_copies_of_one_clean_photo_read_zero():
    photo = torch.from_numpy(load_photos()[1][:64, :64].transpose(2, 0, 1).copy()).float()
    result = diagnostics_of(photo.expand(64, 3, 64, 64))
    assert result["score"] == 0.0
    assert result["effective_images"] == pytest.approx(1.0, abs=1e-3)
    assert math.isinf(result["upper"])  # one image rules nothing out


@pytest.mark.parametrize("count", [2, 3, 64])
def test_copies_with_a_two_level_checkerboard_read_it(count):
    """A mode-collapsed generator with a checkerboard: the copies' floor (one image's own content can
    reach a few times its reference) leaves a clear pattern counted, however few the copies."""
    photo = torch.from_numpy(load_photos()[2][100:164, 100:164].transpose(2, 0, 1).copy()).float()
    patterned = (0.1 + 0.8 * photo + tile(2, 64, 2.0, seed=0)).expand(count, 3, 64, 64)
    result = diagnostics_of(patterned)
    assert result["effective_images"] == pytest.approx(1.0, abs=1e-3)
    assert result["score"] == pytest.approx(2.0, rel=0.1)


def test_images_without_content_are_not_copies():
    """Constant images with a pattern, or all-zero residuals, share no content: a finite bound."""
    flat = torch.full((16, 3, 32, 32), 0.5) + tile(2, 32, 2.0, seed=0)
    result = diagnostics_of(flat)
    assert result["effective_images"] == 16
    assert result["score"] == pytest.approx(2.0, rel=1e-3) and result["upper"] < 2.1


def test_the_bound_covers_a_checkerboard_at_the_smallest_size_with_many_images():
    """At 4 * 2**L pixels the strips have one ring: no bend can be measured, and the bound counts the
    blocks' whole energy (with the reference subtracted it missed a 1-level checkerboard over 2000
    crops: 0.79 at 16 px, levels 2)."""
    photos = photo_crops(2000, 16, seed=2, low=0.1, high=0.9).float()
    metric = CheckerboardScore(levels=2)
    metric.update(photos + tile(2, 16, 1.0, seed=0))
    assert float(metric.diagnostics()["upper_period_2"]) >= 1.0


def test_copies_of_a_patterned_photo_still_read_the_pattern():
    photo = torch.from_numpy(load_photos()[1][:64, :64].transpose(2, 0, 1).copy()).float()
    patterned = 0.1 + 0.8 * photo + tile(2, 64, 8.0, seed=0)
    result = diagnostics_of(patterned.expand(64, 3, 64, 64))
    assert result["score"] == pytest.approx(8.0, rel=0.05)


@pytest.mark.parametrize("count", [16, 64])
def test_independent_images_count_as_independent(count):
    generator = torch.Generator().manual_seed(26)
    noise = F.avg_pool2d(torch.rand(count, 3, 34, 34, generator=generator), 3, 1)
    assert diagnostics_of(noise)["effective_images"] == count
    assert diagnostics_of(photo_crops(count, 32, seed=26).float())["effective_images"] == count


def test_the_reference_bend_is_flat_on_noise_and_large_on_upsampled_content():
    def bend(images):
        return reference_bend(checkerboard_statistics(images, levels=3).background.sum(0))

    noise = torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(27))
    assert float(bend(noise).max()) < 1.6
    periods = grid_bin_periods(3)
    assert float(bend(smooth_crops(64, 64, seed=27))[periods == 8].median()) > 4.0


def test_an_untrained_carafe_stack_reads_no_period_2_pattern():
    """Untrained, each CARAFE stage is nearest upsampling of a box average: every 2x2 output block is one
    value. The windowed spectrum still leaks energy onto the period-2 bins (0.3-0.5 levels before the
    within-cell cap); no image holds a period-2 pattern that its 2x2 cells do not differ by."""
    from lightning_checkerboard.experiments import untrained_samples

    images = untrained_samples("carafe", seed=0, num_samples=64, image_size=32, base_channels=16)
    blocks = images.unflatten(-2, (16, 2)).unflatten(-1, (16, 2))
    assert (blocks - blocks[..., :1, :, :1]).abs().max() < 1e-3 * (images.max() - images.min())
    assert diagnostics_of(images)["amplitude_period_2"] < 0.01  # the blocks are equal to 1e-3, not exactly


def test_the_within_cell_cap_leaves_a_planted_pattern_whole():
    """The cap binds only where an image's cells hold less energy than its windowed grid bins claim."""
    photos = photo_crops(64, 64, seed=28, low=0.1, high=0.9).float()
    for period, amplitude in ((2, 0.5), (4, 2.0), (8, 4.0)):
        pattern = tile(period, 64, amplitude, seed=period)
        stats = checkerboard_statistics((photos + pattern).clamp(0, 1), levels=3)
        alone = checkerboard_statistics(pattern.expand(1, 3, 64, 64), levels=3).peak.sum()  # windowed a**2
        level = int(math.log2(period))
        # a nearly flat crop holds about the pattern alone: its content moves it by a cross term (0.1 %)
        assert float(stats.within[:, level - 1].min()) >= float(alone) * (1 - 1e-2)


@pytest.mark.parametrize("factor", [2, 4])
def test_a_checkerboard_on_nearest_upsampled_images_reads_in_full(factor):
    """The within-cell cap applies to the detected energy summed over images: capping each image's noisy
    excess would cut only its upward noise (a 1-level checkerboard read 0.94 and 0.89 that way)."""
    blocks = F.interpolate(photo_crops(128, 64 // factor, seed=3, low=0.1, high=0.9).float(),
                           scale_factor=factor, mode="nearest")
    result = diagnostics_of(blocks + tile(2, 64, 1.0, seed=0))
    assert result["score"] == pytest.approx(1.0, abs=0.02)
    assert result["upper_period_2"] >= 1.0
