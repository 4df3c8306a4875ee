"""Without a terminal, training prints a progress line at a fixed interval of wall time."""

from __future__ import annotations

import io
import re
import time

import pytest

from _recipes import load_recipe
from lightning_checkerboard._progress import PROGRESS_ENV, ProgressLines, activity, progress_seconds
from lightning_checkerboard.callbacks import TrainingProgress

gan = load_recipe("gan")

TINY = ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--eval-samples", "16",
        "--fid", "off", "--gen-channels", "8", "--disc-channels", "8", "--logger", "none"]
LINE = re.compile(r"^progress: iteration (\d+)/12 \(\d+ %\), [\d.]+ images/s(, about .+ left)?(; .*)?$")


def test_a_run_whose_output_is_not_a_terminal_prints_progress_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "0.001")  # a line after every iteration
    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "12", "--eval-every", "6", "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 5, out
    assert all(LINE.match(line) for line in lines), lines
    iterations = [int(LINE.match(line).group(1)) for line in lines]
    assert iterations == sorted(iterations) and iterations[-1] >= 10
    assert any("left" in line for line in lines)
    # a measurement longer than the interval is named while it runs: the untrained model's one too
    assert any("; ArtifactMetrics measurement (16 samples) of the untrained model for " in line for line in lines)
    # the losses the model logs, and the measured numbers once the measurement at iteration 6 is done
    assert "loss/generator" in lines[-1] and "checkerboard" in lines[-1] and "swd" in lines[-1]
    # the lines come between the headline and the report
    assert out.index("run directory:") < out.index(lines[0]) < out.index("stopped after 12 of 12 iterations")


def test_a_run_prints_no_progress_line_when_the_interval_is_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert gan.run_cli(gan.main, [*TINY, "--max-steps", "3", "--eval-every", "0", "--output-dir", str(tmp_path)]) == 0
    assert "progress:" not in capsys.readouterr().out


def test_a_bad_interval_is_one_line_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "soon")
    code = gan.run_cli(gan.main, [*TINY, "--max-steps", "3", "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{PROGRESS_ENV} must be a number of seconds >= 0 (0: no progress lines); got 'soon'" in err
    assert not (tmp_path / "runs" / "gan").exists()


def test_a_long_measurement_is_named_in_the_lines_while_it_runs():
    stream = io.StringIO()
    lines = ProgressLines(lambda: "iteration 6/12", 0.05, stream=stream)
    lines.start()
    try:
        with activity("final ArtifactMetrics measurement (4096 samples)"):
            time.sleep(0.4)
    finally:
        lines.stop()
    printed = stream.getvalue().splitlines()
    assert printed and printed[0].startswith(
        "progress: iteration 6/12; final ArtifactMetrics measurement (4096 samples) for ")
    count = len(printed)
    time.sleep(0.15)  # stopped: nothing more
    assert len(stream.getvalue().splitlines()) == count


def test_the_interval_and_the_callback_settings_are_checked(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert progress_seconds() == 60.0
    monkeypatch.setenv(PROGRESS_ENV, "-1")
    with pytest.raises(ValueError, match=rf"{PROGRESS_ENV} must be a number of seconds >= 0"):
        progress_seconds()
    with pytest.raises(ValueError, match=r"seconds must be a number >= 0 \(0: no progress lines\); got nan"):
        TrainingProgress(8, 10, seconds=float("nan"))
    with pytest.raises(ValueError, match="batch_size"):
        TrainingProgress(0, 10, seconds=1)


def test_score_without_a_terminal_prints_progress_lines_on_stderr(tmp_path, monkeypatch, capsys):
    import numpy as np

    from lightning_checkerboard.score.__main__ import main as score_main

    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    monkeypatch.setenv(PROGRESS_ENV, "0.000001")
    assert score_main([str(tmp_path / "images.npy"), "--batch-size", "4", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("progress: ")]
    assert lines and all(re.fullmatch(r"progress: scoring (\d+) of 40 images, \d+ images/s(, about .+ left)?", line)
                         for line in lines), captured.err
    assert "progress" not in captured.out  # the table stays clean
    monkeypatch.setenv(PROGRESS_ENV, "often")
    assert score_main([str(tmp_path / "images.npy"), "--device", "cpu"]) == 2
    assert f"error: {PROGRESS_ENV} must be a number of seconds" in capsys.readouterr().err
