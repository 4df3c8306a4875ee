"""Every registered upsampler, and the behaviour specific to each built-in one."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
import torch.nn.functional as F

from lightning_checkerboard import create_upsampler, list_upsamplers
from lightning_checkerboard.upsamplers.layers import IMPLS
from lightning_checkerboard.upsamplers.registry import get_upsampler_factory


@pytest.mark.parametrize("name", list_upsamplers())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("height", "width"), [(4, 4), (3, 5), (1, 1)])
def test_doubles_size_and_keeps_dtype(name, dtype, height, width):
    layer = create_upsampler(name, 3, 5).to(dtype)
    out = layer(torch.randn(2, 3, height, width, dtype=dtype))
    assert out.shape == (2, 5, 2 * height, 2 * width)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list_upsamplers())
def test_backward_reaches_every_parameter_and_the_input(name):
    layer = create_upsampler(name, 4, 3)
    x = torch.randn(2, 4, 5, 6, requires_grad=True)
    layer(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, param in layer.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list_upsamplers())
def test_seeded_construction_is_deterministic(name):
    x = torch.randn(1, 3, 6, 6)
    torch.manual_seed(7)
    first = create_upsampler(name, 3, 2)(x)
    torch.manual_seed(7)
    second = create_upsampler(name, 3, 2)(x)
    torch.manual_seed(8)
    other = create_upsampler(name, 3, 2)(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("name", list_upsamplers())
def test_layer_reports_its_channels_and_scale(name):
    layer = create_upsampler(name, 6, 2)
    assert (layer.in_channels, layer.out_channels, layer.scale) == (6, 2, 2)


#: Settings of a layer that refuse scales other than 2, and the start of the error they raise.
SCALE_2_ONLY = {("bilinear_conv", "fused"): "the fused bilinear path is for scale=2; got scale="}


def _scale_cases():
    """Every registered layer at scales 3 and 4: its defaults, and each ``impl`` it takes."""
    for name in list_upsamplers():
        takes_impl = "impl" in inspect.signature(get_upsampler_factory(name)).parameters
        for impl in (None, *IMPLS) if takes_impl else (None,):
            for scale in (3, 4):
                yield pytest.param(name, impl, scale, id=f"{name}-{impl or 'default'}-x{scale}")


@pytest.mark.parametrize(("name", "impl", "scale"), list(_scale_cases()))
def test_scales_3_and_4_upsample_exactly_or_are_refused_with_a_clear_error(name, impl, scale):
    options = {"scale": scale} if impl is None else {"scale": scale, "impl": impl}
    if (name, impl) in SCALE_2_ONLY:
        with pytest.raises(ValueError, match=re.escape(f"{SCALE_2_ONLY[name, impl]}{scale}.")):
            create_upsampler(name, 2, 3, **options)
        return
    layer = create_upsampler(name, 2, 3, **options)
    out = layer(torch.randn(1, 2, 3, 5))
    assert out.shape == (1, 3, 3 * scale, 5 * scale)
    assert torch.isfinite(out).all()


def test_the_scale_2_only_settings_are_real_layers():
    for name, impl in SCALE_2_ONLY:
        assert create_upsampler(name, 2, 3, impl=impl).scale == 2


def test_pixel_shuffle_icnr_starts_as_nearest_upsampling_of_a_low_resolution_conv():
    torch.manual_seed(0)
    layer = create_upsampler("pixel_shuffle_icnr", 4, 3)
    x = torch.randn(2, 4, 7, 5)
    # The first of each group of four sub-kernels is the low-resolution conv.
    low_weight = layer.conv.weight[::4]
    low_bias = layer.conv.bias[::4]
    expected = F.interpolate(F.conv2d(x, low_weight, low_bias, padding=1), scale_factor=2, mode="nearest")
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)


def test_pixel_shuffle_default_init_is_not_nearest():
    torch.manual_seed(0)
    out = create_upsampler("pixel_shuffle", 4, 3)(torch.randn(1, 4, 6, 6))
    assert not torch.allclose(out[..., 0::2, 0::2], out[..., 1::2, 1::2])


@torch.no_grad()
def _period2_amplitude(image: torch.Tensor) -> float:
    """Mean |response| at the (π, π) frequency: the 2×2 checkerboard component."""
    sign = torch.ones(image.shape[-2:], dtype=image.dtype)
    sign[1::2] *= -1
    sign[:, 1::2] *= -1
    return float((image * sign).mean(dim=(-2, -1)).abs().mean())


def test_blur_removes_the_deconv_checkerboard_on_a_constant_input():
    """On a constant input a deconv's output is a pure period-2 pattern (plus bias); the binomial
    blur of ``deconv_blur`` has zero response at that frequency, so the interior is flat."""
    torch.manual_seed(0)
    plain = create_upsampler("deconv_k3", 1, 1)
    x = torch.ones(1, 1, 8, 8)
    raw = plain(x)[..., 2:-2, 2:-2]
    assert _period2_amplitude(raw) > 1e-2
    blurred = create_upsampler("deconv_blur", 1, 1)
    interior = blurred(x)[..., 2:-2, 2:-2]
    assert interior.std() < 1e-6


def test_deconv_blur_blur_is_fixed_not_learned():
    layer = create_upsampler("deconv_blur", 2, 2)
    assert all(not name.startswith("blur") for name, _ in layer.named_parameters())
    assert "blur" not in layer.state_dict()


@pytest.mark.parametrize("name", ["deconv_k3", "pixel_shuffle"])
def test_checkerboard_layers_paint_unequal_phases_on_a_constant_input(name):
    torch.manual_seed(0)
    out = create_upsampler(name, 1, 1)(torch.ones(1, 1, 8, 8))[..., 2:-2, 2:-2]
    phases = torch.stack([out[..., a::2, b::2].mean() for a in (0, 1) for b in (0, 1)])
    assert phases.max() - phases.min() > 1e-3


@pytest.mark.parametrize("name", ["nearest_conv", "bilinear_conv", "pixel_shuffle_icnr"])
def test_resize_layers_paint_a_constant_input_flat(name):
    torch.manual_seed(0)
    out = create_upsampler(name, 1, 1)(torch.ones(1, 1, 8, 8))[..., 2:-2, 2:-2]
    assert out.std() < 1e-6
