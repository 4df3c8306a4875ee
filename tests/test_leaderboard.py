"""The leaderboard: collection from real runs, edge cases, hand-checked numbers, and a real browser."""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from _hostile import IMAGE, SCRIPT, write_hostile_records
from _recipes import load_recipe
from lightning_checkerboard.leaderboard import (
    CollectError,
    aggregate,
    build,
    collect,
    collect_local,
    collect_wandb,
    record_from_wandb_run,
)
from lightning_checkerboard.leaderboard.__main__ import main as leaderboard_main
from lightning_checkerboard.cli import run_cli
from lightning_checkerboard.records import ResultRecord, write_record

PROTOCOL = {"eval_samples": 128, "levels": 3, "fid_extractor": None, "fid_samples": 256}


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> Path:
    """Three real (tiny) runs of recipes/gan.py: deconv_k3 seeds 0 and 1, nearest_conv seed 0."""
    gan = load_recipe("gan")
    runs = tmp_path_factory.mktemp("runs")
    for upsampler, seed in (("deconv_k3", 0), ("deconv_k3", 1), ("nearest_conv", 0)):
        code = gan.run_cli(gan.main, [
            "--upsampler", upsampler, "--seed", str(seed), "--dataset", "digits", "--image-size", "16",
            "--max-steps", "2", "--batch-size", "16", "--eval-every", "0", "--eval-samples", "32",
            "--fid", "off", "--logger", "none", "--gen-channels", "8", "--disc-channels", "8",
            "--output-dir", str(runs),
        ])
        assert code == 0
    return runs


def _record(run_id, upsampler="deconv", seed=0, score=1.0, fid=None, status="finished", protocol=None, swd=None,
            **extra):
    return ResultRecord(
        run_id=run_id, task="gan", status=status, dataset="photos", image_size=32, upsampler=upsampler,
        upsampler_stages=[upsampler] * 3, seed=seed, max_steps=100, steps=100 if status == "finished" else 7,
        protocol=dict(PROTOCOL if protocol is None else protocol),
        metrics={"checkerboard": score, "fid": fid, "spectral_distance": 0.5, "swd": swd},
        config={"batch_size": 32, "gen_channels": 16, "disc_channels": 16},
        message="" if status == "finished" else f"{status} at step 7", **extra,
    )


# --- collection from real runs ------------------------------------------------------------------


def test_collect_local_reads_every_real_run_record(real_runs):
    found = collect_local(real_runs)
    assert found.rejected == []
    assert sorted((c.record.upsampler, c.record.seed) for c in found.runs) == [
        ("deconv_k3", 0), ("deconv_k3", 1), ("nearest_conv", 0)]
    for collected in found.runs:
        assert collected.record.status == "finished" and collected.record.steps == 2
        assert (collected.run_dir / "samples" / "final.png").is_file()

    (table,) = aggregate(c.record for c in found.runs).tables
    assert (table.dataset, table.image_size, table.protocol["eval_samples"]) == ("digits", 16, 32)
    rows = {row.upsampler: row for row in table.rows}
    assert rows["deconv_k3"].n == 2 and rows["deconv_k3"].seeds == [0, 1]
    scores = [c.record.metrics["checkerboard"] for c in found.runs if c.record.upsampler == "deconv_k3"]
    assert rows["deconv_k3"].metrics["checkerboard"].mean == pytest.approx(sum(scores) / 2)
    assert rows["nearest_conv"].n == 1 and rows["nearest_conv"].metrics["checkerboard"].std is None


def test_build_from_real_runs_writes_pages_csv_json_html_and_thumbnails(real_runs, tmp_path):
    out = tmp_path / "leaderboards"
    build([str(real_runs)], out)
    (out / "speed.md").write_text("speed table\n")  # the benchmark scripts write into the same folder
    (out / "bench_metrics.md").write_text("bench table\n")
    build([str(real_runs)], out)
    assert (out / "speed.md").read_text() == "speed table\n"  # other scripts' files are left alone
    index = (out / "README.md").read_text()
    assert "python -m lightning_checkerboard.leaderboard build --from" in index
    assert "[gan-digits.md](gan-digits.md)" in index
    assert "[speed.md](speed.md)" in index and "[bench_metrics.md](bench_metrics.md)" in index
    markdown = (out / "gan-digits.md").read_text()
    assert "`deconv_k3`" in markdown and "Seeds: deconv_k3 0, 1; nearest_conv 0." in markdown
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert sorted((r["upsampler"], r["n"]) for r in rows) == [("deconv_k3", "2"), ("nearest_conv", "1")]
    payload = json.loads((out / "leaderboard.json").read_text())
    assert len(payload["tables"]) == 1 and payload["excluded"] == []
    pngs = sorted(p.relative_to(out).as_posix() for p in (out / "assets").rglob("*.png"))
    assert len([p for p in pngs if p.endswith("/final.png")]) == 3
    assert len([p for p in pngs if p.endswith("/spectra.png")]) == 3
    assert len([p for p in pngs if p.endswith("/tile.png")]) == 3 and len([p for p in pngs if p.endswith("/crop.png")]) == 3
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing external to load


# --- aggregation, checked by hand ---------------------------------------------------------------


def test_aggregate_mean_sample_std_and_n_match_hand_computation():
    board = aggregate([
        _record("a", "deconv", 0, score=1.0, fid=30.0),
        _record("b", "deconv", 1, score=2.0, fid=40.0),
        _record("c", "deconv", 2, score=6.0, fid=None),  # FID unavailable for one seed
        _record("d", "nearest_conv", 0, score=0.5),
    ])
    (table,) = board.tables
    deconv = next(row for row in table.rows if row.upsampler == "deconv")
    score = deconv.metrics["checkerboard"]
    assert (score.mean, score.n) == (3.0, 3)
    assert score.std == pytest.approx(math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))  # ddof=1
    fid = deconv.metrics["fid"]
    assert (fid.mean, fid.n) == (35.0, 2) and fid.std == pytest.approx(math.sqrt(50.0))
    single = next(row for row in table.rows if row.upsampler == "nearest_conv")
    assert single.metrics["checkerboard"].std is None and single.metrics["fid"] is None
    # Not every run has FID and none has SWD: no quality metric to rank by, so no rank at all.
    assert table.primary is None and [row.rank for row in table.rows] == [None, None]


def test_rows_are_ranked_by_fid_when_every_run_has_it_never_by_artifacts():
    board = aggregate([
        _record("a", "bilinear_conv", score=0.0, fid=50.0, swd=1.0),
        _record("b", "nearest_conv", score=0.0, fid=20.0, swd=9.0),
        _record("d", "deconv", score=9.0, fid=10.0, swd=5.0),
    ])
    table = board.tables[0]
    assert table.primary == "fid"
    assert [(row.rank, row.upsampler) for row in table.rows] == [
        (1, "deconv"), (2, "nearest_conv"), (3, "bilinear_conv")]


def test_swd_ranks_when_fid_is_missing_and_overlapping_seeds_share_a_rank():
    board = aggregate([
        _record("a0", "nearest_conv", 0, swd=2.0), _record("a1", "nearest_conv", 1, swd=2.4),
        _record("b0", "bilinear_conv", 0, swd=2.2), _record("b1", "bilinear_conv", 1, swd=2.5),
        _record("c0", "deconv", 0, swd=6.0, fid=3.0), _record("c1", "deconv", 1, swd=6.1, fid=3.0),
    ])
    table = board.tables[0]
    assert table.primary == "swd"
    assert [(row.rank, row.upsampler) for row in table.rows] == [
        (1, "nearest_conv"), (1, "bilinear_conv"), (3, "deconv")]


def test_a_row_that_did_not_beat_its_baseline_is_marked_and_listed_last(tmp_path):
    untrained = {"kind": "untrained generator", "swd": 8.0}
    board = aggregate([
        _record("a", "nearest_conv", swd=3.0, baseline=untrained),
        _record("b", "bilinear_conv", swd=1.0, baseline={"kind": "untrained generator", "swd": 0.9}),
        _record("c", "deconv", swd=5.0, baseline=untrained),
    ])
    table = board.tables[0]
    assert [(row.rank, row.learned, row.upsampler) for row in table.rows] == [
        (1, True, "nearest_conv"), (2, True, "deconv"), (None, False, "bilinear_conv")]
    out = tmp_path / "board"
    from lightning_checkerboard.leaderboard.render import render

    render(board, out, command="python -m lightning_checkerboard.leaderboard build --from runs --out board")
    page = (out / "gan-photos.md").read_text()
    assert "| did not learn | `bilinear_conv` |" in page
    assert "Ranked by SWD (lower is better)" in page and "Welch" in page
    assert (out / "assets" / f"{table.key}-scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert f"assets/{table.key}-scatter.png" in (out / "index.html").read_text()


def test_the_checkerboard_cell_carries_its_bound():
    record = _record("a", "nearest_conv", score=0.0, swd=1.0)
    record.metrics["checkerboard_upper"] = 0.41
    from lightning_checkerboard.leaderboard.summary import reading

    table = aggregate([record]).tables[0]
    assert reading(table, table.rows[0], "checkerboard").main() == "none detected (< 0.41)"


@pytest.mark.parametrize("status", ["failed", "diverged", "interrupted", "running"])
def test_runs_that_did_not_finish_are_listed_apart_and_never_averaged(status):
    board = aggregate([_record("a", seed=0, score=1.0), _record("b", seed=1, score=3.0),
                       _record("x", seed=2, score=1000.0, status=status)])
    (row,) = board.tables[0].rows
    assert row.n == 2 and row.metrics["checkerboard"].mean == 2.0
    assert [(r.run_id, r.status) for r in board.excluded] == [("x", status)]


def test_the_same_run_seen_twice_counts_once_keeping_the_finished_copy():
    board = aggregate([_record("a", seed=0, score=1.0, status="running"), _record("a", seed=0, score=1.0),
                       _record("a", seed=0, score=1.0), _record("b", seed=1, score=3.0)])
    (row,) = board.tables[0].rows
    assert row.n == 2 and row.metrics["checkerboard"].mean == 2.0
    assert board.duplicates == ["a"] and board.excluded == []


def test_different_protocols_and_budgets_land_in_different_tables():
    other_samples = {**PROTOCOL, "eval_samples": 256}
    other_extractor = {**PROTOCOL, "fid_extractor": "torch-fidelity inception-v3-compat"}
    longer = _record("d", seed=3)
    longer.max_steps = 1000
    board = aggregate([_record("a"), _record("b", protocol=other_samples), _record("c", protocol=other_extractor),
                       longer])
    assert len(board.tables) == 4 and all(len(table.rows) == 1 for table in board.tables)
    assert len({table.key for table in board.tables}) == 4


def test_fid_samples_do_not_split_tables_when_fid_was_not_measured():
    board = aggregate([_record("a", seed=0), _record("b", seed=1, protocol={**PROTOCOL, "fid_samples": 64})])
    assert len(board.tables) == 1 and board.tables[0].rows[0].n == 2


def test_style_transfer_runs_with_pretrained_and_random_loss_networks_never_share_a_table():
    def style(run_id, network, style_weight=5.0):
        record = _record(run_id, protocol={**PROTOCOL, "loss_network": network})
        record.task = "style_transfer"
        record.config = {"batch_size": 4, "base_channels": 32, "style": "gravel", "style_weight": style_weight}
        return record

    board = aggregate([style("a", "vgg16-imagenet"), style("b", "vgg16-imagenet"), style("c", "vgg16-random-seed0"),
                       style("d", "vgg16-imagenet", style_weight=10.0), _record("g")])
    tables = {(t.task, t.protocol.get("loss_network"), t.budget.get("style_weight")): t for t in board.tables}
    assert sorted(tables, key=str) == sorted([("gan", None, None), ("style_transfer", "vgg16-imagenet", 5.0),
                                              ("style_transfer", "vgg16-random-seed0", 5.0),
                                              ("style_transfer", "vgg16-imagenet", 10.0)], key=str)
    assert tables[("style_transfer", "vgg16-imagenet", 5.0)].rows[0].n == 2
    assert "loss_network" not in tables[("gan", None, None)].protocol


# --- schema versions and malformed files --------------------------------------------------------


def _write_payload(folder: Path, payload) -> Path:
    folder.mkdir(parents=True)
    path = folder / "result.json"
    path.write_text(json.dumps(payload))
    return path


def test_newer_older_and_foreign_records_are_rejected_with_a_clear_message(tmp_path):
    write_record(_record("good"), tmp_path / "good")
    current = _record("x").to_dict()
    _write_payload(tmp_path / "newer", {**current, "schema_version": 99})
    _write_payload(tmp_path / "older", {**current, "schema_version": 0})
    _write_payload(tmp_path / "foreign", {"hello": "world"})
    _write_payload(tmp_path / "typed", {**current, "image_size": "32"})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text("{not json")

    found = collect_local(tmp_path)
    assert [c.record.run_id for c in found.runs] == ["good"]
    reasons = {Path(source).parent.name: reason for source, reason in found.rejected}
    assert "newer than this version reads" in reasons["newer"] and "upgrade" in reasons["newer"]
    assert "predates the first published schema" in reasons["older"]
    assert "no integer schema_version" in reasons["foreign"]
    assert "field image_size must be an int from 1 to 65536; got '32'" in reasons["typed"]
    assert "unreadable" in reasons["broken"]

    out = tmp_path / "out"
    build([str(tmp_path)], out)
    assert "## Rejected files" in (out / "README.md").read_text()


def test_pages_list_unfinished_runs_with_their_status_and_message(tmp_path):
    write_record(_record("ok", seed=0), tmp_path / "runs" / "ok")
    write_record(_record("boom", seed=1, status="diverged"), tmp_path / "runs" / "boom")
    build([str(tmp_path / "runs")], tmp_path / "out")
    page = (tmp_path / "out" / "gan-photos.md").read_text()
    assert "### Not averaged (did not finish)" in page and "- `boom` `deconv`, 32 px, seed 1: diverged at step 7 of 100" in page


# --- W&B ----------------------------------------------------------------------------------------


def _wandb_run(**overrides):
    run = SimpleNamespace(
        id="abc123", path=["team", "proj", "abc123"], url="https://wandb.ai/team/proj/runs/abc123",
        state="finished", tags=["task:gan", "dataset:photos", "upsampler:deconv", "stage:deconv"],
        config={"image_size": 32, "upsampler": "deconv", "seed": {"value": 4, "desc": None}, "max_steps": 100,
                "stages": ["deconv"] * 3, "padding": None, "package_version": "0.1.0", "batch_size": 32},
        summary={"final/checkerboard": 3.5, "final/fid": 41.0, "status": "finished", "steps": 100,
                 "throughput/images_per_second": 80.0, "protocol/eval_samples": 128, "protocol/levels": 3,
                 "baseline/swd": 300.0, "baseline/kind": "model before training", "_step": 100},
        created_at="2026-01-01T00:00:00Z", commit="deadbeef",
    )
    for key, value in overrides.items():
        setattr(run, key, value)
    return run


def test_wandb_run_summary_and_config_become_a_result_record():
    record = record_from_wandb_run(_wandb_run())
    assert (record.run_id, record.task, record.dataset, record.status) == ("abc123", "gan", "photos", "finished")
    assert (record.image_size, record.seed, record.steps, record.upsampler_stages) == (32, 4, 100, ["deconv"] * 3)
    assert record.metrics == {"checkerboard": 3.5, "fid": 41.0}
    assert record.protocol == {"eval_samples": 128, "levels": 3}
    assert record.baseline == {"swd": 300.0, "kind": "model before training"}
    assert record.wandb["url"] == "https://wandb.ai/team/proj/runs/abc123"


def test_wandb_runs_killed_without_a_final_status_take_their_state():
    summary = {"final/checkerboard": 3.5}
    assert record_from_wandb_run(_wandb_run(state="crashed", summary=summary)).status == "failed"
    assert record_from_wandb_run(_wandb_run(state="killed", summary=summary)).status == "interrupted"


def test_wandb_runs_without_a_task_tag_are_not_leaderboard_runs():
    with pytest.raises(ValueError, match="no task:<name> tag"):
        record_from_wandb_run(_wandb_run(tags=["other"]))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_wandb_fails_fast_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    start = time.perf_counter()
    with pytest.raises(CollectError, match=r"the W&B server http://127.0.0.1:\d+ refused the connection"):
        collect_wandb("team/proj", timeout=2)
    code = run_cli(leaderboard_main, ["build", "--from", "wandb:team/proj", "--timeout", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: --from wandb:team/proj: the W&B server")
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "index.html").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "/no/such/runs"], "--from '/no/such/runs': no such directory"),
        (["--from", "wandb:just-a-project"], "expected wandb:<entity>/<project>"),
        (["--from", "runs", "--filters", "{bad"], "--filters must be a JSON object; got '{bad'"),
        (["--from", "runs", "--filters", "[1]"], "--filters must be a JSON object; got '[1]'"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    code = run_cli(leaderboard_main, ["build", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_cli_reports_an_empty_source(capsys, tmp_path):
    code = run_cli(leaderboard_main, ["build", "--from", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2 and "no result records found" in capsys.readouterr().err


def test_log_to_wandb_offline_writes_the_files_and_says_nothing_was_logged(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    write_record(_record("a"), tmp_path / "runs" / "a")
    code = run_cli(leaderboard_main, ["build", "--from", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
                                      "--log-to-wandb"])
    assert code == 1
    assert "W&B tables: not logged, W&B is offline" in capsys.readouterr().err
    assert (tmp_path / "out" / "index.html").is_file()


def test_collect_reads_several_sources_and_overlaps_count_once(tmp_path):
    write_record(_record("a", seed=0), tmp_path / "runs" / "one" / "a")
    write_record(_record("b", seed=1), tmp_path / "runs" / "two" / "b")
    found = collect([str(tmp_path / "runs"), str(tmp_path / "runs" / "one")])
    assert len(found.runs) == 3
    board = aggregate(c.record for c in found.runs)
    assert board.tables[0].rows[0].n == 2 and board.duplicates == ["a"]


# --- the page in a real browser (marked ``browser``: run with ``python -m pytest -m browser``) -----

# Debian's packages by default; another Chromium-based browser and its driver through these variables
# (the GitHub workflow points them at the runner's Chrome).
CHROMIUM = os.environ.get("LCB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LCB_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(f"the browser test needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
                    "install them with: apt-get update && apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _viewport(browser, width: int, height: int = 1000) -> None:
    """Make the page's own viewport (window.innerWidth) exactly ``width`` pixels wide."""
    browser.set_window_size(width, height)
    inner = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    browser.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def _severe(browser) -> list:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _names(table) -> list[str]:
    from selenium.webdriver.common.by import By

    return [cell.text for cell in table.find_elements(By.CSS_SELECTOR, "tbody td.name code")]


@pytest.mark.browser
def test_index_html_loads_from_file_without_errors_shows_rows_and_sorts(real_runs, browser, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "leaderboards"
    build([str(real_runs)], out)
    browser.get((out / "index.html").as_uri())
    assert _severe(browser) == []

    table = browser.find_element(By.CSS_SELECTOR, "table.sortable")
    assert sorted(_names(table)) == ["deconv_k3", "nearest_conv"]
    images = browser.find_elements(By.CSS_SELECTOR, "img.samples")
    assert len(images) >= 3 and all(browser.execute_script("return arguments[0].naturalWidth", im) > 0 for im in images)

    upsampler_header = table.find_element(By.CSS_SELECTOR, "thead th.name")
    upsampler_header.find_element(By.TAG_NAME, "button").click()
    assert _names(table) == ["deconv_k3", "nearest_conv"] and upsampler_header.get_attribute("aria-sort") == "ascending"
    upsampler_header.find_element(By.TAG_NAME, "button").click()
    assert _names(table) == ["nearest_conv", "deconv_k3"] and upsampler_header.get_attribute("aria-sort") == "descending"
    assert _severe(browser) == []


def _committed_page(tmp_path_factory) -> Path:
    return Path(__file__).resolve().parents[1] / "leaderboards" / "index.html"


def _built_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "leaderboards"
    build([str(_pattern_runs(tmp_path_factory.mktemp("pattern-runs")))], out)
    return out / "index.html"


def _checkerboard_grid(size: int, tiles: int, amplitude: float, seed: int):
    """A SampleGrid-shaped picture (2-pixel white gutters) of ``tiles``×``tiles`` samples: smooth
    content plus a period-2 checkerboard of ±``amplitude`` levels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    side = 2 + tiles * (size + 2)
    grid = np.full((side, side, 3), 255.0)
    i, j = np.mgrid[0:size, 0:size]
    for r in range(tiles):
        for c in range(tiles):
            base = 128 + 30 * np.sin(2 * np.pi * (i + rng.uniform(0, size)) / size)
            tile = base + amplitude * (-1.0) ** (i + j)
            grid[2 + r * (size + 2):2 + r * (size + 2) + size, 2 + c * (size + 2):2 + c * (size + 2) + size] = tile[..., None]
    return Image.fromarray(grid.clip(0, 255).astype(np.uint8))


def _pattern_runs(root: Path) -> Path:
    """Two upsamplers x two seeds, runs written by hand: deconv's samples carry a ±40-level period-2 pattern."""
    for upsampler, amplitude, swd in (("deconv", 40.0, 9.0), ("nearest_conv", 0.0, 3.0)):
        for seed in (0, 1):
            folder = root / f"{upsampler}-{seed}"
            record = _record(f"{upsampler}{seed}", upsampler, seed, score=amplitude / 2, swd=swd + seed,
                             baseline={"kind": "model before training", "swd": 50.0},
                             throughput={"images_per_second": 100.0 * (seed + 1) + (50 if upsampler == "deconv" else 0)})
            record.metrics["checkerboard_upper"] = amplitude / 2 + 1.0
            write_record(record, folder)
            (folder / "samples").mkdir()
            _checkerboard_grid(32, 4, amplitude, seed).save(folder / "samples" / "final.png")
    return root


@pytest.mark.browser
@pytest.mark.parametrize("make_page", [_committed_page, _built_page], ids=["committed", "built"])
def test_the_page_fits_draws_pictures_at_integer_zoom_and_links_each_to_its_grid(make_page, browser,
                                                                                   tmp_path_factory):
    from PIL import Image
    from selenium.webdriver.common.by import By

    page = make_page(tmp_path_factory)
    for width in (1400, 800):
        _viewport(browser, width)
        browser.get(page.as_uri())
        assert _severe(browser) == []
        # No horizontal scroll of the page: a wide table scrolls inside its own box.
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        images = browser.find_elements(By.CSS_SELECTOR, "img.samples")
        assert images
        for image in images:
            natural = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
            drawn = browser.execute_script(
                "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", image)
            zoom = drawn[0] / natural[0]
            assert natural[0] > 0 and zoom >= 1 and zoom == int(zoom) and drawn[1] == natural[1] * zoom, (natural, drawn)
        # A table wider than the page scrolls in its own box, its rank and upsampler columns held in place.
        for box in browser.find_elements(By.CSS_SELECTOR, "div.scroll:has(table.sortable)"):
            if browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", box):
                name = box.find_element(By.CSS_SELECTOR, "tbody td.name")
                before = browser.execute_script("return arguments[0].getBoundingClientRect().left", name)
                browser.execute_script("arguments[0].scrollLeft = 150", box)
                assert browser.execute_script("return arguments[0].scrollLeft", box) > 0
                assert browser.execute_script("return arguments[0].getBoundingClientRect().left", name) == before
    # Every sample opens its run's full grid, a picture at least as large as the sample, at native size.
    links = browser.find_elements(By.CSS_SELECTOR, "a:has(> img.samples)")
    assert len(links) == len(images)
    for link, image in zip(links, images):
        target = Path(link.get_attribute("href").removeprefix("file://"))
        with Image.open(target) as grid:
            natural = browser.execute_script("return arguments[0].naturalWidth", image)
            assert grid.width >= natural and grid.height >= natural
    # The verdict names the best row(s).
    for section in browser.find_elements(By.CSS_SELECTOR, "section.board"):
        table = section.find_element(By.CSS_SELECTOR, "table.sortable")
        best = [row.find_element(By.CSS_SELECTOR, "td.name code").text
                for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
                if row.find_element(By.CSS_SELECTOR, "td.rank").text == "1"]
        sentence = section.find_element(By.CSS_SELECTOR, "p.verdict").text
        assert best and all(name in sentence.split(". ")[0] for name in best), sentence
    links[0].click()  # a plain link: the browser shows the grid itself
    assert browser.execute_script("return document.images.length") == 1
    assert browser.execute_script("return document.images[0].naturalWidth") > 0


@pytest.mark.browser
def test_headers_sort_by_keyboard_in_the_better_direction_and_the_ranking_comes_back(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out = tmp_path / "leaderboards"
    build([str(_pattern_runs(tmp_path / "runs"))], out)
    _viewport(browser, 1400)
    browser.get((out / "index.html").as_uri())
    table = browser.find_element(By.CSS_SELECTOR, "table.sortable")
    ranked = _names(table)
    assert ranked == ["nearest_conv", "deconv"]
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    speed = next(h for h in headers if h.text.startswith("images/s"))
    button = speed.find_element(By.TAG_NAME, "button")
    button.send_keys(Keys.ENTER)  # a header is a button: reachable and pressed from the keyboard
    assert speed.get_attribute("aria-sort") == "descending"  # images/s: higher is better, so fastest first
    assert _names(table) == ["deconv", "nearest_conv"]
    button.send_keys(Keys.SPACE)
    assert speed.get_attribute("aria-sort") == "ascending" and _names(table) == ["nearest_conv", "deconv"]
    checker = next(h for h in headers if h.text.startswith("checkerboard"))
    checker.find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
    assert checker.get_attribute("aria-sort") == "ascending" and speed.get_attribute("aria-sort") == "none"
    browser.find_element(By.CSS_SELECTOR, "button.reset-order").send_keys(Keys.ENTER)
    assert _names(table) == ranked and checker.get_attribute("aria-sort") == "none"
    pictures = next(h for h in headers if "strongest" in h.text)
    assert pictures.get_attribute("aria-sort") is None and not pictures.find_elements(By.TAG_NAME, "button")
    # Extra columns wait behind the toggle.
    hidden = table.find_elements(By.CSS_SELECTOR, "thead th.more")
    assert hidden and not any(h.is_displayed() for h in hidden)
    toggle = browser.find_element(By.CSS_SELECTOR, "button.toggle-more")
    toggle.send_keys(Keys.ENTER)
    assert all(h.is_displayed() for h in hidden) and toggle.get_attribute("aria-expanded") == "true"
    # The row's marker is its upsampler's colour, the colour of its points in the scatter PNG.
    from lightning_checkerboard.leaderboard.palette import style_of

    for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        name = row.find_element(By.CSS_SELECTOR, "td.name code").text
        fill = browser.execute_script("return getComputedStyle(arguments[0]).fill",
                                      row.find_element(By.CSS_SELECTOR, "td.name svg path"))
        assert fill == "rgb({}, {}, {})".format(*style_of(name).rgb)
    assert _severe(browser) == []


@pytest.mark.browser
def test_a_40_level_period_2_pattern_is_visible_on_the_screen(browser, tmp_path):
    """The old page drew a 138-px grid in 69 px: every period-2 pattern became flat grey."""
    import io

    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By

    out = tmp_path / "leaderboards"
    build([str(_pattern_runs(tmp_path / "runs"))], out)
    _viewport(browser, 1400)
    browser.get((out / "index.html").as_uri())
    assert browser.execute_script("return window.devicePixelRatio") == 1
    checked = 0
    for image in browser.find_elements(By.CSS_SELECTOR, "img.samples"):
        if "deconv" not in image.find_element(By.XPATH, "ancestor::tr").text:
            continue
        source = Path(image.get_attribute("src").removeprefix("file://"))
        picture = np.asarray(Image.open(source).convert("L"), dtype=float)
        zoom = int(browser.execute_script("return arguments[0].getBoundingClientRect().width", image)) // picture.shape[1]
        browser.execute_script("arguments[0].scrollIntoView()", image)
        shot = np.asarray(Image.open(io.BytesIO(image.screenshot_as_png)).convert("L"), dtype=float)
        assert shot.shape == (picture.shape[0] * zoom, picture.shape[1] * zoom)
        # The screen's value at the centre of each of the picture's pixels, then the period-2 energy of both.
        seen = shot[zoom // 2::zoom, zoom // 2::zoom]
        i, j = np.indices(picture.shape)
        energy = lambda a: float((a * (-1.0) ** (i + j)).mean()) ** 2  # noqa: E731
        assert energy(picture) > 30 ** 2  # the tile does carry the pattern (±40 levels)
        assert energy(seen) >= 0.5 * energy(picture)
        checked += 1
    assert checked >= 3  # both seeds' tiles and the 4x crop


@pytest.mark.browser
def test_a_page_built_from_hostile_records_runs_no_script_of_theirs(browser, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "leaderboards"
    build([str(write_hostile_records(tmp_path / "runs"))], out)
    browser.get((out / "index.html").as_uri())
    # Injected markup would run at load (script, onerror, onload); hover and click every cell as well.
    cells = browser.find_elements(By.CSS_SELECTOR, "td, th, h2, code, img")
    for cell in cells:
        browser.execute_script(
            "for (const t of ['mouseover', 'focus']) arguments[0].dispatchEvent(new Event(t));", cell)
    assert browser.title == "lightning-checkerboard leaderboard"
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.scripts.length") == 1  # the page's own sorting script
    handlers = browser.execute_script(
        "return Array.from(document.querySelectorAll('*')).flatMap("
        "e => Array.from(e.attributes).map(a => a.name)).filter(n => n.startsWith('on'))")
    assert handlers == []
    links = [a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")]
    folder = (out / "assets").as_uri() + "/"
    assert links and all(link.startswith(("https://", folder)) for link in links)  # W&B, or the run's pictures
    body = browser.find_element(By.TAG_NAME, "body").text
    assert SCRIPT in body and IMAGE in body  # the names are shown, as text
    # Escaping kept them inert: the page's script policy never had to refuse anything.
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []


# --- ranking real runs, one of which cannot learn ------------------------------------------------


@pytest.fixture(scope="module")
def learning_and_frozen_runs(tmp_path_factory) -> Path:
    """Tiny real GAN runs on digits: two seeds that train, two whose generator cannot move (lr_g 1e-12)."""
    gan = load_recipe("gan")
    runs = tmp_path_factory.mktemp("ranked-runs")
    for name, lr_g in (("learns", "2e-3"), ("frozen", "1e-12")):
        for seed in (0, 1):
            code = gan.run_cli(gan.main, [
                "--upsampler", "nearest_conv", "--seed", str(seed), "--dataset", "digits", "--image-size", "16",
                "--max-steps", "40", "--batch-size", "32", "--eval-every", "0", "--eval-samples", "64",
                "--fid", "off", "--logger", "none", "--gen-channels", "16", "--disc-channels", "16",
                "--lr-g", lr_g, "--lr-d", "2e-3", "--output-dir", str(runs / name),
            ])
            assert code == 0
    return runs


def test_real_runs_are_ranked_by_swd_and_a_generator_that_cannot_learn_is_marked(learning_and_frozen_runs, tmp_path):
    found = collect_local(learning_and_frozen_runs)
    records = [run.record for run in found.runs]
    assert len(records) == 4
    for record in records:
        assert record.baseline["kind"] == "model before training" and record.baseline["swd"] > 0
        assert record.metrics["checkerboard_upper"] >= record.metrics["checkerboard"]
    frozen = [r for r in records if r.config["lr_g"] < 1e-6]
    # the generator that cannot move ends exactly where it started: no better than its baseline
    assert all(r.metrics["swd"] == pytest.approx(r.baseline["swd"], rel=1e-6) for r in frozen)
    # budgets differ (lr_g), so each configuration is its own table; rank them together by merging budgets
    for record in records:
        record.config["lr_g"] = 2e-3
        record.upsampler_options = {"lr_g": "frozen"} if record in frozen else {}
    (table,) = aggregate(records).tables
    assert table.primary == "swd"
    learned, stuck = table.rows
    assert learned.learned is True and learned.rank == 1 and learned.metrics["swd"].mean < learned.baseline.mean
    assert stuck.learned is False and stuck.rank is None
