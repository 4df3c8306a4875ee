"""A resumable ``last.ckpt``: saved atomically every N iterations, at the end, and on SIGINT/SIGTERM.

A checkpoint is read back as data only: :func:`load_checkpoint` and :class:`WeightsOnlyCheckpointIO`
(the ``Trainer`` plugin that resuming goes through) unpickle tensors, containers, numbers and text,
and refuse anything else. A run directory received from someone else then cannot run code when it
is resumed: a pickled object whose reduction calls a function is an error, and the function is never
called.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
from pathlib import Path
from typing import Any

import torch
from typing_extensions import override

from lightning_checkerboard._lightning import Callback, TorchCheckpointIO, pl, rank_zero_info
from lightning_checkerboard._progress import training_iteration
from lightning_checkerboard._untrusted import UntrustedFileError, open_regular
from lightning_checkerboard._validation import check_non_negative_int

__all__ = ["CheckpointError", "RunCheckpoint", "WeightsOnlyCheckpointIO", "load_checkpoint"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read as plain training state (one line, naming the file)."""


def _first_reason(err: BaseException) -> str:
    """The informative line of a ``torch.load`` error (torch's weights-only message spans paragraphs)."""
    text = str(err)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global| Please|\n|$)", text)
    if found:
        return found.group(1).strip()
    blocked = re.search(r"GLOBAL (\S+)", text)  # "Trying to load unsupported GLOBAL posix.system whose module …"
    if blocked:
        return f"Unsupported global: {blocked.group(1)}"
    # torch's first paragraph recommends loading with weights_only=False: never repeat that advice.
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and "weights_only" not in line and "Weights only load failed" not in line]
    return lines[0] if lines else type(err).__name__


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a Lightning checkpoint as data only (``torch.load(..., weights_only=True)``).

    Everything :class:`RunCheckpoint` saves (weights, optimiser and loop state, callback state and
    hyperparameters of numbers and text) loads; nothing beyond torch's own weights-only types is
    allowed, so no function named in the file is ever called.

    Raises:
        CheckpointError: the file holds other objects (named in the message), is not a checkpoint, or
            is not a regular file.
    """
    try:
        with open_regular(path) as handle:  # a FIFO or a device is refused, never read forever
            checkpoint = torch.load(handle, map_location=map_location, weights_only=True)
    except UntrustedFileError as err:
        raise CheckpointError(str(err).rstrip(".")) from None
    except pickle.UnpicklingError as err:
        reason = _first_reason(err)
        if "global" not in reason.lower():  # a damaged or foreign file, not a forbidden object
            raise CheckpointError(f"{path} is not a readable checkpoint ({reason})") from None
        raise CheckpointError(f"{path} holds more than training state ({reason}); it was not loaded, since "
                              "loading it could run code") from None
    except (OSError, EOFError, RuntimeError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({_first_reason(err)})") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it holds a {type(checkpoint).__name__})")
    return checkpoint


class WeightsOnlyCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, with every load done by :func:`load_checkpoint` (data only).

    Give it to the ``Trainer`` (``plugins=[WeightsOnlyCheckpointIO()]``) and ``trainer.fit(ckpt_path=…)``
    reads the checkpoint weights-only whatever Lightning's or torch's default.
    """

    @override
    def load_checkpoint(self, path: Any, map_location: Any = None, **kwargs: Any) -> dict[str, Any]:
        # kwargs: Lightning versions that pass weights_only get it ignored: the load is always data only.
        return load_checkpoint(path, map_location=map_location if map_location is not None else "cpu")


class RunCheckpoint(Callback):
    """Keep ``<dirpath>/last.ckpt`` resumable, and turn Ctrl-C / SIGTERM into a clean stop.

    The checkpoint is written to a temporary file and renamed, so a kill during the write leaves
    the previous checkpoint intact. It is saved every ``every_n_steps`` iterations and when
    training ends normally — not when it diverges, so the last good weights survive.

    On the first SIGINT or SIGTERM the run finishes the current iteration, saves the checkpoint,
    sets ``pl_module.interrupted`` (which the result record reports as ``interrupted``) and stops;
    a second signal stops at once. Because the data stream and the training noise are functions of
    the iteration, resuming from that checkpoint continues the run bit for bit.

    Args:
        dirpath: directory of ``last.ckpt``.
        every_n_steps: save interval in iterations (0: only at the end and on interrupt).
    """

    def __init__(self, dirpath: str | os.PathLike, every_n_steps: int = 0) -> None:
        self.every_n_steps = check_non_negative_int(every_n_steps, "every_n_steps")
        self.dirpath = Path(dirpath)
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def save(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` atomically (every rank calls it; Lightning writes on rank zero)."""
        tmp = self.dirpath / ".last.ckpt.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # optimiser and loop state too: resumable
        if trainer.global_rank == 0:
            os.replace(tmp, self.last_path)
        trainer.strategy.barrier("run_checkpoint")

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested is not None:  # second signal: the user means it
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        rank_zero_info(f"{self.requested} received: stopping after this iteration and saving a checkpoint "
                       "(send it again to stop at once).")

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        # Installed here, after Lightning has set up its own signal handling (which would turn
        # SIGTERM into an abrupt exit), and undone in on_train_end before Lightning restores its own.
        self.dirpath.mkdir(parents=True, exist_ok=True)
        self.requested = None
        try:
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: keep the default handlers
            self._previous.clear()

    def _restore_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = training_iteration(trainer)
        stop = self.requested is not None
        if trainer.world_size > 1:  # a signal that reached one process stops them all, at one step
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self.save(trainer)
            pl_module.interrupted = (f"{self.requested or 'signal'} at iteration {step}; "
                                     f"{self.last_path.name} saved, the run can be resumed")
            trainer.should_stop = True
        elif self.every_n_steps and step % self.every_n_steps == 0 and not getattr(pl_module, "diverged", None):
            self.save(trainer)

    @override
    def on_train_end(self, trainer, pl_module) -> None:
        if not getattr(pl_module, "diverged", None) and not getattr(pl_module, "interrupted", None):
            self.save(trainer)
        self._restore_handlers()

    @override
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_handlers()
