"""The fused resize-convolution equals resize → pad → conv, in values and in every gradient."""

from __future__ import annotations

import pytest
import torch

from _calls import Calls

from lightning_checkerboard import create_upsampler
from lightning_checkerboard.functional import (
    bilinear_conv2d,
    nearest_conv2d,
    resize_conv2d_reference,
    resize_filter,
    tied_kernel_matrix,
)

SHAPES = [
    pytest.param((1, 3, 8, 8), id="even-batch1"),
    pytest.param((2, 3, 7, 7), id="odd"),
    pytest.param((2, 3, 5, 8), id="non-square"),
    pytest.param((1, 2, 1, 3), id="one-row"),
    pytest.param((3, 4, 2, 1), id="one-column"),
]
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_matches_reference_forward_and_all_gradients(mode, padding, dtype, shape):
    torch.manual_seed(0)
    fused = create_upsampler(f"{mode}_conv", shape[1], 5, padding=padding, impl="fused").to(dtype)
    reference = create_upsampler(f"{mode}_conv", shape[1], 5, padding=padding, impl="reference").to(dtype)
    reference.load_state_dict(fused.state_dict())

    x = torch.randn(shape, dtype=dtype)
    grad_out = torch.randn(shape[0], 5, 2 * shape[2], 2 * shape[3], dtype=dtype)
    results = []
    for layer in (fused, reference):
        xi = x.clone().requires_grad_(True)
        out = layer(xi)
        out.backward(grad_out)
        results.append((out, xi.grad, layer.conv.weight.grad, layer.conv.bias.grad))

    tol = TOLERANCE[dtype]
    for name, got, want in zip(("output", "input grad", "weight grad", "bias grad"), *results):
        assert _relative_error(got, want) <= tol, name


def test_default_paths_are_the_fused_ones_where_they_exist():
    assert create_upsampler("nearest_conv", 2, 2).impl == "fused"
    assert create_upsampler("nearest_conv", 2, 2, scale=3).impl == "fused"
    assert create_upsampler("bilinear_conv", 2, 2).impl == "fused"
    assert create_upsampler("bilinear_conv", 2, 2, scale=3).impl == "reference"


def test_state_dicts_are_interchangeable_between_paths():
    fused = create_upsampler("nearest_conv", 3, 4)
    reference = create_upsampler("nearest_conv", 3, 4, impl="reference")
    assert fused.state_dict().keys() == reference.state_dict().keys()
    assert fused.conv.weight.shape == (4, 3, 3, 3)


def test_tied_matrix_is_the_articles_map():
    assert tied_kernel_matrix(resize_filter("nearest")).tolist() == [
        [0, 0, 1],
        [0, 1, 1],
        [1, 1, 0],
        [1, 0, 0],
    ]


@pytest.mark.parametrize("scale", [3, 4])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_fused_nearest_is_exact_at_other_scales(scale, padding):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    expected = resize_conv2d_reference(x, w, mode="nearest", scale=scale, padding=padding)
    got = nearest_conv2d(x, w, scale=scale, padding=padding)
    assert _relative_error(got, expected) < 1e-12


def test_functional_ops_check_their_arguments():
    x, w = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match="padding must be one of 'zeros', 'reflect'; got 'edge'"):
        nearest_conv2d(x, w, padding="edge")
    with pytest.raises(ValueError, match=r"weight must have shape \(C_out, C_in, 3, 3\); got \(3, 2, 5, 5\)"):
        bilinear_conv2d(x, torch.randn(3, 2, 5, 5))
    with pytest.raises(ValueError, match="mode must be one of 'nearest', 'bilinear'; got 'bicubic'"):
        resize_conv2d_reference(x, w, mode="bicubic")
    with pytest.raises(ValueError, match="only exact here for even scales; got 3"):
        resize_filter("bilinear", 3)


def _layer_and_reference(mode: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    fused = create_upsampler(f"{mode}_conv", 3, 4, impl="fused")
    reference = create_upsampler(f"{mode}_conv", 3, 4, impl="reference")
    reference.load_state_dict(fused.state_dict())
    return fused, reference


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_tied_kernel_is_reused_without_grad_and_rebuilt_after_every_optimiser_step(mode):
    from lightning_checkerboard.functional import resize_conv

    fused, reference = _layer_and_reference(mode)
    weight = fused.conv.weight
    with torch.no_grad():
        first = resize_conv._tied(weight, mode, 2)
        assert resize_conv._tied(weight, mode, 2) is first  # kept while the weight is unchanged
    optimisers = [torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9) for layer in (fused, reference)]
    x = torch.randn(2, 3, 5, 4)
    for _ in range(3):  # train: fused and reference take the same steps
        for layer, optimiser in zip((fused, reference), optimisers):
            optimiser.zero_grad()
            layer(x).square().mean().backward()
            optimiser.step()
        assert _relative_error(fused.conv.weight, reference.conv.weight) < 1e-5
        with torch.no_grad():  # inference between steps sees the stepped weight, not a kept kernel
            assert _relative_error(fused(x), reference(x)) < 1e-5
    with torch.no_grad():
        kept = resize_conv._tied(weight, mode, 2)
        assert kept is not first and resize_conv._tied(weight, mode, 2) is kept
        fused.conv.weight.mul_(-1)  # any in-place write bumps the version counter
        assert _relative_error(fused(x), 2 * reference.conv.bias.view(1, -1, 1, 1) - reference(x)) < 1e-5
        fused.load_state_dict(reference.state_dict())
        assert _relative_error(fused(x), reference(x)) < 1e-5


def test_tied_kernel_is_not_kept_for_computed_weights_or_with_grad():
    from lightning_checkerboard.functional import resize_conv

    weight = torch.nn.Parameter(torch.randn(2, 3, 3, 3))
    assert resize_conv._tied(weight, "nearest", 2) is not resize_conv._tied(weight, "nearest", 2)
    assert resize_conv._tied(weight, "nearest", 2).requires_grad
    computed = weight.detach() * 2
    with torch.no_grad():
        assert resize_conv._tied(computed, "nearest", 2) is not resize_conv._tied(computed, "nearest", 2)
        resize_conv._tied(weight, "nearest", 2)
    key = (id(weight), "nearest", 2)
    assert key in resize_conv._KERNELS
    del weight
    assert key not in resize_conv._KERNELS  # forgotten with its parameter


@pytest.mark.parametrize(
    ("mode", "size", "channels", "grad", "tied"),
    [("nearest", 16, 128, False, True), ("nearest", 8, 128, False, False), ("nearest", 16, 64, False, False),
     ("nearest", 16, 128, True, False), ("bilinear", 16, 128, False, False)],
    ids=["nearest-16px-128ch", "nearest-8px", "nearest-64ch", "nearest-grad-16px", "bilinear"],
)
def test_fused_site_takes_the_cheaper_path_for_the_input_shape(mode, size, channels, grad, tied):
    import torch.nn.functional as F

    from lightning_checkerboard.adapt.layer import fused_is_faster, resize_conv2d

    torch.manual_seed(0)
    x = torch.randn(1, channels, size, size, requires_grad=grad)
    w, b = torch.randn(channels, channels, 3, 3) * 0.05, torch.randn(channels)
    assert fused_is_faster(mode, 2, size, size, channels, channels, grad=grad) is tied
    with Calls() as calls:
        out = resize_conv2d(x, w, b, mode=mode, scale=2, padding="reflect")
    assert (F.conv_transpose2d in calls.called) is tied and (F.interpolate in calls.called) is not tied
    expected = resize_conv2d_reference(x, w, b, mode=mode, padding="reflect")
    assert _relative_error(out, expected) < 1e-5


def test_with_autograd_recording_the_tied_path_needs_larger_maps_and_more_channels():
    from lightning_checkerboard.adapt.layer import fused_is_faster

    assert fused_is_faster("nearest", 2, 32, 32, 256, 512, grad=True)
    assert not fused_is_faster("nearest", 2, 32, 32, 128, 512, grad=True)
    assert not fused_is_faster("nearest", 2, 16, 32, 512, 512, grad=True)
    assert fused_is_faster("nearest", 2, 16, 32, 512, 512, grad=False)


def test_kernel_kept_under_inference_mode_is_not_used_where_autograd_saves_it():
    layer = create_upsampler("nearest_conv", 3, 4, impl="fused").requires_grad_(False)  # a frozen layer
    x = torch.randn(1, 3, 4, 4)
    with torch.inference_mode():
        expected = layer(x)
    xi = x.clone().requires_grad_(True)
    out = layer(xi)  # autograd saves the kernel for the input's gradient
    out.sum().backward()
    assert _relative_error(out, expected) < 1e-6 and xi.grad is not None


def _fused_site_and_reference():
    import copy

    from torch import nn

    from lightning_checkerboard import fuse_resize_conv

    torch.manual_seed(0)
    reference = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(128, 128, 3, padding=1)).eval()
    fused = fuse_resize_conv(copy.deepcopy(reference)).eval()
    return fused, reference, torch.randn(1, 128, 16, 16)  # a shape that takes the tied path without grad


def test_a_kernel_kept_under_autocast_serves_full_precision_calls_afterwards():
    fused, reference, x = _fused_site_and_reference()
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fused(x)
        assert low.dtype == torch.bfloat16
        out = fused(x)
        assert out.dtype == torch.float32
        assert torch.allclose(out, reference(x), atol=1e-4)


def test_weights_swapped_in_through_data_are_noticed_like_an_ema_evaluation():
    """EMA evaluation swaps the averaged tensor in with ``.data =`` and updates it in place while it is out:
    the parameter's version counter sees neither, so the kept kernel must be checked against the values."""
    fused, reference, x = _fused_site_and_reference()
    live, ref_live = fused[1].weight, reference[1].weight
    ema = live.detach().clone()
    with torch.no_grad():
        for step in range(3):
            ema.lerp_(torch.randn_like(ema), 0.5)
            saved, ref_saved = live.data, ref_live.data
            live.data, ref_live.data = ema, ema.clone()
            assert torch.allclose(fused(x), reference(x), atol=1e-4), step
            live.data, ref_live.data = saved, ref_saved


def test_a_write_through_data_is_noticed():
    fused, reference, x = _fused_site_and_reference()
    with torch.no_grad():
        assert torch.allclose(fused(x), reference(x), atol=1e-4)
        fused[1].weight.data.mul_(-0.5)  # no version bump
        reference[1].weight.data.mul_(-0.5)
        assert torch.allclose(fused(x), reference(x), atol=1e-4)
