"""DySample's sampling grid by phase: the measurement, its model-wide form and ``recipes/reports/dysample_phases.py``."""

from __future__ import annotations

import json

import pytest
import torch

from _recipes import load_recipe
from lightning_checkerboard import create_upsampler
from lightning_checkerboard.experiments import model_sampling_phases, sampling_phases
from lightning_checkerboard.models import DCGANGenerator


def test_a_phase_dependent_offset_is_measured_in_pixels_and_as_a_share_of_the_sample_spacing():
    layer = create_upsampler("dysample", 4, 4, groups=1)
    with torch.no_grad():
        layer.offset.weight.zero_()
        layer.offset.bias.zero_()
        layer.offset.bias[0] = 0.4  # x offset of phase (0, 0): 0.4 × the static factor 0.25 = 0.1 px
    result = sampling_phases(layer, torch.randn(2, 4, 5, 5))
    assert result["phase_mean_x"] == pytest.approx([0.1, 0.0, 0.0, 0.0])
    assert result["phase_mean_y"] == pytest.approx([0.0] * 4)
    assert result["spread"] == pytest.approx(0.1) and result["relative_spread"] == pytest.approx(0.2)
    assert result["rms_displacement"] == pytest.approx((0.01 / 8) ** 0.5)


def test_a_shift_shared_by_every_phase_moves_the_grid_without_making_it_uneven():
    layer = create_upsampler("dysample", 4, 4, groups=1)
    with torch.no_grad():
        layer.offset.weight.zero_()
        layer.offset.bias[:4] = 0.8  # every phase moves 0.2 px right
    result = sampling_phases(layer, torch.randn(1, 4, 3, 3))
    assert result["spread"] == pytest.approx(0.0, abs=1e-7)
    assert result["rms_displacement"] == pytest.approx((0.04 / 2) ** 0.5)


def test_every_dysample_layer_of_a_model_is_measured_and_untrained_ones_are_even():
    torch.manual_seed(0)
    gen = DCGANGenerator("nearest_conv,dysample,dysample", image_size=32, base_channels=8)
    measured = model_sampling_phases(gen, torch.randn(8, gen.latent_dim))
    assert [entry["layer"] for entry in measured] == ["stages.1.0", "stages.2.0"]
    assert [entry["size"] for entry in measured] == [[8, 8], [16, 16]]
    assert all(entry["relative_spread"] < 0.01 for entry in measured)
    assert model_sampling_phases(DCGANGenerator("deconv", image_size=16, base_channels=8), torch.randn(2, 100)) == []


def test_only_dysample_layers_have_a_sampling_grid():
    with pytest.raises(TypeError, match="^layer must be a DySampleUpsample; got CarafeUpsample.$"):
        sampling_phases(create_upsampler("carafe", 4, 4), torch.randn(1, 4, 3, 3))


def test_the_recipe_measures_untrained_networks_and_the_trained_runs_it_finds(tmp_path):
    gan, sr = load_recipe("gan"), load_recipe("super_resolution")
    phases, article = load_recipe("dysample_phases"), load_recipe("article_report")
    runs = tmp_path / "runs"
    assert gan.run_cli(gan.main, ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "2",
                                  "--eval-every", "0", "--eval-samples", "16", "--fid", "off", "--gen-channels", "8",
                                  "--disc-channels", "8", "--upsampler", "dysample", "--logger", "none",
                                  "--output-dir", str(runs)]) == 0
    assert sr.run_cli(sr.main, ["--image-size", "16", "--batch-size", "8", "--features", "8", "--hidden-channels", "4",
                                "--eval-samples", "8", "--max-steps", "2", "--eval-every", "0", "--logger", "none",
                                "--upsampler", "dysample", "--output-dir", str(runs)]) == 0
    style = load_recipe("style_transfer")
    assert style.run_cli(style.main, ["--content-dataset", "digits", "--image-size", "16", "--base-channels", "4",
                                      "--max-steps", "2", "--eval-every", "0", "--eval-samples", "8", "--style", "gravel",
                                      "--loss-network", "random", "--upsampler", "dysample", "--logger", "none",
                                      "--output-dir", str(runs)]) == 0
    assert phases.main(["--runs", str(runs), "--seeds", "1", "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "dysample_phases.json").read_text())
    assert sorted(payload["groups"]) == ["gan, trained 2 iterations", "gan, untrained",
                                         "style_transfer, trained 2 iterations",
                                         "super_resolution, trained 2 iterations", "super_resolution, untrained"]
    assert len(payload["groups"]["style_transfer, trained 2 iterations"][0]["layers"]) == 2
    trained_gan = payload["groups"]["gan, trained 2 iterations"][0]
    assert [layer["layer"] for layer in trained_gan["layers"]] == ["stages.0.0", "stages.1.0"]
    assert trained_gan["checkerboard"] is not None
    assert payload["command"] == f"python recipes/reports/dysample_phases.py --runs {runs} --seeds 1 --out {tmp_path}"
    page = (tmp_path / "dysample_phases.md").read_text()
    assert "| gan, untrained | 1 |" in page and "`stages.1.0`" in page
    claim, measured, holds, command = article.dysample_claim(payload)
    assert isinstance(holds, bool) and "untrained" in measured and command == payload["command"]
