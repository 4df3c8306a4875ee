"""A run saves its final evaluation samples one by one; ``score <run dir>`` scores them, and warns about grids."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from _recipes import load_recipe
from lightning_checkerboard.records import read_record
from lightning_checkerboard.run_samples import FINAL_SAMPLES, write_final_samples
from lightning_checkerboard.score.__main__ import main as score_main

gan = load_recipe("gan")

EVAL_SAMPLES = 48
# An untrained transposed convolution paints a checkerboard of several levels: a reading worth comparing.
TINY = ["--upsampler", "deconv", "--dataset", "digits", "--image-size", "32", "--batch-size", "8",
        "--eval-samples", str(EVAL_SAMPLES), "--fid", "off", "--gen-channels", "8", "--disc-channels", "8",
        "--logger", "none"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert gan.run_cli(gan.main, [*TINY, "--max-steps", "2", "--eval-every", "0", "--output-dir", str(root)]) == 0
    (found,) = root.glob("gan/digits/*/*")
    return found


def _score(capsys, *argv) -> tuple[int, dict | None, str]:
    report = argv[-1] if argv and str(argv[-1]).endswith(".json") else None
    code = score_main([*map(str, argv), "--device", "cpu", "--fid", "off"])
    err = capsys.readouterr().err
    return code, json.loads(open(report).read()) if report and code == 0 else None, err


def test_a_run_saves_the_images_its_final_measurement_scored(run_dir):
    with np.load(run_dir / FINAL_SAMPLES, allow_pickle=False) as saved:
        assert list(saved) == ["images"]
        images = saved["images"]
    assert images.dtype == np.uint8 and images.shape == (EVAL_SAMPLES, 32, 32, 1)
    assert images.std() > 0  # generated pictures, not a blank array


def test_score_of_a_run_directory_agrees_with_the_runs_own_final_checkerboard_score(run_dir, capsys, tmp_path):
    record = read_record(run_dir)
    levels = record.protocol["levels"]
    code, report, err = _score(capsys, run_dir, "--levels", levels, "--json", tmp_path / "r.json")
    assert code == 0, err
    assert f"is a run directory: scoring the {EVAL_SAMPLES} final evaluation samples of {FINAL_SAMPLES}" in err
    assert "warning" not in err
    assert report["counts"]["generated"]["scored"] == EVAL_SAMPLES and report["notes"]
    (group,) = report["groups"]
    cli = group["checkerboard"]
    # The run scored the images before their rounding to 8 bits: each reading lies within the other's bound.
    assert cli["score"] <= record.metrics["checkerboard_upper"]
    assert record.metrics["checkerboard"] <= cli["upper"]
    assert record.metrics["checkerboard"] > 1.0  # a pattern there, not two zeros agreeing
    assert abs(cli["score"] - record.metrics["checkerboard"]) < 0.1


def test_the_sample_grids_are_warned_about_as_grids(run_dir, capsys):
    code, _, err = _score(capsys, run_dir / "samples")
    assert code == 0, err
    assert "warning: GENERATED " in err and "looks like a grid of images (gutters of one colour every 34 pixels)" in err
    assert err.rstrip().endswith(f"score the images one by one (its run directory has them: score {run_dir})")


def test_single_pictures_are_not_taken_for_grids(capsys, tmp_path):
    from PIL import Image

    from _photos import photo_crops

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, crop in enumerate(photo_crops(6, 64, seed=1)):
        Image.fromarray(np.rint(crop.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    code, _, err = _score(capsys, folder)
    assert code == 0 and "warning" not in err and "note:" not in err


def test_a_run_directory_whose_samples_link_outside_it_is_refused_in_one_line(tmp_path, capsys):
    outside = write_final_samples(tmp_path / "elsewhere", np.full((4, 16, 16, 3), 7, dtype=np.uint8))
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    os.symlink(outside, run / FINAL_SAMPLES)
    code, _, err = _score(capsys, run)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {run} is a run directory, but its {FINAL_SAMPLES} cannot be scored")


def test_saved_samples_must_be_8_bit_images():
    with pytest.raises(ValueError, match=r"images must be \(N, H, W, C\) uint8 .* got float32 of shape \(2, 4, 4, 3\)"):
        write_final_samples("unused", np.zeros((2, 4, 4, 3), dtype=np.float32))


def test_a_run_directory_takes_no_npz_key(run_dir, capsys):
    code, _, err = _score(capsys, run_dir, "--npz-key", "images")
    assert code == 2 and err == (f"error: GENERATED {run_dir} is a run directory, whose samples are one array; "
                                 "--npz-key applies to .npz files.\n")
