"""The spectra, the checkerboard score and the spectral distance of lightning_checkerboard.functional, against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _photos import grid_pattern, photo_crops
from lightning_checkerboard.functional import (
    azimuthal_average,
    checkerboard_energy,
    checkerboard_score,
    checkerboard_score_from_sums,
    checkerboard_statistics,
    contrast_free_ratio,
    grid_bin_periods,
    hann_window_2d,
    normalize_gradient,
    peak_to_reference_db,
    period_amplitudes,
    radial_power_spectrum,
    spectral_distance,
    windowed_power_spectrum,
)


def numpy_windowed_power(images: np.ndarray) -> np.ndarray:
    """Full-plane reference: per-channel mean removed, periodic Hann window, fft2, channel-mean power."""
    _, _, height, width = images.shape
    hann = lambda n: 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # noqa: E731
    window = np.outer(hann(height), hann(width))
    centred = images - images.mean(axis=(-2, -1), keepdims=True)
    return (np.abs(np.fft.fft2(centred * window)) ** 2).mean(axis=1)


def test_hann_window_energy_is_hw_times_nine_sixty_fourths():
    window = hann_window_2d(16, 24, dtype=torch.float64)
    assert window.shape == (16, 24)
    assert float((window**2).sum()) == pytest.approx(16 * 24 * 9 / 64, rel=1e-12)


@pytest.mark.parametrize("width", [16, 15])
def test_power_spectrum_matches_numpy_fft2_on_full_and_half_plane(width):
    images = torch.rand(3, 2, 12, width, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = numpy_windowed_power(images.numpy())
    full = windowed_power_spectrum(images, onesided=False)
    half = windowed_power_spectrum(images)
    np.testing.assert_allclose(full.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(half.numpy(), expected[..., : width // 2 + 1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("period", [2, 4, 8])
def test_pure_pattern_energy_lands_in_the_grid_blocks_parseval(period):
    """A pattern of mean square a**2 puts exactly a**2 into sum_p B(p), nothing into the references."""
    pattern = grid_pattern(period, 64, rms_levels=3.0)[None] + 0.5
    stats = checkerboard_statistics(pattern, levels=3)
    assert float(stats.peak.sum()) == pytest.approx((3.0 / 255) ** 2, rel=1e-10)
    assert float(stats.reference.abs().max()) < 1e-20
    assert float(stats.pixel_variance[0]) == pytest.approx((3.0 / 255) ** 2, rel=1e-10)
    lit = stats.peak[0] > 1e-20
    assert set(grid_bin_periods(3)[lit].tolist()) <= {p for p in (2, 4, 8) if p <= period}


def test_grid_bin_periods_count_three_twelve_fortyeight():
    periods = grid_bin_periods(3)
    assert [(periods == p).sum().item() for p in (2, 4, 8)] == [3, 12, 48]


def test_energy_counts_a_bin_only_above_its_z_margin():
    n = 16
    d = torch.zeros(n, 3, dtype=torch.float64)
    d[:, 0] = 1.0  # constant: infinitely significant
    d[:, 1] = torch.linspace(-1, 1, n)  # zero mean
    d[:, 2] = 0.1 + torch.linspace(-1, 1, n)  # a small mean under large noise
    energy = checkerboard_energy(d.sum(0), d.square().sum(0), n)
    assert energy.tolist() == [16.0, 0.0, 0.0]
    assert float(checkerboard_energy(d.sum(0), d.square().sum(0), n, z=0.0)[2]) == pytest.approx(1.6)


def test_period_amplitudes_square_sum_to_the_score():
    torch.manual_seed(0)
    d = torch.rand(8, 63, dtype=torch.float64) * 1e-4
    sums = d.sum(0), d.square().sum(0), 8
    total = checkerboard_score_from_sums(*sums)
    parts = period_amplitudes(*sums, levels=3)
    assert float(parts.square().sum()) == pytest.approx(float(total) ** 2, rel=1e-10)


def test_pnr_is_positive_with_a_checkerboard_and_not_on_photos():
    photos = photo_crops(32, 64, seed=3, low=0.1, high=0.9)
    clean = checkerboard_statistics(photos)
    patterned = checkerboard_statistics(photos + grid_pattern(2, 64, 4.0))
    pnr_clean = peak_to_reference_db(clean.peak.sum(0), clean.reference.sum(0), 3)
    pnr_pattern = peak_to_reference_db(patterned.peak.sum(0), patterned.reference.sum(0), 3)
    assert pnr_clean.shape == (3,)
    assert float(pnr_clean.max()) < 1.0
    assert float(pnr_pattern[0]) > 10.0
    assert torch.allclose(pnr_pattern[1:], pnr_clean[1:])


def test_contrast_free_ratio_divides_by_255_times_std():
    assert float(contrast_free_ratio(torch.tensor(5.1), torch.tensor(0.2))) == pytest.approx(0.1)


def test_dtypes_agree_and_uint8_is_scaled_by_1_over_255():
    photos = photo_crops(16, 32, seed=1, low=0.1, high=0.9) + grid_pattern(2, 32, 6.0)
    reference = float(checkerboard_score(photos))
    assert reference == pytest.approx(6.0, rel=0.02)
    assert float(checkerboard_score(photos.float())) == pytest.approx(reference, rel=1e-4)
    assert float(checkerboard_score(photos.half())) == pytest.approx(reference, rel=0.02)
    as_uint8 = torch.round(photos * 255).to(torch.uint8)
    assert float(checkerboard_score(as_uint8)) == pytest.approx(float(checkerboard_score(as_uint8.double() / 255)))


def test_score_is_batched_per_image_not_mixed_across_the_batch():
    photos = photo_crops(4, 32, seed=2)
    one_by_one = torch.cat([checkerboard_statistics(photos[i : i + 1]).peak for i in range(4)])
    torch.testing.assert_close(checkerboard_statistics(photos).peak, one_by_one)


def test_normalize_gradient_gives_zero_mean_unit_rms_and_keeps_zeros():
    gradient = torch.randn(3, 2, 8, 8) * 1e-7 + 1e-6
    normalised = normalize_gradient(gradient)
    torch.testing.assert_close(normalised.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalised.square().mean(dim=(1, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    assert torch.equal(normalize_gradient(torch.zeros(1, 1, 4, 4)), torch.zeros(1, 1, 4, 4))


def numpy_azimuthal_average(power_full: np.ndarray, num_bins: int) -> np.ndarray:
    """Direct loop over the full plane: radius in f/f_Nyquist with signed frequencies."""
    height, width = power_full.shape
    sums, counts = np.zeros(num_bins), np.zeros(num_bins)
    for u in range(height):
        for v in range(width):
            fu = min(u, height - u) / (height / 2)
            fv = min(v, width - v) / (width / 2)
            j = int(np.round(math.hypot(fu, fv) * (num_bins - 1)))
            if j < num_bins:
                sums[j] += power_full[u, v]
                counts[j] += 1
    return sums / counts


@pytest.mark.parametrize(("height", "width", "num_bins"), [(16, 16, None), (16, 24, None), (32, 32, 9)])
def test_azimuthal_average_matches_a_direct_numpy_loop(height, width, num_bins):
    images = torch.rand(2, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    full = numpy_windowed_power(images.numpy())
    bins = num_bins or min(height, width) // 2 + 1
    expected = np.stack([numpy_azimuthal_average(p, bins) for p in full])
    np.testing.assert_allclose(radial_power_spectrum(images, num_bins).numpy(), expected, rtol=1e-10)


def test_azimuthal_average_puts_the_nyquist_row_at_the_end():
    power = torch.zeros(1, 8, 5, dtype=torch.float64)
    power[0, 4, 0] = 1.0  # the Nyquist row at column 0
    radial = azimuthal_average(power, width=8)
    assert radial.argmax().item() == 4 and radial[0, 0].item() == 0.0


def test_spectral_distance_is_mean_clamped_relative_error_over_upper_half():
    real = torch.ones(9)
    generated = torch.tensor([9.0, 9, 9, 9, 0.5, 1.0, 3.0, 1.0, 1.0])  # bins 4..8 are the upper half
    assert float(spectral_distance(generated, real)) == pytest.approx((0.5 + 0 + 1 + 0 + 0) / 5)
    assert float(spectral_distance(real, real)) == 0.0


# --- error paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "match"),
    [
        ([[0.5]], "must be a torch.Tensor"),
        (torch.rand(3, 32, 32), "must have 4 dimensions"),
        (torch.ones(1, 3, 32, 32, dtype=torch.int32), "dtype torch.int32"),
        (torch.rand(0, 3, 32, 32), "at least one image"),
        (torch.rand(1, 3, 36, 32), "divisible by 2\\*\\*levels = 8.*36 x 32"),
        (torch.rand(1, 3, 24, 24), "too small for levels=3.*at least 32.*24 x 24"),
        (torch.full((1, 3, 32, 32), float("nan")), "3072 NaN and 0 inf"),
        (torch.full((1, 3, 32, 32), float("inf")), "0 NaN and 3072 inf"),
        (torch.full((1, 3, 32, 32), 1.5), "must lie in \\[0, 1\\].*\\[1.5, 1.5\\]"),
        (torch.full((1, 3, 32, 32), -0.25), "must lie in \\[0, 1\\].*-0.25"),
    ],
)
def test_checkerboard_score_rejects_bad_images(images, match):
    with pytest.raises((ValueError, TypeError), match=match):
        checkerboard_score(images)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": 0}, "levels must be a positive integer; got 0"),
        ({"levels": 2.0}, "levels must be a positive integer; got 2.0"),
        ({"kappa": -1.0}, "kappa must be a finite number >= 0; got -1.0"),
        ({"kappa": float("nan")}, "kappa must be a finite number >= 0; got nan"),
        ({"z": "3"}, "z must be a finite number >= 0; got '3'"),
    ],
)
def test_checkerboard_score_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        checkerboard_score(torch.rand(1, 1, 32, 32), **kwargs)


def test_type_errors_are_type_errors():
    with pytest.raises(TypeError, match="`images` must be a torch.Tensor"):
        windowed_power_spectrum(np.zeros((1, 1, 8, 8)))
    with pytest.raises(TypeError, match="`gradient` must be a float tensor.*uint8"):
        normalize_gradient(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


def test_azimuthal_and_distance_reject_bad_arguments():
    power = torch.ones(1, 16, 9)
    with pytest.raises(ValueError, match="num_bins for 16 x 16 images must be an integer in \\[2, 9\\]; got 10"):
        azimuthal_average(power, width=16, num_bins=10)
    with pytest.raises(ValueError, match="does not match `width`=20"):
        azimuthal_average(power, width=20)
    with pytest.raises(ValueError, match="same length.*\\(9,\\) and \\(8,\\)"):
        spectral_distance(torch.ones(9), torch.ones(8))
