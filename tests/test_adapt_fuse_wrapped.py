"""fuse_resize_conv and convolutions that are more than their weight: parametrized, hooked, wrapped, pickled."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize, prune, spectral_norm, weight_norm

from lightning_checkerboard import fuse_resize_conv
from lightning_checkerboard.adapt import FusedResizeConv2d
from lightning_checkerboard.adapt import layer as adapt_layer


@pytest.fixture(autouse=True)
def _always_the_tied_path(monkeypatch):
    """Tiny test shapes would take the plain path by cost; these tests hold the tied one to exactness."""
    monkeypatch.setattr(adapt_layer, "fused_is_faster", lambda *args, **kwargs: True)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _outputs_and_grads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    model.zero_grad(set_to_none=True)
    out = model(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), {name: p.grad for name, p in model.named_parameters()}


def _assert_same(original: nn.Module, fused: nn.Module, x: torch.Tensor) -> None:
    out_a, grads_a = _outputs_and_grads(original, x)
    out_b, grads_b = _outputs_and_grads(fused, x)
    assert _relative_error(out_b, out_a) < 1e-5
    assert grads_a.keys() == grads_b.keys()
    for name, grad in grads_a.items():
        assert grad is not None and grads_b[name] is not None, name
        assert _relative_error(grads_b[name], grad) < 1e-5, name


class InterpolateConv(nn.Module):
    """The issue's repro: a conv child called on an interpolated input in a custom forward."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_spectral_norm_conv_in_a_forward_fuses_with_its_normalised_weight(train):
    torch.manual_seed(0)
    model = InterpolateConv(spectral_norm(nn.Conv2d(8, 4, 3, padding=1))).train(train)
    model(torch.randn(1, 8, 4, 4))  # a few power iterations, so eval has a settled sigma
    fused = fuse_resize_conv(model)
    assert [s.path for s in fused.fused_sites] == [""]
    _assert_same(model, fused, torch.randn(2, 8, 5, 6))
    assert fused.conv.weight_orig.grad is not None
    assert torch.equal(fused.conv.weight_u, model.conv.weight_u)  # the same power iterations ran


@pytest.mark.parametrize(
    "wrap",
    [parametrizations.weight_norm, parametrizations.spectral_norm, weight_norm, spectral_norm,
     lambda conv: prune.l1_unstructured(conv, "weight", amount=0.4)],
    ids=["parametrizations.weight_norm", "parametrizations.spectral_norm", "hook-weight_norm",
         "hook-spectral_norm", "prune"],
)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_normalised_or_pruned_conv_in_a_sequential_fuses_with_its_effective_weight(wrap, train):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Upsample(scale_factor=2), wrap(nn.Conv2d(3, 5, 3, padding=1)), nn.ReLU()).train(train)
    model(torch.randn(1, 3, 4, 4))
    fused = fuse_resize_conv(model)
    assert isinstance(fused[1], FusedResizeConv2d)
    assert fused.state_dict().keys() == model.state_dict().keys()
    _assert_same(model, fused, torch.randn(2, 3, 4, 5))
    fused.load_state_dict(model.state_dict())
    model.load_state_dict(fused.state_dict())


def test_hook_weight_norm_model_can_be_fused_twice_and_deep_copied():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Upsample(scale_factor=2), weight_norm(nn.Conv2d(3, 5, 3, padding=1)))
    model(torch.randn(1, 3, 2, 2))
    fused = fuse_resize_conv(model)
    x = torch.randn(1, 3, 3, 3)
    torch.testing.assert_close(copy.deepcopy(fused)(x), model(x))
    with pytest.warns(UserWarning, match="the copy is unchanged"):
        again = fuse_resize_conv(fused)
    torch.testing.assert_close(again(x), model(x))


class Recorded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def __call__(self, module, args, output):  # a forward hook
        self.calls.append(tuple(output.shape))


@pytest.mark.parametrize("where", ["sequential", "forward"])
def test_conv_with_a_forward_hook_is_left_unfused_with_the_reason(where, caplog):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 2, 3, padding=1)
    hook = Recorded()
    conv.register_forward_hook(hook)
    model = nn.Sequential(nn.Upsample(scale_factor=2), conv) if where == "sequential" else InterpolateConv(conv)
    with caplog.at_level("INFO", logger="lightning_checkerboard.adapt.fuse"), \
            pytest.warns(UserWarning, match="unfused: it has forward hooks"):
        fused = fuse_resize_conv(model)
    assert fused.fused_sites == ()
    assert "unfused: it has forward hooks" in caplog.text
    fused(torch.randn(1, 3, 4, 4))
    copied = next(iter((fused[1] if where == "sequential" else fused.conv)._forward_hooks.values()))
    assert copied.calls == [(1, 2, 8, 8)] and hook.calls == []  # the copy's hook runs, on the original path


def test_conv_with_an_unknown_pre_hook_is_left_unfused():
    conv = nn.Conv2d(3, 2, 3, padding=1)
    conv.register_forward_pre_hook(lambda module, args: None)
    with pytest.warns(UserWarning, match="forward pre-hooks other than weight_norm"):
        fused = fuse_resize_conv(nn.Sequential(nn.Upsample(scale_factor=2), conv))
    assert fused.fused_sites == ()


class LoRA(nn.Module):
    """A low-rank update of a weight as a parametrization: W + B A (B starts non-zero here, so it shows)."""

    def __init__(self, out_channels: int, in_channels: int, rank: int = 2) -> None:
        super().__init__()
        self.down = nn.Parameter(torch.randn(rank, in_channels * 9) * 0.5)
        self.up = nn.Parameter(torch.randn(out_channels, rank) * 0.5)

    def forward(self, weight):
        return weight + (self.up @ self.down).view_as(weight)


def test_lora_parametrization_added_after_fusing_takes_effect():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 4, 3, padding=1))
    fused = fuse_resize_conv(model)
    lora = LoRA(4, 3)
    parametrize.register_parametrization(fused[1], "weight", lora)
    parametrize.register_parametrization(model[1], "weight", copy.deepcopy(lora))
    x = torch.randn(2, 3, 5, 5)
    assert _relative_error(fused(x), model(x)) < 1e-5
    _assert_same(model, fused, x)
    assert fused[1].parametrizations.weight[0].down.grad is not None


def test_lora_parametrization_added_after_fusing_a_forward_takes_effect():
    torch.manual_seed(0)
    model = InterpolateConv(nn.Conv2d(3, 4, 3, padding=1))
    fused = fuse_resize_conv(model)
    lora = LoRA(4, 3)
    parametrize.register_parametrization(fused.conv, "weight", lora)
    parametrize.register_parametrization(model.conv, "weight", copy.deepcopy(lora))
    _assert_same(model, fused, torch.randn(2, 3, 4, 4))


class WrappedConv(nn.Module):
    """An adapter in the PEFT style: the conv as ``base_layer`` plus a low-rank path of its own."""

    def __init__(self, base: nn.Conv2d) -> None:
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Conv2d(base.in_channels, 2, 3, padding=base.padding, bias=False)
        self.lora_B = nn.Conv2d(2, base.out_channels, 1, bias=False)

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x))


def test_wrapped_conv_in_a_forward_or_a_subclass_with_its_own_forward_is_not_fused():
    class Doubled(nn.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    torch.manual_seed(0)
    for conv in (WrappedConv(nn.Conv2d(3, 2, 3, padding=1)), Doubled(3, 2, 3, padding=1)):
        model = InterpolateConv(conv)
        with pytest.warns(UserWarning, match="the copy is unchanged"):
            fused = fuse_resize_conv(model)
        assert fused.fused_sites == ()
        x = torch.randn(1, 3, 4, 4)
        torch.testing.assert_close(fused(x), model(x))


@pytest.mark.parametrize(
    ("conv", "match"),
    [(nn.Conv2d(2, 2, 3), "it has forward hooks"), (WrappedConv(nn.Conv2d(2, 2, 3)), "base_layer"),
     (nn.ConvTranspose2d(2, 2, 3), "not an nn.Conv2d")],
    ids=["hooked", "wrapped", "not-a-conv"],
)
def test_conv_refusal_names_the_reason(conv, match):
    if type(conv) is nn.Conv2d:
        conv.register_forward_hook(lambda *args: None)
    assert match in adapt_layer.conv_refusal(conv)
    with pytest.raises(ValueError, match=f"conv cannot run fused: .*{match}"):
        FusedResizeConv2d.from_conv(conv, mode="nearest", scale=2, padding="zeros")


def _torch_round_trip(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_a_model_fused_in_a_sequential_round_trips_through_torch_save():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    fused = fuse_resize_conv(model)
    loaded = _torch_round_trip(fused)
    assert isinstance(loaded[1], FusedResizeConv2d) and loaded.fused_sites == fused.fused_sites
    assert loaded[1]._parameters is loaded[1]._conv._parameters  # still one set of parameters, not two copies
    assert [name for name, _ in loaded.named_parameters()] == ["1.weight", "1.bias"]
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(loaded(x), model(x))


def test_a_model_fused_through_its_forward_refuses_pickling_with_the_documented_way():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 3, 1), InterpolateConv(nn.Conv2d(3, 4, 3, padding=1)))
    fused = fuse_resize_conv(model)
    with pytest.raises(pickle.PicklingError, match=r"save its state_dict\(\) instead.*call fuse_resize_conv again"):
        torch.save(fused, io.BytesIO())
    with pytest.raises(pickle.PicklingError, match="InterpolateConv runs a forward rewritten by fuse_resize_conv"):
        pickle.dumps(fused[1])
    # The documented way: the state dict into the original architecture, then fuse again.
    fresh = nn.Sequential(nn.Conv2d(3, 3, 1), InterpolateConv(nn.Conv2d(3, 4, 3, padding=1)))
    fresh.load_state_dict(fused.state_dict())
    refused = fuse_resize_conv(fresh)
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(refused(x), model(x))
    assert refused.fused_sites == fused.fused_sites


def _upsample2d(**kwargs):
    diffusers = pytest.importorskip("diffusers")
    from diffusers.models.upsampling import Upsample2D

    del diffusers
    torch.manual_seed(0)
    return Upsample2D(4, use_conv=True, out_channels=3, **kwargs)


def test_a_fused_diffusers_block_refuses_pickling_with_advice():
    fused = fuse_resize_conv(_upsample2d())
    assert len(fused.fused_sites) == 1
    with pytest.raises(pickle.PicklingError, match=r"Upsample2D runs a forward rewritten.*state_dict\(\)"):
        torch.save(fused, io.BytesIO())


def test_lora_parametrization_on_a_fused_diffusers_conv_takes_effect():
    block = _upsample2d()
    fused = fuse_resize_conv(block)
    lora = LoRA(3, 4)
    parametrize.register_parametrization(fused.conv, "weight", lora)
    parametrize.register_parametrization(block.conv, "weight", copy.deepcopy(lora))
    _assert_same(block, fused, torch.randn(1, 4, 5, 5))


def test_a_diffusers_block_whose_conv_is_wrapped_is_left_unfused_with_the_reason():
    block = _upsample2d()
    block.conv = WrappedConv(block.conv)
    with pytest.warns(UserWarning, match=r"left conv unfused: it is a WrappedConv wrapping its convolution"):
        fused = fuse_resize_conv(block)
    assert fused.fused_sites == ()
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(fused(x), block(x))


@pytest.mark.parametrize("pad", [True, False], ids=["pad-step", "conv-padding"])
def test_adapter_or_hook_put_on_a_traced_conv_after_fusing_takes_effect(pad):
    class PadThenConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=0 if pad else 1, padding_mode="zeros" if pad else "reflect")

        def forward(self, x):
            y = F.interpolate(x, scale_factor=2)
            return self.conv(F.pad(y, (1, 1, 1, 1), mode="reflect") if pad else y)

    torch.manual_seed(0)
    model = PadThenConv()
    fused = fuse_resize_conv(model)
    assert len(fused.fused_sites) == 1
    model.conv, fused.conv = WrappedConv(model.conv), WrappedConv(fused.conv)
    fused.conv.load_state_dict(model.conv.state_dict())
    x = torch.randn(1, 3, 4, 5)
    torch.testing.assert_close(fused(x), model(x))
    hook = Recorded()
    fused.conv.register_forward_hook(hook)
    fused(x)
    assert hook.calls == [(1, 4, 8, 10)]


def test_adapter_put_on_a_fused_diffusers_conv_after_fusing_takes_effect():
    block = _upsample2d()
    fused = fuse_resize_conv(block)
    block.conv, fused.conv = WrappedConv(block.conv), WrappedConv(fused.conv)
    fused.conv.load_state_dict(block.conv.state_dict())
    x = torch.randn(1, 4, 3, 5)
    torch.testing.assert_close(fused(x), block(x))


def test_wrapped_conv_in_a_sequential_is_left_unfused_with_the_reason():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Upsample(scale_factor=2), WrappedConv(nn.Conv2d(3, 2, 3, padding=1)))
    with pytest.warns(UserWarning, match=r"left 1 unfused: it is a WrappedConv wrapping its convolution \(base_layer\)"):
        fused = fuse_resize_conv(model)
    assert fused.fused_sites == () and isinstance(fused[0], nn.Upsample)
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(fused(x), model(x))


def test_wrapped_conv_in_a_forward_is_refused_with_the_reason():
    model = InterpolateConv(WrappedConv(nn.Conv2d(3, 2, 3, padding=1)))
    with pytest.warns(UserWarning, match=r"left InterpolateConv.conv unfused: it is a WrappedConv wrapping"):
        fuse_resize_conv(model)


@pytest.mark.parametrize("build", [lambda conv: nn.Sequential(nn.Upsample(scale_factor=2), conv), InterpolateConv],
                         ids=["sequential", "forward"])
def test_fused_model_inference_between_optimiser_steps_sees_every_step(build):
    torch.manual_seed(0)
    model = build(nn.Conv2d(3, 4, 3, padding=1))
    fused = fuse_resize_conv(model)
    optimisers = [torch.optim.Adam(m.parameters(), lr=0.05) for m in (model, fused)]
    x = torch.randn(2, 3, 5, 4)
    for _ in range(3):
        for m, optimiser in zip((model, fused), optimisers):
            with torch.no_grad():
                m(x)  # an inference call between steps: a kernel kept here must not outlive the step
            optimiser.zero_grad()
            m(x).square().mean().backward()
            optimiser.step()
        with torch.no_grad():
            assert _relative_error(fused(x), model(x)) < 1e-5
