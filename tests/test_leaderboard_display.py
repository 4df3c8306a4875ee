"""How the leaderboard reads: palette, digits, bounds, verdict, markdown width, pictures, re-rendering.

The page in a real browser is tested in ``test_leaderboard.py`` (marker ``browser``).
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_checkerboard import list_upsamplers
from lightning_checkerboard.cli import run_cli
from lightning_checkerboard.leaderboard import aggregate, render
from lightning_checkerboard.leaderboard.__main__ import main as leaderboard_main
from lightning_checkerboard.leaderboard.formatting import bound_text, column_decimals, largest_bound
from lightning_checkerboard.leaderboard.palette import COLOURS, MARKERS, style_of
from lightning_checkerboard.leaderboard.render import MARKDOWN_COLUMNS
from lightning_checkerboard.leaderboard.rerender import rerender
from lightning_checkerboard.leaderboard.summary import reading, verdict
from lightning_checkerboard.leaderboard.thumbnails import CROP_SIDE, derive_pictures
from lightning_checkerboard.records import ResultRecord

REPO = Path(__file__).resolve().parents[1]


def _run(run_id, upsampler, seed, swd, score, bound=None, task="gan", **metrics):
    return ResultRecord(
        run_id=run_id, task=task, status="finished", dataset="photos", image_size=32, upsampler=upsampler,
        upsampler_stages=[upsampler] * 3, seed=seed, max_steps=100, steps=100,
        protocol={"eval_samples": 64, "heldout_samples": 64, "levels": 3},
        metrics={"swd": swd, "checkerboard": score, "checkerboard_upper": score + 0.5 if bound is None else bound,
                 "spectral_distance": 0.5 + 0.01 * seed, "psnr_bicubic": 28.0, "ssim_bicubic": 0.9 + 0.0004 * seed,
                 "checkerboard_ratio": 0.01 * score, "gradient_checkerboard": 0.3 + seed, "kid": 0.01 * seed,
                 **metrics},
        baseline={"kind": "model before training", "swd": 500.0},
        throughput={"images_per_second": 100.0 + 10 * seed},
    )


# --- one colour per upsampler ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list_upsamplers())
def test_every_registered_upsampler_has_a_fixed_colour_and_marker_of_its_own(name):
    style = style_of(name)
    assert style.colour in COLOURS and style.marker in MARKERS
    others = [style_of(other) for other in list_upsamplers() if other != name]
    assert (style.colour, style.marker) not in {(o.colour, o.marker) for o in others}
    assert style.colour not in {o.colour for o in others}  # ten colours for ten upsamplers


def test_an_unregistered_spec_gets_a_stable_style_whatever_else_is_drawn():
    assert style_of("deconv,nearest_conv") == style_of("deconv,nearest_conv")
    assert style_of("deconv,nearest_conv").colour in COLOURS


def _pixels_of(png: bytes, rgb: tuple[int, int, int]) -> int:
    array = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return int(np.all(array == np.array(rgb, dtype=np.uint8), axis=-1).sum())


def test_the_same_upsampler_has_the_same_colour_in_every_scatter_png(tmp_path):
    """Two tables list the same upsamplers in opposite orders; each scatter paints each row in its
    upsampler's palette colour (the filled mean marker holds pixels of exactly that colour)."""
    names = ["dysample", "deconv", "nearest_conv"]
    runs = [_run(f"a{i}{s}", name, s, 10.0 * (i + 1) + 0.1 * s, 2.0 * i + 0.3 * s) for i, name in enumerate(names)
            for s in range(3)]
    runs += [_run(f"b{i}{s}", name, s, 10.0 * (3 - i) + 0.1 * s, 2.0 * i + 0.3 * s, task="style_transfer")
             for i, name in enumerate(names) for s in range(3)]
    board = aggregate(runs)
    render(board, tmp_path, command="build")
    scatters = sorted((tmp_path / "assets").glob("*-scatter.png"))
    assert len(scatters) == 2
    orders = [[row.upsampler for row in table.rows] for table in board.tables]
    assert orders[0] != orders[1]
    for path in scatters:
        png = path.read_bytes()
        for name in names:
            assert _pixels_of(png, style_of(name).rgb) >= 20, (path.name, name)
    page = (tmp_path / "index.html").read_text()
    for name in names:  # the page's marker beside the name is the same colour
        assert re.search(rf'fill="{style_of(name).colour}"/></svg> <code>{name}</code>', page)


# --- digits and bounds ---------------------------------------------------------------------------


def test_digits_follow_the_seed_spread():
    assert column_decimals([0.9452, 0.9487], [0.0006, 0.0002]) == 5  # SSIM differences are shown
    assert column_decimals([172.6, 251.3], [6.8, 25.0]) == 0  # SWD noise digits dropped
    assert column_decimals([8.7, 0.0], [1.84, 0.0]) == 1


def test_a_bound_is_rounded_up_never_down():
    assert bound_text(9.691, 1) == "9.7" and bound_text(9.61, 1) == "9.7" and bound_text(0.0, 1) == "0.1"


def test_the_largest_per_seed_bound_from_mean_and_std_is_never_below_a_seeds_bound():
    rng = random.Random(0)
    for _ in range(2000):
        n = rng.randint(2, 6)
        bounds = [rng.uniform(0, 20) for _ in range(n)]
        mean, std = sum(bounds) / n, float(np.std(bounds, ddof=1))
        assert largest_bound(None, mean, std, n) >= max(bounds) - 1e-9


def test_the_checkerboard_cell_shows_the_seeds_and_the_largest_bound_never_below_a_reading():
    # A bound of 9.69 in the mean with seeds reading 10.7 and 9.9 read as a contradiction.
    runs = [_run("a", "deconv", 0, 3.0, 10.7, bound=11.3), _run("b", "deconv", 1, 3.1, 9.9, bound=10.4),
            _run("c", "deconv", 2, 3.2, 5.5, bound=7.4)]
    table = aggregate(runs).tables[0]
    r = reading(table, table.rows[0], "checkerboard")
    assert r.detected and r.seeds_detected == 3
    assert r.main() == "8.7 ± 2.8" and r.detail() == "seeds 10.7 / 9.9 / 5.5 · largest bound 11.3"
    clean = aggregate([_run(f"d{s}", "nearest_conv", s, 3.0, 0.0, bound=0.12 + 0.1 * s) for s in range(3)]).tables[0]
    assert reading(clean, clean.rows[0], "checkerboard").main() == "none detected (< 0.32)"


# --- the verdict -----------------------------------------------------------------------------------


def test_the_verdict_names_the_best_rows_the_patterns_with_their_levels_and_the_rows_that_did_not_learn():
    runs = [_run(f"n{s}", "nearest_conv", s, 10.0 + s, 0.0) for s in range(3)]
    runs += [_run(f"b{s}", "bilinear_conv", s, 10.5 + s, 0.0) for s in range(3)]
    runs += [_run(f"d{s}", "deconv", s, 40.0 + s, 8.0 + s) for s in range(3)]
    stuck = [_run(f"c{s}", "carafe", s, 600.0 + s, 0.0) for s in range(3)]  # worse than its baseline (500)
    text = verdict(aggregate(runs + stuck).tables[0])
    assert text.startswith("Best by SWD, not separated from each other at 95 %: nearest_conv (11.0 ± 1.0) and "
                           "bilinear_conv (11.5 ± 1.0).")
    assert "Checkerboard pattern detected in deconv (9.0 ± 1.0 levels, 3 of 3 seeds)." in text
    assert "None detected: nearest_conv and bilinear_conv." in text
    assert text.endswith("Did not learn (no better than before training): carafe.")


# --- markdown pages that fit ------------------------------------------------------------------------


def test_markdown_tables_fit_eight_columns_mark_the_winner_and_keep_plus_minus_on_one_line(tmp_path):
    runs = [_run(f"{name}{s}", name, s, base + s, score + 0.2 * s)
            for name, base, score in (("nearest_conv", 10.0, 0.0), ("deconv", 30.0, 6.0), ("dysample", 20.0, 1.0))
            for s in range(3)]
    board = aggregate(runs)
    render(board, tmp_path, command="build")
    page = (tmp_path / "gan-photos.md").read_text()
    table = [line for line in page.splitlines() if line.startswith("|")]
    assert all(len(re.split(r"(?<!\\)\|", line.strip())[1:-1]) <= MARKDOWN_COLUMNS for line in table)
    assert table[2].startswith("| 1 | **`nearest_conv`** |")  # the winner in bold
    assert all(" ± " not in line and "\u00a0±\u00a0" in line for line in table[2:])  # ± held by no-break spaces
    assert table[0].endswith("| images/s ↑ |")
    assert "The same in every row: bicubic PSNR (dB) 28.0." in page  # a constant is said once
    assert "## 32×32, 100 steps" in page and f"<!-- table {board.tables[0].key} -->" in page
    assert "`" not in page.split("## ")[1].splitlines()[0]  # a plain heading


# --- pictures cut from a grid --------------------------------------------------------------------


def _grid(tiles: list[np.ndarray], nrow: int) -> Image.Image:
    size = tiles[0].shape[0]
    rows = math.ceil(len(tiles) / nrow)
    grid = np.full((2 + rows * (size + 2), 2 + nrow * (size + 2), 3), 255, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, nrow)
        grid[2 + r * (size + 2):2 + r * (size + 2) + size, 2 + c * (size + 2):2 + c * (size + 2) + size] = tile
    return Image.fromarray(grid)


def _smooth(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = 90 + 60 * np.sin(3 * x + rng.uniform(0, 6)) + 40 * y
    return np.repeat(base[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)


def test_the_crop_is_the_window_that_holds_the_checkerboard():
    tiles = [_smooth(64, seed) for seed in range(8)]
    patterned = tiles[5].astype(float)
    i, j = np.mgrid[0:64, 0:64]
    region = (i >= 40) & (i < 56) & (j >= 8) & (j < 24)
    patterned[region] += (40.0 * (-1.0) ** (i + j))[region][:, None]
    tiles[5] = patterned.clip(0, 255).astype(np.uint8)
    pictures, strength = derive_pictures(_grid(tiles, 4), "gan", 64)
    crop = np.asarray(Image.open(io.BytesIO(pictures["crop"])).convert("L"), dtype=float)
    assert crop.shape == (CROP_SIDE, CROP_SIDE)
    ci, cj = np.mgrid[0:CROP_SIDE, 0:CROP_SIDE]
    amplitude = abs(float((crop * (-1.0) ** (ci + cj)).mean()))
    assert amplitude > 30 and strength > 30  # the ±40 pattern, not a smooth window
    assert Image.open(io.BytesIO(pictures["tile"])).size == (32, 32)  # a 64-px sample shows a 32-px window


def test_super_resolution_pictures_take_the_output_column_and_show_the_error_against_the_target():
    bicubic, output, target = (np.full((16, 16, 3), v, dtype=np.uint8) for v in (50, 105, 100))
    pictures, _ = derive_pictures(_grid([bicubic, output, target] * 2, 6), "super_resolution", 16)
    tile = np.asarray(Image.open(io.BytesIO(pictures["tile"])).convert("RGB"))
    error = np.asarray(Image.open(io.BytesIO(pictures["error"])).convert("RGB"))
    assert (tile == 105).all()  # the output, not the bicubic input
    assert (error == 128 + 8 * (105 - 100)).all()


# --- re-rendering a folder whose runs are gone ------------------------------------------------------


def test_the_committed_leaderboard_rerenders_from_its_own_folder_with_the_same_numbers(tmp_path):
    out = tmp_path / "leaderboards"
    shutil.copytree(REPO / "leaderboards", out)
    before = json.loads((out / "leaderboard.json").read_text())
    others = {p.name: p.read_bytes() for p in out.glob("*") if p.is_file() and p.name.startswith(("speed", "bench_"))}
    assert run_cli(leaderboard_main, ["rerender", "--out", str(out)]) == 0
    after = json.loads((out / "leaderboard.json").read_text())
    def numbers(board):  # each table's rows by name, with their metrics (ranks are today's rule's)
        return [sorted((r["upsampler"], json.dumps(r["metrics"], sort_keys=True)) for r in t["rows"]) for t in board["tables"]]

    assert numbers(after) == numbers(before)
    assert {p.name: p.read_bytes() for p in out.glob("*") if p.name in others} == others
    page = (out / "index.html").read_text()
    runs = [run for t in after["tables"] for row in t["rows"] for run in row["runs"]]
    assert page.count('class="samples"') == len(runs)  # one tile per seed
    for run in runs:
        assert (out / "assets" / run["run_id"] / "tile.png").is_file()
    sr = next(t for t in after["tables"] if t["task"] == "super_resolution")
    assert all("residual_checkerboard_upper" in run["values"] for row in sr["rows"] for run in row["runs"])
    # A second rerender reads what the first wrote and changes nothing.
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert run_cli(leaderboard_main, ["rerender", "--out", str(out)]) == 0
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot


def test_rerender_ranks_stale_tables_again_by_the_holm_rule(tmp_path):
    """A leaderboard ranked by an older rule (one rank per row) gets today's ranks on rerender: the same
    ranks as :func:`rank_rows` gives for the rows' values, means listed best first."""
    from lightning_checkerboard.leaderboard.ranking import rank_rows

    out = tmp_path / "leaderboards"
    shutil.copytree(REPO / "leaderboards", out)
    payload = json.loads((out / "leaderboard.json").read_text())
    for table in payload["tables"]:
        for position, row in enumerate(table["rows"], start=1):
            row["rank"], row["p_adjusted"] = position, None
    (out / "leaderboard.json").write_text(json.dumps(payload))
    assert run_cli(leaderboard_main, ["rerender", "--out", str(out)]) == 0
    after = json.loads((out / "leaderboard.json").read_text())
    sr = next(t for t in after["tables"] if t["task"] == "super_resolution")
    values = [[run["values"]["psnr"] for run in row["runs"]] for row in sr["rows"]]
    baselines = [[row["baseline"]["mean"]] for row in sr["rows"]]
    _, results = rank_rows(values, baselines, higher_is_better=True)
    assert [row["rank"] for row in sr["rows"]] == [result.rank for result in results]
    assert len({row["rank"] for row in sr["rows"]}) < len(sr["rows"])  # shared ranks, not one per row


def test_rerender_of_a_folder_without_a_leaderboard_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("mine")
    assert run_cli(leaderboard_main, ["rerender", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no leaderboard.json the build wrote" in err


def test_rerender_refuses_a_run_id_that_is_a_path(tmp_path, capsys):
    render(aggregate([_run("a", "deconv", 0, 3.0, 1.0)]), tmp_path, command="build")
    payload = json.loads((tmp_path / "leaderboard.json").read_text())
    payload["tables"][0]["rows"][0]["runs"][0]["run_id"] = "../../etc"
    (tmp_path / "leaderboard.json").write_text(json.dumps(payload))
    assert run_cli(leaderboard_main, ["rerender", "--out", str(tmp_path)]) == 2
    assert "not a run id" in capsys.readouterr().err


# --- figures at integer zoom ---------------------------------------------------------------------


def test_a_figure_draws_each_picture_as_exact_integer_blocks_never_resampled():
    from lightning_checkerboard.leaderboard.figures import panel_figure

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    png = panel_figure([[picture]], zoom=3, row_labels=["deconv"], row_styles=["deconv"], title="t", note="n")
    figure = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    expected = np.repeat(np.repeat(picture, 3, axis=0), 3, axis=1)
    found = [(y, x) for y in range(figure.shape[0] - 23) for x in range(figure.shape[1] - 23)
             if (figure[y, x] == expected[0, 0]).all() and (figure[y:y + 24, x:x + 24] == expected).all()]
    assert len(found) == 1  # the 8×8 picture, every pixel a 3×3 block, exactly once
    assert _pixels_of(png, style_of("deconv").rgb) > 20  # the row's mark in the upsampler's colour
    with pytest.raises(ValueError, match="zoom must be an integer"):
        panel_figure([[picture]], zoom=2.5)


def test_a_shared_stretch_keeps_the_ratio_of_amplitudes():
    from lightning_checkerboard.leaderboard.figures import shared_stretch

    i, j = np.indices((16, 16))
    strong, faint = 0.5 + 0.2 * (-1.0) ** (i + j), 0.3 + 0.01 * (-1.0) ** (i + j)
    (a, b), _ = shared_stretch([strong, faint])
    amplitude = lambda x: abs(float((x.astype(float) * (-1.0) ** (i + j)).mean()))  # noqa: E731
    assert amplitude(a) / amplitude(b) == pytest.approx(20, rel=0.1)


def test_the_scatter_starts_at_zero_reaches_every_bound_marks_the_better_corner_and_draws_bicubic():
    import matplotlib

    from lightning_checkerboard.leaderboard.plots import ScatterRow, scatter_figure

    rows = [ScatterRow("nearest_conv", "nearest_conv", [0.0, 0.0], [32.0, 32.1], True, bound=0.17),
            ScatterRow("deconv", "deconv", [0.05, 0.12], [31.9, 32.0], True, bound=0.29),
            ScatterRow("pixel_shuffle", "pixel_shuffle", (), (), True, 0.07, 0.08, 32.3, 0.01, bound=0.28)]
    with matplotlib.rc_context({"text.usetex": False}):
        figure = scatter_figure(rows, "PSNR (dB)", higher_is_better=True, reference=("bicubic", 30.7))
    (axes,) = figure.axes
    left, right = axes.get_xlim()
    assert left == 0 and right >= 0.29  # from 0, every row's bound inside
    assert any(line.get_ydata()[0] == 30.7 for line in axes.get_lines())  # the bicubic line
    assert "better" in [text.get_text() for text in axes.texts]
    assert min(text.get_fontsize() for text in axes.get_legend().get_texts()) * 100 / 72 >= 10  # px at 100 dpi
    colours = {matplotlib.colors.to_hex(line.get_color()) for line in axes.get_lines()}
    assert {style_of(name).colour.lower() for name in ("nearest_conv", "deconv", "pixel_shuffle")} <= colours
