"""The ``probe`` command: per-period readings of decoders, tiled-decode seams, diffusers specs, one-line errors."""

from __future__ import annotations

import json
import math
import os
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_checkerboard.console import main as console_main
from lightning_checkerboard.probe import (
    DecoderAdapter,
    ProbeError,
    ProbeOptions,
    load_decoder,
    probe_decoder,
    tiled_decode,
    to_json,
)

FACTORIES = '''
import math
import torch
import torch.nn.functional as F
from torch import nn


class Planted(nn.Module):
    """Bilinear x8 of a 3-channel latent plus a fixed period-8 pattern of RMS `levels` (images in [0, 1])."""

    def __init__(self, levels=3.0, encoder=False):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)  # holds the latent channels; identity
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None])
            self.conv.bias.zero_()
        x = torch.arange(8.0)
        wave = torch.cos(2 * math.pi * x / 8 + 0.3)
        tile = 2.0 * wave[:, None] * torch.cos(2 * math.pi * x / 8 + 1.1)[None, :]
        tile = tile / tile.square().mean().sqrt()  # RMS 1 exactly
        self.register_buffer("tile", levels / 255.0 * tile)
        self.has_encoder = encoder

    def decode(self, z):
        images = F.interpolate(self.conv(z), scale_factor=8, mode="bilinear", align_corners=False)
        h, w = images.shape[-2:]
        return images + self.tile.repeat(h // 8, w // 8)

    def forward(self, z):
        return self.decode(z)


class PlantedWithEncoder(Planted):
    def encode(self, x):
        return F.avg_pool2d(x, 8)


class BorderRing(nn.Module):
    """Bilinear x8 that adds `levels` on the outermost ring of pixels of whatever it decodes (a tile's border)."""

    def __init__(self, levels=40.0):
        super().__init__()
        self.levels = levels

    def forward(self, z):
        images = F.interpolate(z, scale_factor=8, mode="bilinear", align_corners=False)
        ring = torch.zeros_like(images[:1, :1])
        ring[..., 0, :] = ring[..., -1, :] = ring[..., :, 0] = ring[..., :, -1] = self.levels / 255.0
        return images + ring


def planted():
    return Planted(3.0)


def planted_with_encoder():
    return PlantedWithEncoder(3.0)


def bilinear():
    return nn.Upsample(scale_factor=8, mode="bilinear")


def border_ring():
    return BorderRing()


def returns_text():
    return "not a decoder"


def conv_decoder():
    return nn.Sequential(nn.Conv2d(4, 3, 3, padding=1), nn.Upsample(scale_factor=8))


class WrongEncoder(PlantedWithEncoder):
    def encode(self, x):
        return F.avg_pool2d(x, 4)  # stride 4: latents twice too large for the decoder


class FailsOnLargeLatents(Planted):
    def decode(self, z):
        if z.shape[-1] > 4:
            raise RuntimeError("out of memory (pretend)")
        return super().decode(z)


def wrong_encoder():
    return WrongEncoder()


def fails_on_large_latents():
    return FailsOnLargeLatents()


not_callable = 3


class DecodeOnly:
    """Not a module: an object with decode(), as the guide allows."""

    latent_channels = 3

    def decode(self, z):
        return F.interpolate(z, scale_factor=4, mode="nearest")


def decode_only():
    return DecodeOnly()


def stride_six():
    return nn.Sequential(nn.Conv2d(3, 3, 1), nn.Upsample(scale_factor=6))
'''


@pytest.fixture()
def factories(tmp_path, monkeypatch):
    (tmp_path / "probe_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("probe_factories", None)
    yield "probe_factories"
    sys.modules.pop("probe_factories", None)


def _adapter(factories: str, name: str, **kwargs) -> DecoderAdapter:
    model = load_decoder(f"{factories}:{name}").model
    return DecoderAdapter(model, value_range=(0.0, 1.0), **kwargs)


def test_planted_period_8_pattern_reads_its_amplitude_within_its_bound(factories):
    adapter = _adapter(factories, "planted_with_encoder")
    assert (adapter.latent_channels, adapter.stride, adapter.image_channels, adapter.has_encoder) == (3, 8, 3, True)
    options = ProbeOptions(size=64, num_images=8, kinds=("photos", "constant-latents", "ramp-latents"), audit=False)
    report = probe_decoder(adapter, options)
    for reading in report.readings:
        by_period = {p.period: p for p in reading.periods}
        assert sorted(by_period) == [2, 4, 8]
        assert by_period[8].amplitude == pytest.approx(3.0, rel=0.15), reading.kind
        assert by_period[8].upper >= 3.0, reading.kind
        assert by_period[2].amplitude < 0.3 and by_period[4].amplitude < 0.3, reading.kind


def test_clean_bilinear_decoder_reads_nothing_and_skips_round_trips_without_encoder(factories):
    adapter = _adapter(factories, "bilinear", latent_channels=3)
    assert not adapter.has_encoder and adapter.stride == 8
    report = probe_decoder(adapter, ProbeOptions(size=64, num_images=8, audit=False))
    skipped = {r.kind for r in report.readings if r.skipped}
    assert skipped == {"photos", "constant-images", "ramp-images"}
    for reading in report.readings:
        if not reading.skipped:
            assert all(p.amplitude < 0.05 for p in reading.periods), reading
            assert all(math.isfinite(p.upper) for p in reading.periods)


def test_planted_decoder_reads_lower_when_its_pattern_is_removed(factories):
    clean = _adapter(factories, "planted")
    clean.model.tile.zero_()
    report = probe_decoder(clean, ProbeOptions(size=64, num_images=8, kinds=("ramp-latents",), audit=False))
    assert max(p.amplitude for p in report.readings[0].periods) < 0.05


def test_tiled_decode_without_seams_equals_whole_decode_for_a_local_decoder():
    def nearest(z):
        return F.interpolate(z, scale_factor=4, mode="nearest")

    z = torch.randn(2, 3, 12, 12)
    for tile, overlap in ((16, 0), (16, 8), (24, 8), (48, 40)):
        torch.testing.assert_close(tiled_decode(nearest, z, tile=tile, overlap=overlap, stride=4), nearest(z))


def test_tiled_decode_blends_linearly_in_the_overlap():
    def constant_per_tile(z):  # each tile decodes to its own first value, so the blend weights show
        return z[..., :1, :1].expand(*z.shape[:2], z.shape[-2] * 2, z.shape[-1] * 2)

    z = torch.zeros(1, 1, 1, 6)
    z[..., 2:] = 1.0  # the second tile starts at latent 2 (tile 4, overlap 2 in output px: 8 and 4)
    out = tiled_decode(constant_per_tile, z.expand(1, 1, 4, 6).contiguous(), tile=8, overlap=4, stride=2)
    row = out[0, 0, 0]
    torch.testing.assert_close(row[:4], torch.zeros(4))
    torch.testing.assert_close(row[4:8], (torch.arange(4.0) + 0.5) / 4)  # rises over the 4 px overlap
    torch.testing.assert_close(row[8:], torch.ones(4))


@pytest.mark.parametrize(("tile", "overlap", "message"), [(12, 0, "--tile must be a positive multiple"),
                                                          (16, 4, "--overlap must be a non-negative multiple"),
                                                          (16, 16, "--overlap must be smaller than --tile")])
def test_tiled_decode_refuses_tiles_off_the_stride(tile, overlap, message):
    with pytest.raises(ProbeError, match=message):
        tiled_decode(lambda z: z, torch.zeros(1, 1, 8, 8), tile=tile, overlap=overlap, stride=8)


def test_tile_border_ring_reads_as_a_seam_only_when_tiled(factories):
    adapter = _adapter(factories, "border_ring", latent_channels=3)
    options = ProbeOptions(size=64, num_images=8, kinds=("ramp-latents",), audit=False, tile=32, overlap=0)
    seam = probe_decoder(adapter, options).seam
    assert (seam.period, seam.size, seam.seam_periods) == (32, 256, (16, 32))
    tiled, tiled_upper = seam.seam
    untiled, untiled_upper = seam.untiled_seam
    assert tiled > 2.0 and tiled_upper >= tiled
    assert untiled < 0.1 * tiled
    blended = probe_decoder(adapter, ProbeOptions(size=64, num_images=8, kinds=("ramp-latents",), audit=False,
                                                  tile=64, overlap=32)).seam
    assert blended.period == 32 and blended.seam[0] < 0.5 * tiled


def test_diffusers_layout_probes_end_to_end_with_tiling_and_json(tmp_path, capsys):
    path = tmp_path / "probe.json"
    code = console_main(["probe", "diffusers-layout:tiny", "--size", "32", "--num-images", "4", "--inputs",
                         "photos,constant-latents", "--tile", "16", "--overlap", "8", "--tile-image-size", "32",
                         "--device", "cpu", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "RANDOM weights" in out and "stride 4" in out and "upsamplers.0" in out and "summary:" in out
    payload = json.loads(path.read_text())
    assert payload["stride"] == 4 and payload["latent_channels"] == 4
    assert [p["period"] for p in payload["inputs"][0]["periods"]] == [2, 4]
    assert payload["tiling"]["period"] == 8 and payload["tiling"]["seam_periods"] == [8]
    assert [row["stride"] for row in payload["audit"]["rows"]] == [2, 2]
    assert str(tmp_path) not in json.dumps({k: v for k, v in payload.items() if k != "source"})


def _save_tiny(folder):
    from diffusers import AutoencoderKL

    from lightning_checkerboard.probe import DIFFUSERS_LAYOUTS

    torch.manual_seed(1)
    AutoencoderKL(**DIFFUSERS_LAYOUTS["tiny"][1]).save_pretrained(folder, safe_serialization=True)


def test_diffusers_folder_loads_safetensors_and_needs_a_flag_for_random_weights(tmp_path):
    folder = tmp_path / "vae"
    _save_tiny(folder)
    loaded = load_decoder(f"diffusers:{folder}")
    assert loaded.weights == "pretrained" and type(loaded.model).__name__ == "AutoencoderKL"
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    os.rename(folder, pipeline / "vae")
    assert load_decoder(f"diffusers:{pipeline}").weights == "pretrained"  # a pipeline folder: its vae/
    (pipeline / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ProbeError, match="pass --random-weights"):
        load_decoder(f"diffusers:{pipeline}")
    assert load_decoder(f"diffusers:{pipeline}", random_weights=True).weights == "random"
    (pipeline / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ProbeError, match="pickled weights"):
        load_decoder(f"diffusers:{pipeline}")
    (pipeline / "vae" / "diffusion_pytorch_model.safetensors.index.json").write_text('{"weight_map": {}}')
    with pytest.raises(ProbeError, match="sharded weights"):
        load_decoder(f"diffusers:{pipeline}")


def test_diffusers_folder_refuses_a_config_linked_outside(tmp_path):
    outside = tmp_path / "outside"
    _save_tiny(outside)
    folder = tmp_path / "received"
    folder.mkdir()
    os.symlink(outside / "config.json", folder / "config.json")
    with pytest.raises(ProbeError, match="no config.json"):
        load_decoder(f"diffusers:{folder}", random_weights=True)


def _one_line_error(capsys, argv):
    code = console_main(["probe", *argv])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize(("argv", "message"), [
    (["no_colon_here"], "the decoder must be package.module:factory"),
    (["no_such_module_xyz:f"], "cannot import 'no_such_module_xyz'"),
    (["{m}:not_callable"], "must be a torch.nn.Module"),
    (["{m}:returns_text"], "must be a torch.nn.Module"),
    (["{m}:missing_factory"], "has no attribute 'missing_factory'"),
    (["diffusers:/no/such/folder"], "the folder does not exist"),
    (["diffusers:owner/name/../../../etc"], "the folder does not exist (nor is it a Hub id"),
    (["diffusers-layout:huge"], "diffusers-layout must be one of"),
    (["{m}:bilinear", "--latent-channels", "3", "--stride", "16"], "--stride 16 does not match the decoder"),
    (["{m}:conv_decoder", "--latent-channels", "5"], "check --latent-channels"),
    (["{m}:bilinear", "--latent-channels", "3", "--tile", "60"], "--tile must be a positive multiple"),
    (["{m}:bilinear", "--latent-channels", "3", "--tile", "64", "--overlap", "64"], "--overlap must be smaller"),
    (["{m}:bilinear", "--latent-channels", "3", "--size", "24"], "--size must be a multiple"),
    (["{m}:bilinear", "--random-weights"], "--random-weights applies to diffusers"),
    (["{m}:bilinear", "--inputs", "noise"], "--inputs"),
    (["{m}:wrong_encoder"], "gave latents of shape (1, 3, 8, 8); the decoder takes (1, 3, 4, 4)"),
    (["{m}:fails_on_large_latents", "--value-range=0,1"], "the decoder failed while probed (RuntimeError: out of"),
    (["{m}:stride_six"], "needs a stride that is a power of two (2, 4, 8, ...); the decoder's is 6"),
    (["{m}:bilinear", "--latent-channels", "3", "--tile", "4096"], "more than the 67,108,864 allowed"),
    (["{m}:bilinear", "--latent-channels", "3", "--num-images", "100000000"], "more than the 67,108,864 allowed"),
])
def test_bad_specs_and_flags_are_one_line_and_exit_2(factories, capsys, argv, message):
    err = _one_line_error(capsys, [arg.format(m=factories) for arg in argv])
    assert message in err


def test_a_factory_may_return_an_object_with_decode_that_is_not_a_module(factories):
    adapter = DecoderAdapter(load_decoder(f"{factories}:decode_only").model, value_range=(0.0, 1.0))
    assert (adapter.latent_channels, adapter.stride, adapter.has_encoder) == (3, 4, False)
    report = probe_decoder(adapter, ProbeOptions(kinds=("ramp-latents",), num_images=4, audit=False))
    assert [p.period for p in report.readings[0].periods] == [2, 4]


def test_printed_bounds_round_up_so_they_never_read_below_the_amplitude():
    from lightning_checkerboard.probe.probing import PeriodReading
    from lightning_checkerboard.probe.report import _period_rows

    rows = _period_rows((PeriodReading(2, 0.001, 0.004), PeriodReading(4, 1.2, 1.2), PeriodReading(8, 0.0, math.inf)))
    assert [row.split()[1:] for row in rows[1:]] == [["0.001", "<", "0.01"], ["1.200", "<", "1.20"],
                                                     ["0.000", "<", "inf"]]


def test_hub_id_offline_is_one_quick_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    started = time.perf_counter()
    err = _one_line_error(capsys, ["diffusers:stabilityai/sd-vae-ft-mse", "--device", "cpu"])
    assert "offline" in err and "not in the local cache" in err
    assert time.perf_counter() - started < 30


def test_probe_report_json_has_no_infinite_numbers(factories):
    adapter = _adapter(factories, "bilinear", latent_channels=3)
    report = probe_decoder(adapter, ProbeOptions(size=64, num_images=2, kinds=("constant-latents",), audit=False))
    json.dumps(to_json(report), allow_nan=False)


def test_several_tilings_share_the_latents_and_the_whole_decode(factories):
    from lightning_checkerboard.probe import read_seam, read_seams

    adapter = _adapter(factories, "border_ring", latent_channels=3)
    options = ProbeOptions(num_images=4, tile_image_size=128)
    both = read_seams(adapter, options, [(32, 0), (48, 16)])
    assert [(s.tile, s.overlap, s.period, s.size) for s in both] == [(32, 0, 32, 128), (48, 16, 32, 128)]
    alone = read_seam(adapter, ProbeOptions(num_images=4, tile_image_size=128, tile=48, overlap=16))
    assert alone.seam == pytest.approx(both[1].seam, rel=1e-4, abs=1e-6)
    for one, other in zip(alone.untiled, both[1].untiled):
        assert (one.period, one.amplitude, one.upper) == pytest.approx((other.period, other.amplitude, other.upper),
                                                                       rel=1e-4, abs=1e-6)
    with pytest.raises(ProbeError, match="--tile-image-size must be a multiple"):
        read_seams(adapter, ProbeOptions(num_images=4, tile_image_size=96), [(32, 0), (48, 0)])


def test_readings_are_in_levels_of_the_value_range_and_nothing_is_clamped(factories):
    model = load_decoder(f"{factories}:planted").model
    adapter = DecoderAdapter(model, value_range=(0.0, 1.0 / 3.0))  # the same pattern is 3x larger in this range
    report = probe_decoder(adapter, ProbeOptions(size=64, num_images=8, kinds=("ramp-latents",), audit=False))
    period_8 = report.readings[0].periods[-1]
    assert period_8.amplitude == pytest.approx(9.0, rel=0.15) and period_8.upper >= 9.0


def test_a_constant_decoder_outside_the_range_reads_zero(factories):
    class Constant(nn.Module):
        def forward(self, z):
            return torch.full((z.shape[0], 3, z.shape[-2] * 4, z.shape[-1] * 4), 2.0)

    report = probe_decoder(DecoderAdapter(Constant(), latent_channels=2, value_range=(0.0, 1.0)),
                           ProbeOptions(size=32, num_images=4, kinds=("constant-latents",), audit=False))
    assert [p.amplitude for p in report.readings[0].periods] == [0.0, 0.0]


def test_a_received_config_cannot_ask_for_an_unbounded_model(tmp_path):
    folder = tmp_path / "huge"
    _save_tiny(folder)
    config = json.loads((folder / "config.json").read_text())
    config["block_out_channels"] = [8, 16, 10**7]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ProbeError, match="block_out_channels must be integers from 1 to 4096"):
        load_decoder(f"diffusers:{folder}", random_weights=True)


def test_a_received_config_whose_block_lists_disagree_is_named_before_anything_is_built(tmp_path):
    folder = tmp_path / "odd"
    _save_tiny(folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("up_block_types")  # diffusers would build one up block for three widths, and fail only when decoding
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ProbeError, match="up_block_types lists 1 block.s. and block_out_channels 3; they must match"):
        load_decoder(f"diffusers:{folder}", random_weights=True)
