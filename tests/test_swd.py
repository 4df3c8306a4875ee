"""Sliced Wasserstein distance: behaviour on real photo crops, batching independence, DDP, input checks.

The photo crops are the package's embedded ``photos`` data: training crops and held-out crops that
share no pixel. Degraded sets are held-out crops after a Gaussian blur, added noise or an added
checkerboard; each is scored against the training crops, like generated images against real ones.
To stay fast the suite uses 64 crops of 32 x 32 (two pyramid levels), 32 patches per image and
128 directions instead of the defaults (128 and 512); the ordering holds at the defaults as well.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from scipy.stats import wasserstein_distance

from lightning_checkerboard.data.photos import build_photo_crops
from lightning_checkerboard.functional import laplacian_pyramid, sliced_wasserstein_distance, swd_num_levels
from lightning_checkerboard.functional.swd import _compute, _pyramid_up, _update, _wasserstein_1d
from lightning_checkerboard.metrics import SlicedWassersteinDistance

SIZE = 32
COUNT = 64
OPTIONS = {"patches_per_image": 32, "num_projections": 128}


@pytest.fixture(scope="module")
def crops() -> dict[str, torch.Tensor]:
    """uint8 training crops, held-out crops (no shared pixel), and training crops of another seed."""
    first = build_photo_crops(image_size=SIZE, train_samples=COUNT, heldout_samples=COUNT, seed=0, split_seed=0)
    second = build_photo_crops(image_size=SIZE, train_samples=COUNT, heldout_samples=1, seed=1, split_seed=0)
    return {"train": first["train"].images, "heldout": first["heldout"].images, "train_other": second["train"].images}


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = math.ceil(3 * sigma)
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=images.dtype) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    channels = images.shape[1]
    x = F.pad(images, (radius,) * 4, mode="reflect")
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _degraded(heldout: torch.Tensor) -> dict[str, torch.Tensor]:
    x = heldout.double() / 255
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    checker = (-1.0) ** (torch.arange(SIZE)[:, None] + torch.arange(SIZE)[None, :])
    cases = {f"blur {sigma}": _gaussian_blur(x, sigma) for sigma in (0.5, 1.0, 2.0)}
    cases.update({f"noise {a}": (x + a / 255 * noise).clamp(0, 1) for a in (2, 4, 8)})
    cases.update({f"checkerboard {a}": (x + a / 255 * checker).clamp(0, 1) for a in (2, 4, 8)})
    return cases


@pytest.fixture(scope="module")
def scores(crops) -> dict[str, torch.Tensor]:
    """Per-level SWD of every set against the training crops.

    Calls the pair that :func:`sliced_wasserstein_distance` is made of, so the training crops' descriptors
    are cut once (the public function is held to the same pair below).
    """
    patches, projections = OPTIONS["patches_per_image"], OPTIONS["num_projections"]
    real = _update(crops["train"], patches, seed=0)
    sets = {"heldout": crops["heldout"], "train other seed": crops["train_other"], **_degraded(crops["heldout"])}
    return {name: _compute(_update(images, patches, seed=0), real, projections, seed=0) for name, images in sets.items()}


# ------------------------------------------------------------------------------- behaviour on photos


def test_real_crops_read_a_floor_below_every_degraded_set(scores):
    """Real against real reads above 0 (a finite sample) and below any degradation of the same crops.

    A second draw from the training region reads lower than the held-out crops, which come from a
    reserved strip of each photograph: a real, if small, change of content (measured here: 72 and 92;
    at 128 crops and the default options 37 and 81).
    """
    heldout, same_region = float(scores["heldout"].mean()), float(scores["train other seed"].mean())
    assert 0 < same_region < heldout
    degraded = {name: float(value.mean()) for name, value in scores.items() if name[0] in "bnc"}
    assert len(degraded) == 9 and min(degraded.values()) > heldout, degraded


@pytest.mark.parametrize("kind", ["blur", "noise", "checkerboard"])
def test_degradations_raise_swd_monotonically_above_real_data(scores, kind):
    strengths = ["0.5", "1.0", "2.0"] if kind == "blur" else ["2", "4", "8"]
    values = [float(scores["heldout"].mean())] + [float(scores[f"{kind} {s}"].mean()) for s in strengths]
    assert values == sorted(values) and len(set(values)) == len(values), values


@pytest.mark.parametrize("kind", ["blur", "noise", "checkerboard"])
def test_fine_detail_shows_in_the_finest_level(scores, kind):
    """Blur, noise and 2-pixel patterns live at the finest scale: the strongest one doubles the finest level."""
    strongest = "blur 2.0" if kind == "blur" else f"{kind} 8"
    assert float(scores[strongest][0]) > 2 * float(scores["heldout"][0])


def test_identical_sets_read_zero_whatever_the_dtype(crops):
    images = crops["heldout"][:16]
    assert float(sliced_wasserstein_distance(images, images.float() / 255, **OPTIONS)) == 0.0


def test_flat_generated_images_read_finite_and_high(crops, scores):
    """A collapsed generator (one flat colour) has zero descriptor spread: centred only, never 0 / 0."""
    flat = torch.full((8, 3, SIZE, SIZE), 0.4)
    value = float(sliced_wasserstein_distance(flat, crops["train"], **OPTIONS))
    assert math.isfinite(value) and value > float(scores["noise 8"].mean())


def test_the_seed_changes_the_value_and_equal_seeds_repeat_it(crops):
    args = (crops["heldout"][:8], crops["train"][:8])
    first = sliced_wasserstein_distance(*args, seed=0, **OPTIONS)
    assert float(first) == float(sliced_wasserstein_distance(*args, seed=0, **OPTIONS))
    assert float(first) != float(sliced_wasserstein_distance(*args, seed=1, **OPTIONS))


# ----------------------------------------------------------------------- math against references


def test_wasserstein_1d_matches_scipy_for_equal_and_unequal_sizes():
    g = torch.Generator().manual_seed(0)
    for n, m in ((9, 9), (7, 12), (30, 4)):
        a = torch.randn(n, 3, generator=g, dtype=torch.float64).sort(dim=0).values
        b = (torch.rand(m, 3, generator=g, dtype=torch.float64) * 2).sort(dim=0).values
        expected = [wasserstein_distance(a[:, k].numpy(), b[:, k].numpy()) for k in range(3)]
        np.testing.assert_allclose(_wasserstein_1d(a, b).numpy(), expected, rtol=1e-12)


def test_repeating_every_generated_image_leaves_the_distance_unchanged(crops):
    """Unequal set sizes go through the quantile functions; a set and its duplicate are one distribution."""
    generated, real = crops["heldout"][:12], crops["train"][:20]
    once = sliced_wasserstein_distance(generated, real, reduction="none", **OPTIONS)
    twice = sliced_wasserstein_distance(generated.repeat(2, 1, 1, 1), real, reduction="none", **OPTIONS)
    torch.testing.assert_close(twice, once, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("height", "width", "levels"), [(32, 32, 2), (35, 50, 2), (64, 64, 3), (128, 96, 3)])
def test_laplacian_pyramid_reconstructs_the_image(height, width, levels):
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pyramid = laplacian_pyramid(x)
    assert len(pyramid) == levels == swd_num_levels(height, width)
    assert min(pyramid[-1].shape[-2:]) >= 16 and min(pyramid[-1].shape[-2:]) < 32
    rebuilt = pyramid[-1]
    for level in reversed(pyramid[:-1]):
        rebuilt = level + _pyramid_up(rebuilt, *level.shape[-2:])
    torch.testing.assert_close(rebuilt, x, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ metric: batching and DDP


def _metric(real_batches, generated_batches) -> SlicedWassersteinDistance:
    metric = SlicedWassersteinDistance(**OPTIONS)
    for batch in real_batches:
        metric.update(batch, real=True)
    for batch in generated_batches:
        metric.update(batch, real=False)
    return metric


def test_value_does_not_depend_on_batching_or_order(crops):
    real, generated = crops["train"], crops["heldout"]
    whole = _metric([real], [generated])
    order = torch.randperm(COUNT, generator=torch.Generator().manual_seed(0))
    split = _metric(real.split([10, 30, 24]), generated[order].split([1, 40, 23]))
    torch.testing.assert_close(split.per_level(), whole.per_level(), rtol=1e-6, atol=0)


def test_metric_and_fixture_equal_functional(crops, scores):
    real, generated = crops["train"], crops["heldout"]
    metric = _metric(real.split(20), generated.split(16))
    expected = sliced_wasserstein_distance(generated, real, reduction="none", **OPTIONS)
    torch.testing.assert_close(metric.compute(), expected.mean(), rtol=1e-6, atol=0)
    torch.testing.assert_close(scores["heldout"], expected, rtol=1e-6, atol=0)


def test_merged_states_of_two_metrics_equal_one_metric(crops):
    real, generated = crops["train"], crops["heldout"]
    first = _metric([real[:20]], [generated[:41]])
    second = _metric([real[20:]], [generated[41:]])
    first.merge_state(second)
    torch.testing.assert_close(first.compute(), _metric([real], [generated]).compute(), rtol=1e-6, atol=0)


def test_states_are_descriptor_lists_reduced_by_concatenation():
    from torchmetrics.utilities.data import dim_zero_cat

    metric = SlicedWassersteinDistance()
    assert metric._reductions == {"real_descriptors": dim_zero_cat, "generated_descriptors": dim_zero_cat}
    metric.update(torch.rand(2, 3, 64, 64), real=True)
    # The memory bound in the docstring: N x levels x patches x C * 49 values.
    assert tuple(metric.real_descriptors[0].shape) == (2, 3, 128, 147)
    metric.reset()
    assert metric.real_descriptors == [] and metric.generated_descriptors == []


def _ddp_worker(rank: int, world: int, init_file: str, results) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(0)
        real = torch.rand(12, 3, SIZE, SIZE, generator=g)
        generated = F.avg_pool2d(torch.rand(10, 3, SIZE, SIZE, generator=g), 3, 1, 1, count_include_pad=False)
        # Uneven shares, different per set.
        real_part = real[:3] if rank == 0 else real[3:]
        generated_part = generated[:7] if rank == 0 else generated[7:]
        metric = _metric([real_part], [generated_part])
        results[rank] = metric.per_level().tolist()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_on_uneven_shares_equal_one_process(tmp_path):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(12, 3, SIZE, SIZE, generator=g)
    generated = F.avg_pool2d(torch.rand(10, 3, SIZE, SIZE, generator=g), 3, 1, 1, count_include_pad=False)
    expected = _metric([real], [generated]).per_level()
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), results), nprocs=2, join=True)
        got = dict(results)
    for rank in (0, 1):
        torch.testing.assert_close(torch.tensor(got[rank]), expected, rtol=1e-5, atol=0)


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        ([[0.5]], TypeError, r"`images` must be a torch.Tensor of shape \(B, C, H, W\), got list"),
        (torch.rand(3, SIZE, SIZE), ValueError, r"`images` must have 4 dimensions \(B, C, H, W\), got 3"),
        (torch.zeros(1, 3, SIZE, SIZE, dtype=torch.int64), TypeError, "float tensor in .* got dtype torch.int64"),
        (torch.full((1, 3, SIZE, SIZE), float("nan")), ValueError, "non-finite values: 3072 NaN"),
        (torch.full((1, 3, SIZE, SIZE), 1.5), ValueError, r"must lie in \[0, 1\] .* got values in \[1.5, 1.5\]"),
        (torch.rand(1, 3, 15, 64), ValueError, r"at least 16 x 16 pixels .* got H x W = 15 x 64"),
    ],
    ids=["list", "rank3", "int64", "nan", "above-one", "too-small"],
)
def test_bad_images_raise(images, error, match):
    with pytest.raises(error, match=match):
        SlicedWassersteinDistance().update(images, real=True)


def test_real_flag_must_be_a_bool():
    with pytest.raises(TypeError, match="`real` must be a bool .* got int"):
        SlicedWassersteinDistance().update(torch.rand(1, 3, SIZE, SIZE), real=1)


@pytest.mark.parametrize(
    ("second", "match"),
    [
        (torch.rand(1, 1, SIZE, SIZE), r"same channels and pyramid levels .* \(3 channels, 2 levels\), got 1 channels"),
        (torch.rand(1, 3, 64, 64), r"\(3 channels, 2 levels\), got 3 channels and 3 levels"),
    ],
    ids=["channels", "levels"],
)
def test_images_of_another_form_than_earlier_ones_raise(second, match):
    metric = SlicedWassersteinDistance()
    metric.update(torch.rand(1, 3, SIZE, SIZE), real=True)
    with pytest.raises(ValueError, match=match):
        metric.update(second, real=False)


def test_functional_names_the_offending_argument_and_checks_the_set_forms():
    images = torch.rand(2, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match=r"float `real` must lie in \[0, 1\]"):
        sliced_wasserstein_distance(images, images + 1)
    with pytest.raises(ValueError, match=r"descriptors of one form .* \(2, 128, 147\) real and \(3, 128, 147\)"):
        sliced_wasserstein_distance(torch.rand(2, 3, 64, 64), images)


def test_compute_needs_both_sets():
    metric = SlicedWassersteinDistance()
    metric.update(torch.rand(2, 3, SIZE, SIZE), real=True)
    with pytest.raises(ValueError, match="needs both real and generated images, got 2 real and 0 generated"):
        metric.compute()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patches_per_image": 0}, r"patches_per_image must be a positive integer; got 0"),
        ({"num_projections": True}, r"num_projections must be a positive integer; got True"),
        ({"num_projections": 2.0}, r"num_projections must be a positive integer; got 2.0"),
        ({"seed": -1}, r"seed must be a non-negative integer; got -1"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SlicedWassersteinDistance(**kwargs)
    images = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match=match):
        sliced_wasserstein_distance(images, images, **kwargs)


def test_unknown_reduction_raises():
    images = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match=r"`reduction` must be one of 'mean', 'none', got 'sum'"):
        sliced_wasserstein_distance(images, images, reduction="sum")


def test_num_levels_follows_the_16_pixel_floor():
    assert [swd_num_levels(s, s) for s in (15, 16, 31, 32, 63, 64, 128, 256)] == [0, 1, 2, 2, 3, 3, 4, 5]


@pytest.mark.parametrize(
    ("num_levels", "match"),
    [(0, r"num_levels must be a positive integer; got 0"), (5, r"at least 3 pixels wide, got 5 levels for H x W = 32 x 32")],
)
def test_laplacian_pyramid_rejects_impossible_level_counts(num_levels, match):
    with pytest.raises(ValueError, match=match):
        laplacian_pyramid(torch.rand(1, 1, SIZE, SIZE), num_levels)
