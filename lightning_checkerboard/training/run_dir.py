"""Run directories: making a new one for a run, and opening an interrupted one to resume it.

A run lives in ``<output_dir>/<task>/<dataset>/<upsampler>/seed<seed>-<time>-<id>/``: its record
(``result.json``), ``checkpoints/last.ckpt``, samples and the logger's files.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lightning_checkerboard._lightning import rank_zero_only
from lightning_checkerboard._paths import OutsideFolderError, path_inside, slug
from lightning_checkerboard._untrusted import UntrustedFileError, resolve_inside
from lightning_checkerboard.callbacks.checkpoint import CheckpointError, load_checkpoint
from lightning_checkerboard.records import RecordError, ResultRecord, read_record
from lightning_checkerboard.training.config import ConfigError

__all__ = [
    "RUN_DIR_ENV",
    "ResumedRun",
    "check_resumed_weights",
    "check_writable_dir",
    "make_run_directory",
    "missing_folders",
    "new_run_id",
    "open_resumed_run",
    "remove_empty_folders",
]

# Lightning's DDP launcher starts the other ranks by running the script again; they find the run
# directory chosen by rank zero here instead of making their own.
RUN_DIR_ENV = "LIGHTNING_CHECKERBOARD_RUN_DIR"
CHECKPOINT = Path("checkpoints", "last.ckpt")


def new_run_id() -> str:
    """A random 8-character id, valid as a W&B run id."""
    return secrets.token_hex(4)


def check_writable_dir(path: Path, field: str = "output_dir") -> Path:
    """Create ``path`` and prove it writable now, not after an hour of training.

    Raises:
        ConfigError: it cannot be created or written (the message starts with ``field``).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{field}: {str(path)!r} is not writable: {err.strerror or err}") from None
    return path


def missing_folders(path: Path, *below: str) -> list[Path]:
    """The folders of ``path / below[0] / below[1] …`` (each of ``below`` made a safe component, as
    :func:`make_run_directory` makes them) that do not exist yet, outermost first: what a run would create."""
    target = Path(path).joinpath(*(slug(name) for name in below))
    return [folder for folder in [*reversed(target.parents), target] if not os.path.lexists(folder)]


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove each of ``folders`` that is still an empty folder (not a link), innermost first; the rest stay."""
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        try:
            if not folder.is_symlink():
                folder.rmdir()  # only when empty
        except OSError:
            pass


def make_run_directory(output_dir: Path, task: str, dataset: str, upsampler: str, seed: int) -> Path:
    """A new run directory below ``output_dir``, or on DDP's other ranks the one rank zero made.

    The task, dataset and upsampler become safe path components (``folder:/data/../cats`` →
    ``folder-data-..-cats``, ``..`` → ``x``), and the directory is checked to lie inside ``output_dir``
    before it is created. Its name ends with the run id (``run_dir.name.rsplit("-", 1)[-1]``).

    Raises:
        ConfigError: the directory would lie outside ``output_dir`` (a symbolic link inside it points
            elsewhere), or it cannot be created or written.
    """
    if rank_zero_only.rank != 0 and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    parts = [slug(name) for name in (task, dataset, upsampler)]
    try:
        path_inside(output_dir, *parts)
    except OutsideFolderError as err:
        raise ConfigError(f"output_dir: the run directory {err}") from None
    name = f"seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}-{new_run_id()}"
    run_dir = check_writable_dir(Path(output_dir, *parts, name))
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir


@dataclass
class ResumedRun:
    """An interrupted run about to continue: its directory, its record and its checkpoint (read as data only)."""

    run_dir: Path
    record: ResultRecord
    checkpoint: dict[str, Any]

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT


def open_resumed_run(run_dir: Path) -> ResumedRun:
    """Read the record and ``checkpoints/last.ckpt`` of the run in ``run_dir``, to continue it.

    The checkpoint is read by :func:`~lightning_checkerboard.callbacks.checkpoint.load_checkpoint`:
    a file that holds more than training state is refused before anything of it runs.

    Raises:
        ConfigError: no readable record, no checkpoint, a finished run, a checkpoint that is not
            plain training state, or one without what Lightning needs to continue (optimiser and
            loop state); every message starts with ``resume:``.
    """
    run_dir = Path(run_dir)
    try:
        record = read_record(run_dir)
    except RecordError as err:
        raise ConfigError(f"resume: {err}") from None
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"resume: {run_dir} has no {CHECKPOINT.as_posix()} to continue from")
    try:
        resolve_inside(path, run_dir)  # a link out of the run directory is not its checkpoint
    except UntrustedFileError as err:
        raise ConfigError(f"resume: {str(err).rstrip('.')}") from None
    if record.status == "finished":
        raise ConfigError(f"resume: the run in {run_dir} already finished")
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as err:
        raise ConfigError(f"resume: {err}") from None
    problem = _not_resumable(checkpoint)
    if problem:
        raise ConfigError(f"resume: {path} is not a checkpoint Lightning can resume from ({problem})")
    return ResumedRun(run_dir, record, checkpoint)


#: What a Lightning checkpoint needs to continue training, and the type each entry must have.
_RESUME_KEYS: dict[str, type | tuple[type, ...]] = {
    "state_dict": dict, "optimizer_states": list, "lr_schedulers": list, "loops": dict, "epoch": int,
    "global_step": int,
}


def _not_resumable(checkpoint: dict[str, Any]) -> str:
    """Why ``checkpoint`` cannot be resumed from (its missing or mistyped entries), or ``""``."""
    missing = [key for key in _RESUME_KEYS if key not in checkpoint]
    if missing:
        return f"no {', '.join(missing)}"
    mistyped = [key for key, kind in _RESUME_KEYS.items()
                if not isinstance(checkpoint[key], kind) or isinstance(checkpoint[key], bool)]
    if mistyped:
        return ", ".join(f"{key} is a {type(checkpoint[key]).__name__}" for key in mistyped)
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in checkpoint["state_dict"].items()):
        return "its state_dict holds more than named tensors"
    return ""


def check_resumed_weights(checkpoint: dict[str, Any], module: torch.nn.Module, run_dir: Path) -> None:
    """The checkpoint's weights are exactly ``module``'s: the same names, each of the same shape.

    Raises:
        ConfigError: other names or shapes (the message starts with ``resume:``, gives counts and an example).
    """
    saved, expected = checkpoint["state_dict"], module.state_dict()
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    reshaped = [k for k in expected if k in saved and tuple(saved[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or reshaped):
        return
    parts = [f"{len(names)} {what}, e.g. {names[0][:80]!r}"
             for names, what in ((missing, "missing"), (unexpected, "unexpected"), (reshaped, "of another shape"))
             if names]
    raise ConfigError(f"resume: the weights in {run_dir / CHECKPOINT} are not this run's model ({'; '.join(parts)})")
