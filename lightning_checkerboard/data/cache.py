"""A prepared-once store of decoded images: one memory-mapped ``.npy`` file per source split and size.

Decoding and resizing a folder or a Hub split is the slow part of loading it. The result, a
``uint8`` array ``(N, C, S, S)`` of every image of the split in the source's order, is written once
to ``<cache_dir>/<entry>-<token>.npy`` and described by ``<entry>.json``; later runs (and the other
processes of a distributed run) open it with ``numpy.load(mmap_mode="r")``, so it is neither
copied nor read whole: the operating system pages in the images that are used.

* **Atomic.** The data file is written under a temporary name and renamed; then the manifest is
  written the same way. The manifest's rename is the one commit point, so a reader sees the old
  entry or the new one, never half of one.
* **Checked.** The manifest records the data file's size and a checksum of evenly spaced blocks of
  it (the whole file when it is small); a file that fails either check is rebuilt with a warning.
* **Invalidated by the source.** The manifest records the source's fingerprint (a folder's file
  names, sizes and modification times; a Hub split's revision and prepared files) and the Pillow
  version; when either changes, the entry is rebuilt.
* **Shared.** The process of local rank 0 builds an entry while holding a file lock (so two runs
  never build the same entry twice); the other ranks wait until it is ready.

The manifest also lists the images that could not be read, so the ``corrupt`` policy applies to a
cached source exactly as to a fresh decode.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard.data.errors import DatasetError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: entries are still written atomically, just not locked
    fcntl = None

__all__ = ["CACHE_VERSION", "CachedImages", "cache_entry", "ensure_cached"]

#: Bump when the decoding or resizing changes, so entries written by an older version are rebuilt.
CACHE_VERSION = 1
#: Seconds a waiting process tolerates with no entry and no process building it.
WAIT_TIMEOUT_S = 600.0
_BLOCK = 1 << 18
_BLOCKS = 64
_POLL_S = 0.2

Fill = Callable[[np.ndarray], "tuple[bool, list[tuple[int, str, str]]]"]


@dataclass(frozen=True)
class CachedImages:
    """An opened cache entry.

    Attributes:
        path: the ``.npy`` data file.
        images: read-only memory map ``(N, C, S, S)`` ``uint8``, in the source's order.
        failures: ``index -> (label, reason)`` of the images that could not be read (zero rows).
        nbytes: size of the data file.
        built: whether this process built the entry (rather than finding it).
    """

    path: Path
    images: np.ndarray
    failures: dict[int, tuple[str, str]]
    nbytes: int
    built: bool


def cache_entry(cache_dir: Path, dataset: str, split: str, image_size: int) -> Path:
    """Path of an entry's manifest, without the ``.json``: readable prefix plus a hash of the identity.

    >>> cache_entry(Path("/c"), "folder:/data/My Photos", "all", 64).name.rsplit("-", 1)[0]
    'folder-My_Photos-64px-all'
    """
    kind, _, rest = dataset.partition(":")
    tail = re.sub(r"[^\w.-]+", "_", rest.rstrip("/").rsplit("/", 1)[-1])[:40]
    digest = hashlib.sha256(json.dumps([dataset, split, image_size]).encode()).hexdigest()[:12]
    prefix = f"{kind}-{tail}" if tail else kind
    return Path(cache_dir, f"{prefix}-{image_size}px-{split}-{digest}")


def _sampled_checksum(path: Path) -> str:
    # Whole file up to _BLOCKS blocks, else _BLOCKS evenly spaced blocks: bounded time on any size.
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    count = -(-size // _BLOCK)
    positions = range(0, size, _BLOCK) if count <= _BLOCKS else (
        (k * (size - _BLOCK)) // (_BLOCKS - 1) for k in range(_BLOCKS)
    )
    with open(path, "rb") as handle:
        for position in positions:
            handle.seek(position)
            digest.update(handle.read(_BLOCK))
    return digest.hexdigest()


def _open(entry: Path, identity: dict) -> tuple[CachedImages | None, str | None]:
    """The entry if it is valid, else ``None`` and why (``None`` when it does not exist or is stale)."""
    manifest_path = entry.with_name(entry.name + ".json")
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"unreadable manifest {manifest_path.name} ({exc})"
    if not isinstance(manifest, dict) or manifest.get("identity") != identity:
        return None, None if isinstance(manifest, dict) and "identity" in manifest else "malformed manifest"
    data = entry.parent / str(manifest.get("data"))
    try:
        size = data.stat().st_size
        if size != manifest.get("bytes"):
            return None, f"{data.name} has {size} bytes, the manifest says {manifest.get('bytes')}"
        if _sampled_checksum(data) != manifest.get("checksum"):
            return None, f"{data.name} fails its checksum"
        images = np.load(data, mmap_mode="r")
    except (OSError, ValueError) as exc:
        return None, f"{data.name} cannot be read ({exc})"
    shape = (identity["count"], manifest.get("channels"), identity["image_size"], identity["image_size"])
    if images.dtype != np.uint8 or images.shape != shape:
        return None, f"{data.name} holds {images.dtype} {images.shape}, expected uint8 {shape}"
    failures = {int(i): (str(label), str(reason)) for i, label, reason in manifest.get("failures", [])}
    return CachedImages(data, images, failures, size, built=False), None


@contextlib.contextmanager
def _locked(entry: Path):
    with open(entry.with_name(entry.name + ".lock"), "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _lock_is_held(entry: Path) -> bool:
    if fcntl is None:
        return False
    try:
        with open(entry.with_name(entry.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _build(entry: Path, identity: dict, fill: Fill) -> CachedImages:
    directory, name = entry.parent, entry.name
    for leftover in directory.glob(f"{name}.*.tmp"):  # from a build that was killed; we hold the lock
        leftover.unlink(missing_ok=True)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    count, size = identity["count"], identity["image_size"]
    wide = directory / f"{name}.{token}-rgb.tmp"
    written = []
    try:
        written.append(wide)
        out = np.lib.format.open_memmap(wide, mode="w+", dtype=np.uint8, shape=(count, 3, size, size))
        colour, failures = fill(out)
        if colour:
            out.flush()
            final_tmp = wide
        else:  # every image is greyscale: keep one channel, a third of the size
            final_tmp = directory / f"{name}.{token}-grey.tmp"
            written.append(final_tmp)
            grey = np.lib.format.open_memmap(final_tmp, mode="w+", dtype=np.uint8, shape=(count, 1, size, size))
            step = max(1, (64 << 20) // (3 * size * size))
            for start in range(0, count, step):
                grey[start : start + step] = out[start : start + step, :1]
            grey.flush()
            del grey
        del out
        with open(final_tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        data = directory / f"{name}-{token}.npy"
        manifest = {
            "identity": identity,
            "data": data.name,
            "channels": 3 if colour else 1,
            "bytes": final_tmp.stat().st_size,
            "checksum": _sampled_checksum(final_tmp),
            "failures": [list(f) for f in failures],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.replace(final_tmp, data)
        written.append(data)
        atomic_write_bytes(entry.with_name(name + ".json"), json.dumps(manifest, indent=1).encode())
        written.remove(data)
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    for old in directory.glob(f"{name}-*.npy"):  # earlier versions of this entry; open maps stay valid
        if old != data:
            old.unlink(missing_ok=True)
    opened, problem = _open(entry, identity)
    if opened is None:
        raise DatasetError(f"Dataset {identity['dataset']!r}: the data cache {data} was written but cannot be read "
                           f"back ({problem}); check the disk, or pass data_cache=False.")
    return CachedImages(opened.path, opened.images, opened.failures, opened.nbytes, built=True)


def ensure_cached(
    cache_dir: Path,
    *,
    dataset: str,
    split: str,
    image_size: int,
    fingerprint: str,
    count: int,
    fill: Fill,
    local_rank: int = 0,
    timeout: float = WAIT_TIMEOUT_S,
) -> CachedImages:
    """Open the cache entry of a source split, building it first if it is missing, stale or corrupt.

    Args:
        cache_dir: the cache folder (created if needed).
        dataset: canonical dataset name.
        split: the source's split (``"all"`` for a folder).
        image_size: side of the cached images.
        fingerprint: the source's state; a different value rebuilds the entry.
        count: images in the split.
        fill: writes the images into a ``uint8`` ``(count, 3, S, S)`` array (greyscale ones repeated)
            and returns whether any is colour and ``(index, label, reason)`` for each unreadable one.
            An exception it raises leaves no entry behind.
        local_rank: the process's rank on this machine; only rank 0 builds, the others wait.
        timeout: seconds a waiting rank accepts with no entry and no process building one.

    Raises:
        DatasetError: if a waiting rank times out, the cache cannot be written, or what ``fill`` raises.
    """
    import PIL

    identity = {"version": CACHE_VERSION, "dataset": dataset, "split": split, "image_size": image_size,
                "count": count, "fingerprint": fingerprint, "pillow": PIL.__version__}
    entry = cache_entry(cache_dir, dataset, split, image_size)
    opened, _ = _open(entry, identity)  # a valid entry needs no lock (and no write access)
    if opened is not None:
        return opened
    if local_rank != 0:
        return _wait(entry, identity, timeout)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with _locked(entry):
            opened, problem = _open(entry, identity)  # another run may have built it meanwhile
            if opened is not None:
                return opened
            if problem is not None:
                warnings.warn(f"Dataset {dataset!r}: the data cache {entry}.json is corrupt ({problem}); "
                              "rebuilding it.", UserWarning, stacklevel=3)
            failed = _failure_note(entry)
            failed.unlink(missing_ok=True)
            try:
                return _build(entry, identity, fill)
            except Exception as exc:  # the ranks waiting for this entry stop with the same reason, not a timeout
                failed.write_text(" ".join(str(exc).split()) or type(exc).__name__, encoding="utf-8")
                raise
    except OSError as exc:
        raise DatasetError(
            f"Dataset {dataset!r}: cannot write the data cache in {entry.parent} ({type(exc).__name__}: {exc}); "
            "free some space, pass another cache_dir, or pass data_cache=False."
        ) from exc


def _failure_note(entry: Path) -> Path:
    """Where local rank 0 leaves the reason its build of ``entry`` failed, for the ranks that wait."""
    return entry.with_name(entry.name + ".failed")


def _wait(entry: Path, identity: dict, timeout: float) -> CachedImages:
    idle_since = time.monotonic()
    started = time.time() - 2 * _POLL_S  # a note older than this wait is from an earlier run
    while True:
        opened, _ = _open(entry, identity)
        if opened is not None:
            return opened
        note = _failure_note(entry)
        try:
            if note.stat().st_mtime >= started:
                raise DatasetError(f"Dataset {identity['dataset']!r}: local rank 0 could not build the data cache "
                                   f"{entry}.json: {note.read_text(encoding='utf-8')}")
        except FileNotFoundError:
            pass
        if _lock_is_held(entry):  # local rank 0 is building: however long it takes, it is progress
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > timeout:
            raise DatasetError(
                f"Dataset {identity['dataset']!r}: waited {timeout:.0f} s for local rank 0 to build the data cache "
                f"{entry}.json, and no process is building it; check rank 0's log, or pass data_cache=False."
            )
        time.sleep(_POLL_S)
