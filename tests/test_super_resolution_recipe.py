"""``recipes/super_resolution.py`` on the training skeleton: config, a W&B-offline smoke run, resume, errors, grid."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image

from _recipes import load_recipe
from lightning_checkerboard.callbacks import RunCheckpoint
from lightning_checkerboard.callbacks.fidelity import min_image_size
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.data.photo_holdout import HeldoutPhotosDataModule
from lightning_checkerboard.records import read_record
from lightning_checkerboard.training import SuperResolutionConfig

sr = load_recipe("super_resolution")

TINY = ["--image-size", "16", "--batch-size", "8", "--features", "8", "--hidden-channels", "4", "--eval-samples", "8"]


# -- config ---------------------------------------------------------------------------------------

def test_every_flag_is_a_config_field_and_no_flags_make_the_default_config():
    parser = sr.build_parser()
    dests = {action.dest for action in parser._actions if action.dest != "help"}
    assert dests == {SuperResolutionConfig.key(name) for name in SuperResolutionConfig.field_names()} | {
        "config", "print_config"}
    config = SuperResolutionConfig.from_namespace(parser.parse_args([]))
    assert config == SuperResolutionConfig()
    assert (config.upsampler, config.scale, config.image_size, config.batch_size, config.max_steps,
            config.eval_every, config.eval_samples, config.residual) == ("pixel_shuffle_icnr", 2, 64, 16, 1000, 250,
                                                                         64, True)


def test_flags_round_trip_through_the_record():
    argv = ["--scale", "4", "--loss", "l2", "--lr", "0.0005", "--no-residual", "--activation", "relu",
            "--heldout-photos", "chelsea,coffee"]
    config = SuperResolutionConfig.from_namespace(sr.build_parser().parse_args(argv))
    assert (config.scale, config.loss, config.lr, config.residual, config.activation) == (4, "l2", 0.0005, False, "relu")
    assert config.heldout_photo_names() == ("chelsea", "coffee")
    assert SuperResolutionConfig.from_record(config.record_config(), resume=Path("r")) == SuperResolutionConfig(
        **{**vars(config), "resume": Path("r")})


@pytest.mark.parametrize(("values", "message"), [
    ({"scale": 3}, r"^scale must be one of 2, 4, 8; got 3\.$"),
    ({"image_size": 30, "scale": 4}, r"^image_size must be a multiple of the scale 4 and at least 16; got 30\.$"),
    ({"image_size": 8}, r"^image_size must be a multiple of the scale 2 and at least 10; got 8\.$"),
    ({"loss": "l3"}, r"^loss must be one of 'l1', 'l2'; got 'l3'\.$"),
    ({"activation": "gelu"}, r"^activation must be one of 'tanh', 'relu'"),
    ({"residual": "yes"}, r"^residual must be True or False; got 'yes'\.$"),
    ({"lr": 0.0}, r"^lr must be a finite number > 0; got 0\.0\.$"),
    ({"hidden_channels": 0}, r"^hidden_channels must be a positive integer; got 0\.$"),
    ({"heldout_photos": "astronaut,moon"}, r"^heldout_photos must be distinct names from astronaut"),
    ({"heldout_photos": "astronaut", "dataset": "digits"}, r"^heldout_photos: whole photographs are held out"),
])
def test_config_rejects_bad_values_naming_the_field(values, message):
    with pytest.raises(ValueError, match=message):
        SuperResolutionConfig(**values)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_the_smallest_image_size_is_the_smallest_one_fidelity_can_measure(scale):
    from lightning_checkerboard.callbacks.fidelity import fidelity_scores

    smallest = min_image_size(scale)
    images = torch.rand(2, 3, smallest, smallest)
    assert math.isfinite(fidelity_scores(images, images.flip(-1), border=scale, levels=1)["ssim"])
    SuperResolutionConfig(image_size=smallest, scale=scale)
    with pytest.raises((ValueError, RuntimeError)):  # one multiple of the scale less leaves too few pixels
        fidelity_scores(images[..., :-scale, :-scale], images[..., :-scale, :-scale], border=scale, levels=1)


def test_photos_are_held_out_by_whole_photographs_and_other_data_by_its_split():
    parts = sr.SuperResolution().build(SuperResolutionConfig(heldout_photos="rocket"), None)
    assert isinstance(parts.datamodule, HeldoutPhotosDataModule) and parts.datamodule.heldout_photos == ("rocket",)
    assert parts.protocol == {"scale": 2, "heldout_photos": "rocket"} and parts.stages == ["pixel_shuffle_icnr"]
    digits = sr.SuperResolution().build(SuperResolutionConfig(dataset="digits", image_size=16, scale=4,
                                                              upsampler="deconv"), None)
    assert type(digits.datamodule) is ImageDataModule and digits.protocol == {"scale": 4}
    assert digits.stages == ["deconv", "deconv"]


# -- a run ----------------------------------------------------------------------------------------

def test_smoke_train_with_wandb_offline_leaves_a_record_measured_against_bicubic(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    (tmp_path / "wandb-dir").mkdir()
    code = sr.run_cli(sr.main, [*TINY, "--upsampler", "deconv", "--max-steps", "6", "--eval-every", "3",
                                "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = tmp_path.glob("super_resolution/photos/deconv/seed0-*")
    assert "measured on held-out photographs astronaut, stereo_motorcycle" in out and "PSNR" in out

    record = read_record(run_dir)
    assert record.status == "finished" and record.task == "super_resolution" and record.steps == 6
    assert record.upsampler_stages == ["deconv"] and record.wandb["mode"] == "offline"
    for key in ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "residual_checkerboard", "residual_checkerboard_upper",
                "checkerboard", "checkerboard_upper", "spectral_distance"):
        assert math.isfinite(record.metrics[key]), key
    assert record.metrics["residual_checkerboard_upper"] >= record.metrics["residual_checkerboard"] >= 0
    assert record.protocol["scale"] == 2 and record.protocol["heldout_photos"] == "astronaut,stereo_motorcycle"
    assert record.protocol["fidelity_samples"] == 8 and record.protocol["fidelity_border"] == 2
    # the untrained network's fidelity and checkerboard: what the run started from
    assert {"psnr", "ssim", "checkerboard", "checkerboard_upper", "residual_checkerboard"} <= set(record.baseline)
    assert record.config["scale"] == 2 and record.config["stages"] == ["deconv"]

    grids = sorted((run_dir / "samples").glob("*.png"))
    assert [p.name for p in grids] == ["final.png", "step_000003.png"]
    with Image.open(grids[0]) as image:  # 8 bicubic | output | target triplets, two per row
        assert image.size == (6 * 18 + 2, 4 * 18 + 2)
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


FLAGS = [*TINY, "--upsampler", "pixel_shuffle", "--max-steps", "6", "--eval-every", "2", "--logger", "none",
         "--seed", "3"]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_an_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, capsys):
    assert sr.run_cli(sr.main, [*FLAGS, "--output-dir", str(tmp_path / "straight")]) == 0
    (straight,) = (tmp_path / "straight").glob("super_resolution/photos/pixel_shuffle/*")
    original = RunCheckpoint.on_train_batch_end

    def interrupt(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == 3 and self.requested is None:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, trainer, pl_module, outputs, batch, batch_idx)

    with monkeypatch.context() as patch:
        patch.setattr(RunCheckpoint, "on_train_batch_end", interrupt)
        assert sr.run_cli(sr.main, [*FLAGS, "--output-dir", str(tmp_path / "broken")]) == 1
    (broken,) = (tmp_path / "broken").glob("super_resolution/photos/pixel_shuffle/*")
    assert read_record(broken).status == "interrupted" and read_record(broken).steps == 3
    assert f"continue it with: python recipes/super_resolution.py --resume {broken}" in capsys.readouterr().out

    assert sr.run_cli(sr.main, ["--resume", str(broken)]) == 0
    resumed, expected = read_record(broken), read_record(straight)
    assert resumed.status == "finished" and resumed.steps == 6
    weights, reference = _weights(broken), _weights(straight)
    assert weights.keys() == reference.keys()
    for name in reference:
        assert torch.equal(weights[name], reference[name]), name
    assert resumed.metrics == expected.metrics and resumed.baseline == expected.baseline


# -- user mistakes --------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--scale", "3"], "--scale must be one of 2, 4, 8; got 3."),
    (["--scale", "4", "--image-size", "30"], "--image-size must be a multiple of the scale 4 and at least 16; got 30."),
    (["--upsampler", "nearest_cnov"], "Unknown upsampler 'nearest_cnov'. Did you mean 'nearest_conv'?"),
    (["--upsampler", "deconv,deconv"], "names 2 stages but the model has 1"),
    (["--upsampler", "deconv", "--padding", "reflect"], "got unknown option(s) padding"),
    (["--dataset", "cifar11"], "Did you mean 'cifar10'?"),
    (["--dataset", "folder:/no/such/folder"], "does not exist"),
    (["--heldout-photos", "astronaut,moon"], "--heldout-photos must be distinct names from astronaut"),
    (["--dataset", "digits", "--heldout-photos", "rocket"], "--heldout-photos: whole photographs are held out"),
    (["--eval-samples", "1", "--devices", "2", "--accelerator", "cpu", "--strategy", "ddp"], "--eval-samples must be"),
])
def test_user_mistakes_end_with_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    code = sr.run_cli(sr.main, [*argv, "--output-dir", str(tmp_path), "--logger", "none"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err


def test_resume_errors_are_one_line(tmp_path, capsys):
    assert sr.run_cli(sr.main, ["--resume", str(tmp_path / "nowhere")]) == 2
    assert sr.run_cli(sr.main, ["--resume", str(tmp_path), "--scale", "4"]) == 2
    first, second = capsys.readouterr().err.splitlines()
    assert "no result record" in first and second.endswith("drop --scale")


@pytest.mark.parametrize(("argv", "message"), [
    (["--lr", "nan"], "argument --lr: must be a finite number > 0; got 'nan'."),
    (["--loss", "l3"], "invalid choice: 'l3'"),
    (["--scale", "two"], "argument --scale: must be a positive integer; got 'two'."),
])
def test_bad_flag_values_are_argparse_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        sr.main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


# -- the grid -------------------------------------------------------------------------------------

def test_run_grid_runs_every_upsampler_and_seed_two_at_a_time(tmp_path, monkeypatch, capsys):
    grid = load_recipe("run_grid")
    commands: list[list[str]] = []

    def fake_run(command, **kwargs):
        commands.append(command)
        assert kwargs["env"]["OMP_NUM_THREADS"] == "1"
        return grid.subprocess.CompletedProcess(command, 0, "status: finished\nPSNR 31.00 dB, SSIM 0.9", "")

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(grid.subprocess, "run", fake_run)
    code = grid.main(["--task", "super_resolution", "--upsamplers", "deconv", "nearest_conv", "--seeds", "0", "1",
                      "--jobs", "2", "--runs", str(tmp_path), "--no-build"])
    printed = capsys.readouterr().out
    assert code == 0 and printed.count("PSNR 31.00 dB") == 4
    assert sorted(tuple(c[2:6]) for c in commands) == [("--upsampler", name, "--seed", seed)
                                                       for name in ("deconv", "nearest_conv") for seed in ("0", "1")]
    assert all(c[1].endswith("recipes/super_resolution.py") for c in commands)


# -- the leaderboard ------------------------------------------------------------------------------

def _sr_record(run_id: str, upsampler: str, seed: int, psnr: float, *, scale: int = 2, heldout: str = "astronaut"):
    from lightning_checkerboard.records import ResultRecord

    return ResultRecord(
        run_id=run_id, task="super_resolution", status="finished", dataset="photos", image_size=64,
        upsampler=upsampler, upsampler_stages=[upsampler] * (scale // 2), seed=seed, max_steps=1000,
        config={"batch_size": 16, "loss": "l1", "lr": 0.001, "features": 64, "hidden_channels": 32,
                "activation": "tanh", "residual": True, "scale": scale},
        protocol={"eval_samples": 64, "heldout_samples": 64, "levels": 1, "scale": scale, "heldout_photos": heldout},
        metrics={"psnr": psnr, "ssim": 0.9, "psnr_bicubic": 30.7, "ssim_bicubic": 0.93, "swd": 20.0,
                 "residual_checkerboard": 0.5 if upsampler == "deconv" else 0.0, "residual_checkerboard_upper": 0.8,
                 "checkerboard": 0.0, "checkerboard_upper": 0.1},
        baseline={"psnr": 25.0, "kind": "model before training"},
    )


def test_super_resolution_runs_get_their_own_tables_ranked_by_psnr_with_bicubic_and_residual_columns(tmp_path):
    from lightning_checkerboard.leaderboard.aggregate import aggregate
    from lightning_checkerboard.leaderboard.render import render

    records = [_sr_record(f"a{seed}", "deconv", seed, 31.0 + 0.01 * seed) for seed in range(3)]
    records += [_sr_record(f"b{seed}", "nearest_conv", seed, 32.0 + 0.01 * seed) for seed in range(3)]
    records += [_sr_record("c0", "deconv", 0, 28.0, scale=4), _sr_record("d0", "deconv", 0, 29.0, heldout="rocket")]
    board = aggregate(records)
    assert len(board.tables) == 3  # ×2, ×4, and ×2 held out on another photograph never share a table
    (main,) = [t for t in board.tables if len(t.rows) == 2]
    assert main.primary == "psnr" and [row.upsampler for row in main.rows] == ["nearest_conv", "deconv"]
    assert main.protocol["scale"] == 2 and main.protocol["heldout_photos"] == "astronaut"
    assert main.budget["features"] == 64 and main.budget["residual"] is True

    render(board, tmp_path, command="build")
    page = (tmp_path / "super_resolution-photos.md").read_text()
    # Constant columns (bicubic PSNR and SSIM here) go to the caption; ± never breaks (no-break spaces).
    assert "| rank | upsampler | PSNR ↑ | error checkerboard ↓ | checkerboard ↓ |" in page and "PSNR in dB" in page
    assert "bicubic PSNR (dB) 30.7, bicubic SSIM 0.930" in page and "95% bound" not in page
    assert "Every row ends above bicubic (30.7 dB)." in page  # the verdict says it in words
    assert "| 1 | **`nearest_conv`** | 32.010\u00a0±\u00a00.010 |" in page
    assert "0.500\u00a0±\u00a00.000 (≤\u00a00.800)" in page  # the residual score with its largest bound in one cell


def test_tables_without_super_resolution_settings_keep_their_protocol_and_key():
    from lightning_checkerboard.leaderboard.aggregate import aggregate, protocol_of
    from lightning_checkerboard.records import ResultRecord

    gan = ResultRecord(run_id="g", task="gan", status="finished", dataset="photos", image_size=32, upsampler="deconv",
                       upsampler_stages=["deconv"] * 3, seed=0, max_steps=400,
                       protocol={"eval_samples": 128, "heldout_samples": 128, "levels": 3}, metrics={"swd": 1.0})
    assert protocol_of(gan) == {"eval_samples": 128, "heldout_samples": 128, "levels": 3, "fid_extractor": None}
    assert "scale" not in aggregate([gan]).tables[0].protocol
