"""Untrained generators already show the article's checkerboards — and the resize layers do not.

Stacks of three stride-2 stages (DCGAN-32, BatchNorm in train mode, 64 samples, 5 seeds each).
Measured (checkerboard score in 8-bit levels, min–max over seeds, width 16):
deconv 8.1–11.5, deconv_k3 5.6–7.8, pixel_shuffle 13.9–19.7; nearest_conv, bilinear_conv,
pixel_shuffle_icnr and deconv_blur 0.00. "deconv_k3 in the last stage only" lights period 2
(5.1–6.4) and not period 4 (0.00); "in the last two stages" lights both (period 4: 3.9–5.1).
"""

from __future__ import annotations

import pytest
from lightning_checkerboard.experiments import init_diagnostics

SEEDS = range(5)


@pytest.fixture(scope="module")
def scores() -> dict[str, list[dict[str, float]]]:
    configs = ["deconv", "deconv_k3", "pixel_shuffle", "nearest_conv", "bilinear_conv", "pixel_shuffle_icnr",
               "deconv_blur", "nearest_conv,nearest_conv,deconv_k3", "nearest_conv,deconv_k3,deconv_k3"]
    return {
        config: [init_diagnostics(config, seed=seed, num_samples=64, image_size=32, base_channels=16) for seed in SEEDS]
        for config in configs
    }


def test_every_transposed_or_subpixel_stack_reads_far_above_every_resize_stack(scores):
    artifacts = [d["score"] for name in ("deconv", "deconv_k3", "pixel_shuffle") for d in scores[name]]
    clean = [d["score"] for name in ("nearest_conv", "bilinear_conv", "pixel_shuffle_icnr") for d in scores[name]]
    assert min(artifacts) > 3.0
    assert max(clean) < 0.1
    assert min(artifacts) > 30 * max(max(clean), 0.1)


def test_binomial_blur_after_deconv_removes_the_pattern(scores):
    assert max(d["score"] for d in scores["deconv_blur"]) < 0.1


def test_deconv_in_the_last_stage_only_lights_period_2_not_period_4(scores):
    for d in scores["nearest_conv,nearest_conv,deconv_k3"]:
        assert d["amplitude_period_2"] > 2.0
        assert d["amplitude_period_4"] < 0.2


def test_deconv_in_the_last_two_stages_lights_periods_2_and_4(scores):
    for d in scores["nearest_conv,deconv_k3,deconv_k3"]:
        assert d["amplitude_period_2"] > 2.0
        assert d["amplitude_period_4"] > 2.0
