"""``python -m lightning_checkerboard.leaderboard build --from <runs dir | wandb:entity/project> --out my-leaderboard/``.

``rerender --out my-leaderboard/`` rewrites the pages of a folder the build wrote from what it holds
(its ``leaderboard.json`` and pictures), for when the runs are gone.

User mistakes (a missing folder, a malformed ``wandb:`` path, unreadable filters, an unreachable
W&B server, a file in ``--out`` that links outside it, an ``--out`` that holds other files and no
leaderboard, or a leaderboard of runs this build did not collect, without ``--force``) end with one
line on stderr and exit code 2. Records, runs and pictures that cannot be read are listed under
"Rejected files" in the index and counted on stdout, not fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._paths import OutsideFolderError
from lightning_checkerboard.cli import UsageError, positive_float, run_cli
from lightning_checkerboard.leaderboard.aggregate import aggregate
from lightning_checkerboard.leaderboard.collect import CollectError, collect
from lightning_checkerboard.leaderboard.pipeline import build_leaderboard
from lightning_checkerboard.leaderboard.render import OutputFolderError
from lightning_checkerboard.leaderboard.wandb_tables import log_to_wandb


def build_parser(prog: str = "python -m lightning_checkerboard.leaderboard") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog,
                                     description="Collect result records, aggregate seeds, write the leaderboard.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{build,rerender}")
    sub = commands.add_parser("build", help="collect, aggregate and write the leaderboard",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub.add_argument("--from", dest="sources", action="append", required=True, metavar="SOURCE",
                     help="a runs directory (searched for result.json) or wandb:<entity>/<project>; repeatable")
    sub.add_argument("--out", type=Path, default=Path("leaderboards"),
                     help="output folder: new, empty, or a leaderboard this command wrote")
    sub.add_argument("--force", action="store_true",
                     help="write into a folder that holds other files, or replace a leaderboard of other runs "
                          "(files of the same names are replaced; nothing else is deleted)")
    sub.add_argument("--filters", default=None, metavar="JSON",
                     help='W&B run filters as JSON, e.g. \'{"tags": "task:gan"}\'')
    sub.add_argument("--timeout", type=positive_float, default=10.0, help="seconds to wait for the W&B server")
    sub.add_argument("--log-to-wandb", action="store_true",
                     help="also log the tables as wandb.Table to --wandb-project when W&B is online")
    sub.add_argument("--wandb-project", default="lightning-checkerboard")
    sub.add_argument("--wandb-entity", default=None)
    again = commands.add_parser("rerender", help="rewrite a leaderboard folder's pages from its leaderboard.json "
                                "and pictures (when its runs are gone)")
    again.add_argument("--out", type=Path, default=Path("leaderboards"), help="a folder the build wrote")
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m lightning_checkerboard.leaderboard") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.command == "rerender":
        from lightning_checkerboard.leaderboard.rerender import rerender

        try:
            files = rerender(args.out)
        except (OutputFolderError, OutsideFolderError) as err:
            raise UsageError(str(err)) from None
        print(f"leaderboard: pages rewritten; {len(files)} files in {args.out} (open {args.out / 'index.html'})")
        return 0
    filters = None
    if args.filters is not None:
        try:
            filters = json.loads(args.filters)
        except ValueError as err:
            raise UsageError(f"--filters must be a JSON object; got {args.filters!r} ({err})") from None
        if not isinstance(filters, dict):
            raise UsageError(f"--filters must be a JSON object; got {args.filters!r}")
    try:
        built = build_leaderboard(args.sources, args.out, filters=filters, timeout=args.timeout, force=args.force)
    except (CollectError, OutsideFolderError, OutputFolderError) as err:  # OutsideFolderError: a link in --out
        raise UsageError(str(err)) from None
    rejected = f", {len(built.rejected)} left out (listed in {args.out / 'README.md'})" if built.rejected else ""
    print(f"leaderboard: {built.runs} runs, {len(built.files)} files in {args.out}{rejected} "
          f"(open {args.out / 'index.html'})")
    if args.log_to_wandb:
        # Aggregated again from the same sources: cheap, and build() stays a plain function.
        board = aggregate(found.record for found in collect(args.sources, filters, args.timeout).runs)
        note = log_to_wandb(board, args.wandb_project, args.wandb_entity)
        print(note, file=sys.stderr if "not logged" in note else sys.stdout)
        return 1 if "not logged" in note else 0
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
