"""torch.compile(fullgraph=True) runs every registry layer and every fused pattern, forward and backward.

Inductor on CPU compiles C++ (a compiler must be on the path), so each case takes seconds: the default
run keeps the three resize-convolutions that once failed or matter most (nearest with reflect and with
zero padding, bilinear) and the nearest fused patterns on the tied path; the rest is marked slow.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_checkerboard import create_upsampler, fuse_resize_conv, list_upsamplers
from lightning_checkerboard.adapt import layer as adapt_layer

pytestmark = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                reason="inductor on CPU needs a C++ compiler")

FAST = {("nearest_conv", "reflect"), ("nearest_conv", "zeros"), ("bilinear_conv", "zeros")}


def _assert_compiles_like_eager(model: nn.Module, x: torch.Tensor) -> None:
    torch._dynamo.reset()
    results = []
    for run in (model, torch.compile(model, fullgraph=True)):
        model.zero_grad(set_to_none=True)
        inp = x.clone().requires_grad_(True)
        out = run(inp)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append([out.detach(), inp.grad] + [p.grad for p in model.parameters()])
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)


def _cases():
    for name in list_upsamplers():
        paddings = ("zeros", "reflect") if name in ("nearest_conv", "bilinear_conv") else (None,)
        for padding in paddings:
            fast = (name, padding) in FAST
            yield pytest.param(name, padding, id=f"{name}-{padding}" if padding else name,
                               marks=() if fast else pytest.mark.slow)


@pytest.mark.parametrize(("name", "padding"), list(_cases()))
def test_registry_layer_compiles_in_training(name, padding):
    torch.manual_seed(0)
    kwargs = {"padding": padding} if padding else {}
    layer = create_upsampler(name, 4, 4, **kwargs).train()
    _assert_compiles_like_eager(layer, torch.randn(2, 4, 5, 6))


class InterpolatePadConv(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(4, 3, 3)

    def forward(self, x):
        kwargs = {"align_corners": False} if self.mode == "bilinear" else {}
        return self.conv(F.pad(F.interpolate(x, scale_factor=2, mode=self.mode, **kwargs), (1, 1, 1, 1),
                               mode="reflect"))


def _fused_patterns():
    yield pytest.param(lambda: nn.Sequential(nn.Upsample(scale_factor=2), nn.ReflectionPad2d(1), nn.Conv2d(4, 3, 3)),
                       id="sequential-nearest-reflect")
    yield pytest.param(lambda: nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"),
                                             nn.Conv2d(4, 3, 3, padding=1)),
                       id="sequential-bilinear-zeros", marks=pytest.mark.slow)
    yield pytest.param(lambda: InterpolatePadConv("nearest"), id="forward-nearest-reflect")
    yield pytest.param(lambda: InterpolatePadConv("bilinear"), id="forward-bilinear-reflect", marks=pytest.mark.slow)
    yield pytest.param(lambda: nn.Sequential(nn.Upsample(scale_factor=2),
                                             nn.utils.parametrizations.weight_norm(nn.Conv2d(4, 3, 3, padding=1))),
                       id="sequential-weight-norm", marks=pytest.mark.slow)


@pytest.mark.parametrize("build", list(_fused_patterns()))
@pytest.mark.parametrize("tied", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["tied", "plain"])
def test_fused_model_compiles_in_training(build, tied, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setattr(adapt_layer, "fused_is_faster", lambda *args, **kwargs: tied)
    fused = fuse_resize_conv(build()).train()
    assert len(fused.fused_sites) == 1
    _assert_compiles_like_eager(fused, torch.randn(2, 4, 5, 6))


def test_fused_diffusers_block_compiles_in_training(monkeypatch):
    pytest.importorskip("diffusers")
    from diffusers.models.upsampling import Upsample2D

    torch.manual_seed(0)
    monkeypatch.setattr(adapt_layer, "fused_is_faster", lambda *args, **kwargs: True)
    fused = fuse_resize_conv(Upsample2D(4, use_conv=True, out_channels=3)).train()
    _assert_compiles_like_eager(fused, torch.randn(2, 4, 5, 6))
