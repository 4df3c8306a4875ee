"""One site finder for audit, replace_upsamplers and fuse_resize_conv: third-party layouts, with and without an input.

The layouts (tests/_layouts.py) re-create, small, what the finder used to miss: a resize written as
F.interpolate in a forward (TransformerNet), an nn.Upsample outside a Sequential (milesial's U-Net), a
GELU between the resize and the conv (FDAT), a conv + PixelShuffle across a ModuleList and a forward
(Real-ESRGAN's SRVGGNetCompact), a forward torch.fx cannot trace (SwinIR style), one that calls a
helper torch.fx cannot trace (BasicSR's RRDBNet ×2 and its pixel_unshuffle), and a bilinear resize
with align_corners=True.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from _calls import Calls
from _layouts import (
    AlignCornersResize,
    FDATLikeUpsampler,
    RRDBNetLike,
    ShapeBranchSR,
    SRVGGLike,
    TransformerNetLike,
    UNetLike,
)
from torch import nn

from lightning_checkerboard import audit, fuse_resize_conv, replace_upsamplers
from lightning_checkerboard.adapt import find_upsampling_sites
from lightning_checkerboard.adapt.sites import search_upsampling_sites

# (layout, input shape, expected sites: (path, kind, stride, fusable, replaceable) on the run)
LAYOUTS = {
    "transformer-net": (TransformerNetLike, (2, 3, 16, 16), [("deconv1.conv2d", "resize_conv", 2, "yes", True)]),
    "unet-up": (UNetLike, (2, 3, 16, 16), [("up1.up", "resize", 2, "no", True)]),
    "fdat-gelu": (FDATLikeUpsampler, (2, 3, 8, 8), [("upsampler.2", "resize_conv", 2, "yes", True)]),
    "srvgg-compact": (SRVGGLike, (2, 3, 8, 8), [("body.4", "pixel_shuffle", 2, "no", True),
                                                 (":interpolate", "resize", 2, "no", False)]),
    "shape-branch": (ShapeBranchSR, (2, 3, 8, 8), [("conv_up1", "resize_conv", 2, "no", False)]),
    "align-corners": (AlignCornersResize, (2, 4, 8, 8), [("up.1", "resize_conv", 2, "no", True)]),
    "rrdbnet-x2": (RRDBNetLike, (2, 3, 8, 8), [("conv_up1", "resize_conv", 2, "yes", True),
                                              ("conv_up2", "resize_conv", 2, "yes", True)]),
}


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    return result, [str(w.message) for w in record]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_run_finds_every_site_of_each_layout(layout):
    cls, shape, expected = LAYOUTS[layout]
    torch.manual_seed(0)
    sites = find_upsampling_sites(cls(), torch.randn(shape))
    assert [(s.path, s.kind, s.stride, s.fusable, s.replaceable) for s in sites] == expected
    assert all(s.reason for s in sites if not s.replaceable)
    assert all(s.note for s in sites if s.fusable == "no" and s.kind == "resize_conv")


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_audit_replace_and_fuse_agree_on_the_sites(layout):
    cls, shape, expected = LAYOUTS[layout]
    torch.manual_seed(0)
    model, x = cls(), torch.randn(shape)
    paths = [path for path, *_ in expected]
    report = audit(model, x)
    assert [(row.path, row.stride) for row in report.rows] == [(path, stride) for path, _, stride, *_ in expected]
    assert all(0.0 <= row.score <= row.upper <= 1.0 and row.output_shape is not None for row in report.rows)
    swapped, _ = _quiet(replace_upsamplers, model, "nearest_conv", x, strict=False)
    assert sorted([p for p, _ in swapped.replaced_sites] + [p for p, _ in swapped.skipped_sites]) == sorted(paths)
    assert [p for p, _ in swapped.replaced_sites] == [p for p, *rest in expected if rest[-1]]
    assert swapped(x).shape == model(x).shape
    fused, _ = _quiet(fuse_resize_conv, model)
    fusable = [p for p, _, _, fuse, _ in expected if fuse == "yes"]
    assert len(fused.fused_sites) == len(fusable)
    assert [s.path for s in find_upsampling_sites(fused, x) if s.fusable == "fused"] == fusable
    assert {p for p, _ in fused.skipped_sites} <= set(paths) - set(fusable)
    torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)


def test_transformer_net_interpolate_in_forward_is_found_without_an_input_too():
    sites = find_upsampling_sites(TransformerNetLike())
    assert [(s.path, s.owner, s.found, s.calls, s.modules) for s in sites] == [
        ("deconv1.conv2d", "deconv1", "forward", ("deconv1:interpolate",), ("deconv1.reflection_pad", "deconv1.conv2d"))]


def test_a_lone_resize_needs_an_input_for_its_channels():
    static = find_upsampling_sites(UNetLike())
    assert [(s.path, s.kind, s.in_channels, s.replaceable) for s in static] == [("up1.up", "resize", None, False)]
    assert static[0].reason == "its channels are unknown without an example input"
    ran = find_upsampling_sites(UNetLike(), torch.randn(1, 3, 16, 16))
    assert [(s.in_channels, s.out_channels, s.bias) for s in ran] == [(8, 8, False)]


def test_an_untraceable_forward_is_named_with_the_tracers_reason():
    search = search_upsampling_sites(ShapeBranchSR())
    assert search.sites == ()
    assert [path for path, _ in search.untraced] == [""]
    assert search.untraced[0][1].startswith("torch.fx cannot trace its forward: TraceError: ")
    assert "\n" not in search.untraced[0][1]
    ran = search_upsampling_sites(ShapeBranchSR(), (torch.randn(1, 3, 6, 6),))
    (site,) = ran.sites
    assert site.found == "execution" and site.calls == (":interpolate",)
    assert "cannot be rewritten: torch.fx cannot trace its forward" in site.reason
    assert "cannot be rewritten" in site.note
    assert tuple(ran.outputs["conv_up1"].shape) == (1, 8, 16, 12)  # the padded map, doubled


class WritesOnSelf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        self.seen = x.shape[-1]
        return self.conv(F.interpolate(x, scale_factor=2))


def test_fuse_says_per_module_why_it_could_not_search_it():
    _, messages = _quiet(fuse_resize_conv, nn.Sequential(ShapeBranchSR(), WritesOnSelf()))
    (message,) = messages
    lines = message.splitlines()
    assert "the copy is unchanged" in lines[0]
    assert lines[1].startswith("0 (not searched): torch.fx cannot trace its forward: TraceError: ")
    assert lines[2] == "1 (not searched): its forward writes attributes on self (seen), which a graph does not keep"


def test_a_run_sees_chains_across_module_boundaries_and_a_static_search_does_not_fuse_them():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(2, 2, 1), nn.Upsample(scale_factor=2)),
                          nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU()))
    static = find_upsampling_sites(model)
    assert [(s.path, s.kind) for s in static] == [("0.1", "resize")]
    (site,) = find_upsampling_sites(model, torch.randn(1, 2, 4, 4))
    assert (site.path, site.kind, site.modules, site.fusable, site.found) == (
        "1.0", "resize_conv", ("0.1", "1.0"), "no", "execution")
    assert "different modules" in site.note
    swapped = replace_upsamplers(model, "deconv", torch.randn(1, 2, 4, 4))
    assert swapped.replaced_sites == (("1.0", "deconv"),) and isinstance(swapped[0][1], nn.Identity)
    assert swapped(torch.randn(1, 2, 4, 4)).shape == (1, 3, 8, 8)


class TwoCalls(nn.Module):
    """Two functional resizes in one forward: named apart by their order."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 2, 3, 3))

    def forward(self, x):
        y = F.conv2d(F.interpolate(x, scale_factor=2), self.weight, padding=1)
        return F.interpolate(y, scale_factor=2, mode="bilinear")


def test_calls_are_named_by_owner_and_order_the_same_statically_and_on_the_run():
    model = nn.Sequential(nn.Identity(), TwoCalls())
    static = [(s.path, s.kind, s.fusable, s.replaceable) for s in find_upsampling_sites(model)]
    ran = [(s.path, s.kind, s.fusable, s.replaceable) for s in find_upsampling_sites(model, torch.randn(1, 2, 4, 4))]
    assert static == ran == [("1:interpolate", "resize_conv", "yes", False), ("1:interpolate#2", "resize", "no", False)]


def test_replacing_a_resize_written_in_forward_rewrites_that_forward():
    torch.manual_seed(0)
    model, x = TransformerNetLike(), torch.randn(1, 3, 8, 8)
    swapped = replace_upsamplers(model, "deconv")
    assert swapped.replaced_sites == (("deconv1.conv2d", "deconv"),)
    assert isinstance(swapped.deconv1.reflection_pad, nn.Identity) and "forward" in vars(swapped.deconv1)
    with Calls() as calls:
        out = swapped(x)
    assert F.interpolate not in calls.called and out.shape == model(x).shape
    assert "forward" not in vars(model.deconv1)  # the input is untouched


def test_pointwise_activation_between_nearest_and_conv_fuses_exactly():
    torch.manual_seed(0)
    model = FDATLikeUpsampler()
    fused = fuse_resize_conv(model)
    assert [type(m).__name__ for m in fused.upsampler] == ["Identity", "GELU", "FusedResizeConv2d"]
    x = torch.randn(2, 3, 5, 7)
    torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)


class InterpolateActConv(nn.Module):
    def __init__(self, mode: str = "nearest") -> None:
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(F.leaky_relu(F.interpolate(x, scale_factor=2, mode=self.mode), 0.2))


def test_pointwise_activation_in_a_forward_fuses_for_nearest_only():
    torch.manual_seed(0)
    model, x = InterpolateActConv(), torch.randn(2, 3, 5, 6)
    fused = fuse_resize_conv(model)
    assert [(s.pattern, s.mode) for s in fused.fused_sites] == [("forward", "nearest")]
    torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)
    with pytest.warns(UserWarning, match="the copy is unchanged.\nconv: an activation between a bilinear resize"):
        assert fuse_resize_conv(InterpolateActConv("bilinear")).fused_sites == ()
    bilinear = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1))
    with pytest.warns(UserWarning, match="the copy is unchanged"):
        assert fuse_resize_conv(bilinear).fused_sites == ()


def test_a_search_restores_buffers_and_removes_its_hooks():
    model = UNetLike()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    find_upsampling_sites(model, torch.randn(2, 3, 16, 16))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got str"):
        find_upsampling_sites("model")


class SizedResize(nn.Module):
    """A U-Net decoder step that resizes to the skip's size: a size, not a factor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x, skip):
        return self.conv(F.interpolate(x, size=skip.shape[-2:], mode="nearest")) + skip


def test_a_resize_to_a_size_gets_the_factor_the_run_saw_and_is_not_replaced():
    model, x, skip = SizedResize(), torch.randn(2, 4, 8, 8), torch.randn(2, 4, 16, 16)
    assert [(s.path, s.stride, s.replaceable) for s in find_upsampling_sites(model)] == [("conv", None, False)]
    (site,) = find_upsampling_sites(model, x, skip)
    assert (site.path, site.kind, site.stride, site.overlap, site.replaceable) == ("conv", "resize_conv", 2, 1.0, False)
    assert site.reason.startswith("its resize (size=") and "sets an output size, not a factor" in site.reason
    (row,) = audit(model, x, skip).rows
    assert row.stride == 2 and row.score == 0.0


class TrainingBranchResize(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        y = self.conv(F.interpolate(x, scale_factor=2))
        return y * 2 if self.training else y


def test_a_forward_that_depends_on_training_mode_is_not_rewritten_by_replace_or_fuse():
    for args in ((), (torch.randn(1, 2, 4, 4),)):
        (site,) = find_upsampling_sites(TrainingBranchResize(), *args)
        assert (site.fusable, site.replaceable) == ("no", False)
        assert site.note == site.reason == "its forward depends on training or grad mode, so it is not rewritten"
    with pytest.raises(ValueError, match="'conv' \\(resize_conv\\): its forward depends on training or grad mode, "
                                         "so it is not rewritten"):
        replace_upsamplers(TrainingBranchResize(), "nearest_conv")


class ComputedWeight(nn.Module):
    """A conv whose weight is computed in forward: statically its shape is unknown, on a run it is known."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 2, 3, 3))

    def forward(self, x):
        return F.pixel_shuffle(F.conv2d(x, self.weight * 2, padding=1), 2)


def test_a_conv_whose_weight_is_computed_is_a_site_with_what_is_known():
    (static,) = find_upsampling_sites(ComputedWeight())
    assert (static.path, static.kind, static.stride, static.kernel, static.in_channels, static.replaceable) == (
        ":conv2d", "pixel_shuffle", 2, None, None, False)
    assert static.reason == "its convolution's weight is computed in the forward, so its shape is unknown without an input"
    (ran,) = find_upsampling_sites(ComputedWeight(), torch.randn(1, 2, 4, 4))
    assert (ran.kernel, ran.in_channels, ran.out_channels, ran.calls) == (3, 2, 2, (":conv2d", ":pixel_shuffle"))
    assert ran.reason == "its convolution is an F.conv2d call in the forward of the model: no module to swap"


class ShuffleCall(nn.Module):
    """A conv module whose output goes to an F.pixel_shuffle call: replaced by rewriting the forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        return torch.tanh(F.pixel_shuffle(self.conv(x), 2))


def test_a_pixel_shuffle_call_is_replaced_by_rewriting_the_forward():
    (site,) = find_upsampling_sites(ShuffleCall())
    assert (site.path, site.kind, site.calls, site.replaceable, site.out_channels) == (
        "conv", "pixel_shuffle", (":pixel_shuffle",), True, 3)
    swapped = replace_upsamplers(ShuffleCall(), "deconv")
    with Calls() as calls:
        out = swapped(torch.randn(1, 3, 5, 5))
    assert out.shape == (1, 3, 10, 10) and torch.pixel_shuffle not in calls.called


def test_a_helper_that_refuses_tracing_stays_one_call_and_still_runs():
    from _layouts import pixel_unshuffle

    torch.manual_seed(0)
    model = RRDBNetLike()
    search = search_upsampling_sites(model)
    assert search.untraced == () and [s.found for s in search.sites] == ["forward", "forward"]
    fused = fuse_resize_conv(model)
    assert [(s.path, s.pattern) for s in fused.fused_sites] == [("", "forward")] * 2
    assert "forward" in vars(fused) and "forward" not in vars(model)
    _assert_close_with_grads(model, fused, torch.randn(2, 3, 6, 10))
    with pytest.raises(AssertionError):  # the helper runs as written, assert included
        fused(torch.randn(1, 3, 5, 6))
    assert pixel_unshuffle.__module__ == "_layouts"


def _assert_close_with_grads(original: nn.Module, fused: nn.Module, x: torch.Tensor) -> None:
    results = []
    for model in (original, fused):
        model.zero_grad(set_to_none=True)
        inp = x.clone().requires_grad_(True)
        out = model(inp)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), inp.grad, {n: p.grad for n, p in model.named_parameters()}))
    (out_a, gin_a, g_a), (out_b, gin_b, g_b) = results
    torch.testing.assert_close(out_b, out_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gin_b, gin_a, rtol=1e-5, atol=1e-5)
    assert g_a.keys() == g_b.keys()
    for name in g_a:
        torch.testing.assert_close(g_b[name], g_a[name], rtol=1e-5, atol=1e-5)


class Raises(nn.Module):
    def forward(self, x):
        raise KeyError("optional branch")


class CatchesAChildsError(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.optional = Raises()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        try:
            self.optional(x)
        except KeyError:
            pass
        return self.conv(F.interpolate(x, scale_factor=2))


def test_a_child_that_raises_inside_a_caught_try_does_not_confuse_the_owner():
    (site,) = find_upsampling_sites(nn.Sequential(CatchesAChildsError()), torch.randn(1, 2, 4, 4))
    assert (site.path, site.owner, site.calls) == ("0.conv", "0", ("0:interpolate",))


class AutocastInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(self.upsample(x))

    def upsample(self, x):
        with torch.no_grad():
            return F.interpolate(x, scale_factor=2)


def test_try_and_with_blocks_are_not_traced_away():
    model, x = CatchesAChildsError(), torch.randn(1, 2, 4, 4)
    with pytest.warns(UserWarning, match="<root> \\(not searched\\): CatchesAChildsError.forward has a try block"):
        fused = fuse_resize_conv(model)
    torch.testing.assert_close(fused(x), model(x))  # the caught exception stays caught
    search = search_upsampling_sites(AutocastInside())
    assert search.untraced == (("", "AutocastInside.upsample has a with block (grad mode, autocast, ...), which a "
                                     "graph does not keep"),)
    with pytest.raises(ValueError, match="cannot be rewritten: AutocastInside.upsample has a with block"):
        replace_upsamplers(AutocastInside(), "deconv", x)
