"""The docs' leaderboard example, as a newcomer runs it: into a folder of their own, never over other runs' rows."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
from pathlib import Path

from _hostile import valid_payload
from lightning_checkerboard.cli import run_cli
from lightning_checkerboard.leaderboard.__main__ import main as leaderboard_main

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guides" / "leaderboard.md"


def _example() -> list[str]:
    """The guide's first build command from local runs, as arguments after ``build``."""
    line = re.search(r"^python -m lightning_checkerboard\.leaderboard build --from runs .*$", GUIDE.read_text(), re.M)
    assert line, f"no local build example in {GUIDE}"
    words = shlex.split(line.group(0))
    return words[words.index("build") + 1:]


def _runs(root: Path, *run_ids: str) -> Path:
    for run_id in run_ids:
        (root / run_id).mkdir(parents=True)
        (root / run_id / "result.json").write_text(json.dumps(valid_payload(run_id)))
    return root


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(argv: list[str], cwd: Path, monkeypatch) -> int:
    monkeypatch.chdir(cwd)
    return run_cli(leaderboard_main, ["build", *argv])


def test_the_example_builds_into_a_folder_of_the_users_own(tmp_path, monkeypatch, capsys):
    argv = _example()
    out = argv[argv.index("--out") + 1]
    assert Path(out).parts[0] != "leaderboards"  # never the committed tables
    _runs(tmp_path / "runs", "mine")
    assert _build(argv, tmp_path, monkeypatch) == 0, capsys.readouterr().err
    assert "mine" in (tmp_path / out / "leaderboard.csv").read_text()


def test_the_example_aimed_at_the_committed_leaderboard_refuses_and_changes_nothing(tmp_path, monkeypatch, capsys):
    """What the issue's newcomer did: the same command with ``--out leaderboards/`` in a clone."""
    shutil.copytree(ROOT / "leaderboards", tmp_path / "leaderboards", symlinks=True)
    before = _hashes(tmp_path / "leaderboards")
    _runs(tmp_path / "runs", "mine")
    argv = _example()
    argv[argv.index("--out") + 1] = "leaderboards/"
    code = _build(argv, tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert re.search(r"holds a leaderboard with \d+ run\(s\) that this build did not collect", err)
    assert _hashes(tmp_path / "leaderboards") == before


def test_a_second_build_from_other_runs_refuses_and_one_from_both_keeps_every_row(tmp_path, monkeypatch, capsys):
    argv = _example()
    out = tmp_path / argv[argv.index("--out") + 1]
    _runs(tmp_path / "runs", "first")
    assert _build(argv, tmp_path, monkeypatch) == 0
    _runs(tmp_path / "later", "second")
    later = [word if word != "runs" else "later" for word in argv]
    assert _build(later, tmp_path, monkeypatch) == 2
    assert "did not collect (first)" in capsys.readouterr().err
    assert "first" in (out / "leaderboard.csv").read_text()
    assert _build([*argv, "--from", "later"], tmp_path, monkeypatch) == 0
    table = (out / "leaderboard.csv").read_text()
    assert "first" in table and "second" in table
