"""The main job end to end: ``recipes/gan.py`` trains, logs to W&B (offline) and leaves a record."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from _recipes import load_recipe
from lightning_checkerboard.records import read_record

gan = load_recipe("gan")

@pytest.fixture
def logged(monkeypatch):
    """Every metric dict the real (offline) WandbLogger is asked to log."""
    from lightning_checkerboard._lightning import WandbLogger

    calls: list[dict] = []
    original = WandbLogger.log_metrics

    def spy(self, metrics, step=None):
        calls.append(dict(metrics))
        return original(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", spy)
    return calls


def test_smoke_train_with_wandb_offline_leaves_record_metrics_and_images(tmp_path, monkeypatch, logged, inception_weights, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    code = gan.run_cli(gan.main, [
        "--upsampler", "deconv_k3", "--dataset", "digits", "--image-size", "32",
        "--batch-size", "16", "--max-steps", "4", "--eval-every", "2", "--eval-samples", "32",
        "--fid-samples", "16", "--fid-weights", str(inception_weights),
        "--gen-channels", "16", "--disc-channels", "16", "--output-dir", str(tmp_path),
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = tmp_path.glob("gan/digits/deconv_k3/seed0-*")
    assert str(run_dir) in out and "wandb sync" in out

    record = read_record(run_dir)
    assert record.status == "finished" and record.steps == 4
    assert record.upsampler_stages == ["deconv_k3"] * 3
    assert record.wandb["mode"] == "offline"
    for key in ("checkerboard", "checkerboard_upper", "checkerboard_ratio", "pnr_db_period_2", "spectral_distance",
                "gradient_checkerboard", "swd", "fid", "kid", "kid_std", "precision", "recall"):
        assert math.isfinite(record.metrics[key]), key
    assert record.metrics["checkerboard_upper"] >= record.metrics["checkerboard"]
    assert 0 <= record.metrics["precision"] <= 1 and 0 <= record.metrics["recall"] <= 1
    # the quality metrics of the generator before its first step: what the run must beat
    assert record.baseline["kind"] == "model before training"
    assert math.isfinite(record.baseline["swd"]) and math.isfinite(record.baseline["fid"])
    assert record.protocol["fid_extractor"].startswith("torch-fidelity inception-v3-compat")
    assert record.protocol["eval_samples"] == 32 and record.protocol["levels"] == 3

    keys = set().union(*logged)
    for key in ("loss/discriminator", "loss/generator", "artifacts/checkerboard", "artifacts/checkerboard_upper",
                "artifacts/spectral_distance", "artifacts/gradient_checkerboard", "metrics/swd", "metrics/fid",
                "metrics/kid", "metrics/precision", "metrics/recall", "samples"):
        assert key in keys, key
    finite = [v for call in logged for k, v in call.items() if isinstance(v, float)]
    assert finite and all(math.isfinite(v) for v in finite)

    grids = sorted((run_dir / "samples").glob("*.png"))
    assert [p.name for p in grids] == ["final.png", "step_000002.png"]  # step 4 is the final one
    with Image.open(grids[0]) as image:
        assert image.size[0] > 32 * 7  # an 8-wide grid of 32-pixel samples
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--upsampler", "nearest_cnov"], "Unknown upsampler 'nearest_cnov'. Did you mean 'nearest_conv'?"),
        (["--upsampler", "deconv,deconv"], "names 2 stages but the model has 3"),
        (["--image-size", "48"], "--image-size must be one of 8, 16, 32, 64, 128, 256"),
        (["--upsampler", "deconv", "--padding", "reflect"], "got unknown option(s) padding"),
        (["--dataset", "cifar11"], "cifar11"),
        (["--fid", "required", "--fid-weights", "/no/such/file.pth"], "is not a file"),
        (["--disc-first-stride", "1", "--disc-first-kernel", "4"], "--disc-first-kernel 4 needs --disc-first-stride 2"),
    ],
)
def test_user_mistakes_end_with_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    code = gan.run_cli(gan.main, [*argv, "--output-dir", str(tmp_path), "--logger", "none"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "0"], "argument --batch-size: must be a positive integer; got '0'."),
        (["--max-steps", "-3"], "argument --max-steps: must be a positive integer; got '-3'."),
        (["--lr-g", "nan"], "argument --lr-g: must be a finite number > 0; got 'nan'."),
        (["--lr-d", "-0.0001"], "argument --lr-d: must be a finite number > 0; got '-0.0001'."),
        (["--ema-decay", "1"], "argument --ema-decay: must be a finite number >= 0 and < 1; got '1'."),
        (["--fid", "sometimes"], "invalid choice: 'sometimes'"),
    ],
)
def test_bad_flag_values_are_argparse_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        gan.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_output_directory_is_caught_before_anything_is_built_or_probed(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = gan.run_cli(gan.main, ["--dataset", "digits", "--output-dir", str(blocker / "runs"), "--logger", "none"])
    err = capsys.readouterr().err
    assert code == 2
    # one line: no FID-weights warning (or anything else) before it
    assert err.count("\n") == 1 and err.startswith(f"error: --output-dir: '{blocker / 'runs'}' is not writable")


def test_help_lists_the_registered_upsamplers(capsys):
    with pytest.raises(SystemExit):
        gan.main(["--help"])
    out = capsys.readouterr().out
    for name in ("nearest_conv", "deconv_k3", "pixel_shuffle_icnr"):
        assert name in out


def test_disc_first_kernel_reaches_the_discriminator_and_the_record(tmp_path, capsys):
    code = gan.run_cli(gan.main, [
        "--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "1", "--eval-every", "0",
        "--eval-samples", "16", "--fid", "off", "--gen-channels", "8", "--disc-channels", "8", "--logger", "none",
        "--disc-first-kernel", "3", "--output-dir", str(tmp_path),
    ])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = tmp_path.glob("gan/digits/nearest_conv/seed0-*")
    weights = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert weights["discriminator.net.0.weight"].shape[-2:] == (3, 3)
    assert read_record(run_dir).config["disc_first_kernel"] == 3


@pytest.mark.parametrize("logger", ["csv", "none"])
def test_callbacks_work_without_wandb(tmp_path, capsys, logger):
    code = gan.run_cli(gan.main, [
        "--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "2",
        "--eval-every", "1", "--eval-samples", "16", "--fid", "off", "--gen-channels", "8",
        "--disc-channels", "8", "--logger", logger, "--output-dir", str(tmp_path),
    ])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = tmp_path.glob("gan/digits/nearest_conv/seed0-*")
    record = read_record(run_dir)
    assert record.status == "finished" and record.metrics["fid"] is None
    assert record.protocol["fid_unavailable_reason"] == "FID disabled (policy='off')"
    assert (run_dir / "samples" / "final.png").is_file()
    if logger == "csv":
        header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0]
        assert "artifacts/checkerboard" in header and "loss/generator" in header


@pytest.mark.parametrize("flag", [[], ["--no-data-cache"]])
def test_data_cache_flag_decides_whether_folder_images_are_cached(tmp_path, monkeypatch, flag):
    from lightning_checkerboard._cache import CACHE_ENV

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(24):
        Image.new("RGB", (20, 20), (i * 10, 255 - i * 10, 128)).save(folder / f"{i:02d}.png")
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    code = gan.run_cli(gan.main, [
        "--dataset", f"folder:{folder}", "--image-size", "8", "--batch-size", "4", "--max-steps", "1",
        "--eval-every", "0", "--eval-samples", "4", "--fid", "off", "--gen-channels", "4", "--disc-channels", "4",
        "--logger", "none", "--output-dir", str(tmp_path / "runs"), *flag,
    ])
    assert code == 0
    cached = list(cache.rglob("*.npy"))
    assert (not cached) if flag else cached
    (run_dir,) = (tmp_path / "runs").glob("gan/*/*/seed0-*")
    assert read_record(run_dir).config["data_cache"] is (not flag)
