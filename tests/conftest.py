"""Test-wide set-up: offline, with every cache in a temporary directory."""

from __future__ import annotations

import os
import tempfile

# Set before any test imports wandb, datasets or torch hub, so nothing reaches for the network or
# writes into the user's home directory.
_CACHE_ROOT = tempfile.mkdtemp(prefix="lcb-test-cache-")
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


import pytest  # noqa: E402  (after the environment above is set)


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """A seeded, kaiming-initialised Inception-v3 state dict: the real FID pipeline, offline."""
    from lightning_checkerboard.metrics._inception import write_random_inception_weights

    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "inception-random-seed0.pth", seed=0)
