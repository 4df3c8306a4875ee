"""The ``lightning-checkerboard`` console script: one entry point for the package's commands.

Each of the package's own commands is the ``__main__`` module of the subpackage that does its work, and
``lightning-checkerboard COMMAND ...`` forwards the arguments unchanged to it:

- ``score``: :mod:`lightning_checkerboard.score.__main__` (``python -m lightning_checkerboard.score``);
- ``audit``: :mod:`lightning_checkerboard.adapt.__main__` (``python -m lightning_checkerboard.adapt``, or
  ``python -m lightning_checkerboard.audit`` as before);
- ``probe``: :mod:`lightning_checkerboard.probe.__main__` (``python -m lightning_checkerboard.probe``);
- ``leaderboard``: :mod:`lightning_checkerboard.leaderboard.__main__`
  (``python -m lightning_checkerboard.leaderboard``).

``fit``, ``validate``, ``test`` and ``predict`` are Lightning's ``LightningCLI`` subcommands
(:mod:`lightning_checkerboard.lightning_cli`).

Example:
    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: lightning-checkerboard COMMAND [ARGS ...]
    ...
    0
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable

__all__ = ["COMMANDS", "main"]

PROG = "lightning-checkerboard"


def _score(argv: list[str]) -> int:
    from lightning_checkerboard.score.__main__ import main as score_main

    return score_main(argv, prog=f"{PROG} score")


def _audit(argv: list[str]) -> int:
    from lightning_checkerboard.adapt.__main__ import main as audit_main

    return audit_main(argv, prog=f"{PROG} audit")


def _probe(argv: list[str]) -> int:
    from lightning_checkerboard.probe.__main__ import main as probe_main

    return probe_main(argv, prog=f"{PROG} probe")


def _leaderboard(argv: list[str]) -> int:
    from lightning_checkerboard.cli import run_cli
    from lightning_checkerboard.leaderboard.__main__ import main as leaderboard_main

    return run_cli(lambda args: leaderboard_main(args, prog=f"{PROG} leaderboard"), argv)


def _lightning_cli(subcommand: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        from lightning_checkerboard.lightning_cli import main as cli_main

        return cli_main([subcommand, *argv])

    return run


#: Command name -> (runner, one-line description).
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "score": (_score, "score any set of images for checkerboard artifacts (and compare it with a reference)"),
    "audit": (_audit, "list a model's upsampling sites with their overlap, fusability and checkerboard score"),
    "probe": (_probe, "read a decoder's grid artifacts per period (round trip, constants, ramps), its sites "
                      "and its tiling seams"),
    "leaderboard": (_leaderboard, "collect result records, aggregate seeds and write the leaderboard"),
    "fit": (_lightning_cli("fit"), "Lightning's LightningCLI on the package's tasks, datamodule and callbacks "
                                   "(--model GANTask --data ImageDataModule …)"),
    "validate": (_lightning_cli("validate"), "LightningCLI's validate"),
    "test": (_lightning_cli("test"), "LightningCLI's test"),
    "predict": (_lightning_cli("predict"), "LightningCLI's predict"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [ARGS ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    lines += ["", f"`{PROG} COMMAND --help` describes a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command; returns its exit status (2, with one line on stderr, for an unknown command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        print(f"error: unknown command {name!r}; commands: {', '.join(COMMANDS)}.{hint}", file=sys.stderr)
        return 2
    return COMMANDS[name][0](rest)


if __name__ == "__main__":
    sys.exit(main())
