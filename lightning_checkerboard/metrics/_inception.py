"""torch-fidelity's Inception-v3 for FID: finding its weights, naming it, feeding it, and a random stand-in.

The feature extractor is the one torchmetrics' ``FrechetInceptionDistance`` runs: torch-fidelity's
port of the 2015 TensorFlow Inception-v3 (``inception-v3-compat``, :data:`FEATURES`-d pool features).
This module holds what :class:`~lightning_checkerboard.metrics.fid.FID` needs to know about it:

* where its weights come from: an explicit path, then ``$TORCH_HOME/hub/checkpoints/`` under the
  file name torch-fidelity downloads, then a download with a timeout (:func:`inception_weights_status`);
  when none can be had, :func:`warn_unavailable_once` warns with :class:`FIDUnavailableWarning`;
* reading them as data (:func:`load_inception_weights`): a weights file is any file a user may have
  been sent, so it is read as a bounded regular file, unpickled weights-only (tensors, containers,
  numbers, text; never a function call), and accepted only when it holds exactly the tensors of the
  extractor, each of its shape and dtype; :func:`build_inception` then makes the extractor from that
  state dict, without torch-fidelity ever opening the file (its own loader unpickles anything);
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
import pickle
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchmetrics.image.fid import NoTrainInceptionV3
from torchmetrics.utilities import rank_zero_warn

from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard._untrusted import UntrustedFileError, open_regular, read_bytes

__all__ = [
    "FEATURES",
    "FIDUnavailableWarning",
    "INCEPTION_WEIGHTS_FILENAME",
    "MAX_WEIGHTS_BYTES",
    "OFFLINE_ENV_VAR",
    "InceptionWeights",
    "InceptionWeightsError",
    "build_inception",
    "extractor_id_of_digest",
    "inception_extractor_id",
    "inception_input",
    "inception_state_dict_spec",
    "inception_weights_status",
    "load_inception_weights",
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

#: The largest weights file read: torch-fidelity's is about 91 MB; anything far larger is not it.
MAX_WEIGHTS_BYTES = 200 * 2**20

_DOWNLOAD_TIMEOUT_S = 30.0
# Reasons already warned about in this process: several FID objects (validation, test, a callback)
# on an offline machine should produce one warning, not one per object.
_warned_reasons: set[str] = set()


class FIDUnavailableWarning(UserWarning):
    """Warned (once per reason and process) when ``policy="auto"`` finds no Inception weights."""


class InceptionWeightsError(UntrustedFileError):
    """A weights file that is not torch-fidelity's Inception-v3 state dict, read as data; one line naming it."""


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
    with open_regular(path) as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a weights file, hashed once per file version (path, size, mtime) and process.

    Raises:
        UntrustedFileError: ``path`` is not a regular file (a FIFO would never end the read).
    """
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
    return extractor_id_of_digest(weights_sha256(weights_path))


def extractor_id_of_digest(digest: str) -> str:
    """:func:`inception_extractor_id` of weights whose hex SHA-256 is ``digest``."""
    return f"torch-fidelity inception-v3-compat {FEATURES} (weights sha256:{digest[:16]})"


# ------------------------------------------------------------------------------- weights as data


class InceptionWeights(NamedTuple):
    """A weights file read and checked by :func:`load_inception_weights`."""

    state_dict: dict[str, Tensor]
    """The extractor's tensors, by name."""
    sha256: str
    """The hex SHA-256 of the bytes the state dict was read from."""


def _placeholder_stream() -> io.BytesIO:
    # torch-fidelity's constructor always unpickles what it is given: an empty dict of our own making.
    buffer = io.BytesIO()
    torch.save({}, buffer)
    buffer.seek(0)
    return buffer


class _InceptionV3(NoTrainInceptionV3):
    """torchmetrics' never-training Inception-v3, made without reading any weights file.

    torch-fidelity's constructor declares the layers, then unpickles a state dict from the path it is
    given with ``weights_only=False`` and loads it. Here it is given an in-memory empty dict of our
    own, and the load during construction is skipped, so the layers keep their initialisation until
    :func:`build_inception` loads a checked state dict into them.
    """

    def __init__(self) -> None:
        self.__dict__["_constructing"] = True  # before nn.Module.__init__: a plain attribute
        super().__init__(name="inception-v3-compat", features_list=[str(FEATURES)],
                         feature_extractor_weights_path=_placeholder_stream(), antialias=False)
        self.__dict__["_constructing"] = False

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: D102 - see the class docstring
        if self.__dict__.get("_constructing"):
            return None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


@functools.lru_cache(maxsize=1)
def inception_state_dict_spec() -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of every tensor of the extractor's state dict (a fresh extractor's, on ``meta``)."""
    with torch.device("meta"):
        net = _InceptionV3()
    return {name: (tuple(tensor.shape), tensor.dtype) for name, tensor in net.state_dict().items()}


#: Tensors a state dict may leave out: BatchNorm's step counters, which loading fills in (files saved
#: before PyTorch 0.4.1 have none) and which the extractor, always in eval mode, never reads.
_OPTIONAL_SUFFIX = ".num_batches_tracked"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "a scalar"


def _mismatch_sentence(path: str | os.PathLike, state: Mapping[Any, Any]) -> str | None:
    """``None`` when ``state`` holds exactly the extractor's tensors, else one sentence saying how it differs."""
    spec = inception_state_dict_spec()
    keys = list(state)
    unexpected = [k for k in keys if k not in spec]
    missing = [k for k in spec if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    wrong: list[str] = []
    for name in keys:
        if name not in spec:
            continue
        value, (shape, dtype) = state[name], spec[name]
        if not isinstance(value, Tensor) or value.layout != torch.strided:
            wrong.append(f"{name} is a {type(value).__name__}, not a dense tensor")
        elif tuple(value.shape) != shape or value.dtype != dtype:
            wrong.append(f"{name} is {_shape_text(tuple(value.shape))} {str(value.dtype).removeprefix('torch.')}, "
                         f"not {_shape_text(shape)} {str(dtype).removeprefix('torch.')}")
    if not (unexpected or missing or wrong):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing tensor{'s' * (len(missing) != 1)}, e.g. {missing[0]}")
    if unexpected:
        shown = " ".join(repr(unexpected[0])[:80].split())
        parts.append(f"{len(unexpected)} unexpected, e.g. {shown}")
    if wrong:
        parts.append(f"{len(wrong)} of another kind, e.g. {wrong[0]}")
    return f"{path}: not Inception-v3 weights ({'; '.join(parts)})."


def _unpickling_reason(err: BaseException) -> str:
    """A short reason for a failed weights-only load (torch's own message spans paragraphs)."""
    if isinstance(err, pickle.UnpicklingError):
        return "it holds objects other than tensors, and loading those could run code"
    lines = [" ".join(line.split()) for line in str(err).splitlines() if line.strip()]
    return (lines[0][:200] if lines else type(err).__name__).rstrip(".")


def load_inception_weights(path: str | os.PathLike) -> InceptionWeights:
    """Read torch-fidelity's Inception-v3 weights from ``path`` as data, and check they are exactly that.

    The file must be a regular file of at most :data:`MAX_WEIGHTS_BYTES` (a FIFO or a device is
    refused without blocking). It is unpickled with ``torch.load(..., weights_only=True)``, so a
    pickle that names a function is refused and the function is never called, and the result must be
    a mapping of exactly the extractor's tensor names to tensors of its shapes and dtypes (BatchNorm's
    ``num_batches_tracked`` counters may be absent). The bytes are read once: the SHA-256 returned is
    that of the state dict loaded.

    Args:
        path: the weights file (``--fid-weights``, or the torch hub cache's copy).

    Returns:
        The state dict and the file's SHA-256.

    Raises:
        InceptionWeightsError: anything else, in one line that names ``path`` (an
            :class:`~lightning_checkerboard._untrusted.UntrustedFileError`, hence a ``ValueError``).

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> bad = Path(tmp.name, "bad.pth")
        >>> torch.save({"fc.weight": torch.zeros(2, 2)}, bad)
        >>> load_inception_weights(bad)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        lightning_checkerboard.metrics._inception.InceptionWeightsError: .../bad.pth: not Inception-v3 weights (471 missing ...).
        >>> tmp.cleanup()
    """
    try:
        data = read_bytes(path, max_bytes=MAX_WEIGHTS_BYTES)
    except InceptionWeightsError:
        raise
    except UntrustedFileError as err:
        raise InceptionWeightsError(str(err)) from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike: the file is not plain weights
        reason = _unpickling_reason(err)
        raise InceptionWeightsError(f"{path}: not a weights file that loads as data ({reason}).") from None
    if not isinstance(state, Mapping):
        raise InceptionWeightsError(f"{path}: not Inception-v3 weights (it holds a {type(state).__name__}, "
                                    "not a state dict).")
    problem = _mismatch_sentence(path, state)
    if problem is not None:
        raise InceptionWeightsError(problem)
    return InceptionWeights({str(k): v for k, v in state.items()}, digest)


def build_inception(state_dict: Mapping[str, Tensor]) -> NoTrainInceptionV3:
    """torchmetrics' ``NoTrainInceptionV3`` (TF-1.x resize, 2048-d pool features) holding ``state_dict``.

    ``state_dict`` should come from :func:`load_inception_weights`; it is loaded strictly. No file is
    read here.
    """
    net = _InceptionV3()
    net.load_state_dict(dict(state_dict), strict=True)
    return net


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
    # fork_rng keeps the caller's global RNG stream untouched by our seeding. The extractor's own
    # layer list is reused (not re-declared), so the keys cannot drift from torch-fidelity's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _InceptionV3()
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
