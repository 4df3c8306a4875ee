"""A random-weight stand-in for torch-fidelity's Inception-v3 weights, for offline tests and benchmarks.

The real FID weights (torch-fidelity's port of the 2015 TensorFlow Inception) come from the
internet. Tests and benchmarks must run without it, yet still exercise the exact feature pipeline
(TF-1.x-compatible resize, every Inception block, the 2048-d pool features). A state dict with the
right keys and shapes, written to a file, does that: it loads through the same
``feature_extractor_weights_path`` argument that real weights use.

FIDs computed with these weights are meaningless as quality numbers; the extractor id that
:class:`~lightning_checkerboard.metrics.fid.FID` derives from the file hash keeps them apart from real ones.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from lightning_checkerboard._io import atomic_write_bytes

__all__ = ["random_inception_state_dict", "write_random_inception_weights"]


class _FreshInceptionV3(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception-v3 whose constructor keeps its fresh initialisation.

    The parent constructor always loads a state dict (downloading one when given no path). Turning
    ``load_state_dict`` into a no-op and handing it an empty file lets us reuse its exact
    architecture instead of re-declaring the layer list, which would drift from torch-fidelity's.
    """

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: D102 - see class docstring
        return None


def random_inception_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Build a seeded random state dict for torch-fidelity's ``inception-v3-compat`` extractor.

    Convolutions are re-initialised with Kaiming-normal (fan-in, ReLU gain): with PyTorch's default
    init the activations shrink layer after layer and the 2048-d features of different images become
    nearly equal, which makes every FID ≈ 0 and hides errors. BatchNorm keeps its identity statistics.

    Args:
        seed: Seed for every random draw, so the same seed gives the same weights (and the same
            extractor id) on every machine.

    Returns:
        A state dict whose keys and shapes match torch-fidelity's ``FeatureExtractorInceptionV3``.

    Example:
        >>> sd = random_inception_state_dict(seed=0)
        >>> tuple(sd["Mixed_7c.branch1x1.conv.weight"].shape)
        (320, 2048, 1, 1)
    """
    # fork_rng keeps the caller's global RNG stream untouched by our seeding.
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(seed)
        empty = Path(tmp) / "empty.pt"
        torch.save({}, empty)
        net = _FreshInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        return {k: v.detach().clone() for k, v in net.state_dict().items()}


def write_random_inception_weights(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write :func:`random_inception_state_dict` to ``path`` atomically and return the path.

    An existing file at ``path`` is reused rather than rewritten, so a session-wide fixture or a
    repeated benchmark pays the ~100 MB write once.

    Args:
        path: Destination file; its parent directory is created if missing.
        seed: Passed to :func:`random_inception_state_dict`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    if path.is_file():
        return path
    buffer = io.BytesIO()
    torch.save(random_inception_state_dict(seed), buffer)
    return atomic_write_bytes(path, buffer.getvalue())
