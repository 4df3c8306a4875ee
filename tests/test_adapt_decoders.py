"""fuse_resize_conv on whole decoders: diffusers' AutoencoderKL, audited, fused exactly, saved, copied, refused.

Tiny widths keep these fast; the tied transposed convolution would not be the cheaper path at such
sizes, so it is forced here (and counted) to hold the fused computation itself to exactness. The
decode benchmark (recipes/benchmarks/bench_decoder.py) is run at its tiny layout.
"""

from __future__ import annotations

import argparse
import copy
import io
import re
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL
from torch.nn.utils import parametrizations

from _recipes import load_recipe
from lightning_checkerboard import audit, fuse_resize_conv
from lightning_checkerboard.adapt import layer as adapt_layer

bench = load_recipe("bench_decoder")
UP_SITES = [f"up_blocks.{i}.upsamplers.0" for i in range(3)]


@pytest.fixture
def tied_calls(monkeypatch) -> list[tuple[int, ...]]:
    """Force the tied path at every size and record the input shape of each call that takes it."""
    calls: list[tuple[int, ...]] = []
    nearest = adapt_layer.nearest_conv2d

    def counted(x, *args, **kwargs):
        calls.append(tuple(x.shape))
        return nearest(x, *args, **kwargs)

    monkeypatch.setattr(adapt_layer, "fused_is_faster", lambda *args, **kwargs: True)
    monkeypatch.setattr(adapt_layer, "nearest_conv2d", counted)
    return calls


def _vae() -> AutoencoderKL:
    """The SD VAE's layout (4 blocks, 3 upsamplers) at tiny widths."""
    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
    ).eval()


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.detach() - expected.detach()).abs().max() / expected.detach().abs().max())


def _latent() -> torch.Tensor:
    return torch.randn(2, 4, 4, 5, generator=torch.Generator().manual_seed(3))


def test_audit_finds_every_upsampler_of_the_decoder_and_fuse_fuses_each(tied_calls):
    vae = _vae()
    upsamplers = [path for path, m in vae.decoder.named_modules() if type(m).__name__ == "Upsample2D"]
    rows = audit(vae.decoder, _latent()).rows
    assert [(r.path, r.kind, r.fusable) for r in rows] == [(path, "resize_conv", "yes") for path in upsamplers]
    assert upsamplers == UP_SITES
    fused = fuse_resize_conv(vae)
    assert [(s.path, s.pattern, s.mode, s.scale, s.padding) for s in fused.fused_sites] == [
        (f"decoder.{path}", "diffusers.Upsample2D", "nearest", 2, "zeros") for path in UP_SITES]
    assert fused.skipped_sites == ()
    assert [r.fusable for r in audit(fused.decoder, _latent()).rows] == ["fused"] * 3
    assert "forward" not in vars(vae.decoder.up_blocks[0].upsamplers[0])  # the original is untouched


@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_fused_decode_equals_the_original_without_grad(tied_calls, context):
    vae = _vae()
    fused = fuse_resize_conv(vae)
    z = _latent()
    with getattr(torch, context)():
        expected, actual = vae.decode(z).sample, fused.decode(z).sample
    assert actual.shape == expected.shape == (2, 3, 32, 40)
    assert _relative_error(actual, expected) < 1e-5
    assert tied_calls == [(2, 16, 4, 5), (2, 16, 8, 10), (2, 16, 16, 20)]  # each up site ran the tied path


def test_fused_decode_and_its_gradients_equal_the_original_in_train_mode(tied_calls):
    vae = _vae().train()
    fused = fuse_resize_conv(vae)
    assert fused.training and fused.decoder.up_blocks[0].upsamplers[0].training
    results = []
    for model in (vae, fused):
        z = _latent().requires_grad_()
        out = model.decode(z).sample
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = {name: p.grad for name, p in model.decoder.named_parameters()}
        results.append((out, z.grad, grads))
    (out_a, z_a, grads_a), (out_b, z_b, grads_b) = results
    assert _relative_error(out_b, out_a) < 1e-5 and _relative_error(z_b, z_a) < 1e-5
    assert grads_a.keys() == grads_b.keys()
    for name in (f"{path}.conv.weight" for path in UP_SITES):
        assert _relative_error(grads_b[name], grads_a[name]) < 1e-5, name
    assert len(tied_calls) == 3


def test_a_fused_decoder_state_dict_saves_and_loads_both_ways(tied_calls):
    vae = _vae()
    fused = fuse_resize_conv(vae)
    with torch.no_grad():
        for p in fused.decoder.parameters():  # a "trained" fused model
            p.add_(0.01 * torch.randn_like(p))
    buffer = io.BytesIO()
    torch.save(fused.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state.keys() == vae.state_dict().keys()
    fresh = _vae()
    fresh.load_state_dict(state, strict=True)
    refused = fuse_resize_conv(fresh)
    z = _latent()
    with torch.no_grad():
        expected = fused.decode(z).sample
        assert _relative_error(fresh.decode(z).sample, expected) < 1e-5
        assert _relative_error(refused.decode(z).sample, expected) < 1e-5
        again = fuse_resize_conv(_vae())
        again.load_state_dict(state, strict=True)
        assert _relative_error(again.decode(z).sample, expected) < 1e-5


def test_a_deep_copy_of_a_fused_decoder_computes_with_its_own_weights(tied_calls):
    """An EMA copy: the rewritten forwards of the copy are bound to the copy's blocks, not the original's."""
    vae = _vae()
    fused = fuse_resize_conv(vae)
    shadow = copy.deepcopy(fused)
    assert [s.path for s in shadow.fused_sites] == [s.path for s in fused.fused_sites]
    scaled = _vae()
    with torch.no_grad():
        for model in (shadow, scaled):
            model.decoder.up_blocks[1].upsamplers[0].conv.weight.mul_(2)
        z = _latent()
        assert _relative_error(shadow.decode(z).sample, scaled.decode(z).sample) < 1e-5
        assert _relative_error(fused.decode(z).sample, vae.decode(z).sample) < 1e-5


def test_a_channels_last_decoder_fuses_exactly(tied_calls):
    vae = _vae().to(memory_format=torch.channels_last)
    fused = fuse_resize_conv(vae)
    z = _latent().contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert _relative_error(fused.decode(z).sample, vae.decode(z).sample) < 1e-5
    assert len(tied_calls) == 3


def test_a_spectral_normalised_up_conv_fuses_with_its_normalised_weight(tied_calls):
    vae = _vae()
    parametrizations.spectral_norm(vae.decoder.up_blocks[0].upsamplers[0].conv)
    fused = fuse_resize_conv(vae)
    assert len(fused.fused_sites) == 3 and fused.state_dict().keys() == vae.state_dict().keys()
    with torch.no_grad():
        assert _relative_error(fused.decode(_latent()).sample, vae.decode(_latent()).sample) < 1e-5


def test_a_hooked_up_conv_is_left_unfused_and_audit_and_skipped_sites_say_why(tied_calls):
    vae = _vae()
    seen = []
    vae.decoder.up_blocks[1].upsamplers[0].conv.register_forward_hook(
        lambda module, args, output: seen.append(tuple(args[0].shape)))
    expected_reason = "it has forward hooks, which would see the low-resolution input"
    rows = audit(vae.decoder, _latent()).rows
    assert [(r.path, r.fusable) for r in rows] == [(UP_SITES[0], "yes"), (UP_SITES[1], "no"), (UP_SITES[2], "yes")]
    with pytest.warns(UserWarning, match=re.escape(f"left decoder.{UP_SITES[1]}.conv unfused: {expected_reason}")):
        fused = fuse_resize_conv(vae)
    assert [s.path for s in fused.fused_sites] == [f"decoder.{UP_SITES[0]}", f"decoder.{UP_SITES[2]}"]
    assert fused.skipped_sites == ((f"decoder.{UP_SITES[1]}", expected_reason),)
    seen.clear()
    z = _latent()
    with torch.no_grad():
        assert _relative_error(fused.decode(z).sample, vae.decode(z).sample) < 1e-5
    assert seen == [(2, 16, 16, 20)] * 2  # the hook still sees the resized input, in both models


def test_fusing_a_fused_decoder_again_changes_nothing_and_says_its_sites_already_run_fused(tied_calls):
    fused = fuse_resize_conv(_vae())
    with pytest.warns(UserWarning, match=r"in AutoencoderKL \(3 site\(s\) already run fused\); the copy is unchanged"):
        twice = fuse_resize_conv(fused)
    assert twice.fused_sites == () and twice.skipped_sites == ()
    with torch.no_grad():
        assert _relative_error(twice.decode(_latent()).sample, fused.decode(_latent()).sample) == 0


# ---- the decode benchmark


def test_bench_decoder_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--layout" in out and "--channels-last" in out and "--out" in out


def test_bench_decoder_tiny_run_prints_a_section_and_writes_nothing_without_out(capsys, monkeypatch, tmp_path):
    speed = Path(bench.ROOT) / "leaderboards" / "speed.md"
    before = speed.read_bytes()
    monkeypatch.chdir(tmp_path)  # a stray relative write would land here
    assert bench.main(["--layout", "tiny", "--latent", "4", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    section = out[out.index(bench.START):out.index(bench.END) + len(bench.END)]
    assert "## `fuse_resize_conv` on a VAE decode: 4×4×4 latent to 32×32" in section
    assert "3 `Upsample2D` sites fused, 0 of them running the tied transposed convolution" in section
    assert re.search(r"\| original \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ ms \|", section)
    assert re.search(r"Speed-up, original / fused time in the same round: \*\*\d+\.\d\d×\*\*", section)
    assert re.search(r"Work per decode .*: [\d.]+ M original, [\d.]+ M fused, .* would run 1\.00× as fast", section)
    assert section.count("| `decoder.up_blocks.") == 3 and "| 8 → 8 | 4×4 | resize → conv |" in section
    assert "Regenerate with `python recipes/benchmarks/bench_decoder.py --layout tiny --latent 4 --repeats 1`." in section
    assert speed.read_bytes() == before and list(tmp_path.iterdir()) == []


def test_bench_decoder_writes_its_own_section_and_records_no_absolute_path(tmp_path, capsys, tied_calls):
    out = tmp_path / "speed.md"
    out.write_text(f"# Speed\n\nkept\n\n{bench.START}\nold\n{bench.END}\ntrailer\n", encoding="utf-8")
    argv = ["--layout", "tiny", "--latent", "2", "--repeats", "2", "--channels-last", "--out", str(out)]
    assert bench.main(argv) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Speed\n\nkept\n\n" + bench.START) and text.endswith(f"{bench.END}\ntrailer\n")
    assert "old" not in text and text.count(bench.START) == 1
    assert ("`python recipes/benchmarks/bench_decoder.py --layout tiny --latent 2 --repeats 2 --channels-last "
            "--out speed.md`") in text
    assert str(tmp_path) not in text and "channels-last" in text
    assert "3 of them running the tied transposed convolution" in text  # forced by the fixture
    assert bench.command_line(argparse.Namespace(
        layout="sd", latent=64, batch=1, repeats=bench.DEFAULT_REPEATS, device="cpu", channels_last=False,
        out=bench.ROOT / "leaderboards" / "speed.md")) == "python recipes/benchmarks/bench_decoder.py --out leaderboards/speed.md"


def test_bench_decoder_counts_the_work_the_fused_upsamplers_save(tied_calls):
    counts = bench.work("tiny", 4, 1)
    original, fused = counts["original"], counts["fused"]
    assert 0.4 < fused["upsamplers"] / original["upsamplers"] < 0.5  # 4×4 taps, not 4 × 3×3 (plus borders)
    assert original["total"] - fused["total"] == pytest.approx(original["upsamplers"] - fused["upsamplers"])
    assert original["upsamplers"] < original["total"] / 2


@pytest.mark.parametrize("argv, message", [
    (["--latent", "0"], "--latent, --batch and --repeats must be at least 1"),
    (["--layout", "huge"], "argument --layout: invalid choice: 'huge'"),
    (["--device", "nowhere"], "--device must name a device this machine has"),
])
def test_bench_decoder_bad_arguments_are_one_line_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# ---- the package's own autoencoder (lightning_checkerboard.models.autoencoder)


def test_the_package_autoencoder_decoder_fuses_its_reference_nearest_conv_stages_exactly(monkeypatch):
    from lightning_checkerboard.models.autoencoder import AutoencoderKL as PackageAutoencoder
    from lightning_checkerboard.upsamplers import layers

    tied_calls = []  # a package layer switched to impl="fused" always runs the tied kernel
    nearest = layers.nearest_conv2d
    monkeypatch.setattr(layers, "nearest_conv2d", lambda x, *a, **k: tied_calls.append(x.shape) or nearest(x, *a, **k))

    torch.manual_seed(0)
    model = PackageAutoencoder("nearest_conv", block_channels=(8, 8, 8), norm_groups=4,
                               upsampler_options={"impl": "reference", "padding": "reflect"}).eval()
    z = torch.randn(2, 4, 3, 5)
    rows = audit(model.decoder, z).rows
    assert [(r.path, r.kind, r.fusable) for r in rows] == [
        (f"up_blocks.{i}.upsampler", "resize_conv", "yes") for i in range(3)]
    fused = fuse_resize_conv(model)
    assert [(s.path, s.pattern, s.padding) for s in fused.fused_sites] == [
        (f"decoder.up_blocks.{i}.upsampler", "layer", "reflect") for i in range(3)]
    assert [r.fusable for r in audit(fused.decoder, z).rows] == ["fused"] * 3
    tied_calls.clear()
    with torch.no_grad():
        expected, actual = model.decode(z), fused.decode(z)
    assert actual.shape == (2, 3, 24, 40) and _relative_error(actual, expected) < 1e-5
    assert len(tied_calls) == 3
    fused.load_state_dict(model.state_dict(), strict=True)


def test_the_package_autoencoder_default_decoder_already_runs_fused(tied_calls):
    from lightning_checkerboard.models.autoencoder import AutoencoderKL as PackageAutoencoder

    model = PackageAutoencoder("nearest_conv,bilinear_conv,deconv", block_channels=(8, 8, 8), norm_groups=4).eval()
    with pytest.warns(UserWarning, match=r"\(2 site\(s\) already run fused\); the copy is unchanged"):
        fused = fuse_resize_conv(model)
    assert fused.fused_sites == ()
    assert fused.skipped_sites == (("decoder.up_blocks.2.upsampler", "a transposed conv has no resize to fuse"),)
