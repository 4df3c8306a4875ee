"""Fréchet Inception Distance, KID and precision/recall, with offline-safe weights and a real-data cache.

The feature extractor is the one torchmetrics' ``FrechetInceptionDistance`` runs: torch-fidelity's
port of the 2015 TensorFlow Inception-v3 (``inception-v3-compat``, 2048-d pool features), resized
with torch-fidelity's TF-1.x-compatible bilinear resize so the numbers equal torch-fidelity's
``calculate_metrics`` FID. On top of it this module adds what a training run needs:

* weights are found as explicit path → ``$TORCH_HOME/hub/checkpoints/`` → download, and the policy
  ``auto | required | off`` decides what happens when none can be had (offline machines, CI);
* real statistics (Σ features, Σ outer products, n, and the features themselves) are cached on disk,
  keyed by dataset fingerprint, resolution, sample count and extractor, so a run pays for them once;
* the same features give KID (Bińkowski et al. 2018) and precision/recall (Kynkäänniemi et al. 2019)
  through torch-fidelity's own implementations (:meth:`FID.diagnostics`), as StudioGAN reports them;
* every result names its extractor (:attr:`FID.extractor`), so a leaderboard never mixes FIDs
  measured by different networks.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import os
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torchmetrics import Metric
from torchmetrics.image.fid import NoTrainInceptionV3
from torchmetrics.utilities import rank_zero_warn
from torchmetrics.utilities.data import dim_zero_cat

from lightning_checkerboard._cache import user_cache_dir
from lightning_checkerboard._io import atomic_write_bytes

__all__ = [
    "FID",
    "FID_DIAGNOSTICS",
    "FID_POLICIES",
    "FIDUnavailableWarning",
    "INCEPTION_WEIGHTS_FILENAME",
    "OFFLINE_ENV_VAR",
    "default_fid_cache_dir",
    "inception_extractor_id",
    "inception_weights_status",
    "resolve_inception_weights",
]

FID_POLICIES = ("auto", "required", "off")
"""Allowed values of ``FID(policy=...)`` (and of the recipes' ``--fid`` flag)."""

FID_DIAGNOSTICS = ("fid", "kid", "kid_std", "precision", "recall")
"""Keys of :meth:`FID.diagnostics`."""

OFFLINE_ENV_VAR = "LIGHTNING_CHECKERBOARD_OFFLINE"
"""Set to anything but ``""``/``"0"`` to forbid the weights download (fails fast instead of timing out)."""

# torch-fidelity downloads through torch.hub, which stores the file under this name; looking for
# the same name lets a machine that ever ran torch-fidelity or torchmetrics' FID reuse its copy.
INCEPTION_WEIGHTS_FILENAME = os.path.basename(urlparse(URL_INCEPTION_V3).path)

_FEATURES = 2048
# 2: the cache file also holds the real features (for KID and precision/recall).
_CACHE_FORMAT = 2
# Rows of the distance matrices torch-fidelity's precision/recall holds at a time: 1024 x N floats.
_PRC_BATCH = 1024
_DOWNLOAD_TIMEOUT_S = 30.0
# Reasons already warned about in this process: several FID objects (validation, test, a callback)
# on an offline machine should produce one warning, not one per object.
_warned_reasons: set[str] = set()


class FIDUnavailableWarning(UserWarning):
    """Warned (once per reason and process) when ``policy="auto"`` finds no Inception weights."""


def default_fid_cache_dir() -> Path:
    """The ``fid`` folder of the package's user cache (see :func:`lightning_checkerboard._cache.user_cache_dir`)."""
    return user_cache_dir("fid")


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
        >>> f = tempfile.NamedTemporaryFile(suffix=".pth", delete=False).name
        >>> torch.save({}, f)
        >>> inception_weights_status(f)[1].startswith("explicit path")
        True
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise FileNotFoundError(
                f"`weights_path` must be an existing Inception-v3 state-dict file, but got {str(explicit)!r}"
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


def _weights_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def inception_extractor_id(weights_path: str | os.PathLike) -> str:
    """Name the feature extractor that a given weights file makes, for results and cache keys.

    The weights' SHA-256 is part of the name because the file name alone cannot tell the official
    weights from a local stand-in (see :mod:`lightning_checkerboard.metrics._inception`).

    Example:
        >>> import tempfile, torch
        >>> f = tempfile.NamedTemporaryFile(suffix=".pt", delete=False).name
        >>> torch.save({}, f)
        >>> inception_extractor_id(f)[:48]
        'torch-fidelity inception-v3-compat 2048 (weights'
    """
    digest = _weights_sha256(Path(weights_path))
    return f"torch-fidelity inception-v3-compat {_FEATURES} (weights sha256:{digest[:16]})"


def _global_rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def _as_uint8_rgb(images: Any) -> Tensor:
    """Check ``images`` and return them as (B, 3, H, W) uint8, the input the Inception port expects."""
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


def _covariance_root(sigma: Tensor) -> Tensor:
    """A factor L with L Lᵀ = Σ (L = U Λ^½ from ``eigh``; negative eigenvalues are round-off of zeros)."""
    evals, evecs = torch.linalg.eigh(sigma)
    return evecs * evals.clamp(min=0).sqrt()


def _frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor, root1: Tensor | None = None) -> Tensor:
    """‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr sqrt(Σ1 Σ2), with the last term from symmetric eigensolvers.

    With Σ1 = L Lᵀ, Σ1 Σ2 = L (Lᵀ Σ2) has the non-zero eigenvalues of Lᵀ Σ2 L, which is symmetric
    PSD. So tr sqrt(Σ1 Σ2) = Σ sqrt(eigvalsh(Lᵀ Σ2 L)): symmetric eigensolvers instead of the general
    one torchmetrics and torch-fidelity call on Σ1 Σ2, which at 2048 features takes tens of seconds
    on a laptop CPU instead of one or two, and no complex round-off to discard. Negative eigenvalues
    are round-off of exact zeros (singular covariances when there are fewer samples than features).
    ``root1`` (L for Σ1) may be passed in: the real statistics' factor is reused across computations.
    """
    diff = mu1 - mu2
    root1 = _covariance_root(sigma1) if root1 is None else root1
    inner = root1.T @ sigma2 @ root1
    tr_sqrt = torch.linalg.eigvalsh(inner).clamp(min=0).sqrt().sum()
    return diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2.0 * tr_sqrt


@functools.lru_cache(maxsize=1)
def _ordering_direction() -> Tensor:
    return torch.randn(_FEATURES, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _canonical_order(features: Tensor) -> Tensor:
    """Rows of ``features`` sorted by their projection on a fixed random direction.

    KID draws its subsets by row index; sorting first makes the subsets, and so KID, independent of
    the order in which images were batched or gathered from processes.
    """
    key = features.double() @ _ordering_direction().to(features.device)
    return features[torch.argsort(key, stable=True)]


class FID(Metric):
    """Fréchet Inception Distance over torch-fidelity's Inception-v3, with an offline policy and a real-stats cache.

    States are the sums torchmetrics' ``FrechetInceptionDistance`` keeps (Σ features, Σ outer
    products, n, for real and for generated images), reduced with ``sum``, so DDP gives exactly the
    single-process result. Real statistics survive :meth:`reset` unless ``reset_real_features=True``.

    When no weights can be had and ``policy="auto"``, the metric warns once
    (:class:`FIDUnavailableWarning`), ignores updates, and :meth:`compute` returns ``nan``;
    :attr:`available` is ``False`` and :attr:`unavailable_reason` says why. Log ``nan`` or read
    :meth:`result_info` to record "unavailable" with its reason.

    :meth:`diagnostics` adds, from the same features, KID and precision/recall computed by
    torch-fidelity's ``kid_features_to_metric`` and ``prc_features_to_metric``:

    - ``kid``, ``kid_std``: mean and standard deviation of the unbiased MMD² with the cubic polynomial
      kernel over ``kid_subsets`` random subsets of ``min(kid_subset_size, n_real, n_generated)``
      images per set (torch-fidelity's defaults: 100 subsets of 1000, seed 2020). Features are put in
      a canonical order first, so KID does not depend on batching or on how images were spread over
      processes. With fewer images than ``kid_subset_size``, every subset holds all of them and
      ``kid_std`` is 0.
    - ``precision``, ``recall``: the improved precision and recall of Kynkäänniemi et al. (2019) with
      ``prc_neighborhood``-nearest-neighbour balls (k = 3). As in StudioGAN they are measured on the
      Inception pool features; the paper and torch-fidelity's default use VGG-16, so values are not
      comparable with VGG-16 ones.

    Memory: besides the sums (2 x 32 MB for the 2048² products), the metric keeps every image's
    features for KID and precision/recall: 2048 float32 values, 8 KB, per image and set (82 MB per
    10,000 images), synchronised by concatenation (``dist_reduce_fx="cat"``); the real-statistics
    cache file grows by the same 8 KB per real image. Precision/recall hold ``1024 x N`` distances at
    a time, KID three ``subset x subset`` kernel matrices. ``keep_features=False`` keeps only the
    sums: FID alone. Under DDP with ``keep_features=True`` every process must update both sets at
    least once before synchronising (an empty feature list has no shape to gather with).

    Args:
        policy: ``"auto"`` (warn and go on when no weights are found), ``"required"`` (raise), or
            ``"off"`` (inert: no weights looked up, updates ignored, ``compute()`` is ``nan``).
        weights_path: Explicit Inception-v3 weights file; default: torch hub cache, then download.
        cache_dir: Directory for cached real statistics; default :func:`default_fid_cache_dir`.
        download: Whether the weights may be downloaded when not found locally.
        reset_real_features: Whether :meth:`reset` also clears the real statistics.
        keep_features: Whether to keep every image's features for :meth:`diagnostics`.
        kid_subsets: Number of random subsets KID averages over.
        kid_subset_size: Largest number of images per set in one KID subset.
        prc_neighborhood: The k of precision/recall's k-nearest-neighbour balls.
        kwargs: Passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``, ``process_group``).

    Raises:
        ValueError: If ``policy`` is not one of ``"auto"``, ``"required"``, ``"off"``, or a KID or
            precision/recall option is out of range.
        TypeError: If ``download``, ``reset_real_features`` or ``keep_features`` is not a bool.
        FileNotFoundError: If ``weights_path`` is given but does not exist.
        RuntimeError: If ``policy="required"`` and no weights can be found.

    Shape:
        - ``images``: (B, C, H, W) with C ∈ {1, 3} (grey is repeated to RGB), float in [0, 1] or uint8.
          Images are resized to 299×299 inside the extractor, as in torch-fidelity.

    Example:
        >>> import tempfile, torch
        >>> from lightning_checkerboard.metrics._inception import write_random_inception_weights
        >>> weights = write_random_inception_weights(tempfile.mkdtemp() + "/inception.pth")
        >>> fid = FID(weights_path=weights, cache_dir=tempfile.mkdtemp())
        >>> fid.use_real_cache("my-dataset-v1", resolution=32, num_samples=4)
        False
        >>> fid.update(torch.rand(4, 3, 32, 32), real=True)
        >>> fid.update(torch.rand(4, 3, 32, 32), real=False)
        >>> bool(fid.compute() >= 0)
        True
        >>> fid.extractor[:34]
        'torch-fidelity inception-v3-compat'
        >>> sorted(fid.diagnostics())
        ['fid', 'kid', 'kid_std', 'precision', 'recall']
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    real_features_sum: Tensor
    real_features_cov_sum: Tensor
    real_features_num_samples: Tensor
    fake_features_sum: Tensor
    fake_features_cov_sum: Tensor
    fake_features_num_samples: Tensor
    real_features: list[Tensor] | Tensor
    fake_features: list[Tensor] | Tensor

    def __init__(
        self,
        policy: str = "auto",
        weights_path: str | os.PathLike | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        download: bool = True,
        reset_real_features: bool = False,
        keep_features: bool = True,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        prc_neighborhood: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if policy not in FID_POLICIES:
            raise ValueError(f"`policy` must be one of {', '.join(map(repr, FID_POLICIES))}, but got {policy!r}")
        for name, value in (
            ("download", download),
            ("reset_real_features", reset_real_features),
            ("keep_features", keep_features),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"`{name}` must be a bool, but got {value!r}")
        for name, value, minimum in (
            ("kid_subsets", kid_subsets, 1),
            ("kid_subset_size", kid_subset_size, 2),
            ("prc_neighborhood", prc_neighborhood, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"`{name}` must be an int >= {minimum}, but got {value!r}")
        self.policy = policy
        self.reset_real_features = reset_real_features
        self.keep_features = keep_features
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.prc_neighborhood = prc_neighborhood
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.weights_path: Path | None = None
        self.extractor: str | None = None
        self.unavailable_reason: str | None = None
        self._real_cache_key: dict[str, Any] | None = None
        self._real_from_cache = False
        self._real_cache_written = False
        # (real_features_sum, n) the factor was computed for, and the factor L of the real covariance:
        # real statistics rarely change within a run, so each compute() needs one eigensolver, not two.
        self._real_root_memo: tuple[Tensor, int, Tensor] | None = None
        self._real_sizes: set[tuple[int, int]] = set()

        if policy == "off":
            self.unavailable_reason = "FID disabled (policy='off')"
            return
        weights, message = inception_weights_status(weights_path, download=download)
        if weights is None:
            if policy == "required":
                raise RuntimeError(
                    f"FID needs Inception-v3 weights and policy='required', but {message}; pass `weights_path`,"
                    f" put torch-fidelity's {INCEPTION_WEIGHTS_FILENAME} there, or use policy='auto'"
                )
            self.unavailable_reason = message
            if message not in _warned_reasons:
                _warned_reasons.add(message)
                rank_zero_warn(f"FID is unavailable and will be reported as nan: {message}", FIDUnavailableWarning)
            return

        self.weights_path = weights
        self.extractor = inception_extractor_id(weights)
        # torchmetrics' wrapper of torch-fidelity's network stays in eval mode when Lightning calls
        # .train() on the parent module; antialias=False selects torch-fidelity's TF-1.x resize.
        self.inception = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=[str(_FEATURES)],
            feature_extractor_weights_path=str(weights),
            antialias=False,
        )
        for kind in ("real", "fake"):
            self.add_state(f"{kind}_features_sum", torch.zeros(_FEATURES, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(
                f"{kind}_features_cov_sum",
                torch.zeros(_FEATURES, _FEATURES, dtype=torch.float64),
                dist_reduce_fx="sum",
            )
            self.add_state(f"{kind}_features_num_samples", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
            if keep_features:
                self.add_state(f"{kind}_features", [], dist_reduce_fx="cat")

    @property
    def available(self) -> bool:
        """Whether the metric has an extractor and measures anything."""
        return self.extractor is not None

    def update(self, images: Tensor, real: bool) -> None:
        """Add a batch of real or generated images.

        Real images are skipped without running the extractor once the real statistics came from
        the cache (see :meth:`use_real_cache`); every update is ignored when the metric is unavailable.

        Args:
            images: (B, C, H, W), C ∈ {1, 3}, float in [0, 1] or uint8.
            real: ``True`` for dataset images, ``False`` for generated ones.

        Raises:
            TypeError: If ``images`` is not a float/uint8 tensor or ``real`` is not a bool.
            ValueError: If ``images`` has the wrong shape, non-finite values or floats outside [0, 1].
        """
        if not self.available:
            return
        if not isinstance(real, bool):
            raise TypeError(f"`real` must be a bool, but got {type(real).__name__}")
        images = _as_uint8_rgb(images)
        if real and self._real_from_cache:
            return
        if images.shape[0] == 0:
            return
        raw = self.inception(images.to(self.real_features_sum.device))
        features = raw.double()
        kind = "real" if real else "fake"
        if self.keep_features:
            # float32, as the extractor gives them and as torch-fidelity's KID and PRC take them.
            getattr(self, f"{kind}_features").append(raw.float())
        setattr(self, f"{kind}_features_sum", getattr(self, f"{kind}_features_sum") + features.sum(dim=0))
        setattr(self, f"{kind}_features_cov_sum", getattr(self, f"{kind}_features_cov_sum") + features.T @ features)
        setattr(self, f"{kind}_features_num_samples", getattr(self, f"{kind}_features_num_samples") + len(features))
        if real:
            self._real_sizes.add((int(images.shape[-2]), int(images.shape[-1])))

    def compute(self) -> Tensor:
        """Return the FID (float32 scalar), or ``nan`` when the metric is unavailable.

        Also writes the real statistics to the cache when :meth:`use_real_cache` missed and the
        accumulated real images match its key (on global rank zero, after DDP synchronisation).

        Raises:
            RuntimeError: If fewer than two real or two generated images were seen.
        """
        if not self.available:
            return torch.tensor(float("nan"))
        return self._fid()

    def _check_counts(self, minimum: int, what: str) -> tuple[int, int]:
        n_real, n_fake = int(self.real_features_num_samples), int(self.fake_features_num_samples)
        if n_real < minimum or n_fake < minimum:
            raise RuntimeError(
                f"{what} needs at least {minimum} real and {minimum} generated images, but got {n_real} real"
                f" and {n_fake} generated"
            )
        return n_real, n_fake

    def _fid(self) -> Tensor:
        n_real, n_fake = self._check_counts(2, "FID")
        mu_real = self.real_features_sum / n_real
        mu_fake = self.fake_features_sum / n_fake
        cov_real = (self.real_features_cov_sum - n_real * torch.outer(mu_real, mu_real)) / (n_real - 1)
        cov_fake = (self.fake_features_cov_sum - n_fake * torch.outer(mu_fake, mu_fake)) / (n_fake - 1)
        root_real = self._real_root(n_real, cov_real)
        self._maybe_write_real_cache(n_real, root_real)
        return _frechet_distance(mu_real, cov_real, mu_fake, cov_fake, root1=root_real).float()

    def diagnostics(self) -> dict[str, Tensor]:
        """FID, KID (mean and std over subsets), precision and recall, synchronised across processes.

        Keys: :data:`FID_DIAGNOSTICS`; float32 scalar tensors, ready for ``self.log_dict``. All are
        ``nan`` when the metric is unavailable. Writes the real-statistics cache like :meth:`compute`.

        Raises:
            RuntimeError: If the metric was built with ``keep_features=False``, or fewer than
                ``prc_neighborhood + 1`` (at least 2) real or generated images were seen.
        """
        if not self.available:
            return {key: torch.tensor(float("nan")) for key in FID_DIAGNOSTICS}
        if not self.keep_features:
            raise RuntimeError("KID and precision/recall need the features: build FID with keep_features=True")
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            n_real, n_fake = self._check_counts(max(2, self.prc_neighborhood + 1), "KID and precision/recall")
            fid = self._fid()
            real = _canonical_order(dim_zero_cat(self.real_features))
            fake = _canonical_order(dim_zero_cat(self.fake_features))
            # torch-fidelity's convention: input 1 is generated, input 2 is real.
            kid = kid_features_to_metric(
                fake,
                real,
                kid_subsets=self.kid_subsets,
                kid_subset_size=min(self.kid_subset_size, n_real, n_fake),
                verbose=False,
            )
            prc = prc_features_to_metric(
                fake, real, prc_neighborhood=self.prc_neighborhood, prc_batch_size=_PRC_BATCH, save_cpu_ram=True,
                verbose=False,
            )
        values = {
            "fid": fid,
            "kid": kid[KEY_METRIC_KID_MEAN],
            "kid_std": kid[KEY_METRIC_KID_STD],
            "precision": prc[KEY_METRIC_PRECISION],
            "recall": prc[KEY_METRIC_RECALL],
        }
        return {key: torch.as_tensor(value, dtype=torch.float32).detach().cpu().clone() for key, value in values.items()}

    def _real_root(self, n_real: int, cov_real: Tensor) -> Tensor:
        memo = self._real_root_memo
        if (
            memo is not None
            and memo[1] == n_real
            and memo[0].device == self.real_features_sum.device
            and torch.equal(memo[0], self.real_features_sum)
        ):
            return memo[2]
        root = _covariance_root(cov_real)
        self._real_root_memo = (self.real_features_sum.clone(), n_real, root)
        return root

    def reset(self) -> None:
        """Clear the generated-image statistics (and the real ones if ``reset_real_features``)."""
        if not self.available or self.reset_real_features:
            super().reset()
            self._real_from_cache = False
            self._real_root_memo = None
            self._real_sizes.clear()
            return
        # A shallow copy of list states: Metric.reset() empties lists in place.
        real = {name: copy.copy(getattr(self, name)) for name in self._real_state_names()}
        super().reset()
        for name, value in real.items():
            setattr(self, name, value)

    def result_info(self) -> dict[str, Any]:
        """Describe the measurement for a result record: extractor, availability, reason, sample counts.

        Call after :meth:`compute` in DDP so the counts are the synchronised ones.
        """
        info: dict[str, Any] = {
            "fid_available": self.available,
            "fid_extractor": self.extractor,
            "fid_unavailable_reason": self.unavailable_reason,
        }
        if self.available:
            info["fid_real_samples"] = int(self.real_features_num_samples)
            info["fid_fake_samples"] = int(self.fake_features_num_samples)
            info["fid_real_from_cache"] = self._real_from_cache
        return info

    # ---------------------------------------------------------------- real-statistics cache

    def use_real_cache(self, fingerprint: str, resolution: int | tuple[int, int], num_samples: int) -> bool:
        """Key the real statistics and load them from the cache when present.

        On a hit the real statistics are set and later ``update(..., real=True)`` calls return
        without running the extractor, so the caller may skip its real-data loop (the return value
        says so). On a miss, :meth:`compute` writes the cache once exactly ``num_samples`` real
        images of this resolution have been seen. In DDP, call this on every rank: only rank zero
        holds the loaded sums, so the ``sum`` reduction counts them once.

        Args:
            fingerprint: Identifies the real data (e.g. a hash of dataset name, split and preprocessing).
            resolution: Image size as given to :meth:`update`, ``H`` or ``(H, W)``.
            num_samples: Number of real images the statistics cover.

        Returns:
            Whether the real statistics were loaded from the cache (always ``False`` when unavailable).

        Raises:
            ValueError: If an argument is empty, non-positive or of the wrong form.
        """
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ValueError(f"`fingerprint` must be a non-empty string, but got {fingerprint!r}")
        size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"`resolution` must be a positive int or a pair (H, W) of them, but got {resolution!r}")
        if not isinstance(num_samples, int) or num_samples < 2:
            raise ValueError(f"`num_samples` must be an int >= 2, but got {num_samples!r}")
        if not self.available:
            return False
        self._real_cache_key = {
            "fingerprint": fingerprint,
            "resolution": list(size),
            "num_samples": num_samples,
            "extractor_sha256": _weights_sha256(self.weights_path),
            "features": self.keep_features,
        }
        cached = self._read_real_cache()
        if cached is None:
            return False
        mine = _global_rank() == 0
        device = self.real_features_sum.device
        self.real_features_sum = cached["features_sum"].to(device) if mine else torch.zeros_like(self.real_features_sum)
        self.real_features_cov_sum = (
            cached["features_cov_sum"].to(device) if mine else torch.zeros_like(self.real_features_cov_sum)
        )
        self.real_features_num_samples = torch.tensor(num_samples if mine else 0, device=device)
        if self.keep_features:
            # An empty (0, 2048) block, not an empty list: ranks gather tensors of one rank (ndim).
            self.real_features = [cached["features"].to(device) if mine else torch.empty(0, _FEATURES, device=device)]
        # Keyed on the global sums, which is what every rank sees in compute() after synchronisation.
        self._real_root_memo = (cached["features_sum"].to(device), num_samples, cached["covariance_root"].to(device))
        self._real_from_cache = True
        return True

    def real_cache_path(self) -> Path:
        """Return the cache file for the key set by :meth:`use_real_cache`.

        Raises:
            RuntimeError: If no key was set.
        """
        if self._real_cache_key is None:
            raise RuntimeError("no real-statistics key: call `use_real_cache(fingerprint, resolution, num_samples)`")
        key = self._real_cache_key
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key["fingerprint"])[:48]
        h, w = key["resolution"]
        digest = hashlib.sha256(repr(sorted(key.items())).encode()).hexdigest()[:16]
        directory = self.cache_dir if self.cache_dir is not None else default_fid_cache_dir()
        return directory / f"{readable}-{h}x{w}-n{key['num_samples']}-{digest}.pt"

    def _real_state_names(self) -> tuple[str, ...]:
        names = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")
        return (*names, "real_features") if self.keep_features else names

    def _read_real_cache(self) -> dict[str, Any] | None:
        path = self.real_cache_path()
        if not path.is_file():
            return None
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            valid = (
                cached.get("format") == _CACHE_FORMAT
                and cached.get("key") == self._real_cache_key
                and tuple(cached["features_sum"].shape) == (_FEATURES,)
                and tuple(cached["features_cov_sum"].shape) == (_FEATURES, _FEATURES)
                and tuple(cached["covariance_root"].shape) == (_FEATURES, _FEATURES)
                and (
                    not self.keep_features
                    or tuple(cached["features"].shape) == (self._real_cache_key["num_samples"], _FEATURES)
                )
            )
        except Exception as err:  # a truncated or foreign file must cost a recomputation, not the run
            rank_zero_warn(f"ignoring unreadable FID cache file {path}: {err}", UserWarning)
            return None
        if not valid:
            rank_zero_warn(f"ignoring FID cache file {path}: its key does not match", UserWarning)
            return None
        return cached

    def _maybe_write_real_cache(self, n_real: int, root_real: Tensor) -> None:
        key = self._real_cache_key
        if key is None or self._real_from_cache or self._real_cache_written or _global_rank() != 0:
            return
        sizes = sorted(self._real_sizes)
        if n_real != key["num_samples"] or sizes != [tuple(key["resolution"])]:
            rank_zero_warn(
                f"not caching FID real statistics: the key says {key['num_samples']} images of size"
                f" {tuple(key['resolution'])}, but {n_real} images of sizes {sizes} were seen",
                UserWarning,
            )
            return
        path = self.real_cache_path()
        payload = {
            "format": _CACHE_FORMAT,
            "key": key,
            "extractor": self.extractor,
            "features_sum": self.real_features_sum.detach().cpu(),
            "features_cov_sum": self.real_features_cov_sum.detach().cpu(),
            # Derived, but stored: it saves the cached run one of its two 2048² eigensolvers.
            "covariance_root": root_real.detach().cpu(),
        }
        if self.keep_features:
            payload["features"] = dim_zero_cat(self.real_features).detach().cpu()
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write_bytes(path, buffer.getvalue())  # a crash or a concurrent reader never sees half a file
        self._real_cache_written = True
