"""``recipes/reports/super_resolution_report.py``: answers from the grid's records, the report, its JSON and its figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from _recipes import load_recipe

sr = load_recipe("super_resolution")
report = load_recipe("super_resolution_report")
article = load_recipe("article_report")

TINY = ["--image-size", "16", "--batch-size", "8", "--features", "8", "--hidden-channels", "4", "--eval-samples", "8",
        "--max-steps", "2", "--eval-every", "0", "--logger", "none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sr-runs")
    for name in report.NEEDED:
        assert sr.run_cli(sr.main, [*TINY, "--upsampler", name, "--output-dir", str(folder)]) == 0
    return folder


def test_report_writes_every_run_the_answers_and_the_figure(runs, tmp_path, capsys):
    assert report.main(["--runs", str(runs), "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "super_resolution.json").read_text())
    assert list(payload["runs"]) == ["deconv", "nearest_conv", "pixel_shuffle", "pixel_shuffle_icnr"]  # registry order
    assert payload["scale"] == 2 and payload["heldout_photos"] == "astronaut,stereo_motorcycle"
    assert payload["command"] == f"python recipes/reports/super_resolution_report.py --runs {runs} --out {tmp_path}"
    assert [len(a) for a in payload["answers"]] == [4] * 4 and all(isinstance(a["holds"], bool) for a in payload["answers"])
    page = (tmp_path / "super_resolution.md").read_text()
    for name, entries in payload["runs"].items():
        (run,) = entries
        assert run["gain_db"] == pytest.approx(run["psnr"] - run["psnr_bicubic"])
        assert f"| `{name}` | 0 | {run['psnr']:.3f} | {run['ssim']:.4f} |" in page
        assert payload["summary"][name]["psnr"] == [run["psnr"], 0.0]
    printed = capsys.readouterr().out
    for answer in payload["answers"]:
        assert answer["question"] in page and answer["question"] in printed
    with Image.open(tmp_path / "figures" / "super_resolution.png") as png:
        # six rows (high resolution, bicubic, four upsamplers), each with its patch as 4×4 blocks
        assert png.size[1] >= 6 * report.ZOOM * report.PATCH and png.size[0] > 0


def test_the_figure_is_redrawn_from_a_leaderboards_copied_grids_alone(tmp_path, capsys):
    """The committed figure's source when the runs are gone: the sample grids in ``leaderboards/assets``."""
    assert report.main(["--grids", str(Path(__file__).resolve().parents[1] / "leaderboards"),
                        "--out", str(tmp_path)]) == 0
    with Image.open(tmp_path / "figures" / "super_resolution.png") as png:
        assert png.size[1] > png.size[0] > 0 and png.size[0] <= 890  # fits the docs' column at its own size
    assert not (tmp_path / "super_resolution.md").exists()  # nothing measured, no report written
    with pytest.raises(report.UsageError, match="no leaderboard.json with a super-resolution table"):
        report.main(["--grids", str(tmp_path), "--out", str(tmp_path)])


def test_report_needs_the_upsamplers_its_answers_compare(runs, tmp_path):
    for path in runs.glob("super_resolution/photos/deconv/*/result.json"):
        path.rename(path.with_name("moved.json"))
    try:
        with pytest.raises(report.UsageError, match="no finished super_resolution runs of deconv under"):
            report.main(["--runs", str(runs), "--out", str(tmp_path)])
    finally:
        for path in runs.glob("super_resolution/photos/deconv/*/moved.json"):
            path.rename(path.with_name("result.json"))


def _run(psnr: float, *, residual: float = 0.0, untrained: float = 0.0, bicubic: float = 30.0) -> dict:
    return {"psnr": psnr, "gain_db": psnr - bicubic, "residual_checkerboard": residual,
            "residual_checkerboard_upper": residual + 0.2, "untrained_checkerboard": untrained,
            "untrained_checkerboard_upper": untrained + 0.1}


def _answers(icnr=(32.0, 32.1), shuffle=(31.9, 32.0), deconv=(0.1, 0.2), nearest=(0.0, 0.0), icnr_start=(0.0, 0.0)):
    runs = {"pixel_shuffle_icnr": [_run(p, untrained=u) for p, u in zip(icnr, icnr_start)],
            "pixel_shuffle": [_run(p, untrained=9.0) for p in shuffle],
            "deconv": [_run(31.0, residual=r, untrained=20.0) for r in deconv],
            "nearest_conv": [_run(31.5, residual=r) for r in nearest]}
    return [answer["holds"] for answer in report.answers(runs)]


def test_answers_follow_the_scores_detection_rule_and_the_means():
    assert _answers() == [True, True, True, True]
    assert _answers(icnr_start=(0.0, 0.05)) == [False, True, True, True]  # any pattern found at the start
    assert _answers(icnr=(31.9, 31.95)) == [True, False, True, True]  # lower in the mean
    assert _answers(deconv=(0.0, 0.2)) == [True, True, False, True]  # one deconv seed shows none
    assert _answers(nearest=(0.0, 0.01)) == [True, True, False, True]  # nearest_conv must show none
    assert _answers(icnr=(29.0, 32.1))[3] is False  # a seed below bicubic


def test_article_report_repeats_the_reports_answers_with_their_command():
    payload = {"scale": 2, "max_steps": 1000, "image_size": 64, "runs": {"deconv": [{}, {}, {}]},
               "answers": [{"claim": "Every upsampler ends above bicubic interpolation (PSNR gain, dB)",
                            "answer": "deconv 1.30 ± 0.01 dB", "holds": True}]}
    ((claim, measured, holds, command),) = article.sr_claims(payload)
    assert claim == "(not the article's experiment) Every upsampler ends above bicubic interpolation (PSNR gain, dB)"
    assert measured.startswith("deconv 1.30 ± 0.01 dB (super-resolution ×2, 1000 iterations at 64², 3 seeds")
    assert holds is True and "super_resolution_report.py --runs /tmp/lcb-sr" in command
