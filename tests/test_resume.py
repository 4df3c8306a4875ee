"""Interrupt and resume: a run stopped by a signal and resumed ends bit-identical to one that was not."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from _recipes import load_recipe
from lightning_checkerboard.callbacks import RunCheckpoint
from lightning_checkerboard.records import read_record, write_record

gan = load_recipe("gan")

FLAGS = ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "6",
         "--eval-every", "2", "--eval-samples", "16", "--fid", "off", "--logger", "none",
         "--gen-channels", "8", "--disc-channels", "8", "--seed", "3"]


def _run(argv: list[str]) -> int:
    return gan.run_cli(gan.main, argv)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def _interrupt_at(monkeypatch, iteration: int, sig: int) -> None:
    original = RunCheckpoint.on_train_batch_end

    def send_signal(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step // 2 == iteration and self.requested is None:
            os.kill(os.getpid(), sig)  # delivered to this (main) thread before the next line
        return original(self, trainer, pl_module, outputs, batch, batch_idx)

    monkeypatch.setattr(RunCheckpoint, "on_train_batch_end", send_signal)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """A run of the same settings that nothing interrupts."""
    out = tmp_path_factory.mktemp("straight")
    assert _run([*FLAGS, "--output-dir", str(out)]) == 0
    (run_dir,) = out.glob("gan/digits/nearest_conv/*")
    return run_dir


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, capsys, straight, sig):

    with monkeypatch.context() as patch:
        _interrupt_at(patch, 3, sig)
        assert _run([*FLAGS, "--output-dir", str(tmp_path / "broken")]) == 1
    (broken,) = (tmp_path / "broken").glob("gan/digits/nearest_conv/*")
    record = read_record(broken)
    assert record.status == "interrupted" and record.steps == 3
    assert signal.Signals(sig).name in record.message
    out = capsys.readouterr().out
    assert "stopped after 3 of 6 iterations" in out
    assert f"continue it with: python recipes/gan.py --resume {broken}" in out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored

    assert _run(["--resume", str(broken)]) == 0
    resumed = read_record(broken)
    assert resumed.status == "finished" and resumed.steps == 6 and resumed.run_id == record.run_id

    expected, got = _weights(straight), _weights(broken)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert resumed.metrics == read_record(straight).metrics
    # the untrained generator's quality, measured once before the first step, survives the interruption
    assert resumed.baseline == read_record(straight).baseline and "swd" in resumed.baseline


def test_resume_rejects_other_flags_and_finished_runs(tmp_path, capsys, straight):
    run_dir = straight
    assert _run(["--resume", str(run_dir), "--max-steps", "9"]) == 2
    assert "drop --max-steps" in capsys.readouterr().err
    assert _run(["--resume", str(run_dir)]) == 2
    assert "already finished" in capsys.readouterr().err
    assert _run(["--resume", str(tmp_path / "nowhere")]) == 2
    assert "no result record" in capsys.readouterr().err


def test_a_run_recorded_before_a_setting_existed_resumes_with_the_behaviour_it_started_with(tmp_path):
    from lightning_checkerboard.training import GANConfig

    recorded = {"seed": 3, "max_steps": 6, "stages": ["nearest_conv"] * 2}  # no ema_decay, no disc_norm
    config = GANConfig.from_record(recorded, resume=tmp_path)
    assert (config.ema_decay, config.disc_norm, config.seed, config.resume) == (0.0, "batch", 3, tmp_path)
    assert GANConfig().ema_decay == 0.999  # today's runs average weights


class _WritesAFile:
    """Pickled, it names ``Path.write_text``: unpickling it with plain pickle writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "code ran")


def _interrupted_copy(tmp_path: Path, straight: Path) -> Path:
    """A run directory whose record says ``interrupted``: what someone might send to be resumed."""
    import shutil

    run_dir = tmp_path / "received"
    shutil.copytree(straight, run_dir)
    record = read_record(run_dir)
    record.status = "interrupted"
    write_record(record, run_dir)
    return run_dir


def test_resume_refuses_a_checkpoint_that_would_run_code_and_runs_none_of_it(tmp_path, capsys, straight):
    run_dir = _interrupted_copy(tmp_path, straight)
    marker = tmp_path / "marker"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["callbacks"]["payload"] = _WritesAFile(marker)
    torch.save(checkpoint, run_dir / "checkpoints" / "last.ckpt")
    capsys.readouterr()

    assert _run(["--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --resume: ") and "was not loaded" in err
    assert "Unsupported global" in err
    assert not marker.exists()
    assert read_record(run_dir).status == "interrupted"  # nothing trained, nothing rewritten
    torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)  # the payload is live: a plain load runs it
    assert marker.read_text() == "code ran"


def test_lightning_reads_checkpoints_through_the_weights_only_loader(tmp_path):
    from lightning_checkerboard.callbacks.checkpoint import CheckpointError, WeightsOnlyCheckpointIO

    marker = tmp_path / "marker"
    torch.save({"state_dict": {}, "payload": _WritesAFile(marker)}, tmp_path / "last.ckpt")
    with pytest.raises(CheckpointError, match=r"last.ckpt holds more than training state \(Unsupported global"):
        WeightsOnlyCheckpointIO().load_checkpoint(tmp_path / "last.ckpt", weights_only=False)
    assert not marker.exists()
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken.ckpt is not a readable checkpoint"):
        WeightsOnlyCheckpointIO().load_checkpoint(tmp_path / "broken.ckpt")


class _CallsTheShell:
    """Unpickling calls ``os.system``: a module torch's weights-only loader blocks outright."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_blocked_module_is_refused_without_torchs_advice_to_load_unsafely(tmp_path):
    from lightning_checkerboard.callbacks.checkpoint import CheckpointError, load_checkpoint

    marker = tmp_path / "marker"
    torch.save({"state_dict": {}, "payload": _CallsTheShell(marker)}, tmp_path / "last.ckpt")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path / "last.ckpt")
    message = str(caught.value)
    assert "holds more than training state (Unsupported global: " in message and "system" in message
    assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()
