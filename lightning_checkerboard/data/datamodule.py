"""``ImageDataModule``: one LightningDataModule for every image source the benchmark trains on."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lightning_checkerboard._lightning import pl
import torch
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_checkerboard._cache import user_cache_dir
from lightning_checkerboard._progress import training_iteration
from lightning_checkerboard._validation import check_choice, check_int
from lightning_checkerboard.data.decode import CORRUPT_POLICIES, check_workers
from lightning_checkerboard.data.decoded import DecodeOptions
from lightning_checkerboard.data.errors import DatasetError
from lightning_checkerboard.data.hub import check_hub_available, hub_is_offline, load_hub_dataset
from lightning_checkerboard.data.images import convert_channels, to_unit_float
from lightning_checkerboard.data.photos import (
    PHOTOS_VERSION,
    default_train_samples,
    ensure_photo_cache,
    photo_cache_path,
    report_photo_cache,
)
from lightning_checkerboard.data.sampling import ResumableBatchSampler, to_signed_unit
from lightning_checkerboard.data.sources import SourceData, load_source, parse_dataset

__all__ = ["ImageDataModule", "ResumableBatchSampler", "default_cache_dir"]


def default_cache_dir() -> Path:
    """The datasets folder of the package's user cache (see :func:`lightning_checkerboard._cache.user_cache_dir`)."""
    return user_cache_dir("datasets")


def _process_ranks(trainer) -> tuple[int, int]:
    """``(local rank, global rank)`` of this process: from the trainer, the launcher's environment, or
    an initialised process group (one machine assumed), else ``(0, 0)``."""
    if trainer is not None:
        return getattr(trainer, "local_rank", 0), getattr(trainer, "global_rank", 0)
    if "LOCAL_RANK" in os.environ or "RANK" in os.environ:
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", 0)))
        return local, int(os.environ.get("RANK", local))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank = torch.distributed.get_rank()
        return rank, rank
    return 0, 0


class ImageDataModule(pl.LightningDataModule):
    """Images for generator training: a training loader and a held-out split for the metrics.

    Sources: ``photos`` (bundled, the default), ``digits`` (bundled), the Hub shorthands ``cifar10``,
    ``mnist``, ``fashion_mnist``, ``celeba``, any ``hf:<owner/repo>[:split]``, and
    ``folder:<path>``. Images are resized to ``image_size`` and kept as ``uint8``; training batches
    are gathered from them and scaled to [-1, 1].

    ``folder:`` and Hub images are decoded once, on every core, into the *data cache*: one
    memory-mapped file per source split and size under ``cache_dir``, reused by later runs and by
    the other processes of a distributed run, and rebuilt when the source changes. Training reads
    batches from the map, so data larger than memory trains without being loaded whole. With
    ``data_cache=False`` the images are decoded into memory at every :meth:`setup`, or, when they
    would fill more than a quarter of it (or with ``streaming=True``), one batch at a time; Hub rows
    are then read by index from the Arrow files ``datasets`` keeps on disk (and maps, not loads), so
    the batch order stays the sampler's and a resumed run continues it exactly.

    The held-out split never overlaps training: ``photos`` cuts it from a reserved strip of each
    photograph, Hub datasets use their ``test`` split, everything else a seeded subset. It is chosen by
    ``split_seed``, not ``seed``, so runs with different seeds are scored against the same images.

    Args:
        dataset: which data; see above.
        image_size: side of the square images (images are center-cropped and resized to it).
        batch_size: training batch size.
        seed: seeds the ``photos`` training crops and the training shuffle.
        num_workers: DataLoader workers (batches come from memory or the cache's map, so 0 is usually
            fastest; streaming without the cache decodes in them); at most the CPU count (4 on smaller
            machines).
        channels: ``None`` keeps the dataset's own (3 for ``photos``, 1 for ``digits``/``mnist``);
            1 or 3 converts (grey to RGB repeats, RGB to grey takes luminance).
        train_samples: ``photos``: crops to build (default 2048 up to 64 px, 1024 up to 128, else 512);
            other sources: at most this many training images (default all; the data cache still
            decodes every image of the source, once).
        heldout_samples: size of the held-out split used only for metrics.
        corrupt: unreadable images in ``folder:``/Hub data: ``"skip"`` (counted, one warning) or
            ``"error"``.
        cache_dir: where built datasets are cached; default :func:`default_cache_dir`.
        split_seed: seeds the held-out selection (and the ``photos`` held-out crops).
        data_cache: keep decoded ``folder:``/Hub images in the data cache (see above).
        streaming: without the data cache, decode training images batch by batch instead of all at
            :meth:`setup`; ``None`` streams when they would fill more than a quarter of the memory.
        decode_workers: parallel decoders for ``folder:``/Hub images, at most the CPU count (4 on
            smaller machines); ``None`` uses every core this process may run on.

    Raises:
        ValueError: for an argument out of range.
        DatasetError: for an unknown dataset, a missing folder, or a Hub dataset that is not cached
            while offline.

    Example:
        >>> dm = ImageDataModule("digits", image_size=8, batch_size=16, heldout_samples=32)
        >>> dm.setup("fit")
        >>> next(iter(dm.train_dataloader())).shape
        torch.Size([16, 1, 8, 8])
        >>> dm.heldout_images(4).shape
        torch.Size([4, 1, 8, 8])
    """

    def __init__(
        self,
        dataset: str = "photos",
        image_size: int = 64,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
        channels: int | None = None,
        train_samples: int | None = None,
        heldout_samples: int = 256,
        corrupt: str = "skip",
        cache_dir: str | os.PathLike | None = None,
        split_seed: int = 0,
        data_cache: bool = True,
        streaming: bool | None = None,
        decode_workers: int | None = None,
    ) -> None:
        super().__init__()
        check_int(image_size, "image_size", minimum=4)
        check_int(batch_size, "batch_size", minimum=1)
        check_int(seed, "seed", minimum=0)
        check_int(split_seed, "split_seed", minimum=0)
        check_workers(num_workers, "num_workers")  # at most the CPU count: 100000 once started hundreds
        if train_samples is not None:
            check_int(train_samples, "train_samples", minimum=1)
        check_int(heldout_samples, "heldout_samples", minimum=1)
        if decode_workers is not None:
            check_workers(decode_workers, "decode_workers", minimum=1)
        if not isinstance(data_cache, bool):
            raise ValueError(f"data_cache must be True or False; got {data_cache!r}.")
        if streaming is not None and not isinstance(streaming, bool):
            raise ValueError(f"streaming must be None, True or False; got {streaming!r}.")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be None, 1 or 3; got {channels!r}.")
        check_choice(corrupt, "corrupt", CORRUPT_POLICIES)
        self.spec = parse_dataset(dataset)
        if self.spec.kind == "folder" and not self.spec.path.is_dir():
            what = "is not a directory" if self.spec.path.exists() else "does not exist"
            raise DatasetError(f"Dataset {self.spec.name!r}: the folder {self.spec.path} {what}; check the path.")
        if self.spec.kind == "hub" and hub_is_offline():
            check_hub_available(self.spec.hub)  # instant offline; the network probe waits for prepare_data
        self._image_size = image_size
        self.batch_size = batch_size
        self.seed = seed
        self.split_seed = split_seed
        self.num_workers = num_workers
        self._requested_channels = channels
        self.train_samples = train_samples
        self.heldout_samples = heldout_samples
        self.corrupt = corrupt
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.data_cache, self.streaming, self.decode_workers = data_cache, streaming, decode_workers
        self._data: SourceData | None = None
        self._fingerprint: str | None = None

    @property
    def name(self) -> str:
        """Canonical dataset name, e.g. ``"photos"``, ``"folder:/abs/path"``, ``"hf:owner/repo:train"``."""
        return self.spec.name

    @property
    def image_size(self) -> int:
        """Side of the square images in pixels."""
        return self._image_size

    @property
    def channels(self) -> int:
        """Channels of the images served (known before :meth:`setup` except for ``hf:``/``folder:``).

        Raises:
            RuntimeError: if the dataset's own channel count is needed but not yet known.
        """
        if self._requested_channels is not None:
            return self._requested_channels
        if self._data is not None:
            return self._data.train.channels
        if self.spec.channels is not None:
            return self.spec.channels
        raise RuntimeError(
            f"The channel count of {self.name!r} is known only after setup(); call prepare_data() and setup() "
            "first, or pass channels=1 or 3."
        )

    def _photo_train_samples(self) -> int:
        return self.train_samples or default_train_samples(self.image_size)

    @override
    def prepare_data(self) -> None:
        """Build the ``photos`` cache or download a Hub dataset; nothing else (runs on one process).

        Raises:
            DatasetError: if a Hub dataset cannot be loaded.
        """
        if self.spec.kind == "photos":
            settings = (self.image_size, self._photo_train_samples(), self.heldout_samples, self.seed, self.split_seed)
            built = not photo_cache_path(self.cache_dir, *settings).is_dir()
            report_photo_cache(ensure_photo_cache(self.cache_dir, *settings), built)
        elif self.spec.kind == "hub":
            load_hub_dataset(self.spec.hub)

    @override
    def setup(self, stage: str | None = None) -> None:
        """Load the data (from the data cache, building it if needed) and make the seeded splits.

        Runs once; later calls do nothing. Under distributed training the process of local rank 0
        builds a missing cache while the others wait for it.

        Raises:
            DatasetError: if the data cannot be found, read or split.
        """
        if self._data is not None:
            return
        local_rank, global_rank = _process_ranks(getattr(self, "trainer", None))
        options = DecodeOptions(self.image_size, self.corrupt, self.cache_dir, self.data_cache, self.streaming,
                                self.decode_workers, local_rank, global_rank)
        data = load_source(self.spec, train_samples=self.train_samples, heldout_samples=self.heldout_samples,
                           seed=self.seed, split_seed=self.split_seed, options=options)
        native = data.train.channels
        if self._requested_channels is not None:
            data.train.with_channels(self._requested_channels)
            data.heldout = convert_channels(data.heldout, self._requested_channels)
        self._native_channels = native
        self._data = data
        self._fingerprint = self._compute_fingerprint()

    def _require_data(self) -> SourceData:
        if self._data is None:
            self.setup()
        return self._data

    @override
    def train_dataloader(self) -> DataLoader:
        """An endless stream of shuffled (seeded) batches of ``(B, C, H, W)`` float images in [-1, 1].

        See :class:`ResumableBatchSampler`: the stream is a pure function of the seed and the
        iteration, so resuming from a checkpoint continues it exactly, and under DDP every process
        draws its own disjoint share of each step's images (train with
        ``use_distributed_sampler=False``). Training length is set by ``max_steps``.

        Raises:
            DatasetError: if the training set holds fewer images than one batch.
        """
        train = self._require_data().train
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        if len(train) < self.batch_size * world:
            raise DatasetError(
                f"Dataset {self.name!r} has {len(train)} training images, fewer than one batch of "
                f"{self.batch_size}" + (f" for each of {world} processes" if world > 1 else "")
                + "; lower batch_size or use more data (train_samples)."
            )
        # Lightning has restored a checkpoint's progress by the time it asks for the loader, so a
        # resumed run continues the batch stream exactly where the interrupted one stopped.
        start = training_iteration(trainer) if trainer is not None else 0
        sampler = ResumableBatchSampler(len(train), self.batch_size, seed=self.seed, start=start, rank=rank, world_size=world)
        return DataLoader(
            train,
            batch_sampler=sampler,
            collate_fn=to_signed_unit,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def heldout_images(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` held-out images (all when ``None``), ``(N, C, H, W)`` float in [0, 1].

        Always the same images in the same order, never seen in training.

        Args:
            n: how many, at most the held-out size.

        Raises:
            ValueError: if ``n`` is not a positive integer or exceeds the held-out size.
        """
        heldout = self._require_data().heldout
        if n is not None:
            check_int(n, "n", minimum=1)
            if n > len(heldout):
                raise ValueError(
                    f"n must be at most the held-out size of {self.name!r} ({len(heldout)}); got {n}. "
                    "Raise heldout_samples or ask for fewer."
                )
            heldout = heldout[:n]
        return to_unit_float(heldout)

    def _compute_fingerprint(self) -> str:
        data = self._data
        identity = {
            "name": self.name,
            "image_size": self.image_size,
            "channels": self.channels,
            "heldout": len(data.heldout),
            "split_seed": self.split_seed,
            "photos_version": PHOTOS_VERSION if self.spec.kind == "photos" else None,
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
        digest.update(data.heldout.numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def fingerprint(self) -> str:
        """Short stable hash of the evaluation data: name, size, channels and the held-out pixels.

        It keys caches of real-image statistics (FID), so it does not change with ``seed`` (training
        crops and shuffling) but does with anything that changes the held-out images.
        """
        self._require_data()
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        """What the run trained and was scored on, for the run record."""
        data = self._require_data()
        return {
            "name": self.name,
            "image_size": self.image_size,
            "channels": self.channels,
            "native_channels": self._native_channels,
            "train_samples": len(data.train),
            "heldout_samples": len(data.heldout),
            "heldout_from": data.heldout_from,
            "skipped_corrupt": len(data.skipped),
            "seed": self.seed,
            "split_seed": self.split_seed,
            "fingerprint": self.fingerprint,
        }
