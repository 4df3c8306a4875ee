"""Run folders that are not what they seem: links out, FIFOs, devices, loops, bombs, hostile names, and an
output folder that holds someone's files. The build reads nothing from outside its ``--from`` roots,
never waits forever, writes and deletes only its own files inside ``--out``, and always finishes
with the runs it could read."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _hostile import (
    OUTSIDE_COLOUR,
    OUTSIDE_MARKER,
    plant_outside,
    png_claiming,
    sample_grid_png,
    valid_payload,
)
from lightning_checkerboard.cli import run_cli
from lightning_checkerboard.leaderboard import build, collect_local
from lightning_checkerboard.leaderboard.__main__ import main as leaderboard_main
from lightning_checkerboard.leaderboard.pipeline import build_leaderboard
from lightning_checkerboard.leaderboard.plots import quality_artifact_scatter
from lightning_checkerboard.leaderboard.render import MANIFEST
from lightning_checkerboard.records import RecordError, read_record

REPO = Path(__file__).resolve().parents[1]
GRID = sample_grid_png()


def _within(seconds: float, function, *args, **kwargs):
    """``function(*args, **kwargs)``, failing the test if it has not returned after ``seconds``."""
    result: dict = {}

    def target():
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as err:  # handed to the test thread
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(function, '__name__', function)} still running after {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


def _run(folder: Path, run_id: str, picture: bool = True, **overrides) -> Path:
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(valid_payload(run_id, **overrides)))
    if picture:
        (folder / "samples" / "final.png").write_bytes(GRID)
    return folder


def _snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every entry below ``root`` (links not followed): its kind, and its bytes' hash or its link target."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        if skip is not None and Path(folder) == skip.parent:
            dirs[:] = [d for d in dirs if Path(folder, d) != skip]
            files = [f for f in files if Path(folder, f) != skip]
        for name in dirs + files:
            path = Path(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                entries[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                entries[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                entries[str(path)] = (stat.S_IFMT(mode),)
    return entries


def _assert_nothing_from_outside(out: Path) -> None:
    """No file under ``out`` holds the marker bytes or shows the outside pictures' colour."""
    from PIL import Image

    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert OUTSIDE_MARKER not in data, path
            if path.suffix == ".png" and not path.name.endswith("-scatter.png"):
                with Image.open(path) as image:
                    colours = image.convert("RGB").getcolors(1 << 16) or []
                assert all(max(abs(a - b) for a, b in zip(c, OUTSIDE_COLOUR)) > 8 for _, c in colours), path


def _reasons(out: Path) -> str:
    return (out / "README.md").read_text()


@pytest.fixture
def sandbox(tmp_path) -> Path:
    """``runs/`` with one ordinary run (``good``), ``outside/`` with planted files, ``out`` still absent."""
    _run(tmp_path / "runs" / "good", "good")
    plant_outside(tmp_path / "outside")
    return tmp_path


# --- links that leave a run directory or the --from root --------------------------------------------


@pytest.mark.parametrize("link", ["result.json", "samples", "samples/final.png", "spectra", "spectra/step-1.png"])
def test_a_run_whose_files_link_out_of_it_is_rejected_with_the_reason_and_nothing_outside_is_published(
        sandbox, link):
    run = _run(sandbox / "runs" / "bad", "bad")
    target = sandbox / "outside" / link
    shutil.rmtree(run / "samples")
    if "/" in link:
        (run / link.split("/")[0]).mkdir()
    elif link == "result.json":
        (run / "result.json").unlink()
    (run / link).symlink_to(target, target_is_directory=target.is_dir())
    out = sandbox / "out"
    built = build_leaderboard([str(sandbox / "runs")], out)
    assert built.runs == 1  # "good" only: neither "bad" nor the outside record is ranked
    ((source, reason),) = built.rejected
    assert source == str(run / "result.json") and f"{run / link}: a link that leads outside" in reason
    index = _reasons(out)
    assert "## Rejected files" in index and "a link that leads outside" in index
    payload = json.loads((out / "leaderboard.json").read_text())
    assert [r for t in payload["tables"] for row in t["rows"] for r in row["run_ids"]] == ["good"]
    _assert_nothing_from_outside(out)


def test_a_record_linked_from_a_sibling_run_is_not_ranked_twice(sandbox):
    run = sandbox / "runs" / "copy"
    run.mkdir()
    (run / "result.json").symlink_to(sandbox / "runs" / "good" / "result.json")
    found = collect_local(sandbox / "runs")
    assert [c.record.run_id for c in found.runs] == ["good"]
    assert "a link that leads outside" in dict(found.rejected)[str(run / "result.json")]


def test_folder_links_are_never_followed_out_of_the_root_nor_round_a_loop(sandbox):
    runs = sandbox / "runs"
    (runs / "elsewhere").symlink_to(sandbox / "outside", target_is_directory=True)
    (runs / "good" / "loop").symlink_to(runs, target_is_directory=True)
    (runs / "a").symlink_to(runs / "b")
    (runs / "b").symlink_to(runs / "a")
    (runs / "again").symlink_to(runs / "good", target_is_directory=True)  # inside: walked as itself, once
    found = _within(30, collect_local, runs)
    assert [c.record.run_id for c in found.runs] == ["good"]
    reasons = dict(found.rejected)
    assert "a link that leads outside" in reasons[str(runs / "elsewhere")] and "not searched" in reasons[
        str(runs / "elsewhere")]
    assert "cannot be resolved" in reasons[str(runs / "a")] and "cannot be resolved" in reasons[str(runs / "b")]
    assert str(runs / "again") not in reasons and str(runs / "good" / "loop") not in reasons


# --- files that are not regular files ---------------------------------------------------------------


def test_a_fifo_record_is_refused_at_once(sandbox):
    (sandbox / "runs" / "fifo").mkdir()
    os.mkfifo(sandbox / "runs" / "fifo" / "result.json")
    built = _within(30, build_leaderboard, [str(sandbox / "runs")], sandbox / "out")
    assert built.runs == 1
    assert "a FIFO, not a regular file" in dict(built.rejected)[str(sandbox / "runs" / "fifo" / "result.json")]


@pytest.mark.parametrize("picture", ["samples/final.png", "spectra/step-1.png"])
def test_a_fifo_picture_is_skipped_and_counted_and_the_run_is_ranked(sandbox, picture):
    run = sandbox / "runs" / "good"
    (run / picture).parent.mkdir(exist_ok=True)
    if (run / picture).exists():
        (run / picture).unlink()
    os.mkfifo(run / picture)
    built = _within(30, build_leaderboard, [str(sandbox / "runs")], sandbox / "out")
    assert built.runs == 1
    assert "a FIFO, not a regular file" in dict(built.rejected)[str(run / picture)]
    assert "Picture skipped." in _reasons(sandbox / "out")


def test_a_folder_named_result_json_is_rejected(sandbox):
    (sandbox / "runs" / "odd" / "result.json").mkdir(parents=True)
    found = collect_local(sandbox / "runs")
    assert "a folder, not a regular file" in dict(found.rejected)[str(sandbox / "runs" / "odd" / "result.json")]


def test_a_device_record_is_refused_and_the_read_is_bounded_by_bytes_read_not_by_the_reported_size(
        tmp_path, monkeypatch):
    from lightning_checkerboard import records

    (tmp_path / "result.json").symlink_to("/dev/zero")
    with pytest.raises(RecordError, match="a character device, not a regular file"):
        _within(30, read_record, tmp_path, root="/")
    # /proc files are regular files that report a size of 0 and hold more: only a bounded read notices.
    assert os.stat("/proc/self/maps").st_size == 0 and len(Path("/proc/self/maps").read_bytes()) > 100
    (tmp_path / "result.json").unlink()
    (tmp_path / "result.json").symlink_to("/proc/self/maps")
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 100)
    with pytest.raises(RecordError, match=r"more than 100 bytes, more than a record may hold"):
        read_record(tmp_path, root="/")


def test_a_from_that_is_a_fifo_is_one_line_exit_2(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe")
    code = _within(30, run_cli, leaderboard_main, ["build", "--from", str(tmp_path / "pipe"), "--out",
                                                   str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a FIFO, not a runs directory" in err


# --- pictures and names that used to end the build --------------------------------------------------


@pytest.mark.parametrize(("picture", "reason"), [
    (png_claiming(100_000, 100_000), "a picture too large to decode"),  # Pillow's DecompressionBombError
    (png_claiming(7_000, 7_000), "7000×7000 pixels, more than the 40000000 allowed"),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, "not a picture that can be read"),
    (sample_grid_png()[:60], "not a picture that can be decoded"),  # a header, then the data cut short
])
def test_a_bad_sample_grid_is_skipped_and_counted_and_the_build_finishes(sandbox, picture, reason):
    _run(sandbox / "runs" / "bomb", "bomb", seed=1)
    (sandbox / "runs" / "bomb" / "samples" / "final.png").write_bytes(picture)
    built = _within(60, build_leaderboard, [str(sandbox / "runs")], sandbox / "out")
    assert built.runs == 2
    assert reason in dict(built.rejected)[str(sandbox / "runs" / "bomb" / "samples" / "final.png")]
    assets = json.loads((sandbox / "out" / "leaderboard.json").read_text())["assets"]
    assert assets["good"] == {"samples": "assets/good/final.png"} and assets["bomb"] == {}
    assert not (sandbox / "out" / "assets" / "bomb").exists()


@pytest.mark.parametrize("name", ["$…{$", r"$\frac{$", "a$^$b", "$$", r"\$x{"])
def test_mathtext_in_task_and_upsampler_names_is_drawn_as_text(sandbox, name):
    _run(sandbox / "runs" / "math", "math", task=name, upsampler=name, upsampler_stages=["deconv"])
    _run(sandbox / "runs" / "math2", "math2", task=name, upsampler="b" + name, upsampler_stages=["deconv"])
    built = _within(60, build_leaderboard, [str(sandbox / "runs")], sandbox / "out")
    assert built.runs == 3 and built.rejected == []
    scatters = sorted((sandbox / "out" / "assets").glob("*-scatter.png"))
    assert len(scatters) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in scatters)


def test_the_scatter_draws_no_label_through_tex_even_when_the_settings_ask_for_it(monkeypatch):
    import matplotlib
    import matplotlib.texmanager

    def no_latex(*args, **kwargs):
        raise AssertionError("latex was run on a label")

    monkeypatch.setattr(matplotlib.texmanager.TexManager, "make_dvi", no_latex)
    monkeypatch.setattr(matplotlib.texmanager.TexManager, "make_png", no_latex)
    with matplotlib.rc_context({"text.usetex": True}):
        png = quality_artifact_scatter([(r"\input{/etc/passwd}$", [1.0, 2.0], [3.0, 4.0], True)],
                                       r"\write18{x}", title="$…{$")
    assert png[:4] == b"\x89PNG"


# --- the output folder: only the leaderboard's own files ------------------------------------------


def test_a_folder_of_someone_elses_files_is_refused_in_one_line_and_left_as_it_was(sandbox, capsys):
    out = sandbox / "site"
    (out / "assets").mkdir(parents=True)
    for name in ("README.md", "index.html", "leaderboard.csv", "assets/logo.png"):
        (out / name).write_text(f"mine: {name}")
    before = _snapshot(out)
    code = run_cli(leaderboard_main, ["build", "--from", str(sandbox / "runs"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "holds other files and no leaderboard" in err and "--force" in err
    assert _snapshot(out) == before

    assert run_cli(leaderboard_main, ["build", "--from", str(sandbox / "runs"), "--out", str(out), "--force"]) == 0
    assert (out / "assets" / "logo.png").read_text() == "mine: assets/logo.png"  # never the build's to delete
    assert "# Leaderboards" in (out / "README.md").read_text()  # --force replaces files of the same names
    manifest = json.loads((out / MANIFEST).read_text())
    assert "assets/logo.png" not in manifest["files"] and "README.md" in manifest["files"]


def test_a_rebuild_deletes_only_the_files_the_manifest_lists_and_only_regular_files_inside(sandbox):
    runs, out = sandbox / "runs", sandbox / "out"
    build([str(runs)], out)
    (out / "notes.md").write_text("mine")
    (out / "assets" / "logo.png").write_text("mine")
    (out / "leaderboard.json").write_text(json.dumps({"files": ["notes.md", "../outside/secret.txt"]}))
    victim = sandbox / "outside" / "secret.txt"
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] += ["../outside/secret.txt", str(victim), "assets", "linked.md", "notes.md/../notes.md"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "linked.md").symlink_to(victim)
    # The run's dataset changes: its old page is stale and goes; everything else stays.
    _run(runs / "good", "good", dataset="cifar10")
    build([str(runs)], out)
    assert not (out / "gan-photos.md").exists() and (out / "gan-cifar10.md").is_file()
    assert (out / "notes.md").read_text() == "mine" and (out / "assets" / "logo.png").read_text() == "mine"
    assert (out / "linked.md").is_symlink() and victim.read_bytes() == OUTSIDE_MARKER
    assert set(json.loads((out / MANIFEST).read_text())["files"]) == {
        "README.md", "index.html", "leaderboard.csv", "leaderboard.json", "gan-cifar10.md",
        "assets/good/final.png", *(p.relative_to(out).as_posix() for p in (out / "assets").glob("*-scatter.png"))}


def test_a_leaderboard_of_other_runs_is_never_dropped_silently(sandbox, capsys):
    runs, out = sandbox / "runs", sandbox / "out"
    build([str(runs)], out)
    _run(sandbox / "more" / "extra", "extra", seed=1)
    code = run_cli(leaderboard_main, ["build", "--from", str(sandbox / "more"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "1 run(s) that this build did not collect (good)" in err
    assert "good" in (out / "leaderboard.csv").read_text()  # untouched
    # With the earlier runs' folder as well, it grows; with --force it is replaced.
    assert run_cli(leaderboard_main, ["build", "--from", str(runs), "--from", str(sandbox / "more"),
                                      "--out", str(out)]) == 0
    assert sorted(json.loads((out / MANIFEST).read_text())["run_ids"]) == ["extra", "good"]
    assert run_cli(leaderboard_main, ["build", "--from", str(sandbox / "more"), "--out", str(out), "--force"]) == 0
    assert json.loads((out / MANIFEST).read_text())["run_ids"] == ["extra"]
    assert not (out / "assets" / "good").exists()


def test_a_recipe_that_builds_into_a_leaderboard_of_other_runs_ends_with_one_line(sandbox, capsys):
    build([str(sandbox / "runs")], sandbox / "out")
    _run(sandbox / "more" / "extra", "extra")
    assert run_cli(lambda argv: len(build([str(sandbox / "more")], sandbox / "out")), []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --out ") and "did not collect (good)" in err


def test_a_file_in_the_way_that_the_leaderboard_did_not_write_is_refused(sandbox, capsys):
    runs, out = sandbox / "runs", sandbox / "out"
    build([str(runs)], out)
    (out / "gan-cifar10.md").write_text("my notes")
    _run(runs / "other", "other", dataset="cifar10")
    code = run_cli(leaderboard_main, ["build", "--from", str(runs), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "gan-cifar10.md was not written by the leaderboard" in err
    assert (out / "gan-cifar10.md").read_text() == "my notes"


def test_an_out_that_is_a_file_is_one_line_exit_2(sandbox, capsys):
    (sandbox / "out").write_text("x")
    code = run_cli(leaderboard_main, ["build", "--from", str(sandbox / "runs"), "--out", str(sandbox / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a folder" in err


def test_the_cli_counts_what_it_left_out(sandbox, capsys):
    (sandbox / "runs" / "fifo").mkdir()
    os.mkfifo(sandbox / "runs" / "fifo" / "result.json")
    assert run_cli(leaderboard_main, ["build", "--from", str(sandbox / "runs"), "--out", str(sandbox / "out")]) == 0
    assert "leaderboard: 1 runs, " in (printed := capsys.readouterr().out) and "1 left out (listed in" in printed


def test_the_committed_leaderboard_is_recognised_and_its_maintainers_rebuild_still_works(tmp_path, capsys):
    """The README's regenerate command, into a copy of leaderboards/, from records of the same run ids
    (the real runs take hours): the folder is a leaderboard, the rebuild writes its manifest, and the
    pages the other scripts wrote are left alone."""
    out = tmp_path / "leaderboards"
    shutil.copytree(REPO / "leaderboards", out, symlinks=True)
    committed = json.loads((out / "leaderboard.json").read_text())
    ids = [i for t in committed["tables"] for row in t["rows"] for i in row["run_ids"]]
    ids += [r["run_id"] for r in committed["excluded"]]
    assert len(ids) > 50
    for index, run_id in enumerate(ids):
        grid = tmp_path / ("lcb-grid" if index % 2 else "lcb-sr")
        _run(grid / run_id, run_id, picture=False, seed=index)
    others = {p: _snapshot(p) if p.is_dir() else p.read_bytes() for p in out.iterdir()
              if p.name not in {"README.md", "index.html", "leaderboard.csv", "leaderboard.json", "assets", MANIFEST}
              and not (p.suffix == ".md" and p.name in committed["files"])}
    assert any(p.name == "speed.md" for p in others) and any(p.name == "figures" for p in others)
    code = run_cli(leaderboard_main, ["build", "--from", str(tmp_path / "lcb-grid"), "--from",
                                      str(tmp_path / "lcb-sr"), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert {p: _snapshot(p) if p.is_dir() else p.read_bytes() for p in others} == others
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["run_ids"]) == sorted(ids)
    assert not any((out / "assets").rglob("final.png"))  # the old thumbnails were the build's: replaced
    # A second build reads the manifest; a build from other runs is refused, as for any leaderboard.
    assert run_cli(leaderboard_main, ["build", "--from", str(tmp_path / "lcb-grid"), "--from",
                                      str(tmp_path / "lcb-sr"), "--out", str(out)]) == 0
    assert run_cli(leaderboard_main, ["build", "--from", str(tmp_path / "lcb-sr"), "--out", str(out)]) == 2
    assert "that this build did not collect" in capsys.readouterr().err


# --- property: any tree of links, FIFOs and files ---------------------------------------------------

# Weighted towards a readable record beside hostile pictures: the case where a leak would be published.
_RECORD = st.sampled_from(["valid"] * 5 + ["link-outside"] * 3 + [
    "garbage", "fifo", "missing", "folder", "link-sibling", "link-devzero", "link-loop", "link-secret"])
_PICTURE = st.sampled_from(["valid", "garbage", "bomb", "fifo", "missing", "link-outside", "link-outside",
                            "link-sibling", "link-secret"])
_FOLDER = st.sampled_from(["folder", "folder", "none", "link-outside", "link-outside", "link-sibling", "link-loop",
                           "fifo"])
_RUN = st.fixed_dictionaries({"record": _RECORD, "samples": _FOLDER, "grid": _PICTURE, "spectra": _FOLDER,
                              "plot": _PICTURE, "nested": st.booleans()})
_EXTRA = st.sampled_from(["link-to-outside", "link-to-root", "link-to-run", "loop-pair", "fifo", "secret-link"])


def _make(path: Path, kind: str, *, run: Path, runs: Path, outside: Path, what: str) -> None:
    """Put at ``path`` a ``what`` ("record", "picture" or "folder") of the given ``kind``."""
    if kind in ("missing", "none"):
        return
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n{" + b"\0" * 40)
    elif kind == "bomb":
        path.write_bytes(png_claiming(100_000, 100_000))
    elif kind == "valid":
        path.write_text(json.dumps(valid_payload(run.name))) if what == "record" else path.write_bytes(GRID)
    elif kind == "link-outside":
        target = {"record": outside / "result.json", "picture": outside / "samples" / "final.png",
                  "folder": outside / path.name}[what]
        path.symlink_to(target)
    elif kind == "link-sibling":  # inside --from, outside this run
        path.symlink_to(runs / "r0" / path.relative_to(run))
    elif kind == "link-loop":
        path.symlink_to(path.name if what == "record" else run)
    elif kind == "link-devzero":
        path.symlink_to("/dev/zero")
    elif kind == "link-secret":
        path.symlink_to(outside / "secret.txt")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_RUN, min_size=1, max_size=3), st.lists(_EXTRA, max_size=3))
def test_a_build_over_any_tree_of_links_fifos_and_files_finishes_writes_only_out_and_copies_nothing_from_outside(
        run_kinds, extras):
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        outside, runs = plant_outside(sandbox / "outside"), sandbox / "runs"
        runs.mkdir()
        for index, kinds in enumerate(run_kinds):
            run = runs / ("deep" if kinds["nested"] else "") / f"r{index}"
            run.mkdir(parents=True)
            common = dict(run=run, runs=runs, outside=outside)
            _make(run / "result.json", kinds["record"], what="record", **common)
            _make(run / "samples", kinds["samples"], what="folder", **common)
            if (run / "samples").is_dir() and not (run / "samples").is_symlink():
                _make(run / "samples" / "final.png", kinds["grid"], what="picture", **common)
            _make(run / "spectra", kinds["spectra"], what="folder", **common)
            if (run / "spectra").is_dir() and not (run / "spectra").is_symlink():
                _make(run / "spectra" / "step-9.png", kinds["plot"], what="picture", **common)
        # Every example also holds the two leaks a build could publish: a record linked from outside, and a
        # readable record whose sample folder links outside.
        (runs / "anchor-record").mkdir()
        (runs / "anchor-record" / "result.json").symlink_to(outside / "result.json")
        _run(runs / "anchor-pictures", "anchor", picture=False)
        (runs / "anchor-pictures" / "samples").rmdir()
        (runs / "anchor-pictures" / "samples").symlink_to(outside / "samples", target_is_directory=True)
        for index, extra in enumerate(extras):
            path = runs / f"extra{index}"
            if extra == "link-to-outside":
                path.symlink_to(outside, target_is_directory=True)
            elif extra == "link-to-root":
                path.symlink_to(runs, target_is_directory=True)
            elif extra == "link-to-run":
                path.symlink_to(runs / "r0")
            elif extra == "loop-pair":
                path.symlink_to(runs / f"extra{index}b")
                (runs / f"extra{index}b").symlink_to(path)
            elif extra == "fifo":
                os.mkfifo(path)
            else:
                path.symlink_to(outside / "secret.txt")
        (sandbox / "a" / "b").mkdir(parents=True)
        out = sandbox / "a" / "b" / "out"
        before = _snapshot(sandbox)
        built = _within(60, build_leaderboard, [str(runs)], out)  # any exception fails the property
        assert _snapshot(sandbox, skip=out) == before
        assert all(path.resolve().is_relative_to(out.resolve()) for path in built.files)
        assert "outsider" not in json.loads((out / MANIFEST).read_text())["run_ids"]
        _assert_nothing_from_outside(out)


def test_a_tampered_manifest_cannot_make_a_rebuild_delete_files_of_other_shapes_or_behind_folder_links(sandbox):
    """A received leaderboard folder's manifest is untrusted too: only names of the shapes a build writes are
    deleted, and never through a folder that is a link."""
    runs, out = sandbox / "runs", sandbox / "out"
    build([str(runs)], out)
    (out / "sub").mkdir()
    kept = {"notes.txt": out / "notes.txt", "sub/keep.txt": out / "sub" / "keep.txt",
            "sub/final.png": out / "sub" / "final.png", "runs-archive/x/final.png": out / "sub" / "x.png"}
    for path in kept.values():
        path.write_text("mine")
    (out / "assets" / "linked").symlink_to(out / "sub", target_is_directory=True)
    (out / "sub" / "spectra.png").write_text("mine")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] += [*kept, "assets/linked/spectra.png"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    build([str(runs)], out)
    assert all(path.read_text() == "mine" for path in kept.values())
    assert (out / "sub" / "spectra.png").read_text() == "mine"
