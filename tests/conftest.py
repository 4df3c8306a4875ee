"""Test-wide set-up: offline, with every cache in a temporary directory that the session removes.

Each test session (each process that imports this file) makes its own ``lcb-test-cache-*`` folder
in the system temp directory, points the torch, Hugging Face, W&B and XDG caches into it, and
removes it, and nothing else, when the session finishes (:func:`pytest_sessionfinish`, and again at
interpreter exit for files written after that, e.g. by W&B's shutdown).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Set before any test imports wandb, datasets or torch hub, so nothing reaches for the network or
# writes into the user's home directory.
_CACHE_ROOT = tempfile.mkdtemp(prefix="lcb-test-cache-")
# A forked child inherits the atexit hook; only the process that made the folder removes it.
_CACHE_OWNER_PID = os.getpid()


def _remove_cache_root() -> None:
    if os.getpid() == _CACHE_OWNER_PID:
        shutil.rmtree(_CACHE_ROOT, ignore_errors=True)


atexit.register(_remove_cache_root)

for _var, _sub in (
    ("TORCH_HOME", "torch"),
    ("HF_HOME", "hf"),
    ("WANDB_DIR", "wandb"),
    ("WANDB_CACHE_DIR", "wandb-cache"),
    ("WANDB_CONFIG_DIR", "wandb-config"),
    ("XDG_CACHE_HOME", "xdg"),
):
    os.environ.setdefault(_var, os.path.join(_CACHE_ROOT, _sub))
# matplotlib's font cache takes seconds to build: keep one across test runs.
os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "lcb-test-matplotlib"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# The package picks its Lightning namespace once per process, from what was imported first; the suite
# runs on pytorch_lightning (the declared dependency) whatever the order of the test files, unless the
# caller chooses (``LCB_LIGHTNING=lightning python -m pytest …`` runs it on lightning.pytorch).
os.environ.setdefault("LCB_LIGHTNING", "pytorch_lightning")


import pytest  # noqa: E402  (after the environment above is set)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this session's cache folder (``_CACHE_ROOT``); other sessions' folders stay."""
    _remove_cache_root()


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """A seeded, kaiming-initialised Inception-v3 state dict: the real FID pipeline, offline."""
    from lightning_checkerboard.metrics._inception import write_random_inception_weights

    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "inception-random-seed0.pth", seed=0)
