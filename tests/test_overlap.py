"""The article's overlap and matrix views, pinned to its statements."""

from __future__ import annotations

import pytest
import torch

from lightning_checkerboard import create_upsampler, list_upsamplers
from lightning_checkerboard.functional import overlap_map, overlap_ratio, upsampler_matrix


def test_kernel3_stride2_overlaps_two_to_one_in_1d_and_four_to_one_in_2d():
    line = overlap_map(3, 2)
    assert line.tolist()[:6] == [2, 1, 2, 1, 2, 1]
    assert overlap_ratio(3, 2) == 2.0
    plane = overlap_map(3, 2, ndim=2)
    assert set(plane.unique().tolist()) == {1.0, 2.0, 4.0}
    assert overlap_ratio(3, 2, ndim=2) == 4.0


@pytest.mark.parametrize("kernel_size", [2, 4, 6])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_kernel_divisible_by_stride_overlaps_evenly_through_stacks(kernel_size, layers):
    assert overlap_ratio(kernel_size, 2, layers) == 1.0
    assert overlap_ratio(kernel_size, 2, layers, ndim=2) == 1.0


def test_uneven_overlap_compounds_through_stacked_layers():
    ratios = [overlap_ratio(3, 2, layers) for layers in (1, 2, 3)]
    assert ratios[0] == 2.0
    assert ratios[1] > ratios[0] and ratios[2] >= ratios[1]
    # Periodic with the stack's total stride.
    line = overlap_map(3, 2, 2, in_size=16)
    assert torch.equal(line[:4], line[4:8])


def test_full_region_includes_the_border_falloff():
    full = overlap_map(4, 2, region="full", in_size=4)
    assert full.tolist() == [1, 1, 2, 2, 2, 2, 2, 2, 1, 1]
    assert full.sum() == 4 * 4  # every input paints kernel_size outputs


def test_overlap_map_errors_are_named():
    with pytest.raises(ValueError, match="kernel_size must be a positive integer; got 0"):
        overlap_map(0)
    with pytest.raises(ValueError, match=r"ndim must be an integer in \[1, 2\]; got 3"):
        overlap_map(3, ndim=3)
    with pytest.raises(ValueError, match="region must be one of 'interior', 'full'; got 'edge'"):
        overlap_map(3, region="edge")
    with pytest.raises(ValueError, match="leaves no interior"):
        overlap_map(5, 2, 1, in_size=2)


def test_nearest_conv_matrix_equals_its_reference_matrix_and_is_weight_tied():
    torch.manual_seed(0)
    fused = create_upsampler("nearest_conv", 1, 1).double()
    reference = create_upsampler("nearest_conv", 1, 1, impl="reference").double()
    reference.load_state_dict(fused.state_dict())
    matrix = upsampler_matrix(fused, 4)
    assert matrix.shape == (64, 16)
    torch.testing.assert_close(matrix, upsampler_matrix(reference, 4), rtol=0, atol=1e-12)

    # Weight tying: every entry is a sum of conv taps selected by M ⊗ M, so the matrix holds at
    # most 16 distinct non-zero values (those of the 4×4 tied kernel), far fewer than its entries.
    w = fused.conv.weight.detach()[0, 0]
    m = torch.tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=w.dtype)
    tied = (m @ w @ m.T).flatten()
    nonzero = matrix[matrix.abs() > 1e-12]
    assert all(torch.isclose(tied, value).any() for value in nonzero)
    assert nonzero.numel() > 4 * tied.numel()


def test_deconv_matrix_rows_are_not_weight_tied():
    torch.manual_seed(0)
    layer = create_upsampler("deconv", 1, 1).double()
    matrix = upsampler_matrix(layer, 4)
    kernel = layer.conv.weight.detach().flatten()
    nonzero = matrix[matrix.abs() > 1e-12]
    # Every entry is one free kernel tap.
    assert all(torch.isclose(kernel, value).any() for value in nonzero)


@pytest.mark.parametrize("name", list_upsamplers())
def test_matrix_reproduces_the_layer(name):
    torch.manual_seed(0)
    layer = create_upsampler(name, 2, 3).double()
    if layer.content_adaptive:
        with pytest.raises(ValueError, match=r"is content-adaptive: .* has no matrix\.$"):
            upsampler_matrix(layer, (3, 4))
        return
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    matrix = upsampler_matrix(layer, (3, 4))
    linear = layer(x) - layer(torch.zeros_like(x))
    torch.testing.assert_close((matrix @ x.flatten()).reshape(linear.shape), linear)


def test_upsampler_matrix_needs_in_channels():
    with pytest.raises(TypeError, match="must expose an integer in_channels"):
        upsampler_matrix(torch.nn.Identity(), 2)
