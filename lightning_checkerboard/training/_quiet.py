"""What a training run prints besides its own lines: Lightning's noise off, the package's warnings as one line.

:func:`quiet_lightning` drops, while a run trains, the messages that say nothing about this run:

- ``Trainer.fit stopped: max_steps=… reached`` counts optimizer steps (two per GAN iteration); the
  skeleton says how many iterations ran instead.
- Lightning's advertisement for its hosted logger, and ``TPU available: False``.
- "does not have many workers": the datamodule serves decoded images from memory, so loader
  workers do not speed it up.
- "smaller than the logging interval": the datamodule's epoch is one pass over an in-memory set;
  the run logs by iteration all the same.
- torch's ``LeafSpec`` deprecation, raised inside Lightning's own code.

:func:`warnings_as_lines` turns the warnings raised while a run is set up (no pretrained loss
network, FID unavailable offline, skipped corrupt images) into one ``WARNING: …`` line each on
stderr, instead of Python's two-line form that points into the package's source.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

from lightning_checkerboard._lightning import rank_zero_only

__all__ = ["print_rank_zero", "quiet_lightning", "silent_lightning", "warnings_as_lines"]

_INFO_DROPPED = ("`Trainer.fit` stopped:", "💡 Tip:", "TPU available: False")
_WARNINGS_DROPPED = (
    r"The '\w+' does not have many workers",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
# Lightning's rank-zero messages go through these loggers (the second in Lightning's unified package).
_LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                      "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def print_rank_zero(*args: object, **kwargs: object) -> None:
    """``print`` on rank zero only."""
    if rank_zero_only.rank == 0:
        print(*args, **kwargs)


class _DropInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_INFO_DROPPED)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Inside: Lightning's messages listed in the module docstring are dropped; outside, nothing changes."""
    drop = _DropInfo()
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for pattern in _WARNINGS_DROPPED:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


@contextlib.contextmanager
def silent_lightning() -> Iterator[None]:
    """Inside: no Lightning info line and no warning at all (for a Trainer made only to ask it something)."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Inside: each distinct warning is printed as ``WARNING: <message>`` on stderr (rank zero) instead.

    The lines are printed when the block ends normally; when it raises, the error is what the user
    needs to read, and the warnings are dropped.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(str(warning.message) for warning in caught):
        print_rank_zero(f"WARNING: {message}", file=sys.stderr)
