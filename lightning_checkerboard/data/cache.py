"""A prepared-once store of decoded images: one memory-mapped ``.npy`` file per source split and size.

Decoding and resizing a folder or a Hub split is the slow part of loading it. The result, a
``uint8`` array ``(N, C, S, S)`` of every image of the split in the source's order, is written once
to ``<cache_dir>/<entry>-<token>.npy`` and described by ``<entry>.json``; later runs (and the other
processes of a distributed run) open it with ``numpy.load(mmap_mode="r")``, so it is neither
copied nor read whole: the operating system pages in the images that are used.

* **Atomic.** The data file is written under a temporary name and renamed; then the manifest is
  written the same way. The manifest's rename is the one commit point, so a reader sees the old
  entry or the new one, never half of one.
* **Checked.** Every field of the manifest is checked (types, ranges, the data file's name); a
  malformed manifest is rebuilt with a one-line warning, never trusted and never a traceback. The
  manifest records the data file's size and a SHA-256 checksum of the *whole* file together with
  the manifest's other fields (so a tampered list of unreadable images fails it too); the checksum
  is verified once each time the entry is opened, and an entry that fails it is rebuilt with a
  warning. Hashing streams the file in 1 MB blocks at about the disk's speed, a small fraction of
  the decode it saves.
* **Invalidated by the source.** The manifest records the source's fingerprint (a folder's file
  names, sizes, modification times and contents; a Hub split's revision and prepared files) and the
  Pillow version; when either changes, the entry is rebuilt.
* **Shared.** The process of local rank 0 builds an entry while holding a file lock (so two runs
  never build the same entry twice); the other ranks wait until it is ready. The lock is opened
  without blocking and must be a regular file: a FIFO, link or device in its place is replaced.

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
import stat
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard._record_checks import RecordError, _Checker
from lightning_checkerboard._untrusted import UntrustedFileError, array_header, describe_kind, open_regular, read_bytes
from lightning_checkerboard.data.errors import DatasetError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: entries are still written atomically, just not locked
    fcntl = None

__all__ = ["CACHE_VERSION", "CachedImages", "cache_entry", "ensure_cached"]

#: Bump when the decoding, resizing or the manifest changes, so entries written by an older version are rebuilt.
CACHE_VERSION = 2
#: Seconds a waiting process tolerates with no entry and no process building it.
WAIT_TIMEOUT_S = 600.0
_CHUNK = 1 << 20
_POLL_S = 0.2
_MANIFEST_KEYS = frozenset({"identity", "data", "channels", "bytes", "checksum", "failures", "created"})
# The longest label or reason a manifest may hold per unreadable image (a path, an error's first line).
_MAX_LABEL_CHARS = 8192

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


def _checksum(handle, manifest: dict) -> str:
    """SHA-256 of the whole data file (streamed in 1 MB blocks) and of the manifest's other fields."""
    digest = hashlib.sha256()
    fields = {key: manifest[key] for key in ("identity", "data", "channels", "bytes", "failures")}
    digest.update(json.dumps(fields, sort_keys=True).encode())
    handle.seek(0)
    while block := handle.read(_CHUNK):
        digest.update(block)
    return digest.hexdigest()


def _checked_manifest(raw: bytes, source: str, entry: Path, identity: dict) -> dict | None:
    """The manifest's fields, each checked; ``None`` when it describes another identity (stale).

    Raises:
        RecordError: a malformed manifest (not JSON, a missing, unknown or ill-typed field).
    """
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise RecordError(f"{source}: not JSON ({' '.join(str(exc).split())})") from None
    check = _Checker(source)
    if not isinstance(manifest, dict):
        raise check.fail("(the whole file)", "a JSON object", manifest)
    if isinstance(manifest.get("identity"), dict) and manifest["identity"] != identity:
        return None  # written for another source state, size or version: stale, not damaged
    if "identity" in manifest and not isinstance(manifest["identity"], dict):
        raise check.fail("identity", "a mapping", manifest["identity"])
    keys = set(manifest)
    if keys != _MANIFEST_KEYS:
        wrong = sorted(keys - _MANIFEST_KEYS) or sorted(_MANIFEST_KEYS - keys)
        raise RecordError(f"{source}: {'unknown' if keys - _MANIFEST_KEYS else 'missing'} field(s) {', '.join(wrong)}")
    count = identity["count"]
    pattern = re.escape(entry.name) + r"-\d+-[0-9a-f]{8}\.npy"
    data = check.name("data", manifest["data"], empty=False)
    if not re.fullmatch(pattern, data):
        raise check.fail("data", f"a data file name of this entry ({entry.name}-<pid>-<token>.npy)", data)
    if manifest["channels"] not in (1, 3) or isinstance(manifest["channels"], bool):
        raise check.fail("channels", "1 or 3", manifest["channels"])
    check.integer("bytes", manifest["bytes"], 0)
    checksum = manifest["checksum"]
    if not isinstance(checksum, str) or not re.fullmatch(r"[0-9a-f]{64}", checksum):
        raise check.fail("checksum", "64 hexadecimal digits", checksum)
    check.name("created", manifest["created"])
    failures = manifest["failures"]
    if not isinstance(failures, list) or len(failures) > count:
        raise check.fail("failures", f"a list of at most {count} [index, label, reason] entries", failures)
    seen = set()
    for position, item in enumerate(failures):
        where = f"failures[{position}]"
        if not (isinstance(item, list) and len(item) == 3):
            raise check.fail(where, "an [index, label, reason] list", item)
        index = check.integer(f"{where}[0]", item[0], 0, count - 1)
        for part, text in (("label", item[1]), ("reason", item[2])):
            if not isinstance(text, str) or len(text) > _MAX_LABEL_CHARS:
                raise check.fail(f"{where} {part}", f"a str of at most {_MAX_LABEL_CHARS} characters", text)
        if index in seen:
            raise check.fail(f"{where}[0]", "an index listed once", index)
        seen.add(index)
    return manifest


def _open(entry: Path, identity: dict, *, verify: bool = True) -> tuple[CachedImages | None, str | None]:
    """The entry if it is valid, else ``None`` and why (``None`` when it does not exist or is stale).

    ``verify=False`` skips the whole-file checksum (right after this process wrote and hashed it).
    """
    manifest_path = entry.with_name(entry.name + ".json")
    directory = entry.parent
    count, size = identity["count"], identity["image_size"]
    try:
        raw = read_bytes(manifest_path, max_bytes=(1 << 20) + count * 2 * (_MAX_LABEL_CHARS + 64), root=directory)
    except UntrustedFileError as exc:
        if not os.path.lexists(manifest_path):
            return None, None
        return None, f"unreadable manifest ({' '.join(str(exc).split())})"
    try:
        manifest = _checked_manifest(raw, manifest_path.name, entry, identity)
    except RecordError as exc:
        return None, f"malformed manifest: {' '.join(str(exc).split()).removeprefix(manifest_path.name + ': ').rstrip('.')}"
    if manifest is None:
        return None, None
    data = directory / manifest["data"]
    shape = (count, manifest["channels"], size, size)
    try:
        with open_regular(data, root=directory) as handle:
            found, dtype, fortran = array_header(handle, max_elements=count * 3 * size * size, name=data.name)
            if dtype != np.uint8 or found != shape or fortran:
                return None, f"{data.name} holds {dtype} {found}, expected uint8 {shape}"
            nbytes = os.fstat(handle.fileno()).st_size
            if nbytes != manifest["bytes"] or nbytes != handle.tell() + int(np.prod(shape)):
                return None, f"{data.name} has {nbytes} bytes, the manifest says {manifest['bytes']}"
            if verify and _checksum(handle, manifest) != manifest["checksum"]:
                return None, f"{data.name} or its manifest fails its checksum"
        images = np.load(data, mmap_mode="r", allow_pickle=False)
    except UntrustedFileError as exc:
        return None, " ".join(str(exc).split())
    except (OSError, ValueError) as exc:
        return None, f"{data.name} cannot be read ({exc})"
    if images.dtype != np.uint8 or images.shape != shape:
        return None, f"{data.name} holds {images.dtype} {images.shape}, expected uint8 {shape}"
    failures = {int(i): (label, reason) for i, label, reason in manifest["failures"]}
    for index in failures:
        if images[index].any():
            return None, f"the manifest lists image {index} as unreadable, but {data.name} holds its pixels"
    return CachedImages(data, images, failures, nbytes, built=False), None


def _lock_path(entry: Path) -> Path:
    return entry.with_name(entry.name + ".lock")


def _open_lock(entry: Path) -> int:
    """A descriptor of the entry's lock file, which is a regular file: anything else in its place is replaced.

    The open never blocks (a FIFO named like the lock cannot hang it) and follows no link.

    Raises:
        DatasetError: the lock's place holds something that cannot be replaced (a folder).
    """
    path = _lock_path(entry)
    flags = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    for attempt in range(2):
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                raise exc from None
            kind = describe_kind(mode)
        else:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode):
                return fd
            os.close(fd)
            kind = describe_kind(mode)
        if stat.S_ISDIR(mode) or attempt:
            raise DatasetError(f"the data cache lock {path} is {kind}, not a regular file, and cannot be replaced; "
                               "remove it, or pass another cache_dir.")
        warnings.warn(f"the data cache lock {path} was {kind}, not a regular file; replacing it.", UserWarning,
                      stacklevel=4)
        path.unlink(missing_ok=True)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _locked(entry: Path):
    fd = _open_lock(entry)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _lock_is_held(entry: Path) -> bool:
    if fcntl is None:
        return False
    try:
        fd = _open_lock(entry)
    except (OSError, DatasetError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
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
            "failures": [[int(i), str(label)[:_MAX_LABEL_CHARS], str(reason)[:_MAX_LABEL_CHARS]]
                         for i, label, reason in failures],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with open(final_tmp, "rb") as handle:
            manifest["checksum"] = _checksum(handle, manifest)
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
    opened, problem = _open(entry, identity, verify=False)  # hashed above, as it was written
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
                try:
                    reason = read_bytes(note, max_bytes=4096, root=entry.parent).decode("utf-8", "replace")
                except UntrustedFileError as exc:
                    reason = f"its note of the reason cannot be read ({exc})"
                raise DatasetError(f"Dataset {identity['dataset']!r}: local rank 0 could not build the data cache "
                                   f"{entry}.json: {' '.join(reason.split())}")
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
