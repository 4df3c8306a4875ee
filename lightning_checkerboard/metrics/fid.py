"""Fréchet Inception Distance, KID and precision/recall, with offline-safe weights and a real-data cache.

The feature extractor is the one torchmetrics' ``FrechetInceptionDistance`` runs: torch-fidelity's
port of the 2015 TensorFlow Inception-v3 (``inception-v3-compat``, 2048-d pool features), resized
with torch-fidelity's TF-1.x-compatible bilinear resize so the numbers equal torch-fidelity's
``calculate_metrics`` FID. :class:`FID` is the Metric; the pieces it is built from live beside it:

* :mod:`~lightning_checkerboard.metrics._inception`: where the weights come from (explicit path →
  ``$TORCH_HOME/hub/checkpoints/`` → download), the extractor's name, the input it takes;
* :mod:`~lightning_checkerboard.metrics._fid_cache`: real statistics cached on disk, keyed by dataset
  fingerprint, resolution, sample count and extractor, so a run pays for them once;
* :mod:`~lightning_checkerboard.metrics._kid_prc`: KID (Bińkowski et al. 2018) and precision/recall
  (Kynkäänniemi et al. 2019) from the same features, through torch-fidelity's implementations;
* :func:`~lightning_checkerboard.functional.frechet.frechet_distance`: the distance itself.

The weights search, the warning and the cache folder are importable from here as well.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from lightning_checkerboard._validation import check_choice, check_int
from lightning_checkerboard.functional.frechet import covariance_root, frechet_distance
from lightning_checkerboard.metrics._fid_cache import RealStatisticsCache, default_fid_cache_dir
from lightning_checkerboard.metrics._inception import (
    FEATURES,
    INCEPTION_WEIGHTS_FILENAME,
    OFFLINE_ENV_VAR,
    FIDUnavailableWarning,
    InceptionWeightsError,
    build_inception,
    extractor_id_of_digest,
    inception_extractor_id,
    inception_input,
    inception_weights_status,
    load_inception_weights,
    resolve_inception_weights,
    warn_unavailable_once,
)
from lightning_checkerboard.metrics._kid_prc import kid_precision_recall

__all__ = [
    "FID",
    "FID_DIAGNOSTICS",
    "FID_POLICIES",
    "FIDUnavailableWarning",
    "INCEPTION_WEIGHTS_FILENAME",
    "InceptionWeightsError",
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


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool; got {value!r}.")
    return value


class FID(RealStatisticsCache, Metric):
    """Fréchet Inception Distance over torch-fidelity's Inception-v3, with an offline policy and a real-stats cache.

    States are the sums torchmetrics' ``FrechetInceptionDistance`` keeps (Σ features, Σ outer
    products, n, for real and for generated images), reduced with ``sum``, so DDP gives exactly the
    single-process result. Real statistics survive :meth:`reset` unless ``reset_real_features=True``.

    The weights are read as data (:func:`~lightning_checkerboard.metrics._inception.load_inception_weights`):
    a file whose unpickling would call a function, or that is not exactly the extractor's tensors, is
    refused in one line and nothing in it runs.

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
      ``kid_std`` is only float rounding between the subsets' sums (about 2e-7), not exactly 0.
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
        weights_path: Explicit Inception-v3 weights file; default: torch hub cache, then download. A
            file in the torch hub cache that is not the extractor's weights makes FID unavailable
            (``"auto"``) or raises (``"required"``); an explicit one that is not always raises.
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
        InceptionWeightsError: (a ``ValueError``) If ``weights_path`` is given, or ``policy="required"``,
            and the file is not Inception-v3 weights read as data: one line naming the file.
        RuntimeError: If ``policy="required"`` and no weights can be found.

    Shape:
        - ``images``: (B, C, H, W) with C ∈ {1, 3} (grey is repeated to RGB), float in [0, 1] or uint8.
          Images are resized to 299×299 inside the extractor, as in torch-fidelity.

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> from lightning_checkerboard.metrics._inception import write_random_inception_weights
        >>> tmp = tempfile.TemporaryDirectory()
        >>> weights = write_random_inception_weights(Path(tmp.name, "inception.pth"))
        >>> fid = FID(weights_path=weights, cache_dir=Path(tmp.name, "fid-cache"))
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
        >>> tmp.cleanup()
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
        self.policy = check_choice(policy, "policy", FID_POLICIES)
        download = _check_bool(download, "download")
        self.reset_real_features = _check_bool(reset_real_features, "reset_real_features")
        self.keep_features = _check_bool(keep_features, "keep_features")
        self.kid_subsets = check_int(kid_subsets, "kid_subsets", minimum=1)
        self.kid_subset_size = check_int(kid_subset_size, "kid_subset_size", minimum=2)
        self.prc_neighborhood = check_int(prc_neighborhood, "prc_neighborhood", minimum=1)
        self.weights_path: Path | None = None
        self.weights_sha256: str | None = None
        self.extractor: str | None = None
        self.unavailable_reason: str | None = None
        self._init_real_cache(cache_dir)
        # (real_features_sum, n) the factor was computed for, and the factor L of the real covariance:
        # real statistics rarely change within a run, so each compute() needs one eigensolver, not two.
        self._real_root_memo: tuple[Tensor, int, Tensor] | None = None

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
            warn_unavailable_once(message)
            return

        try:
            loaded = load_inception_weights(weights)
        except InceptionWeightsError as err:
            if weights_path is not None or policy == "required":
                raise  # an explicit file is the user's choice: a wrong one is an error, never skipped
            # The torch hub cache's file is whatever some program left there: unusable, FID is unavailable.
            self.unavailable_reason = str(err).rstrip(".")
            warn_unavailable_once(self.unavailable_reason)
            return

        self.weights_path = weights
        self.weights_sha256 = loaded.sha256
        self.extractor = extractor_id_of_digest(loaded.sha256)
        # torchmetrics' wrapper of torch-fidelity's network stays in eval mode when Lightning calls
        # .train() on the parent module; antialias=False selects torch-fidelity's TF-1.x resize. It is
        # built from the state dict read above as data: torch-fidelity never opens the file itself.
        self.inception = build_inception(loaded.state_dict)
        del loaded
        for kind in ("real", "fake"):
            self.add_state(f"{kind}_features_sum", torch.zeros(FEATURES, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(
                f"{kind}_features_cov_sum",
                torch.zeros(FEATURES, FEATURES, dtype=torch.float64),
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
            raise TypeError(f"real must be a bool; got {real!r}.")
        images = inception_input(images)
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
        return frechet_distance(mu_real, cov_real, mu_fake, cov_fake, root1=root_real).float()

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
            self._check_counts(max(2, self.prc_neighborhood + 1), "KID and precision/recall")
            values = {"fid": self._fid()}
            values |= kid_precision_recall(
                dim_zero_cat(self.real_features),
                dim_zero_cat(self.fake_features),
                kid_subsets=self.kid_subsets,
                kid_subset_size=self.kid_subset_size,
                prc_neighborhood=self.prc_neighborhood,
            )
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
        root = covariance_root(cov_real)
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

    def _real_state_names(self) -> tuple[str, ...]:
        names = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")
        return (*names, "real_features") if self.keep_features else names
