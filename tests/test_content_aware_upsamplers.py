"""DySample, CARAFE and bilinear additive upsampling: loop references, initial state and options.

The registry-wide checks (shape, dtype, backward, determinism, scales 3 and 4) run on these layers
through ``test_upsamplers.py``; this file checks what each computes.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

import _loop_upsamplers as loop
from lightning_checkerboard import create_upsampler, list_upsamplers

NEW = ("bilinear_additive", "carafe", "dysample")


def _randomise(layer, std=0.4, seed=0):
    """Give every parameter a visible value, so offsets and kernels differ across positions."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * std)
    return layer


def test_the_new_layers_are_registered():
    assert set(NEW) <= set(list_upsamplers())


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"groups": 2},
        {"dynamic_scope": True},
        {"style": "pl", "groups": 1},
        {"style": "pl", "groups": 2, "dynamic_scope": True},
        {"style": "pl", "groups": 4},
        {"scale": 3, "groups": 1},
    ],
    ids=["lp", "lp-g2", "lp-dyscope", "pl", "pl-g2-dyscope", "pl-g4", "x3"],
)
@pytest.mark.parametrize("out_channels", [8, 3])
def test_dysample_matches_the_loop_reference(options, out_channels):
    in_channels = 8 if options.get("scale", 2) == 2 else 9
    layer = _randomise(create_upsampler("dysample", in_channels, out_channels, **options).double())
    x = torch.randn(2, in_channels, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x), loop.dysample(layer, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "options",
    [{}, {"kernel_size": 3, "encoder_size": 1}, {"scale": 3, "kernel_size": 3}, {"compressed_channels": 2}],
    ids=["paper", "k3-e1", "x3", "c2"],
)
@pytest.mark.parametrize("out_channels", [3, 2])
def test_carafe_matches_the_loop_reference(options, out_channels):
    options = {"compressed_channels": 4, **options}
    layer = _randomise(create_upsampler("carafe", 3, out_channels, **options).double(), std=0.8)
    x = torch.randn(2, 3, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x), loop.carafe(layer, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "options"),
    [(8, 4, {}), (6, 4, {}), (8, 3, {"reduction": 4}), (8, 2, {"conv": False}), (6, 3, {"scale": 3})],
    ids=["r2", "r1", "r4", "no-conv", "x3"],
)
def test_bilinear_additive_matches_the_loop_reference(in_channels, out_channels, options):
    layer = _randomise(create_upsampler("bilinear_additive", in_channels, out_channels, **options).double())
    x = torch.randn(2, in_channels, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), loop.bilinear_additive(layer, x), rtol=1e-10, atol=1e-10)


def test_an_untrained_dysample_samples_where_bilinear_upsampling_does():
    torch.manual_seed(0)
    layer = create_upsampler("dysample", 8, 8)
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        layer.offset.weight.zero_()
    torch.testing.assert_close(layer(x), F.interpolate(x, scale_factor=2, mode="bilinear"), rtol=0, atol=1e-6)
    # And the default init is within a hair of it: the offset conv starts at std 0.001.
    fresh = create_upsampler("dysample", 8, 8)
    drift = (fresh.sampling_positions(x) - layer.sampling_positions(x)).abs().max()
    assert 0 < drift < 0.01


def test_dysample_sampling_positions_sit_at_sub_pixel_centres_before_training():
    layer = create_upsampler("dysample", 4, 4, groups=1, scale=2)
    with torch.no_grad():
        layer.offset.weight.zero_()
    positions = layer.sampling_positions(torch.randn(1, 4, 2, 3))
    assert positions.shape == (1, 1, 4, 6, 2)
    torch.testing.assert_close(positions[0, 0, 0, :, 0], torch.tensor([-0.25, 0.25, 0.75, 1.25, 1.75, 2.25]))
    torch.testing.assert_close(positions[0, 0, :, 0, 1], torch.tensor([-0.25, 0.25, 0.75, 1.25]))


def test_an_untrained_carafe_is_nearest_upsampling_of_a_box_average():
    torch.manual_seed(0)
    layer = create_upsampler("carafe", 4, 4, kernel_size=3)
    with torch.no_grad():
        layer.encoder.weight.zero_()
    x = torch.randn(2, 4, 5, 6)
    box = F.conv2d(x, torch.full((4, 1, 3, 3), 1 / 9), padding=1, groups=4)
    torch.testing.assert_close(layer(x), F.interpolate(box, scale_factor=2), rtol=0, atol=1e-6)


def test_carafe_kernels_sum_to_one_at_every_output_pixel():
    layer = _randomise(create_upsampler("carafe", 3, 2), std=1.0)
    kernels = layer.kernels(torch.randn(2, 3, 4, 4))
    assert kernels.shape == (2, 25, 8, 8)
    torch.testing.assert_close(kernels.sum(dim=1), torch.ones(2, 8, 8))


def test_parameter_free_bilinear_additive_is_a_resize_of_group_sums():
    layer = create_upsampler("bilinear_additive", 8, 2, conv=False)
    assert not list(layer.parameters())
    x = torch.randn(1, 8, 3, 5)
    expected = F.interpolate(x.view(1, 2, 4, 3, 5).sum(2), scale_factor=2, mode="bilinear")
    torch.testing.assert_close(layer(x), expected)


def test_layers_that_keep_channels_add_no_channel_map():
    assert create_upsampler("dysample", 8, 8).proj is None
    assert create_upsampler("carafe", 8, 8).proj is None
    assert create_upsampler("dysample", 8, 3).proj.out_channels == 3


@pytest.mark.parametrize(
    ("name", "in_channels", "options", "message"),
    [
        ("dysample", 8, {"style": "xy"}, "style must be one of 'lp', 'pl'; got 'xy'."),
        ("dysample", 6, {"style": "pl"}, "style='pl' needs in_channels divisible by scale² (4); got in_channels=6."),
        ("dysample", 6, {"groups": 4}, "groups must divide in_channels (6); got groups=4."),
        ("dysample", 8, {"style": "pl", "groups": 3}, "groups must divide in_channels (8); got groups=3."),
        ("bilinear_additive", 6, {"conv": False, "padding": "edge"},
         "padding must be one of 'zeros', 'reflect'; got 'edge'."),
        ("dysample", 8, {"groups": 0}, "groups must be a positive integer; got 0."),
        ("carafe", 8, {"kernel_size": 4}, "kernel_size must be an odd positive integer; got 4."),
        ("carafe", 8, {"encoder_size": 0}, "encoder_size must be a positive integer; got 0."),
        ("carafe", 8, {"compressed_channels": 0}, "compressed_channels must be a positive integer; got 0."),
        ("bilinear_additive", 8, {"reduction": 3}, "reduction must divide in_channels (8); got reduction=3."),
        ("bilinear_additive", 8, {"conv": False, "reduction": 2},
         "bilinear_additive without conv needs in_channels = reduction·out_channels; got in_channels=8, "
         "out_channels=3, reduction=2."),
    ],
)
def test_bad_options_raise_one_clear_line(name, in_channels, options, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        create_upsampler(name, in_channels, 3, **options)


def test_the_untrained_layers_start_as_designed_at_their_default_init():
    """Not zeroed by hand: the std-0.001 predictors leave DySample within a hair of bilinear upsampling and
    CARAFE within a hair of nearest upsampling of a box average."""
    torch.manual_seed(0)
    x = torch.rand(2, 8, 6, 7)
    dysample = create_upsampler("dysample", 8, 8)
    torch.testing.assert_close(dysample(x), F.interpolate(x, scale_factor=2, mode="bilinear"), rtol=0, atol=2e-3)
    carafe = create_upsampler("carafe", 8, 8, kernel_size=3)
    box = F.conv2d(x, torch.full((8, 1, 3, 3), 1 / 9), padding=1, groups=8)
    torch.testing.assert_close(carafe(x), F.interpolate(box, scale_factor=2), rtol=0, atol=5e-3)


def test_training_like_weights_make_the_phases_differ_where_the_start_keeps_them_equal():
    """What the leaderboards measure after training: phase-dependent offsets (DySample) and kernels (CARAFE)."""
    from lightning_checkerboard.experiments import sampling_phases

    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6)
    fresh, trained = create_upsampler("dysample", 4, 4), _randomise(create_upsampler("dysample", 4, 4), std=1.0)
    assert sampling_phases(fresh, x)["relative_spread"] < 0.01 < 0.1 < sampling_phases(trained, x)["relative_spread"]
    for layer, apart in ((create_upsampler("carafe", 4, 4), False), (_randomise(create_upsampler("carafe", 4, 4)), True)):
        with torch.no_grad():
            kernels = layer.kernels(x)
        difference = (kernels[..., 0::2, 0::2] - kernels[..., 1::2, 1::2]).abs().max()
        assert bool(difference > 0.05) is apart, float(difference)


def test_dysample_offset_channels_move_samples_the_way_the_paper_lays_them_out():
    """Channel layout checked against geometry, not against a copy of the formula: the first ``scale²``
    offset channels move samples along x, the next along y, in input pixels times the static 0.25."""
    x = torch.randn(1, 4, 6, 7, dtype=torch.float64)
    upsampled = F.interpolate(x, scale_factor=2, mode="bilinear")
    for axis, channels in ((-1, slice(0, 4)), (-2, slice(4, 8))):
        layer = create_upsampler("dysample", 4, 4, groups=1).double()
        with torch.no_grad():
            layer.offset.weight.zero_()
            layer.offset.bias[channels] = 4.0  # 4 × 0.25 = one input pixel towards larger index
        shifted = layer(x)
        # One input pixel is two output pixels: away from the far border, output j reads where
        # bilinear upsampling's output j + 2 does.
        expected = upsampled.narrow(axis, 2, upsampled.shape[axis] - 4)
        got = shifted.narrow(axis, 0, shifted.shape[axis] - 4)
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(("style", "scale"), [("pl", 2), ("lp", 3), ("pl", 3)])
def test_zeroed_dysample_is_bilinear_upsampling_in_every_style_and_scale(style, scale):
    layer = create_upsampler("dysample", 9 if scale == 3 else 8, 9 if scale == 3 else 8, scale=scale, style=style,
                             groups=1).double()
    with torch.no_grad():
        layer.offset.weight.zero_()
    x = torch.randn(1, layer.in_channels, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), F.interpolate(x, scale_factor=scale, mode="bilinear"))


def test_carafe_taps_are_laid_out_row_major_around_the_source_pixel():
    """A kernel that puts all its weight on tap (row r, column r + 1) reads the right-hand neighbour."""
    layer = create_upsampler("carafe", 2, 2, kernel_size=3).double()
    with torch.no_grad():
        layer.encoder.weight.zero_()
        layer.encoder.bias.zero_()
        layer.encoder.bias[(1 * 3 + 2) * 4:(1 * 3 + 2) * 4 + 4] = 60.0  # tap n = 5 at all four phases
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    right = F.interpolate(F.pad(x, (0, 1))[..., 1:], scale_factor=2)  # x(i, j + 1), zero past the edge
    torch.testing.assert_close(layer(x), right, rtol=0, atol=1e-12)


def test_bf16_forward_keeps_the_dtype_and_samples_in_float32():
    layer = create_upsampler("dysample", 8, 4).to(torch.bfloat16)
    x = torch.randn(1, 8, 64, 64).to(torch.bfloat16)
    out = layer(x)
    assert out.dtype == torch.bfloat16 and out.shape == (1, 4, 128, 128)
    assert layer.sampling_positions(x).dtype == torch.float32
    # Positions far from the origin keep their quarter-pixel offsets (bf16 alone would round them).
    fractions = layer.sampling_positions(x)[0, 0, 0, 120:124, 0] % 1
    torch.testing.assert_close(fractions, torch.tensor([0.75, 0.25, 0.75, 0.25]), rtol=0, atol=0.01)


@pytest.mark.parametrize(("name", "predictor"), [("dysample", "offset"), ("carafe", "encoder")])
def test_a_dcgan_generator_keeps_the_layers_own_predictor_init(name, predictor):
    from lightning_checkerboard.models import DCGANGenerator

    torch.manual_seed(0)
    gen = DCGANGenerator(name, image_size=16, base_channels=8)
    layers = [m for m in gen.modules() if hasattr(m, "reset_predictor")]
    assert len(layers) == 2
    for layer in layers:
        weight = getattr(layer, predictor).weight
        assert 0.0005 < float(weight.detach().std()) < 0.002  # the designed std 0.001, not DCGAN's 0.02
        if layer.proj is not None:
            assert 0.01 < float(layer.proj.weight.detach().std()) < 0.03  # the rest gets DCGAN's init


def test_a_dysample_generator_trains_under_bf16_autocast():
    from lightning_checkerboard.models import DCGANGenerator

    torch.manual_seed(0)
    gen = DCGANGenerator("dysample", image_size=16, base_channels=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        images = gen(torch.randn(4, gen.latent_dim))
    assert images.shape == (4, 3, 16, 16) and torch.isfinite(images).all()
    images.float().square().mean().backward()
    offsets = [m.offset.weight.grad for m in gen.modules() if hasattr(m, "offset")]
    assert len(offsets) == 2 and all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in offsets)


def test_a_two_process_ddp_bf16_gan_run_with_dysample_finishes(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from lightning_checkerboard.records import read_record

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LIGHTNING_CHECKERBOARD_RUN_DIR", None)
    result = subprocess.run(
        [sys.executable, str(root / "recipes" / "gan.py"), "--dataset", "digits", "--image-size", "16",
         "--batch-size", "8", "--gen-channels", "8", "--disc-channels", "8", "--fid", "off", "--upsampler", "dysample",
         "--max-steps", "3", "--eval-every", "0", "--eval-samples", "32", "--logger", "none", "--accelerator", "cpu",
         "--devices", "2", "--precision", "bf16-mixed", "--output-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = tmp_path.glob("gan/digits/dysample/*")
    record = read_record(run_dir)
    assert (record.status, record.steps, record.upsampler_stages) == ("finished", 3, ["dysample", "dysample"])
    assert (record.config["precision"], record.config["devices"]) == ("bf16-mixed", "2")
    assert all(torch.isfinite(torch.tensor(record.metrics[k])) for k in ("checkerboard", "swd", "spectral_distance"))


@pytest.mark.parametrize("name", ["dysample", "carafe"])
def test_content_adaptive_layers_are_not_linear_maps(name):
    layer = _randomise(create_upsampler(name, 4, 4).double())
    assert layer.content_adaptive and not create_upsampler("bilinear_additive", 4, 4).content_adaptive
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(layer(2 * x), 2 * layer(x))


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "reduction"),
    [(128, 64, 2), (64, 16, 4), (32, 3, 8), (16, 3, 4), (6, 4, 1), (3, 5, 1), (4, 4, 1)],
)
def test_bilinear_additive_sums_as_many_channels_as_leave_enough_for_the_output(in_channels, out_channels, reduction):
    layer = create_upsampler("bilinear_additive", in_channels, out_channels)
    assert layer.reduction == reduction
    assert layer.conv.in_channels == in_channels // reduction
