"""torch-fidelity's Inception-v3 for FID: finding its weights, naming it, feeding it, and a random stand-in.

The feature extractor is the one torchmetrics' ``FrechetInceptionDistance`` runs: torch-fidelity's
port of the 2015 TensorFlow Inception-v3 (``inception-v3-compat``, :data:`FEATURES`-d pool features).
This module holds what :class:`~lightning_checkerboard.metrics.fid.FID` needs to know about it:

* where its weights come from: an explicit path, then ``$TORCH_HOME/hub/checkpoints/`` under the
  file name torch-fidelity downloads, then a download with a timeout (:func:`inception_weights_status`);
  when none can be had, :func:`warn_unavailable_once` warns with :class:`FIDUnavailableWarning`;
* its name in results and cache keys, which includes the weights' SHA-256 (:func:`inception_extractor_id`);
* the input it takes: (B, 3, H, W) uint8 (:func:`inception_input`);
* a seeded random state dict with the right keys and shapes (:func:`write_random_inception_weights`),
  so tests and benchmarks run the exact feature pipeline (TF-1.x-compatible resize, every Inception
  block, the pool features) without the internet. FIDs measured with it are meaningless as quality
  numbers; its extractor id, derived from the file hash, keeps them apart from real ones.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torchmetrics.utilities import rank_zero_warn

from lightning_checkerboard._io import atomic_write_bytes

__all__ = [
    "FEATURES",
    "FIDUnavailableWarning",
    "INCEPTION_WEIGHTS_FILENAME",
    "OFFLINE_ENV_VAR",
    "inception_extractor_id",
    "inception_input",
    "inception_weights_status",
    "random_inception_state_dict",
    "resolve_inception_weights",
    "warn_unavailable_once",
    "weights_sha256",
    "write_random_inception_weights",
]

FEATURES = 2048
"""Length of the pool feature vector the extractor gives per image."""

OFFLINE_ENV_VAR = "LIGHTNING_CHECKERBOARD_OFFLINE"
"""Set to anything but ``""``/``"0"`` to forbid the weights download (fails fast instead of timing out)."""

# torch-fidelity downloads through torch.hub, which stores the file under this name; looking for
# the same name lets a machine that ever ran torch-fidelity or torchmetrics' FID reuse its copy.
INCEPTION_WEIGHTS_FILENAME = os.path.basename(urlparse(URL_INCEPTION_V3).path)

_DOWNLOAD_TIMEOUT_S = 30.0
# Reasons already warned about in this process: several FID objects (validation, test, a callback)
# on an offline machine should produce one warning, not one per object.
_warned_reasons: set[str] = set()


class FIDUnavailableWarning(UserWarning):
    """Warned (once per reason and process) when ``policy="auto"`` finds no Inception weights."""


def warn_unavailable_once(reason: str) -> None:
    """Warn with :class:`FIDUnavailableWarning` that FID reads ``nan`` because of ``reason``, once per reason."""
    if reason not in _warned_reasons:
        _warned_reasons.add(reason)
        rank_zero_warn(f"FID is unavailable and will be reported as nan: {reason}", FIDUnavailableWarning)


# ------------------------------------------------------------------------------------------ weights


def _torch_hub_weights_path() -> Path:
    # Read at call time: TORCH_HOME may change between calls (tests point it at temp dirs).
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILENAME


def _download(url: str, dst: Path, timeout: float = _DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``dst`` atomically, with a socket timeout so a dead network fails in seconds.

    ``torch.hub.download_url_to_file`` has no timeout and can hang for minutes behind a firewall
    that drops packets, which is exactly the offline case ``policy="auto"`` must survive.
    """
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            while chunk := response.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def inception_weights_status(
    path: str | os.PathLike | None = None, *, download: bool = True
) -> tuple[Path | None, str]:
    """Find torch-fidelity's Inception-v3 weights and say where they came from or why there are none.

    Order: ``path`` → ``$TORCH_HOME/hub/checkpoints/<torch-fidelity's file name>`` → download into
    that directory (skipped when ``download=False`` or ``$LIGHTNING_CHECKERBOARD_OFFLINE`` is set).

    Args:
        path: An explicit weights file (a state dict for torch-fidelity's ``FeatureExtractorInceptionV3``).
        download: Whether the last step may use the network.

    Returns:
        ``(weights_file, message)``: the file and where it was found, or ``(None, reason)``.

    Raises:
        FileNotFoundError: If ``path`` is given but is not a file; a wrong explicit path is a
            configuration mistake, never silently replaced by another file.

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> weights = Path(tmp.name, "weights.pth")
        >>> torch.save({}, weights)
        >>> inception_weights_status(weights)[1].startswith("explicit path")
        True
        >>> tmp.cleanup()
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise FileNotFoundError(
                f"weights_path must be an existing Inception-v3 state-dict file; got {str(explicit)!r}."
            )
        return explicit, f"explicit path {explicit}"
    cached = _torch_hub_weights_path()
    if cached.is_file():
        return cached, f"torch hub cache {cached}"
    if not download:
        return None, f"no Inception weights at {cached} and downloading is disabled"
    if os.environ.get(OFFLINE_ENV_VAR, "") not in ("", "0"):
        return None, f"no Inception weights at {cached} and {OFFLINE_ENV_VAR} forbids downloading"
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        _download(URL_INCEPTION_V3, cached)
    except (OSError, ValueError) as err:  # URLError, HTTPError and socket timeouts are OSErrors
        return None, f"no Inception weights at {cached} and the download from {URL_INCEPTION_V3} failed: {err}"
    return cached, f"downloaded to {cached}"


def resolve_inception_weights(path: str | os.PathLike | None = None, *, download: bool = True) -> Path | None:
    """Return the Inception-v3 weights file to use for FID, or ``None`` when none can be had.

    Same search as :func:`inception_weights_status`, for callers that only need the file.

    Raises:
        FileNotFoundError: If ``path`` is given but is not a file.
    """
    return inception_weights_status(path, download=download)[0]


@functools.lru_cache(maxsize=8)
def _sha256_file(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key so a rewritten file is hashed again.
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a weights file, hashed once per file version (path, size, mtime) and process."""
    path = Path(path)
    stat = path.stat()
    return _sha256_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def inception_extractor_id(weights_path: str | os.PathLike) -> str:
    """Name the feature extractor that a given weights file makes, for results and cache keys.

    The weights' SHA-256 is part of the name because the file name alone cannot tell the official
    weights from a local stand-in (:func:`write_random_inception_weights`).

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> weights = Path(tmp.name, "weights.pt")
        >>> torch.save({}, weights)
        >>> inception_extractor_id(weights)[:48]
        'torch-fidelity inception-v3-compat 2048 (weights'
        >>> tmp.cleanup()
    """
    digest = weights_sha256(weights_path)
    return f"torch-fidelity inception-v3-compat {FEATURES} (weights sha256:{digest[:16]})"


# -------------------------------------------------------------------------------------------- input


def inception_input(images: Any) -> Tensor:
    """Check ``images`` and return them as (B, 3, H, W) uint8, the input the Inception port expects.

    Float images in [0, 1] are scaled by 255 and rounded; grey images are repeated to RGB.

    Raises:
        TypeError: If ``images`` is not a tensor, or neither floating point nor uint8.
        ValueError: If ``images`` is not (B, 1 or 3, H, W), or is float with non-finite values or
            values outside [0, 1].
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"`images` must be a torch.Tensor of shape (B, C, H, W), but got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"`images` must have shape (B, C, H, W), but got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"`images` must have 1 or 3 channels, but got shape {tuple(images.shape)}")
    if images.dtype.is_floating_point and images.numel() > 0:
        if not torch.isfinite(images).all():
            raise ValueError("`images` must be finite, but got NaN or inf values")
        low, high = images.min().item(), images.max().item()
        if low < 0.0 or high > 1.0:
            raise ValueError(f"float `images` must lie in [0, 1], but got values in [{low:.4g}, {high:.4g}]")
        # Round, not truncate (torchmetrics truncates): uint8 → /255 → here gives back the same bytes.
        images = (images * 255.0).round_().to(torch.uint8)
    elif not images.dtype.is_floating_point and images.dtype != torch.uint8:
        raise TypeError(f"`images` must be float in [0, 1] or uint8 in [0, 255], but got dtype {images.dtype}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images


# ----------------------------------------------------------------------------- random stand-in weights


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
    repeated benchmark writes the ~100 MB file once.

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
