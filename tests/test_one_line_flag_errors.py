"""Every command and script answers a mistyped flag with one line and exit code 2, never a usage block."""

from __future__ import annotations

import pytest

from _recipes import all_scripts, load_recipe

# Every script in recipes/ and its subfolders with a command line of its own; the three training recipes are
# held to the same rule, with their messages, in test_hostile_recipes.py.
SCRIPTS = sorted(path.stem for path in all_scripts() if path.stem not in {"gan", "style_transfer",
                                                                              "super_resolution"})


def _one_line_error(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("\n") == 1 and "usage:" not in err, err
    return err


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_answers_an_unknown_flag_in_one_line(name, capsys):
    err = _one_line_error(load_recipe(name).main, ["--no-such-flag"], capsys)
    # (a script with a required flag names that one first)
    assert err.rstrip().endswith("(see --help)") and ("--no-such-flag" in err or "required" in err)


def test_the_leaderboard_command_answers_unknown_and_abbreviated_flags_in_one_line(capsys):
    from lightning_checkerboard.leaderboard.__main__ import main

    err = _one_line_error(main, ["build", "--frm", "runs"], capsys)
    assert err.startswith("python -m lightning_checkerboard.leaderboard build: error: ")
    # "--fro" is not taken for "--from": prefixes never match.
    err = _one_line_error(main, ["build", "--fro", "runs"], capsys)
    assert "--fro" in err and err.rstrip().endswith("(see --help)")


@pytest.mark.parametrize(("command", "argv", "flag"), [
    ("score", ["images", "--level", "2"], "--level"),  # --levels
    ("audit", ["pkg.mod:factory", "--input-shap", "1,3,8,8"], "--input-shap"),  # --input-shape
    ("leaderboard", ["build", "--from", "runs", "--ou", "x"], "--ou"),  # --out
])
def test_no_command_takes_a_prefix_of_a_flag_for_the_flag(command, argv, flag, capsys):
    """``lightning-checkerboard COMMAND``: an abbreviated flag is an unknown flag, in one line (the training
    recipes' ``--upsample`` for ``--upsampler``: test_hostile_recipes.py)."""
    from lightning_checkerboard.cli import run_cli
    from lightning_checkerboard.console import main as console_main

    try:
        code = run_cli(console_main, [command, *argv])
    except SystemExit as exited:  # what the shell sees as the exit status
        code = exited.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "usage:" not in err, err
    assert f"unrecognized arguments: {flag}" in err and err.rstrip().endswith("(see --help)")

