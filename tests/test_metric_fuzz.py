"""Fuzzing the metrics: any shape, dtype and value gives a finite score or a ValueError/TypeError naming the input."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_checkerboard.metrics import CheckerboardScore, GradientCheckerboardScore, SpectralDistance

DTYPES = [torch.float32, torch.float64, torch.float16, torch.uint8, torch.int64, torch.bool]
SPECIALS = [0.0, 1.0, -0.5, 1.5, float("nan"), float("inf"), -float("inf"), 1e-30, 255.0]


@st.composite
def image_batches(draw):
    rank = draw(st.sampled_from([2, 3, 4, 4, 4, 5]))
    shape = [draw(st.integers(0 if i == 0 else 1, 3 if i < rank - 2 else 40)) for i in range(rank)]
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(shape, generator=g, dtype=torch.float64)
    if draw(st.booleans()):  # sprinkle out-of-range and non-finite values
        special = draw(st.sampled_from(SPECIALS))
        if values.numel():
            values.view(-1)[draw(st.integers(0, values.numel() - 1))] = special
    if dtype == torch.uint8:
        return (values.nan_to_num(0, 1, 0).clamp(0, 1) * 255).to(dtype)
    if dtype in (torch.int64, torch.bool):
        return values.nan_to_num(0).round().to(dtype)
    return values.to(dtype)


def _finite_or_rejected(update, compute, argument: str) -> None:
    """``update`` raises an error that names ``argument`` (the one that was bad), or ``compute`` is finite."""
    try:
        update()
    except (ValueError, TypeError) as err:
        assert re.search(rf"\b{argument}\b", str(err)), f"the error does not name {argument!r}: {err}"
        return
    value = compute()
    assert all(math.isfinite(float(v)) for v in (value if isinstance(value, dict) else {"v": value}).values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=image_batches(), levels=st.integers(1, 3))
def test_checkerboard_score_is_finite_or_a_clear_error(images, levels):
    metric = CheckerboardScore(levels=levels)

    def finite_diagnostics() -> dict:
        diagnostics = metric.diagnostics()
        # the 95 % bound of fewer than two images rules nothing out: inf, by definition
        bounds = {key: diagnostics.pop(key) for key in list(diagnostics) if key.startswith("upper")}
        assert all(math.isfinite(float(v)) == (len(images) >= 2) for v in bounds.values())
        return diagnostics

    _finite_or_rejected(lambda: metric.update(images), finite_diagnostics, "images")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gradient=image_batches(), levels=st.integers(1, 3))
def test_gradient_score_is_finite_or_a_clear_error(gradient, levels):
    metric = GradientCheckerboardScore(levels=levels)
    _finite_or_rejected(lambda: metric.update(gradient), metric.compute, "gradient")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(real=image_batches(), fake=image_batches())
def test_spectral_distance_is_finite_or_a_clear_error(real, fake):
    metric = SpectralDistance()

    def update():
        metric.update(real, real=True)
        metric.update(fake, real=False)

    _finite_or_rejected(update, metric.compute, "images")


@pytest.mark.parametrize("levels", [0, -1, 2.5, "3", None, True])
def test_bad_levels_are_rejected(levels):
    with pytest.raises((ValueError, TypeError), match="levels"):
        CheckerboardScore(levels=levels)
