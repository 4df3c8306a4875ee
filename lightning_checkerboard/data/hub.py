"""Hugging Face Hub datasets: the shorthands (``cifar10``, ...) and ``hf:<repo>[:split]``.

Loading goes through :func:`datasets.load_dataset`. Two failure modes are caught before it runs,
because it handles both slowly: offline mode with nothing cached (fails at once here instead of
inside the loader), and a Hub that cannot be reached (``load_dataset`` retries for about 20 s).
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lightning_checkerboard.data.errors import DatasetError

__all__ = [
    "HUB_SHORTHANDS",
    "HubChunk",
    "HubImages",
    "HubSpec",
    "check_hub_available",
    "hub_is_cached",
    "hub_is_offline",
    "load_hub_dataset",
    "load_hub_images",
]

_FALLBACK = "use the embedded 'photos' dataset (no network), or 'folder:<path>' with your own images"
_TRUE = frozenset({"1", "ON", "YES", "TRUE"})


@dataclass(frozen=True)
class HubSpec:
    """A dataset on the Hub.

    Attributes:
        name: canonical name (the shorthand, or ``hf:<repo>:<split>``).
        repo: repository id, ``owner/name``.
        split: the split to train on.
        aliases: older repository ids the same data may be cached under.
        channels: the images' channel count where known before loading (shorthands), else ``None``.
    """

    name: str
    repo: str
    split: str = "train"
    aliases: tuple[str, ...] = ()
    channels: int | None = None


#: Shorthands users type, mapped to Hub repositories. The image column is found from the features,
#: not hard-coded, so a repository that renames it keeps working.
HUB_SHORTHANDS: dict[str, HubSpec] = {
    "cifar10": HubSpec("cifar10", "uoft-cs/cifar10", aliases=("cifar10",), channels=3),
    "mnist": HubSpec("mnist", "ylecun/mnist", aliases=("mnist",), channels=1),
    "fashion_mnist": HubSpec(
        "fashion_mnist", "zalando-datasets/fashion_mnist", aliases=("fashion_mnist",), channels=1
    ),
    "celeba": HubSpec("celeba", "flwrlabs/celeba", channels=3),
}


def hub_is_offline() -> bool:
    """Whether offline mode is set (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``, now or at import)."""
    if any(os.environ.get(v, "").strip().upper() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return True
    # The libraries read the variables once, at import; if they were imported offline they stay offline.
    config = sys.modules.get("datasets.config")  # datasets before 3.0 names its flag HF_DATASETS_OFFLINE
    return bool(getattr(config, "HF_HUB_OFFLINE", False) or getattr(config, "HF_DATASETS_OFFLINE", False))


def _snake(name: str) -> str:
    from datasets.naming import camelcase_to_snakecase

    return camelcase_to_snakecase(name)


def hub_is_cached(spec: HubSpec) -> bool:
    """Whether ``load_dataset`` can find ``spec`` without the network (a prepared or downloaded copy)."""
    import datasets.config
    from huggingface_hub import constants

    for repo in (spec.repo, *spec.aliases):
        parts = repo.split("/")
        prepared = Path(datasets.config.HF_DATASETS_CACHE, "___".join([*parts[:-1], _snake(parts[-1])]))
        if any(os.path.isdir(p) for p in glob.glob(str(prepared / "*" / "*" / "*"))):
            return True
        downloaded = Path(constants.HF_HUB_CACHE, "datasets--" + repo.replace("/", "--"), "snapshots")
        if downloaded.is_dir() and any(downloaded.iterdir()):
            return True
    return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def check_hub_available(spec: HubSpec) -> None:
    """Fail fast, with a one-line :class:`DatasetError`, when ``spec`` cannot be loaded.

    Raises:
        DatasetError: offline and not cached, or online but the Hub does not answer.
    """
    if hub_is_offline():
        if not hub_is_cached(spec):
            raise DatasetError(
                f"Dataset {spec.name!r} is not in the local Hugging Face cache and the Hub is offline "
                f"(HF_HUB_OFFLINE=1); {_FALLBACK}, or download it once with network access."
            )
        return
    if not _hub_reachable():
        hint = (
            "it is cached locally, so set HF_HUB_OFFLINE=1 to use the cached copy"
            if hub_is_cached(spec)
            else _FALLBACK
        )
        raise DatasetError(f"Dataset {spec.name!r}: the Hugging Face Hub cannot be reached; {hint}.")


def load_hub_dataset(spec: HubSpec):
    """``load_dataset(spec.repo)`` with every split, after :func:`check_hub_available`.

    Raises:
        DatasetError: if the dataset cannot be loaded, or lacks ``spec.split``.
    """
    check_hub_available(spec)
    import datasets

    try:
        loaded = datasets.load_dataset(spec.repo)
    except Exception as exc:  # the loader raises many unrelated types; all mean "cannot load this"
        raise DatasetError(
            f"Dataset {spec.name!r}: loading {spec.repo!r} from the Hugging Face Hub failed ({_one_line(exc)}); "
            f"check the repository id, or {_FALLBACK}."
        ) from exc
    if spec.split not in loaded:
        raise DatasetError(
            f"Dataset {spec.name!r} has no split {spec.split!r}; its splits are {', '.join(loaded)}: "
            f"use hf:{spec.repo}:<split>."
        )
    return loaded


def image_column(dataset, name: str) -> str:
    """The name of the first ``Image`` column of ``dataset``.

    Raises:
        DatasetError: if there is none.
    """
    from datasets import Image

    for column, feature in dataset.features.items():
        if isinstance(feature, Image):
            return column
    raise DatasetError(
        f"Dataset {name!r} has no image column (columns: {', '.join(dataset.features)}); choose an image dataset."
    )


@dataclass(frozen=True)
class HubChunk:
    """Stored (undecoded) images of some rows, picklable, so a worker process can decode them."""

    values: tuple[dict, ...]
    labels: tuple[str, ...]

    def open(self, k: int):
        """Open image ``k`` of the chunk (not yet decoded)."""
        from PIL import Image as PILImage

        value = self.values[k]
        return PILImage.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"])


class HubImages:
    """The images of one split, undecoded until a :class:`HubChunk` of them is opened.

    Args:
        dataset: the split's ``datasets.Dataset``.
        column: its image column.
        split: the split's name.
        name: canonical dataset name, for messages.
    """

    def __init__(self, dataset, column: str, split: str, name: str = ""):
        from datasets import Image

        # decode=False hands over the stored bytes, so a corrupt image fails inside our try, not in Arrow.
        self._rows = dataset.select_columns([column]).cast_column(column, Image(decode=False))
        self._column = column
        self._source = dataset
        self.split = split
        self.dataset = name

    def __len__(self) -> int:
        return len(self._rows)

    def fingerprint(self) -> str:
        """Hash of the split as stored offline: ``datasets``' own fingerprint (it follows the repository
        revision and the prepared files), the split's size and its Arrow files' sizes and times."""
        source = self._source
        parts = [self.split, str(source._fingerprint), str(len(source)), str(getattr(source.info, "version", ""))]
        for file in source.cache_files:
            stat = os.stat(file["filename"])
            parts.append(f"{file['filename']}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def chunk(self, indices) -> HubChunk:
        """The rows at ``indices`` as one :class:`HubChunk` (one Arrow read for all of them)."""
        indices = [int(i) for i in indices]
        values = self._rows[indices][self._column]
        return HubChunk(tuple(values), tuple(f"{self.split}[{i}]" for i in indices))


def load_hub_images(spec: HubSpec) -> tuple[HubImages, HubImages | None]:
    """The training split and, where the dataset has one, its ``test`` split.

    Raises:
        DatasetError: as :func:`load_hub_dataset` and :func:`image_column`.
    """
    loaded = load_hub_dataset(spec)
    train = loaded[spec.split]
    column = image_column(train, spec.name)
    test = None
    if "test" in loaded and spec.split != "test":
        test = HubImages(loaded["test"], image_column(loaded["test"], spec.name), "test", spec.name)
    return HubImages(train, column, spec.split, spec.name), test
