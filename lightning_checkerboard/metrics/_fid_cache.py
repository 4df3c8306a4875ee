"""FID's real-image statistics on disk, so a run pays for the dataset's features once.

:class:`RealStatisticsCache` gives :class:`~lightning_checkerboard.metrics.fid.FID` its
:meth:`~RealStatisticsCache.use_real_cache`; the functions before it do the file work. A cache file
holds the real set's Σ features, Σ outer products, the covariance factor derived from them and (for
KID and precision/recall) the features themselves. It is keyed by what makes the
statistics differ: a fingerprint of the data, the image size, the number of images, the extractor's
weights hash and whether features are kept. Files are written atomically on global rank zero; a
file that cannot be read or whose key differs is ignored with a warning and costs a recomputation.
Under DDP the loaded statistics go to rank zero only, since the states are reduced with ``sum``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchmetrics.utilities import rank_zero_warn
from torchmetrics.utilities.data import dim_zero_cat

from lightning_checkerboard._cache import user_cache_dir
from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard._validation import check_int
from lightning_checkerboard.metrics._inception import FEATURES

__all__ = [
    "CACHE_FORMAT",
    "RealStatisticsCache",
    "check_real_cache_key",
    "default_fid_cache_dir",
    "global_rank",
    "read_real_cache",
    "real_cache_file",
    "real_cache_key",
    "real_states_from_cache",
    "write_real_cache",
]

# 2: the cache file also holds the real features (for KID and precision/recall).
CACHE_FORMAT = 2


def default_fid_cache_dir() -> Path:
    """The ``fid`` folder of the package's user cache (see :func:`lightning_checkerboard._cache.user_cache_dir`)."""
    return user_cache_dir("fid")


def global_rank() -> int:
    """This process's rank in the default ``torch.distributed`` group, 0 without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def check_real_cache_key(
    fingerprint: object, resolution: object, num_samples: object
) -> tuple[str, tuple[int, int], int]:
    """Check the user's parts of a cache key and return them as ``(fingerprint, (H, W), num_samples)``.

    Raises:
        ValueError: If ``fingerprint`` is not a non-empty string, ``resolution`` not a positive
            integer or a pair of them, or ``num_samples`` not an integer >= 2.

    Example:
        >>> check_real_cache_key("cifar10-train", 32, 50000)
        ('cifar10-train', (32, 32), 50000)
    """
    if not isinstance(fingerprint, str) or not fingerprint:
        raise ValueError(f"fingerprint must be a non-empty string; got {fingerprint!r}.")
    if isinstance(resolution, int):
        size: tuple[Any, ...] = (resolution, resolution)
    else:
        size = tuple(resolution) if isinstance(resolution, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"resolution must be a positive integer or a pair (H, W) of them; got {resolution!r}.")
    return fingerprint, (int(size[0]), int(size[1])), check_int(num_samples, "num_samples", minimum=2)


def real_cache_key(
    fingerprint: str, size: tuple[int, int], num_samples: int, extractor_sha256: str, features: bool
) -> dict[str, Any]:
    """The key stored in (and compared with) a cache file; arguments as :func:`check_real_cache_key` returns them.

    ``extractor_sha256`` is the hex SHA-256 of the weights the extractor was built from.
    """
    return {
        "fingerprint": fingerprint,
        "resolution": list(size),
        "num_samples": num_samples,
        "extractor_sha256": extractor_sha256,
        "features": features,
    }


def real_cache_file(key: dict[str, Any], directory: str | os.PathLike | None = None) -> Path:
    """The file for ``key`` in ``directory`` (default :func:`default_fid_cache_dir`).

    The name starts with a readable part (fingerprint, size, count) and ends with a hash of the whole key.
    """
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key["fingerprint"])[:48]
    h, w = key["resolution"]
    digest = hashlib.sha256(repr(sorted(key.items())).encode()).hexdigest()[:16]
    folder = Path(directory) if directory is not None else default_fid_cache_dir()
    return folder / f"{readable}-{h}x{w}-n{key['num_samples']}-{digest}.pt"


def read_real_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cache file's contents when it exists, is readable and matches ``key``; else ``None``.

    A truncated or foreign file, or one whose key or shapes differ, gives a warning and ``None``.
    """
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
        valid = (
            cached.get("format") == CACHE_FORMAT
            and cached.get("key") == key
            and tuple(cached["features_sum"].shape) == (FEATURES,)
            and tuple(cached["features_cov_sum"].shape) == (FEATURES, FEATURES)
            and tuple(cached["covariance_root"].shape) == (FEATURES, FEATURES)
            and (not key["features"] or tuple(cached["features"].shape) == (key["num_samples"], FEATURES))
        )
    except Exception as err:  # a truncated or foreign file must cost a recomputation, not the run
        rank_zero_warn(f"ignoring unreadable FID cache file {path}: {err}", UserWarning)
        return None
    if not valid:
        rank_zero_warn(f"ignoring FID cache file {path}: its key does not match", UserWarning)
        return None
    return cached


def real_states_from_cache(
    cached: dict[str, Any], key: dict[str, Any], device: torch.device, on_rank_zero: bool
) -> dict[str, Tensor | list[Tensor]]:
    """FID's real-image states for this process from a cache file's contents.

    Rank zero gets the cached sums, count and features; every other rank gets zeros and an empty
    ``(0, FEATURES)`` feature block, so the ``sum`` and ``cat`` reductions count the cache once and
    every rank gathers tensors of the same number of dimensions.
    """
    if on_rank_zero:
        states: dict[str, Tensor | list[Tensor]] = {
            "real_features_sum": cached["features_sum"].to(device),
            "real_features_cov_sum": cached["features_cov_sum"].to(device),
            "real_features_num_samples": torch.tensor(key["num_samples"], device=device),
        }
    else:
        states = {
            "real_features_sum": torch.zeros(FEATURES, dtype=torch.float64, device=device),
            "real_features_cov_sum": torch.zeros(FEATURES, FEATURES, dtype=torch.float64, device=device),
            "real_features_num_samples": torch.tensor(0, device=device),
        }
    if key["features"]:
        features = cached["features"].to(device) if on_rank_zero else torch.empty(0, FEATURES, device=device)
        states["real_features"] = [features]
    return states


def write_real_cache(
    path: Path,
    key: dict[str, Any],
    *,
    extractor: str | None,
    features_sum: Tensor,
    features_cov_sum: Tensor,
    covariance_root: Tensor,
    features: Tensor | None = None,
) -> None:
    """Write the real statistics under ``key`` to ``path`` atomically (a reader never sees half a file).

    ``covariance_root`` is derived from the sums but stored: it saves a cached run one of its two
    eigensolvers. ``features`` must be given when ``key["features"]`` is true.
    """
    payload = {
        "format": CACHE_FORMAT,
        "key": key,
        "extractor": extractor,
        "features_sum": features_sum.detach().cpu(),
        "features_cov_sum": features_cov_sum.detach().cpu(),
        "covariance_root": covariance_root.detach().cpu(),
    }
    if key["features"]:
        if features is None:
            raise ValueError("features must be given when the key keeps features; got None.")
        payload["features"] = features.detach().cpu()
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class RealStatisticsCache:
    """The real-statistics cache of :class:`~lightning_checkerboard.metrics.fid.FID`, mixed into its class.

    The metric calls :meth:`_init_real_cache` in its constructor and :meth:`_maybe_write_real_cache`
    after computing the real covariance's factor; it provides the attributes annotated below (its
    real-image states, whether it is available, its weights and extractor, ``cache_dir``), records the
    (H, W) of every real image in ``_real_sizes`` and skips real updates while ``_real_from_cache``.
    """

    available: bool
    cache_dir: Path | None
    extractor: str | None
    keep_features: bool
    weights_path: Path | None
    weights_sha256: str | None
    real_features_sum: Tensor
    real_features_cov_sum: Tensor
    real_features: list[Tensor] | Tensor
    # (real_features_sum, n) the factor was computed for, and the factor L of the real covariance.
    _real_root_memo: tuple[Tensor, int, Tensor] | None

    def _init_real_cache(self, cache_dir: str | os.PathLike | None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._real_cache_key: dict[str, Any] | None = None
        self._real_from_cache = False
        self._real_cache_written = False
        self._real_sizes: set[tuple[int, int]] = set()

    def use_real_cache(self, fingerprint: str, resolution: int | tuple[int, int], num_samples: int) -> bool:
        """Key the real statistics and load them from the cache when present.

        On a hit the real statistics are set and later ``update(..., real=True)`` calls return
        without running the extractor, so the caller may skip its real-data loop (the return value
        says so). On a miss, ``compute()`` writes the cache once exactly ``num_samples`` real
        images of this resolution have been seen. In DDP, call this on every rank: only rank zero
        holds the loaded sums, so the ``sum`` reduction counts them once.

        Args:
            fingerprint: Identifies the real data (e.g. a hash of dataset name, split and preprocessing).
            resolution: Image size as given to ``update``, ``H`` or ``(H, W)``.
            num_samples: Number of real images the statistics cover.

        Returns:
            Whether the real statistics were loaded from the cache (always ``False`` when unavailable).

        Raises:
            ValueError: If an argument is empty, non-positive or of the wrong form.
        """
        fingerprint, size, num_samples = check_real_cache_key(fingerprint, resolution, num_samples)
        if not self.available:
            return False
        self._real_cache_key = real_cache_key(fingerprint, size, num_samples, self.weights_sha256, self.keep_features)
        cached = read_real_cache(self.real_cache_path(), self._real_cache_key)
        if cached is None:
            return False
        on_rank_zero = global_rank() == 0
        device = self.real_features_sum.device
        for name, value in real_states_from_cache(cached, self._real_cache_key, device, on_rank_zero).items():
            setattr(self, name, value)
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
        return real_cache_file(self._real_cache_key, self.cache_dir)

    def _maybe_write_real_cache(self, n_real: int, root_real: Tensor) -> None:
        """Write the real statistics on global rank zero when a key is set, they did not come from the
        cache, and the images seen match the key; warn (and write nothing) when they do not match."""
        key = self._real_cache_key
        if key is None or self._real_from_cache or self._real_cache_written or global_rank() != 0:
            return
        sizes = sorted(self._real_sizes)
        if n_real != key["num_samples"] or sizes != [tuple(key["resolution"])]:
            rank_zero_warn(
                f"not caching FID real statistics: the key says {key['num_samples']} images of size"
                f" {tuple(key['resolution'])}, but {n_real} images of sizes {sizes} were seen",
                UserWarning,
            )
            return
        write_real_cache(
            self.real_cache_path(),
            key,
            extractor=self.extractor,
            features_sum=self.real_features_sum,
            features_cov_sum=self.real_features_cov_sum,
            covariance_root=root_real,
            features=dim_zero_cat(self.real_features) if self.keep_features else None,
        )
        self._real_cache_written = True
