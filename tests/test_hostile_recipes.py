"""What a user receives cannot run code, hang a run or leave a broken one: weights, run directories, flags.

Every weights file here whose unpickling would run code is built in the test and proven live at the
end (a plain ``torch.load`` does create the marker), so a refusal means something. Recipe runs are
tiny (digits, a few iterations, no logger, FID off unless FID is the point).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _recipes import load_recipe
from lightning_checkerboard.console import main as console_main
from lightning_checkerboard.metrics import _inception as inception_module
from lightning_checkerboard.metrics._inception import (
    INCEPTION_WEIGHTS_FILENAME,
    OFFLINE_ENV_VAR,
    InceptionWeightsError,
    load_inception_weights,
)
from lightning_checkerboard.metrics.fid import FID
from lightning_checkerboard.records import read_record, write_record

gan = load_recipe("gan")
super_resolution = load_recipe("super_resolution")

TINY = ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--eval-samples", "16",
        "--gen-channels", "8", "--disc-channels", "8", "--logger", "none"]


class _TouchesAFile:
    """Pickled, it names ``Path.touch``: unpickling it with plain pickle creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _hostile_weights(path: Path, marker: Path) -> Path:
    """A weights file that runs code when torch-fidelity's ``torch.load(..., weights_only=False)`` reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"Conv2d_1a_3x3.conv.weight": _TouchesAFile(marker)}, path)
    return path


def _assert_live(path: Path, marker: Path) -> None:
    """The payload is real: a plain load (what torch-fidelity does) runs it."""
    assert not marker.exists()
    torch.load(path, weights_only=False)
    assert marker.exists()


def _one_line_error(err: str, *phrases: str) -> None:
    assert len(err.strip().splitlines()) == 1, err
    assert "error: " in err and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in err, err


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No download, and a torch hub folder of this test's own."""
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(inception_module, "_warned_reasons", set())
    return tmp_path / "torch_home" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILENAME


# ----------------------------------------------------------------------------------- the weights loader


def test_weights_whose_unpickling_runs_code_are_refused_by_the_loader_and_run_nothing(tmp_path):
    marker = tmp_path / "marker"
    weights = _hostile_weights(tmp_path / "w.pth", marker)
    with pytest.raises(InceptionWeightsError) as caught:
        load_inception_weights(weights)
    message = str(caught.value)
    assert message.startswith(f"{weights}: not a weights file that loads as data (it holds objects other than")
    assert "\n" not in message and "weights_only" not in message
    with pytest.raises(InceptionWeightsError):
        FID(weights_path=weights, cache_dir=tmp_path / "cache")
    _assert_live(weights, marker)


def test_a_state_dict_of_other_tensors_is_one_sentence_not_a_state_dict_dump(tmp_path):
    weights = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(10, 2048), "extra.weight": torch.zeros(1), "more": torch.zeros(1)}, weights)
    with pytest.raises(InceptionWeightsError) as caught:
        load_inception_weights(weights)
    message = str(caught.value)
    assert message.startswith(f"{weights}: not Inception-v3 weights (")
    assert "missing tensors, e.g. Conv2d_1a_3x3.conv.weight" in message
    assert "2 unexpected, e.g. 'extra.weight'" in message
    assert "1 of another kind, e.g. fc.weight is 10×2048 float32, not 1008×2048 float32" in message
    assert "\n" not in message and len(message) < 400


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"not a pickle at all", "not a weights file that loads as data"),
        (None, "it holds a list, not a state dict"),
    ],
)
def test_files_that_are_not_state_dicts_are_one_line(tmp_path, content, phrase):
    weights = tmp_path / "w.pth"
    if content is None:
        torch.save([torch.zeros(1)], weights)
    else:
        weights.write_bytes(content)
    with pytest.raises(InceptionWeightsError, match=phrase):
        load_inception_weights(weights)


def test_a_fifo_or_an_oversized_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo.pth"
    os.mkfifo(fifo)
    with pytest.raises(InceptionWeightsError, match="a FIFO, not a regular file"):
        load_inception_weights(fifo)  # would block forever if opened for reading the plain way
    big = tmp_path / "big.pth"
    torch.save({"x": torch.zeros(100)}, big)
    monkeypatch.setattr(inception_module, "MAX_WEIGHTS_BYTES", 64)
    with pytest.raises(InceptionWeightsError, match="more than 64 bytes"):
        load_inception_weights(big)


def test_no_weights_path_ever_reaches_an_unrestricted_torch_load(inception_weights, tmp_path, monkeypatch):
    calls = []
    original = torch.load

    def spy(f, *args, **kwargs):
        calls.append((f, kwargs.get("weights_only")))
        return original(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    metric = FID(weights_path=inception_weights, cache_dir=tmp_path / "cache")
    assert metric.available and calls
    for source, weights_only in calls:
        # torch-fidelity's own unrestricted load only ever sees an in-memory stream of our making
        assert weights_only is True or not isinstance(source, (str, os.PathLike)), (source, weights_only)


def test_genuine_weights_load_and_name_the_extractor_by_the_bytes_read(inception_weights):
    loaded = load_inception_weights(inception_weights)
    spec = inception_module.inception_state_dict_spec()
    assert set(loaded.state_dict) == set(spec)
    assert loaded.sha256 == inception_module.weights_sha256(inception_weights)
    net = inception_module.build_inception(loaded.state_dict)
    name = "Mixed_7c.branch1x1.conv.weight"
    assert torch.equal(net.state_dict()[name], loaded.state_dict[name]) and not net.training


# ------------------------------------------------------------------ every path that reaches the loader


def _score_images(folder: Path, count: int = 8, size: int = 32) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_score_fid_weights_that_run_code_is_one_line_and_runs_nothing(tmp_path, capsys, offline):
    marker = tmp_path / "marker"
    weights = _hostile_weights(tmp_path / "w.pth", marker)
    images = _score_images(tmp_path / "images")
    code = console_main(["score", str(images), "--reference", "photos", "--fid-weights", str(weights),
                         "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    _one_line_error(captured.err, "--fid-weights: ", "not a weights file that loads as data")
    _assert_live(weights, marker)


def test_gan_fid_weights_that_run_code_is_one_line_and_leaves_no_run(tmp_path, capsys, offline):
    marker = tmp_path / "marker"
    weights = _hostile_weights(tmp_path / "w.pth", marker)
    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "1", "--fid-weights", str(weights),
                                  "--output-dir", str(tmp_path / "runs")])
    assert code == 2
    _one_line_error(capsys.readouterr().err, f"error: --fid-weights: {weights}: not a weights file")
    assert not list((tmp_path / "runs").rglob("result.json"))
    _assert_live(weights, marker)


def test_a_hostile_file_in_the_torch_hub_cache_makes_auto_fid_unavailable_with_the_reason(tmp_path, capsys, offline):
    marker = tmp_path / "marker"
    cached = _hostile_weights(offline, marker)

    metric = FID(policy="auto", cache_dir=tmp_path / "cache")
    assert not metric.available and "not a weights file that loads as data" in metric.unavailable_reason
    with pytest.raises(InceptionWeightsError):
        FID(policy="required", cache_dir=tmp_path / "cache")

    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "1", "--eval-every", "0", "--fid-samples", "16",
                                  "--output-dir", str(tmp_path / "runs")])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").glob("gan/digits/*/*")
    record = read_record(run_dir)
    assert record.status == "finished" and record.metrics["fid"] is None
    assert str(cached) in record.protocol["fid_unavailable_reason"]
    assert "not a weights file that loads as data" in record.protocol["fid_unavailable_reason"]

    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "1", "--fid", "required",
                                  "--output-dir", str(tmp_path / "required")])
    assert code == 2
    _one_line_error(capsys.readouterr().err, "error: --fid required: ", "not a weights file")

    report = tmp_path / "report.json"
    images = _score_images(tmp_path / "images")
    code = console_main(["score", str(images), "--reference", "photos", "--device", "cpu", "--json", str(report)])
    assert code == 0, capsys.readouterr().err
    (group,) = json.loads(report.read_text())["groups"]
    assert group["reference"]["fid"] is None
    assert "not a weights file that loads as data" in group["reference"]["fid_unavailable_reason"]
    _assert_live(cached, marker)


def test_a_fifo_in_the_torch_hub_cache_does_not_hang_auto_fid(tmp_path, offline):
    offline.parent.mkdir(parents=True)
    os.mkfifo(offline)
    metric = FID(policy="auto", cache_dir=tmp_path / "cache")  # returns: a FIFO is no weights file, never read
    assert not metric.available and f"no Inception weights at {offline}" in metric.unavailable_reason


# ------------------------------------------------------------------------------------ resuming a run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny GAN run (2 iterations, checkpoint every one), to copy and hand over as received."""
    out = tmp_path_factory.mktemp("finished")
    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "2", "--eval-every", "1", "--fid", "off",
                                  "--output-dir", str(out)])
    assert code == 0
    (run_dir,) = out.glob("gan/digits/*/*")
    return run_dir


def _received(tmp_path: Path, finished_run: Path, **config) -> Path:
    """A copy of ``finished_run`` whose record says interrupted (with 3 iterations to go to), ``config`` merged in."""
    run_dir = tmp_path / "received"
    shutil.copytree(finished_run, run_dir)
    record = read_record(run_dir)
    record.status = "interrupted"
    record.config.update({"max_steps": 3, **config})
    write_record(record, run_dir)
    return run_dir


def test_resume_never_loads_the_weights_file_a_received_record_names(tmp_path, capsys, offline, finished_run):
    marker = tmp_path / "marker"
    weights = _hostile_weights(tmp_path / "w.pth", marker)
    run_dir = _received(tmp_path, finished_run, fid="auto", fid_weights=str(weights))
    capsys.readouterr()

    assert gan.run_cli(gan.main, ["--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: the run was recorded with --fid-weights {str(weights)!r}; a resumed run reads no file "
                     "its record names, so it goes without (give --fid-weights again to use it)"]
    record = read_record(run_dir)
    assert record.status == "finished" and record.steps == 3
    assert record.config["fid_weights"] is None and record.metrics["fid"] is None
    assert not marker.exists()

    # Named again on the command line, the file is read, as data: one line, and still nothing runs.
    run_dir = _received(tmp_path / "again", finished_run, fid="auto", fid_weights=str(weights))
    assert gan.run_cli(gan.main, ["--resume", str(run_dir), "--fid-weights", str(weights)]) == 2
    _one_line_error(capsys.readouterr().err, f"error: --fid-weights: {weights}: not a weights file")
    assert read_record(run_dir).status == "interrupted"
    _assert_live(weights, marker)


def test_a_checkpoint_without_lightnings_training_state_is_one_line_on_resume(tmp_path, capsys, finished_run):
    run_dir = _received(tmp_path, finished_run)
    path = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    torch.save({"state_dict": checkpoint["state_dict"]}, path)  # weights only: nothing to continue training from
    capsys.readouterr()
    assert gan.run_cli(gan.main, ["--resume", str(run_dir)]) == 2
    _one_line_error(capsys.readouterr().err, "error: --resume: ", "is not a checkpoint Lightning can resume from "
                    "(no optimizer_states, lr_schedulers, loops, epoch, global_step)")
    assert read_record(run_dir).status == "interrupted"


def test_a_checkpoint_of_another_model_is_one_line_on_resume_and_the_record_is_kept(tmp_path, capsys, finished_run):
    run_dir = _received(tmp_path, finished_run)
    path = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name] = torch.zeros(3)
    torch.save(checkpoint, path)
    before = (run_dir / "result.json").read_text()
    capsys.readouterr()
    assert gan.run_cli(gan.main, ["--resume", str(run_dir)]) == 2
    _one_line_error(capsys.readouterr().err, "error: --resume: the weights in ", "are not this run's model "
                    f"(1 of another shape, e.g. {name!r})")
    assert (run_dir / "result.json").read_text() == before


def test_super_resolution_resume_of_a_gan_run_says_it_is_a_gan_run(tmp_path, capsys, finished_run):
    run_dir = _received(tmp_path, finished_run)
    capsys.readouterr()
    assert super_resolution.run_cli(super_resolution.main, ["--resume", str(run_dir)]) == 2
    _one_line_error(capsys.readouterr().err, f"error: --resume: {run_dir} holds a GAN run, not a super-resolution "
                    "one; continue it with recipes/gan.py")


# --------------------------------------------------------------------------------- flags and settings


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", str(2**32)], "error: --seed must be an integer in [0, 4294967295]; got 4294967296."),
        (["--data-seed", str(2**40)], "error: --data-seed must be an integer in [0, 4294967295]"),
        (["--latent-dim", "1000000000"], "error: --latent-dim must be an integer in [1, 4096]; got 1000000000."),
        (["--wandb-project", "a/b"], "error: --wandb-project must be a W&B name: 1 to 128 printable characters, "
                                     "none of / \\ # ? % :; got 'a/b'."),
        (["--wandb-entity", "team?"], "error: --wandb-entity must be a W&B name"),
    ],
)
def test_out_of_range_settings_are_one_line_before_any_run_directory(tmp_path, capsys, argv, message):
    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "1", "--fid", "off", *argv,
                                  "--output-dir", str(tmp_path / "runs")])
    captured = capsys.readouterr()
    assert code == 2
    _one_line_error(captured.err, message)
    assert not (tmp_path / "runs" / "gan").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--upsample", "deconv"], "recipes/gan.py: error: unrecognized arguments: --upsample deconv (see --help)"),
        (["--batch-size", "many"], "recipes/gan.py: error: argument --batch-size: must be a positive integer; "
                                   "got 'many'. (see --help)"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag (see --help)"),
    ],
)
def test_a_bad_flag_is_one_line_without_the_usage_block(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        gan.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == err.strip().splitlines()[0] and "usage:" not in err
    assert message in err


def test_a_learning_rate_that_blows_the_weights_up_ends_diverged_not_failed(tmp_path, capsys):
    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "1", "--eval-every", "0", "--fid", "off", "--lr-g", "1e308",
                                  "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    (run_dir,) = tmp_path.glob("gan/digits/*/*")
    record = read_record(run_dir)
    assert record.status == "diverged"
    assert record.message.startswith("the sampled images became non-finite (") and "at iteration 1" in record.message
    assert f"status: diverged ({record.message})" in captured.out
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # nothing non-finite saved as the last good state


def test_a_batch_larger_than_the_data_is_one_line_and_leaves_no_run(tmp_path, capsys):
    code = gan.run_cli(gan.main, [*TINY[:4], "--batch-size", "100000", *TINY[6:], "--max-steps", "1", "--fid", "off",
                                  "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2
    _one_line_error(captured.err, "error: --batch-size must be at most the ", "training images of 'digits'; "
                    "got 100000.")
    assert not (tmp_path / "gan").exists() and "run directory" not in captured.out


def test_a_data_error_found_after_the_run_directory_was_made_removes_it(tmp_path, capsys, monkeypatch):
    from lightning_checkerboard.data import DatasetError, ImageDataModule

    def refuse(self):
        raise DatasetError("the data went away")

    monkeypatch.setattr(ImageDataModule, "train_dataloader", refuse)
    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "1", "--fid", "off", "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2
    _one_line_error(captured.err, "error: the data went away")
    assert "run directory" in captured.out  # it had been made …
    assert not list(tmp_path.glob("gan/digits/*/*"))  # … and is gone: no failed run for the leaderboard


def test_a_checkpoint_that_links_out_of_the_run_or_is_a_fifo_is_one_line_on_resume(tmp_path, capsys, finished_run):
    from lightning_checkerboard.callbacks.checkpoint import CheckpointError, load_checkpoint

    run_dir = _received(tmp_path, finished_run)
    path = run_dir / "checkpoints" / "last.ckpt"
    outside = tmp_path / "elsewhere.ckpt"
    path.rename(outside)
    path.symlink_to(outside)
    capsys.readouterr()
    assert gan.run_cli(gan.main, ["--resume", str(run_dir)]) == 2
    _one_line_error(capsys.readouterr().err, "error: --resume: ", "a link that leads outside")

    fifo = tmp_path / "fifo.ckpt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="a FIFO, not a regular file"):
        load_checkpoint(fifo)  # returns at once instead of waiting for a writer


def test_style_transfer_and_super_resolution_blown_up_by_the_learning_rate_end_diverged(tmp_path, capsys):
    style = load_recipe("style_transfer")
    runs = [
        (style, ["--content-dataset", "digits", "--image-size", "16", "--batch-size", "2", "--eval-samples", "4",
                 "--loss-network", "random"], "style_transfer"),
        (super_resolution, ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--eval-samples", "8"],
         "super_resolution"),
    ]
    for recipe, argv, task in runs:
        code = recipe.run_cli(recipe.main, [*argv, "--max-steps", "1", "--eval-every", "0", "--logger", "none",
                                            "--lr", "1e308", "--output-dir", str(tmp_path)])
        captured = capsys.readouterr()
        assert code == 1 and "Traceback" not in captured.err, captured.err
        (run_dir,) = tmp_path.glob(f"{task}/digits/*/*")
        record = read_record(run_dir)
        assert record.status == "diverged" and "became non-finite" in record.message
        assert "unavailable" in captured.out and " nan " not in captured.out


def test_every_weights_file_field_is_taken_from_the_command_line_on_resume(tmp_path):
    from lightning_checkerboard.training import GANConfig, StyleTransferConfig

    for config_class, name in ((GANConfig, "fid_weights"), (StyleTransferConfig, "loss_network_weights")):
        assert name in config_class.LOCAL_FILES
        recorded = {**config_class().record_config(), config_class.key(name): "/somewhere/else.pth"}
        assert getattr(config_class.from_record(recorded, resume=tmp_path), name) is None
        mine = config_class.from_record(recorded, resume=tmp_path, local={name: tmp_path / "mine.pth"})
        assert getattr(mine, name) == tmp_path / "mine.pth"
