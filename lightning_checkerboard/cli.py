"""Shared command-line plumbing for the recipes: flat flags, checked values, one-line user errors.

A user mistake (an unknown upsampler, a size the model cannot make, a dataset that is not there)
ends a recipe with one line on stderr and exit code 2 — never a traceback. Errors during training
are not user mistakes: they keep their traceback and the run's record says ``failed``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lightning_checkerboard.loggers import LOGGERS
from lightning_checkerboard.upsamplers import list_upsamplers

__all__ = [
    "UsageError",
    "add_logging_args",
    "add_trainer_args",
    "check_writable_dir",
    "make_run_dir",
    "new_run_id",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "run_cli",
    "unit_interval",
    "upsampler_help",
]

EXIT_USAGE = 2


class UsageError(Exception):
    """A user mistake found before training: printed as one line, exit code 2."""


def _number_type(convert: Callable[[str], float], minimum: float, strict: bool, what: str) -> Callable[[str], float]:
    """An argparse ``type=`` that accepts finite values above ``minimum`` (or at it unless ``strict``)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    parse.__name__ = what.replace(" ", "_")  # argparse names the type in some messages
    return parse


#: argparse types: an integer >= 1, an integer >= 0, a finite number > 0 (NaN, inf and negatives rejected).
positive_int = _number_type(int, 1, False, "a positive integer")
non_negative_int = _number_type(int, 0, False, "a non-negative integer")
positive_float = _number_type(float, 0.0, True, "a positive finite number")
non_negative_float = _number_type(float, 0.0, False, "a non-negative finite number")


def unit_interval(text: str) -> float:
    """argparse type: a number in [0, 1) (a decay or a rate)."""
    value = non_negative_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def upsampler_help() -> str:
    return (
        "one registered upsampler for every stage, or a comma-separated list with one per stage; "
        f"registered: {', '.join(list_upsamplers())}"
    )


def add_logging_args(parser: argparse.ArgumentParser, default_project: str = "lightning-checkerboard") -> None:
    group = parser.add_argument_group("logging and output")
    group.add_argument("--logger", choices=LOGGERS, default="wandb",
                       help="wandb (online when logged in and reachable, else offline), csv, tensorboard or none")
    group.add_argument("--wandb-project", default=default_project, help="W&B project (default %(default)s)")
    group.add_argument("--wandb-entity", default=None, help="W&B entity (team or user); default: yours")
    group.add_argument("--tags", default="", help="extra comma-separated run tags")
    group.add_argument("--output-dir", type=Path, default=Path("runs"),
                       help="where run directories go (default %(default)s)")


def add_trainer_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hardware (Lightning Trainer)")
    group.add_argument("--accelerator", default="auto", help="cpu, gpu, mps, auto (default %(default)s)")
    group.add_argument("--devices", default="auto", help="number of devices, a list, or auto (default %(default)s)")
    group.add_argument("--num-nodes", type=positive_int, default=1, help="machines for multi-node DDP")
    group.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, … (default %(default)s)")
    group.add_argument("--precision", default="32-true", help="32-true, 16-mixed, bf16-mixed … (default %(default)s)")


def parse_devices(text: str) -> int | str | list[int]:
    """``"2"`` → 2, ``"0,1"`` → [0, 1], ``"auto"``/``"-1"`` as Lightning takes them."""
    if "," in text:
        return [int(part) for part in text.split(",") if part.strip()]
    try:
        return int(text)
    except ValueError:
        return text


def check_writable_dir(path: Path) -> Path:
    """Create ``path`` and prove it writable now, not after an hour of training.

    Raises:
        UsageError: it cannot be created or written.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"output directory {str(path)!r} is not writable: {err.strerror or err}") from None
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-")[:80] or "run"


def new_run_id() -> str:
    """A random 8-character id, valid as a W&B run id."""
    return secrets.token_hex(4)


def make_run_dir(output_dir: Path, task: str, dataset: str, upsampler: str, seed: int, run_id: str) -> Path:
    """``<output>/<task>/<dataset>/<upsampler>/seed<seed>-<time>-<id>``, created and checked writable."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = output_dir / task / _slug(dataset) / _slug(upsampler) / f"seed{seed}-{stamp}-{run_id}"
    return check_writable_dir(path)


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a recipe's ``main``; turn user mistakes into one line on stderr and exit code 2."""
    from lightning_checkerboard.data import DatasetError

    try:
        return main(argv)
    except (UsageError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
