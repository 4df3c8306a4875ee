"""fuse_resize_conv: every pattern, padding and scale fuses exactly, keeps its keys, leaves the input alone."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from _calls import Calls
from torch import nn

from lightning_checkerboard import fuse_resize_conv
from lightning_checkerboard.adapt import FusedResizeConv2d
from lightning_checkerboard.adapt import layer as adapt_layer

RTOL = 1e-5


@pytest.fixture(autouse=True)
def _always_the_tied_path(monkeypatch):
    """Tiny test shapes would take the plain path by cost; these tests hold the tied one to exactness."""
    monkeypatch.setattr(adapt_layer, "fused_is_faster", lambda *args, **kwargs: True)


def _assert_same_outputs_and_grads(original: nn.Module, fused: nn.Module, x: torch.Tensor) -> None:
    """Outputs, input gradients and parameter gradients agree to 1e-5 relative (float32)."""
    results = []
    for model in (original, fused):
        model.zero_grad(set_to_none=True)
        inp = x.clone().requires_grad_(True)
        out = model(inp)
        weights = torch.linspace(-1, 1, out.numel()).view_as(out)  # a loss that sees every position
        (out * weights).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        results.append((out.detach(), inp.grad, grads))
    (out_a, gin_a, g_a), (out_b, gin_b, g_b) = results
    assert out_a.shape == out_b.shape

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool((a - b).abs().max() <= RTOL * a.abs().max() + 1e-7)

    assert close(out_a, out_b)
    assert close(gin_a, gin_b)
    assert g_a.keys() == g_b.keys()
    for name in g_a:
        assert close(g_a[name], g_b[name]), name


def _functions_called(model: nn.Module, x: torch.Tensor) -> set:
    with Calls() as recorder:
        model(x)
    return recorder.called


def _round_trip(original: nn.Module, fused: nn.Module) -> None:
    assert fused.state_dict().keys() == original.state_dict().keys()
    fused.load_state_dict(original.state_dict(), strict=True)
    copy.deepcopy(original).load_state_dict(fused.state_dict(), strict=True)


def _upsample(mode: str, scale: int) -> nn.Upsample:
    if mode == "bilinear":
        return nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False)
    return nn.Upsample(scale_factor=scale, mode=mode)


SEQUENTIAL_CASES = [
    # (mode, scale, pad module or None, conv padding, conv padding_mode, fused padding)
    ("nearest", 2, None, 1, "zeros", "zeros"),
    ("nearest", 2, None, 1, "reflect", "reflect"),
    ("nearest", 2, nn.ZeroPad2d, 0, "zeros", "zeros"),
    ("nearest", 2, nn.ReflectionPad2d, 0, "zeros", "reflect"),
    ("nearest", 2, nn.ReplicationPad2d, 0, "zeros", "reflect"),
    ("nearest", 3, None, 1, "zeros", "zeros"),
    ("nearest", 3, nn.ReflectionPad2d, 0, "zeros", "reflect"),
    ("nearest-exact", 2, None, 1, "zeros", "zeros"),
    ("bilinear", 2, None, 1, "zeros", "zeros"),
    ("bilinear", 2, nn.ReflectionPad2d, 0, "zeros", "reflect"),
    ("bilinear", 2, None, 1, "reflect", "reflect"),
]


@pytest.mark.parametrize(("mode", "scale", "pad", "conv_pad", "padding_mode", "expected"), SEQUENTIAL_CASES)
def test_sequential_pattern_fuses_exactly(mode, scale, pad, conv_pad, padding_mode, expected):
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 6, 1), _upsample(mode, scale)]
    layers += [pad(1)] if pad is not None else []
    layers += [nn.Conv2d(6, 5, 3, padding=conv_pad, padding_mode=padding_mode), nn.ReLU()]
    model = nn.Sequential(*layers)
    fused = fuse_resize_conv(model)
    conv_index = len(layers) - 2
    assert isinstance(fused[conv_index], FusedResizeConv2d)
    assert (fused[conv_index].mode, fused[conv_index].scale, fused[conv_index].padding) == (
        "bilinear" if mode == "bilinear" else "nearest", scale, expected)
    assert [s.path for s in fused.fused_sites] == [str(conv_index)]
    _assert_same_outputs_and_grads(model, fused, torch.randn(2, 3, 5, 7))
    _round_trip(model, fused)


def test_input_model_is_left_untouched():
    model = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3, padding=1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_resize_conv(model)
    assert isinstance(model[0], nn.Upsample) and type(model[1]) is nn.Conv2d
    assert fused[1].weight is not model[1].weight
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class InterpolatePadConv(nn.Module):
    """The pattern written as calls in a forward: interpolate, pad, conv module."""

    def __init__(self, mode: str = "nearest", scale: int = 2, pad_mode: str = "reflect") -> None:
        super().__init__()
        self.mode, self.scale, self.pad_mode = mode, scale, pad_mode
        self.conv = nn.Conv2d(4, 3, 3)
        self.head = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        kwargs = {"align_corners": False} if self.mode == "bilinear" else {}
        y = F.interpolate(x, scale_factor=self.scale, mode=self.mode, **kwargs)
        y = F.pad(y, (1, 1, 1, 1), mode=self.pad_mode)
        return self.head(torch.relu(self.conv(y)))


class FunctionalConv(nn.Module):
    """interpolate then F.conv2d with the module's own parameters, padding in the conv."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 4, 3, 3) * 0.2)
        self.bias = nn.Parameter(torch.randn(3))

    def forward(self, x):
        return F.conv2d(F.interpolate(x, scale_factor=2.0), self.weight, self.bias, padding=1)


class ChildModules(nn.Module):
    """nn.Upsample and nn.Conv2d children called from a custom forward, not in a Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Conv2d(4, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return self.conv(self.up(x)) + 1.0


@pytest.mark.parametrize(
    ("module", "mode", "scale", "padding"),
    [
        (InterpolatePadConv("nearest", 2, "reflect"), "nearest", 2, "reflect"),
        (InterpolatePadConv("nearest", 2, "constant"), "nearest", 2, "zeros"),
        (InterpolatePadConv("nearest", 3, "replicate"), "nearest", 3, "reflect"),
        (InterpolatePadConv("bilinear", 2, "reflect"), "bilinear", 2, "reflect"),
        (InterpolatePadConv("bilinear", 2, "constant"), "bilinear", 2, "zeros"),
        (FunctionalConv(), "nearest", 2, "zeros"),
        (ChildModules(), "bilinear", 2, "reflect"),
    ],
    ids=["nearest-reflect", "nearest-zeros", "nearest3-replicate", "bilinear-reflect", "bilinear-zeros",
         "functional-conv", "child-modules"],
)
def test_forward_pattern_is_traced_and_fused_exactly(module, mode, scale, padding):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 1), module)
    fused = fuse_resize_conv(model)
    assert [(s.path, s.pattern, s.mode, s.scale, s.padding) for s in fused.fused_sites] == [
        ("1", "forward", mode, scale, padding)]
    assert type(fused[1]) is type(module)  # class (and its methods) kept
    assert F.interpolate in _functions_called(model, torch.randn(1, 2, 4, 4))
    assert F.interpolate not in _functions_called(fused, torch.randn(1, 2, 4, 4))
    _assert_same_outputs_and_grads(model, fused, torch.randn(2, 2, 6, 5))
    _round_trip(model, fused)


class TrainingBranch(InterpolatePadConv):
    def forward(self, x):
        y = super().forward(x)
        return y * 2 if self.training else y


class Untraceable(nn.Module):
    """Data-dependent control flow: fx cannot trace it, but its child can be fused on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.block = InterpolatePadConv()

    def forward(self, x):
        if x.sum() > 0:
            return self.block(x)
        return self.block(-x)


def test_forward_that_branches_on_training_mode_is_left_as_is():
    with pytest.warns(UserWarning, match="found no nearest/bilinear resize"):
        fused = fuse_resize_conv(TrainingBranch())
    assert "forward" not in vars(fused)


def test_untraceable_module_falls_back_to_its_children():
    torch.manual_seed(0)
    model = Untraceable()
    fused = fuse_resize_conv(model)
    assert [s.path for s in fused.fused_sites] == ["block"]
    assert "forward" not in vars(fused) and "forward" in vars(fused.block)
    _assert_same_outputs_and_grads(model, fused, torch.randn(1, 4, 4, 4))


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), nn.Conv2d(2, 2, 3, padding=1)),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 5, padding=2)),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3, padding=1, stride=2)),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular")),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(4, 2, 3, padding=1, groups=2)),
        nn.Sequential(nn.Upsample(size=(8, 8)), nn.Conv2d(2, 2, 3, padding=1)),
        nn.Sequential(nn.Upsample(scale_factor=3, mode="bilinear"), nn.Conv2d(2, 2, 3, padding=1)),
        nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.ReplicationPad2d(1), nn.Conv2d(2, 2, 3)),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.ReflectionPad2d(1), nn.Conv2d(2, 2, 3, padding=1)),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.AvgPool2d(3, 1, 1), nn.Conv2d(2, 2, 3, padding=1)),
    ],
    ids=["align-corners", "kernel5", "stride2", "circular", "groups", "size", "bilinear3", "bilinear-replicate",
         "double-pad", "blur-between"],
)
def test_inexact_patterns_are_not_fused_and_warn(model):
    with pytest.warns(UserWarning, match="the copy is unchanged"):
        fused = fuse_resize_conv(model)
    assert fused.fused_sites == ()
    assert not any(isinstance(m, FusedResizeConv2d) for m in fused.modules())


def test_fused_copy_can_be_deep_copied_and_fused_twice_is_a_no_op():
    model = nn.Sequential(InterpolatePadConv(), nn.Upsample(scale_factor=2), nn.Conv2d(3, 2, 3, padding=1))
    fused = fuse_resize_conv(model)
    assert len(fused.fused_sites) == 2
    twin = copy.deepcopy(fused)
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(twin(x), fused(x))
    assert twin[0].forward.__self__ is twin[0]
    with pytest.warns(UserWarning, match="the copy is unchanged"):
        assert fuse_resize_conv(fused).fused_sites == ()


def test_nothing_to_fuse_warns_and_non_modules_are_refused():
    with pytest.warns(UserWarning, match="in Linear"):
        fuse_resize_conv(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got str"):
        fuse_resize_conv("model")


def test_fused_sites_are_logged(caplog):
    with caplog.at_level("INFO", logger="lightning_checkerboard.adapt.fuse"):
        fuse_resize_conv(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3, padding=1)))
    assert "fused 1: nearest ×2 + 3×3 conv, zeros padding (modules)" in caplog.text


def test_fused_layer_checks_its_arguments():
    with pytest.raises(ValueError, match="mode must be one of 'nearest', 'bilinear'; got 'bicubic'"):
        FusedResizeConv2d(2, 2, mode="bicubic")
    with pytest.raises(ValueError, match="scale=2; got scale=3"):
        FusedResizeConv2d(2, 2, mode="bilinear", scale=3)
    with pytest.raises(ValueError, match="padding must be one of 'zeros', 'reflect'; got 'circular'"):
        FusedResizeConv2d(2, 2, padding="circular")


def test_no_warning_when_something_was_fused():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fuse_resize_conv(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3, padding=1)))


class WritesOnSelf(InterpolatePadConv):
    def forward(self, x):
        self.calls = getattr(self, "calls", 0) + 1
        return super().forward(x)


class TensorConstant(InterpolatePadConv):
    def forward(self, x):
        return super().forward(x) * torch.tensor([2.0, 1.0, 0.5]).view(1, 3, 1, 1)


def test_a_forward_that_writes_on_self_is_left_as_is():
    with pytest.warns(UserWarning, match="the copy is unchanged"):
        fused = fuse_resize_conv(WritesOnSelf())
    assert "forward" not in vars(fused) and not hasattr(fused, "calls")


def test_tensor_constants_made_in_forward_are_kept():
    torch.manual_seed(0)
    model = TensorConstant()
    fused = fuse_resize_conv(model)
    assert len(fused.fused_sites) == 1
    assert not any(k.startswith("_tensor_constant") for k in vars(model))
    _assert_same_outputs_and_grads(model, fused, torch.randn(1, 4, 3, 3))


def test_package_layers_on_their_reference_path_switch_to_the_fused_one():
    from lightning_checkerboard import create_upsampler

    torch.manual_seed(0)
    model = nn.Sequential(create_upsampler("nearest_conv", 4, 4, impl="reference", padding="reflect"),
                          create_upsampler("bilinear_conv", 4, 2, impl="reference"),
                          create_upsampler("bilinear_conv", 2, 2, impl="reference", scale=3))
    fused = fuse_resize_conv(model)
    assert [(s.path, s.pattern, s.mode) for s in fused.fused_sites] == [("0", "layer", "nearest"),
                                                                         ("1", "layer", "bilinear")]
    assert [m.impl for m in fused] == ["fused", "fused", "reference"]  # no fused bilinear ×3 exists
    assert model[0].impl == "reference"
    _assert_same_outputs_and_grads(model, fused, torch.randn(1, 4, 3, 4))
