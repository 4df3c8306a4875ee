"""Data that cannot be had ends a run with its one line, before any warning, and leaves no folder behind."""

from __future__ import annotations

import pytest

from _recipes import load_recipe
from lightning_checkerboard.data import hub

gan = load_recipe("gan")


@pytest.fixture
def hub_unreachable(monkeypatch, tmp_path):
    """Online mode, nothing cached, and no answer from the Hub; FID weights that cannot be had (its warning)."""
    monkeypatch.setattr(hub, "hub_is_offline", lambda: False)
    monkeypatch.setattr(hub, "hub_is_cached", lambda spec: False)
    monkeypatch.setattr(hub, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("LIGHTNING_CHECKERBOARD_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_an_unreachable_hub_is_the_one_line_and_no_run_directory_is_left(hub_unreachable, tmp_path, capsys):
    output = tmp_path / "new" / "runs"
    code = gan.run_cli(gan.main, ["--dataset", "cifar10", "--max-steps", "1", "--logger", "none",
                                  "--output-dir", str(output)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == ("error: Dataset 'cifar10': the Hugging Face Hub cannot be reached; use the embedded "
                            "'photos' dataset (no network), or 'folder:<path>' with your own images.\n")
    assert "WARNING" not in captured.out
    assert not (tmp_path / "new").exists()  # the folders the run made for itself are gone


def test_the_warnings_of_a_run_that_starts_are_still_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIGHTNING_CHECKERBOARD_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = gan.run_cli(gan.main, ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "1",
                                  "--eval-samples", "8", "--fid-samples", "8", "--gen-channels", "8",
                                  "--disc-channels", "8", "--logger", "none", "--output-dir", str(tmp_path / "runs")])
    assert code == 0
    assert "WARNING: FID is unavailable" in capsys.readouterr().err


def test_an_output_dir_that_existed_stays_when_the_data_cannot_be_had(hub_unreachable, tmp_path, capsys):
    (tmp_path / "runs" / "gan").mkdir(parents=True)
    assert gan.run_cli(gan.main, ["--dataset", "cifar10", "--output-dir", str(tmp_path / "runs")]) == 2
    assert (tmp_path / "runs" / "gan").is_dir()
