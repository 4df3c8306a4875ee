"""Records are untrusted: rejected with a reason, never written outside ``--out``, never executed."""

from __future__ import annotations

import csv
import json
import math
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _hostile import (
    ACCEPTED,
    FORMULA,
    IMAGE,
    REJECTED,
    SCRIPT,
    TRAVERSAL,
    sample_grid_png,
    valid_payload,
    write_hostile_records,
)
from lightning_checkerboard._paths import OutsideFolderError, path_inside, slug
from lightning_checkerboard.leaderboard import build, collect_local, record_from_wandb_run
from lightning_checkerboard.leaderboard.collect import _from_wandb_runs
from lightning_checkerboard.leaderboard.render import OutputFolderError
from lightning_checkerboard.records import RecordError
from lightning_checkerboard.training import RUN_DIR_ENV, ConfigError, make_run_directory


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def sandbox(tmp_path) -> Path:
    """``tmp_path`` with hostile records in ``runs/`` and ``out`` three folders down, so ``../../`` lands
    inside the sandbox, where the tests can see it."""
    write_hostile_records(tmp_path / "runs")
    (tmp_path / "a" / "b").mkdir(parents=True)
    return tmp_path


# --- validation on read -------------------------------------------------------------------------


def test_every_hostile_record_is_rejected_with_its_reason_and_the_rest_are_read(sandbox):
    found = collect_local(sandbox / "runs")
    reasons = {Path(source).parent.name: reason for source, reason in found.rejected}
    for name, (_, phrase) in REJECTED.items():
        assert phrase in reasons.pop(name), name
    assert "10000" in reasons["ten-megabytes"] and "more than a record may hold" in reasons.pop("ten-megabytes")
    assert "unreadable (nested too deep)" in reasons.pop("nested-deep")
    assert reasons == {}
    assert all("\n" not in reason and len(reason) < 600 for _, reason in found.rejected)  # one short line each
    assert sorted(c.record.run_id for c in found.runs) == sorted(payload["run_id"] for payload in ACCEPTED.values())


def test_non_finite_numbers_read_as_null_and_the_record_is_kept(sandbox):
    (record,) = [c.record for c in collect_local(sandbox / "runs" / "non-finite").runs]
    assert record.metrics == {"checkerboard": None, "fid": None}
    assert record.throughput == {"images_per_second": None}


# --- paths --------------------------------------------------------------------------------------


def test_a_build_over_hostile_records_writes_nothing_outside_out(sandbox):
    out = sandbox / "a" / "b" / "out"
    before = _files(sandbox)
    written = build([str(sandbox / "runs")], out)
    assert {p for p in _files(sandbox) if not p.startswith("a/b/out")} == before
    assert all(path.resolve().is_relative_to(out.resolve()) for path in written)
    # Accepted records with pictures got them, under their own (safe) run ids.
    assert {p.parent.name for p in (out / "assets").rglob("final.png")} >= {"markup", "traversal", "formula"}


def test_a_stale_manifest_or_an_assets_link_cannot_delete_or_write_outside_out(tmp_path):
    victim = tmp_path / "victim.md"
    victim.write_text("keep me")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.png").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "leaderboard.json").write_text(json.dumps({"files": ["../victim.md", str(victim), 3]}))
    (out / "assets").symlink_to(elsewhere, target_is_directory=True)
    runs = write_hostile_records(tmp_path / "runs")
    with pytest.raises(OutputFolderError, match="holds other files and no leaderboard"):
        build([str(runs)], out)  # a stray leaderboard.json does not make a leaderboard
    with pytest.raises(OutsideFolderError, match="lies outside"):
        build([str(runs)], out, force=True)  # the scatter plot would land in the linked folder
    assert victim.read_text() == "keep me"
    assert _files(elsewhere) == {"keep.png"}
    assert (out / "assets").is_symlink()  # not the build's to delete


def test_path_inside_refuses_traversal_absolute_paths_links_and_the_root_itself(tmp_path):
    assert path_inside(tmp_path, "a", "b.md") == tmp_path / "a" / "b.md"
    (tmp_path / "link").symlink_to("/", target_is_directory=True)
    for parts in (("..", "x"), ("a", "../../x"), ("/etc/passwd",), ("link", "etc"), (".",), ("a", "..")):
        with pytest.raises(OutsideFolderError, match="lies outside"):
            path_inside(tmp_path, *parts)


@pytest.mark.parametrize("name", ["..", ".", "../../..", "/", "", "...."])
def test_slug_is_never_a_traversal_or_empty(name):
    part = slug(name)
    assert part and "/" not in part and part not in (".", "..") and not part.startswith(".")


def test_leaderboard_page_names_keep_their_rule_dots_kept_plus_replaced_never_cut():
    from lightning_checkerboard.leaderboard.aggregate import page_stem

    assert page_stem("../../escaped", "a+b/.c.") == "..-..-escaped-a-b-.c."
    assert page_stem("gan", "d" * 300) == "gan-" + "d" * 300


@pytest.mark.parametrize(
    ("dataset", "upsampler"),
    [(f"folder:{TRAVERSAL}", "deconv"), ("hf:../../../owner/repo", "nearest_conv"), ("..", ".."),
     ("photos", "/etc/cron.d/x"), ("folder:/abs/path", "../../../../" * 20)],
)
def test_run_directories_stay_inside_the_output_folder(tmp_path, monkeypatch, dataset, upsampler):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    runs = tmp_path / "runs"
    run_dir = make_run_directory(runs, "gan", dataset, upsampler, 0)
    monkeypatch.delenv(RUN_DIR_ENV)
    assert run_dir.is_dir() and run_dir.resolve().is_relative_to(runs.resolve())
    assert run_dir.relative_to(runs).parts[0] == "gan" and len(run_dir.relative_to(runs).parts) == 4
    assert all(p == "runs" or p.startswith("runs/") for p in _files(tmp_path))


def test_a_run_directory_that_a_link_would_send_elsewhere_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "gan").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ConfigError, match=r"^output_dir: the run directory .*gan/photos/deconv lies outside"):
        make_run_directory(tmp_path / "runs", "gan", "photos", "deconv", 0)
    assert _files(tmp_path / "elsewhere") == set()


# --- what reaches the pages ---------------------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_page_holds_record_markup_as_text_only(sandbox):
    out = sandbox / "a" / "b" / "out"
    build([str(sandbox / "runs")], out)
    page = _Elements()
    page.feed((out / "index.html").read_text())
    allowed = {"html", "head", "meta", "link", "title", "style", "body", "h1", "h2", "p", "br", "code", "table",
               "thead", "tbody", "tr", "th", "td", "img", "a", "script", "section", "div", "span", "button",
               "details", "summary", "dl", "dt", "dd", "svg", "path"}
    assert {tag for tag, _ in page.tags} <= allowed
    assert [tag for tag, _ in page.tags].count("script") == 1  # the page's own sorting script
    assert not [(tag, name) for tag, attrs in page.tags for name in attrs if name.startswith("on")]
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    # W&B links, and the run's own pictures copied into the leaderboard folder
    assert hrefs and all(href.startswith("https://") or re.fullmatch(r"assets/[A-Za-z0-9_-]+/\w+\.png", href)
                         for href in hrefs)
    assert all(attrs["src"].startswith("assets/") for tag, attrs in page.tags if tag == "img")
    text = "".join(page.text)
    for hostile in (SCRIPT, IMAGE, TRAVERSAL):
        assert hostile in text  # shown to the reader, as text


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_markdown_tables_keep_their_shape_and_hold_no_html_or_links(sandbox):
    out = sandbox / "a" / "b" / "out"
    build([str(sandbox / "runs")], out)
    pages = sorted(out.glob("*.md"))
    assert len(pages) >= 5
    for page in pages:
        lines = page.read_text().splitlines()
        for index, line in enumerate(lines):
            if line.startswith("|---"):
                width = len(_cells(lines[index - 1]))
                rows = lines[index + 1:]
                rows = rows[:next((i for i, row in enumerate(rows) if not row.startswith("|")), len(rows))]
                assert all(len(_cells(row)) == width for row in rows), page.name
        text = re.sub(r"(`+) .*? \1|`[^`]*`", "", page.read_text())  # raw HTML in a code span is shown as code
        assert not re.search(r"(?<!\\)<(script|img|svg)", text), page.name
        assert not re.search(r"(?<!\\)\]\(javascript", text), page.name


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised_and_numbers_stay_numbers(sandbox):
    out = sandbox / "a" / "b" / "out"
    build([str(sandbox / "runs")], out)
    rows = list(csv.DictReader((out / "leaderboard.csv").open(newline="")))
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")) or re.fullmatch(r"-\d+(\.\d+)?", value)
    formula = next(row for row in rows if row["run_ids"] == "formula")
    assert formula["upsampler"] == "'" + FORMULA and formula["dataset"].startswith("'@SUM")
    negative = next(row for row in rows if row["run_ids"] == "negative")
    assert negative["seeds"] == "-3" and float(negative["checkerboard_mean"]) == 1.0


# --- W&B goes through the same checks -----------------------------------------------------------


def _wandb_run(**overrides):
    run = SimpleNamespace(
        id="abc123", path=["team", "proj", "abc123"], url="https://wandb.ai/team/proj/runs/abc123", state="finished",
        tags=["task:gan", "dataset:photos"], commit=None, created_at="2026-01-01T00:00:00Z",
        config={"image_size": 32, "upsampler": "deconv", "seed": 0, "max_steps": 10, "stages": ["deconv"] * 3},
        summary={"final/checkerboard": 1.0, "status": "finished", "steps": 10},
    )
    for key, value in overrides.items():
        setattr(run, key, value)
    return run


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"id": TRAVERSAL}, "field run_id must be"),
        ({"url": "javascript:alert(1)"}, "field wandb.url must be an http(s) URL"),
        ({"tags": ["task:gan\nx"]}, "field task must be"),
        ({"config": {"image_size": "32", "upsampler": "deconv", "seed": 0, "max_steps": 10}}, "field image_size"),
        ({"config": {"image_size": 32, "upsampler": SCRIPT * 100, "seed": 0, "max_steps": 10}}, "field upsampler"),
        ({"summary": {"final/checkerboard": "1.0", "status": "finished"}}, "field metrics.checkerboard"),
        ({"summary": {"steps": "ten", "status": "finished"}}, "field steps"),
    ],
)
def test_wandb_runs_are_checked_like_local_records(overrides, phrase):
    with pytest.raises(RecordError, match=re.escape(phrase)):
        record_from_wandb_run(_wandb_run(**overrides))


def test_wandb_non_finite_summary_values_read_as_null():
    record = record_from_wandb_run(_wandb_run(summary={"final/checkerboard": math.nan, "final/fid": math.inf}))
    assert record.metrics == {"checkerboard": None, "fid": None}


_ANYTHING = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from([TRAVERSAL, SCRIPT, "javascript:x", "x" * 700, "\n", "/etc/passwd"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={
    "id": _ANYTHING, "url": _ANYTHING, "tags": _ANYTHING, "state": _ANYTHING, "commit": _ANYTHING,
    "config": st.dictionaries(st.sampled_from(["image_size", "upsampler", "seed", "max_steps", "stages", "padding"]),
                              _ANYTHING),
    "summary": st.dictionaries(st.sampled_from(["final/fid", "status", "steps", "protocol/levels", "throughput/x"]),
                               _ANYTHING),
}), max_size=4))
def test_any_wandb_run_is_read_or_rejected_never_raised(overrides):
    found = _from_wandb_runs([_wandb_run(**fields) for fields in overrides], "team/proj")
    assert len(found.runs) + len(found.rejected) == len(overrides)


# --- property: any records, nothing outside --out ---------------------------------------------

_FIELD_VALUES = {
    "run_id": st.sampled_from([TRAVERSAL, "../x", "/tmp/x", "ok-1", "a" * 200, ".", ""]) | st.text(max_size=12),
    "task": st.sampled_from([TRAVERSAL, "..", "gan", SCRIPT, "/abs", "t" * 512]) | _ANYTHING,
    "dataset": st.sampled_from([f"folder:{TRAVERSAL}", "hf:../../o/r", "..", "photos", "ü" * 512]) | _ANYTHING,
    "upsampler": st.sampled_from([TRAVERSAL, "..", FORMULA, IMAGE]) | _ANYTHING,
    "upsampler_stages": _ANYTHING,
    "upsampler_options": _ANYTHING,
    "status": st.sampled_from(["finished", "failed", "running", "done"]) | _ANYTHING,
    "image_size": st.integers(-5, 100) | _ANYTHING,
    "seed": _ANYTHING,
    "metrics": st.dictionaries(st.sampled_from(["checkerboard", "fid"]), _ANYTHING) | _ANYTHING,
    "config": _ANYTHING,
    "wandb": _ANYTHING,
    "message": _ANYTHING,
    "schema_version": st.sampled_from([1, 2, 0]) | _ANYTHING,
}


_GRID = sample_grid_png()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({}, optional=_FIELD_VALUES), min_size=1, max_size=4))
def test_a_build_over_any_records_stays_inside_out_and_never_raises(overrides):
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        for index, fields in enumerate(overrides):
            folder = sandbox / "runs" / f"r{index}"
            (folder / "samples").mkdir(parents=True)
            (folder / "samples" / "final.png").write_bytes(_GRID)
            payload = {**valid_payload(f"r{index}"), **fields}
            (folder / "result.json").write_text(json.dumps(payload, default=str))
        (sandbox / "a" / "b").mkdir(parents=True)
        out = sandbox / "a" / "b" / "out"
        before = _files(sandbox)
        written = build([str(sandbox / "runs")], out)  # any exception fails the property
        assert {p for p in _files(sandbox) if not p.startswith("a/b/out")} == before
        assert all(path.resolve().is_relative_to(out.resolve()) for path in written)
        assert (out / "index.html").is_file() and (out / "README.md").is_file()


def test_a_page_that_links_outside_out_ends_the_cli_with_one_line(tmp_path, capsys):
    from lightning_checkerboard.cli import run_cli
    from lightning_checkerboard.leaderboard.__main__ import main

    victim = tmp_path / "victim.md"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").symlink_to(victim)
    runs = write_hostile_records(tmp_path / "runs")
    assert run_cli(main, ["build", "--from", str(runs), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "holds other files and no leaderboard" in err
    assert run_cli(main, ["build", "--from", str(runs), "--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "README.md lies outside" in err
    assert victim.read_text() == "keep me"
