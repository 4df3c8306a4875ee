"""The autoencoder: the KL autoencoder, its task and config, and ``recipes/autoencoder.py`` on the training skeleton."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from torch.distributions import Normal, kl_divergence as torch_kl

from _recipes import load_recipe
from lightning_checkerboard.adapt import find_upsampling_sites, fuse_resize_conv
from lightning_checkerboard.callbacks import RunCheckpoint
from lightning_checkerboard.callbacks.fidelity import fidelity_scores
from lightning_checkerboard.data.photo_holdout import HeldoutPhotosDataModule
from lightning_checkerboard.leaderboard.aggregate import aggregate
from lightning_checkerboard.models.autoencoder import AutoencoderKL
from lightning_checkerboard.records import ResultRecord, read_record, write_record
from lightning_checkerboard.tasks import AutoencoderTask
from lightning_checkerboard.tasks.autoencoder import kl_divergence
from lightning_checkerboard.training import AutoencoderConfig
from lightning_checkerboard.upsamplers.layers import DeconvUpsample, PixelShuffleUpsample, ResizeConvUpsample

ae = load_recipe("autoencoder")

TINY = ["--image-size", "32", "--batch-size", "8", "--block-channels", "8,8,8", "--eval-samples", "8",
        "--logger", "none"]


# -- the model ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("widths", "stride"), [((8,), 2), ((8, 8), 4), ((8, 16, 16), 8), ((4, 4, 4, 4), 16)])
def test_the_latent_is_the_image_divided_by_two_per_stage(widths, stride):
    model = AutoencoderKL("nearest_conv", block_channels=widths, latent_channels=3)
    assert model.latent_stride == stride
    images = torch.rand(2, 3, 2 * stride, 3 * stride)
    mean, logvar = model.encode(images)
    assert mean.shape == logvar.shape == (2, 3, 2, 3)
    out = model(images, sample_posterior=True, generator=torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == images.shape and torch.equal(out.mean, mean)


def test_each_decoder_stage_ends_in_its_own_registry_layer_coarse_stage_first():
    model = AutoencoderKL("deconv,pixel_shuffle,nearest_conv", block_channels=(4, 8, 16))
    layers = [block.upsampler for block in model.decoder.up_blocks]
    assert [type(layer) for layer in layers] == [DeconvUpsample, PixelShuffleUpsample, ResizeConvUpsample]
    # coarse (next to the latent) stage first: the decoder runs the encoder's widths backwards
    assert [layer.in_channels for layer in layers] == [16, 8, 4]
    assert model.stage_names == ["deconv", "pixel_shuffle", "nearest_conv"]


def test_the_decoders_upsampling_sites_are_found_and_nearest_conv_fuses_exactly():
    mixed = AutoencoderKL("nearest_conv,deconv,pixel_shuffle", block_channels=(4, 4, 4))
    sites = {site.path: site.kind for site in find_upsampling_sites(mixed, torch.rand(1, 3, 32, 32))}
    assert sites == {"decoder.up_blocks.0.upsampler": "resize_conv", "decoder.up_blocks.1.upsampler": "transposed_conv",
                     "decoder.up_blocks.2.upsampler": "pixel_shuffle"}
    # nearest_conv's plain resize-then-conv path (the registry's layers run fused already) is what
    # fuse_resize_conv finds in a diffusers decoder: the same three sites, fused to the same outputs
    model = AutoencoderKL("nearest_conv", block_channels=(4, 4, 4), upsampler_options={"impl": "reference"}).eval()
    fused = fuse_resize_conv(model)
    assert sorted(site.path for site in fused.fused_sites) == [f"decoder.up_blocks.{i}.upsampler" for i in range(3)]
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(fused(images).reconstruction, model(images).reconstruction, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"upsampler": "deconv,deconv"}, "names 2 stages but the model has 3"),
    ({"upsampler": "nearest_cnov"}, "Did you mean 'nearest_conv'"),
    ({"block_channels": ()}, "block_channels must be a non-empty sequence"),
    ({"block_channels": (8, 0)}, "block_channels must be a positive integer; got 0"),
    ({"latent_channels": 0}, "latent_channels must be a positive integer; got 0"),
])
def test_bad_model_arguments_are_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderKL(**{"block_channels": (4, 4, 4), **kwargs})


def test_an_image_whose_side_is_no_multiple_of_the_latent_stride_is_refused():
    with pytest.raises(ValueError, match=r"H and W multiples of 8; got \(1, 3, 36, 32\)"):
        AutoencoderKL(block_channels=(4, 4, 4)).encode(torch.rand(1, 3, 36, 32))


# -- the task -------------------------------------------------------------------------------------

def test_kl_divergence_is_the_closed_form_summed_over_the_latent_and_averaged_over_images():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    reference = torch_kl(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).flatten(1).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mean, logvar), reference)


def test_the_loss_is_l1_plus_the_weighted_kl_and_the_perceptual_term_only_when_weighted():
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    plain = AutoencoderTask("nearest_conv", block_channels=(4, 4), kl_weight=0.5)
    assert plain.loss_network is None and plain.loss_network_name is None
    terms = plain.losses(images)
    assert set(terms) == {"l1", "kl", "total"}
    torch.testing.assert_close(terms["total"], terms["l1"] + 0.5 * terms["kl"] / (3 * 16 * 16))
    perceptual = AutoencoderTask("nearest_conv", block_channels=(4, 4), perceptual_weight=2.0)
    assert perceptual.loss_network_name == "vgg16-random-seed0"
    terms = perceptual.losses(images)
    assert terms["perceptual"] > 0
    torch.testing.assert_close(terms["total"], terms["l1"] + 1e-6 * terms["kl"] / (3 * 16 * 16)
                               + 2.0 * terms["perceptual"])


def test_reconstructions_are_images_in_the_unit_range_and_grids_pair_input_with_output():
    task = AutoencoderTask("deconv", block_channels=(4, 4))
    images = torch.rand(3, 3, 16, 16)
    out = task.reconstruct(images, batch_size=2)
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1 and task.net.training
    pairs = task.sample(images)
    assert pairs.shape == (6, 3, 16, 16) and torch.equal(pairs[0::2], images)
    torch.testing.assert_close(pairs[1::2], out)  # (in one batch instead of chunks of 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr": 0}, "lr must be a positive finite number; got 0"),
    ({"kl_weight": -1.0}, "kl_weight must be a non-negative finite number; got -1.0"),
    ({"perceptual_weight": float("nan")}, "perceptual_weight must be a non-negative finite number"),
])
def test_bad_task_arguments_are_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderTask(block_channels=(4,), **kwargs)


def test_the_residual_checkerboard_is_read_per_period():
    targets = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y, x = torch.arange(32)[:, None], torch.arange(32)[None, :]
    period4 = torch.where(((y // 2) + (x // 2)) % 2 == 0, 1.0, -1.0)  # cells of 2 pixels: period 4
    scores = fidelity_scores(targets + 5 / 255 * period4, targets, border=0, levels=3, per_period=True)
    values = {key: value for key, value in scores.items() if "_period_" in key}
    assert set(values) == {f"residual_{kind}_period_{p}" for kind in ("amplitude", "upper") for p in (2, 4, 8)}
    assert values["residual_amplitude_period_2"] == 0 and values["residual_amplitude_period_4"] > 3


# -- the config -----------------------------------------------------------------------------------

def test_every_flag_is_a_config_field_and_no_flags_make_the_default_config():
    parser = ae.build_parser()
    dests = {action.dest for action in parser._actions if action.dest != "help"}
    assert dests == {AutoencoderConfig.key(name) for name in AutoencoderConfig.field_names()} | {
        "config", "print_config"}
    config = AutoencoderConfig.from_namespace(parser.parse_args([]))
    assert config == AutoencoderConfig()
    assert (config.upsampler, config.image_size, config.latent_stride(), config.latent_channels) == (
        "nearest_conv", 48, 8, 4)


@pytest.mark.parametrize(("values", "message"), [
    ({"image_size": 36}, r"^image_size must be a multiple of the latent stride 8 and at least 32; got 36\.$"),
    ({"image_size": 16}, r"^image_size must be a multiple of the latent stride 8 and at least 32; got 16\.$"),
    ({"block_channels": "32,64", "image_size": 18}, r"^image_size must be a multiple of the latent stride 4 and at least 16; got 18"),
    ({"block_channels": "32,x"}, r"^block_channels must be comma-separated positive integers; got '32,x'\.$"),
    ({"block_channels": "8,8,8,8,8,8"}, r"^block_channels must name 1 to 5 stages; got '8,8,8,8,8,8'\.$"),
    ({"latent_channels": 0}, r"^latent_channels must be a positive integer; got 0\.$"),
    ({"kl_weight": -1.0}, r"^kl_weight must be"),
    ({"lr": 0.0}, r"^lr must be a finite number > 0; got 0\.0\.$"),
    ({"loss_network": "vgg19"}, r"^loss_network must be one of 'auto', 'vgg16', 'random'"),
    ({"heldout_photos": "astronaut,moon"}, r"^heldout_photos must be distinct names from astronaut"),
    ({"heldout_photos": "astronaut", "dataset": "digits"}, r"^heldout_photos: whole photographs are held out"),
])
def test_config_rejects_bad_values_in_one_line_naming_the_field(values, message):
    with pytest.raises(ValueError, match=message) as info:
        AutoencoderConfig(**values)
    assert "\n" not in str(info.value)


def test_print_config_is_what_config_reads_and_flags_win(tmp_path, capsys):
    def printed(argv):
        assert ae.run_cli(ae.main, [*argv, "--print-config"]) == 0
        return yaml.safe_load(capsys.readouterr().out)

    defaults = printed([])
    assert defaults["block_channels"] == "32,64,64" and defaults["kl_weight"] == 1e-6 and "resume" not in defaults
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**defaults, "block_channels": "16,16", "image_size": 16}))
    assert printed(["--config", str(path), "--max-steps", "9"]) == {**defaults, "block_channels": "16,16",
                                                                      "image_size": 16, "max_steps": 9}


def test_photos_are_held_out_by_whole_photographs_and_the_protocol_names_the_latent_stride():
    parts = ae.Autoencoder().build(AutoencoderConfig(heldout_photos="rocket", block_channels="8,8"), None)
    assert isinstance(parts.datamodule, HeldoutPhotosDataModule) and parts.datamodule.heldout_photos == ("rocket",)
    assert parts.protocol == {"latent_stride": 4, "heldout_photos": "rocket"}
    assert parts.stages == ["nearest_conv", "nearest_conv"]


# -- a run ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """A tiny deconv run that nothing interrupts."""
    out = tmp_path_factory.mktemp("straight")
    assert ae.run_cli(ae.main, [*TINY, "--upsampler", "deconv", "--max-steps", "6", "--eval-every", "2",
                                "--seed", "3", "--output-dir", str(out)]) == 0
    (run_dir,) = out.glob("autoencoder/photos/deconv/seed3-*")
    return run_dir


def test_a_run_leaves_a_record_measured_against_the_untrained_model(straight):
    record = read_record(straight)
    assert record.status == "finished" and record.task == "autoencoder" and record.steps == 6
    assert record.upsampler_stages == ["deconv"] * 3
    assert record.protocol["latent_stride"] == 8 and record.protocol["heldout_photos"] == "astronaut,stereo_motorcycle"
    assert record.protocol["residual_levels"] == 3 and record.protocol["fidelity_border"] == 0
    for key in ("psnr", "ssim", "residual_checkerboard", "residual_checkerboard_upper", "checkerboard", "swd",
                "spectral_distance", *(f"residual_amplitude_period_{p}" for p in (2, 4, 8))):
        assert math.isfinite(record.metrics[key]), key
    assert {"psnr", "ssim", "checkerboard", "residual_checkerboard", "swd"} <= set(record.baseline)
    assert record.baseline["kind"] == "model before training"
    assert record.config["block_channels"] == "8,8,8" and record.config["stages"] == ["deconv"] * 3
    grids = sorted((straight / "samples").glob("*.png"))
    assert [p.name for p in grids] == ["final.png", "step_000002.png", "step_000004.png"]
    with Image.open(grids[0]) as image:  # 8 input | reconstruction pairs, four per row
        assert image.size == (8 * 34 + 2, 2 * 34 + 2)


def test_autoencoder_runs_get_their_own_table_ranked_by_psnr_against_the_untrained_model(straight):
    record = read_record(straight)
    other = ResultRecord(**{**vars(record), "run_id": "x", "protocol": {**record.protocol, "latent_stride": 4}})
    tables = aggregate([record, other]).tables
    assert len(tables) == 2 and {t.task for t in tables} == {"autoencoder"}
    assert {t.protocol["latent_stride"] for t in tables} == {4, 8}
    assert tables[0].primary == "psnr" and tables[0].rows[0].baseline is not None


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_an_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, capsys, straight):
    original = RunCheckpoint.on_train_batch_end

    def interrupt(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == 3 and self.requested is None:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, trainer, pl_module, outputs, batch, batch_idx)

    with monkeypatch.context() as patch:
        patch.setattr(RunCheckpoint, "on_train_batch_end", interrupt)
        assert ae.run_cli(ae.main, [*TINY, "--upsampler", "deconv", "--max-steps", "6", "--eval-every", "2",
                                    "--seed", "3", "--output-dir", str(tmp_path)]) == 1
    (broken,) = tmp_path.glob("autoencoder/photos/deconv/*")
    assert read_record(broken).status == "interrupted" and read_record(broken).steps == 3
    assert f"continue it with: python recipes/autoencoder.py --resume {broken}" in capsys.readouterr().out

    assert ae.run_cli(ae.main, ["--resume", str(broken)]) == 0
    resumed, expected = read_record(broken), read_record(straight)
    assert resumed.status == "finished" and resumed.steps == 6
    weights, reference = _weights(broken), _weights(straight)
    assert weights.keys() == reference.keys()
    for name in reference:
        assert torch.equal(weights[name], reference[name]), name
    assert resumed.metrics == expected.metrics and resumed.baseline == expected.baseline


# -- user mistakes --------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--upsampler", "nearest_cnov"], "Unknown upsampler 'nearest_cnov'. Did you mean 'nearest_conv'?"),
    (["--upsampler", "deconv,deconv"], "names 2 stages but the model has 3"),
    (["--image-size", "36"], "--image-size must be a multiple of the latent stride 8 and at least 32; got 36."),
    (["--block-channels", "8,0"], "--block-channels must be comma-separated positive integers; got '8,0'."),
    (["--block-channels", "100000,100000,100000"], "--block-channels must be widths from 1 to 1024; got "),
    (["--image-size", "100000"], "--image-size must be at most 1024; got 100000."),
    (["--heldout-photos", "astronaut,moon"], "--heldout-photos must be distinct names from astronaut"),
    (["--perceptual-weight", "1", "--loss-network", "random", "--loss-network-weights", "/no/such.pth"],
     "--loss-network-weights needs --loss-network auto or vgg16"),
])
def test_user_mistakes_end_with_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    code = ae.run_cli(ae.main, [*argv, "--output-dir", str(tmp_path), "--logger", "none"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err
    assert not list(tmp_path.iterdir())  # no run directory left behind


def test_resuming_another_tasks_run_names_both_tasks(tmp_path, capsys, straight):
    run_dir = tmp_path / "run"
    shutil.copytree(straight, run_dir)
    record = read_record(run_dir)
    record.status = "interrupted"
    write_record(record, run_dir)
    sr = load_recipe("super_resolution")
    assert sr.run_cli(sr.main, ["--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "holds an autoencoder run, not a super-resolution one; continue it with recipes/autoencoder.py" in err


# -- the grid -------------------------------------------------------------------------------------

def test_run_grid_runs_the_autoencoder_recipe_for_every_upsampler_and_seed(tmp_path, monkeypatch, capsys):
    grid = load_recipe("run_grid")
    commands: list[list[str]] = []

    def fake_run(command, **kwargs):
        commands.append(command)
        return grid.subprocess.CompletedProcess(command, 0, "status: finished\nPSNR 20.00 dB, SSIM 0.5", "")

    monkeypatch.setattr(grid.subprocess, "run", fake_run)
    code = grid.main(["--task", "autoencoder", "--upsamplers", "deconv", "nearest_conv", "--seeds", "0", "1",
                      "--jobs", "2", "--runs", str(tmp_path), "--no-build"])
    assert code == 0 and capsys.readouterr().out.count("PSNR 20.00 dB") == 4
    assert all(c[1].endswith("recipes/autoencoder.py") for c in commands) and len(commands) == 4


# -- Lightning namespaces -------------------------------------------------------------------------

_FIT_UNDER_LIGHTNING = """
import json, sys
import lightning as L
from lightning_checkerboard.callbacks import ReconstructionMetrics
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.tasks import AutoencoderTask

task = AutoencoderTask("deconv", channels=1, block_channels=(4, 4))
data = ImageDataModule("digits", image_size=16, batch_size=4, train_samples=16, heldout_samples=8, cache_dir=sys.argv[1])
metrics = ReconstructionMetrics(0, 8, batch_size=4)
trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, callbacks=[metrics],
                    default_root_dir=sys.argv[1])
trainer.fit(task, datamodule=data)
print(json.dumps({"step": trainer.global_step, "psnr": metrics.latest["psnr"], "baseline": metrics.baseline["psnr"]}))
"""


def test_the_task_and_its_metrics_fit_under_a_lightning_pytorch_trainer(tmp_path):
    environ = {key: value for key, value in os.environ.items() if key != "LCB_LIGHTNING"}
    done = subprocess.run([sys.executable, "-c", _FIT_UNDER_LIGHTNING, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=environ)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["step"] == 2 and math.isfinite(result["psnr"]) and math.isfinite(result["baseline"])
