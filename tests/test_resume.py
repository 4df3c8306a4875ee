"""Interrupt and resume: a run stopped by a signal and resumed ends bit-identical to one that was not."""

from __future__ import annotations

import importlib.util
import os
import signal
from pathlib import Path

import pytest
import torch

from lightning_checkerboard.callbacks import RunCheckpoint
from lightning_checkerboard.records import read_record

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gan_recipe_resume", ROOT / "recipes" / "gan.py")
gan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gan)

FLAGS = ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "6",
         "--eval-every", "2", "--eval-samples", "16", "--fid", "off", "--logger", "none",
         "--gen-channels", "8", "--disc-channels", "8", "--seed", "3"]


def _run(argv: list[str]) -> int:
    return gan.run_cli(gan.main, argv)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


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
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, straight, sig):

    with monkeypatch.context() as patch:
        _interrupt_at(patch, 3, sig)
        assert _run([*FLAGS, "--output-dir", str(tmp_path / "broken")]) == 1
    (broken,) = (tmp_path / "broken").glob("gan/digits/nearest_conv/*")
    record = read_record(broken)
    assert record.status == "interrupted" and record.steps == 3
    assert signal.Signals(sig).name in record.message
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
    from lightning_checkerboard import runs
    from lightning_checkerboard.records import ResultRecord, write_record

    run_dir = tmp_path / "old-run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    write_record(ResultRecord(run_id="old", task="gan", status="interrupted", dataset="digits", image_size=16,
                              upsampler="nearest_conv", upsampler_stages=["nearest_conv"] * 2, seed=3, max_steps=6,
                              config={"seed": 3, "max_steps": 6}), run_dir)  # no ema_decay, no disc_norm
    parser = gan.build_parser()
    args, _, _ = runs.resume_settings(parser, parser.parse_args(["--resume", str(run_dir)]),
                                      legacy_defaults={"ema_decay": 0.0, "disc_norm": "batch"})
    assert (args.ema_decay, args.disc_norm, args.seed) == (0.0, "batch", 3)
    assert parser.get_default("ema_decay") == 0.999  # today's runs average weights
