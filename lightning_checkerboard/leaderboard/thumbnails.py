"""A run's pictures for the leaderboard page: its sample grid, pictures cut from it, its spectra plot.

They go to ``<out>/assets/<run_id>/``: ``final.png``, the final sample grid at its native resolution
(the top-left tiles when the grid is larger than :data:`MAX_GRID_SIDE`), and ``spectra.png``, the
last spectra plot as saved. From the grid (:func:`derive_pictures`): ``tile.png``, the run's first
output sample (its :data:`TILE_SIDE`-pixel window with the strongest period-2 pattern when the sample
is larger), ``crop.png``, the :data:`CROP_SIDE`-pixel window with the strongest period-2 pattern of
all its output samples, and for super-resolution ``error.png``, output minus target ×
:data:`ERROR_GAIN` around mid-grey over the tile's window. Pictures are never resampled: the page
draws each at an integer zoom. Which grid column is the output depends on the task
(:data:`GRID_COLUMNS`). Pictures are untrusted like the records beside them: each is
opened through :func:`~lightning_checkerboard._untrusted.open_image`, so it must be a regular file
inside its run directory (a link that leads out, a FIFO or a device is refused without waiting on
it) and hold at most :data:`MAX_PICTURE_PIXELS` pixels, read from its header before anything is
decoded (a small file that would expand to gigabytes is refused for free). A run id comes from a
record, so every path written is checked to lie inside the output folder. A picture that cannot be
read or placed costs its row the picture only, and is reported with the reason.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard._paths import OutsideFolderError, path_inside
from lightning_checkerboard._untrusted import UntrustedFileError, open_image, resolve_inside
from lightning_checkerboard.records import ResultRecord

__all__ = [
    "ASSETS",
    "CROP_SIDE",
    "ERROR_GAIN",
    "GRID_COLUMNS",
    "MAX_GRID_SIDE",
    "MAX_PICTURE_PIXELS",
    "TILE_SIDE",
    "copy_thumbnails",
    "derive_pictures",
    "grid_samples",
    "picture_sides",
    "thumbnail_paths",
    "window_energies",
]

#: The output folder's subfolder for pictures (thumbnails and scatter plots).
ASSETS = "assets"
#: The most pixels a run's picture may have (a 64-sample grid of 512×512 images has 17 million).
MAX_PICTURE_PIXELS = 40_000_000
#: The widest or tallest grid copied whole; a larger one keeps its top-left tiles that fit.
MAX_GRID_SIDE = 1100
#: The side of a tile on the page (a sample larger than this shows its window with the strongest pattern).
TILE_SIDE = 32
#: The side of the window with the strongest pattern, shown at 4×.
CROP_SIDE = 16
#: How much the super-resolution error picture amplifies output − target.
ERROR_GAIN = 8
#: Each task's sample-grid columns, repeated along a row; the output is the column named "output".
GRID_COLUMNS = {"gan": ("output",), "style_transfer": ("content", "output"),
                "super_resolution": ("bicubic", "output", "target"),
                "autoencoder": ("target", "output")}  # the input is the target of its reconstruction
_PAD = 2  # SampleGrid pads tiles by 2 pixels


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def thumbnail_paths(run_id: str) -> dict[str, str]:
    """Where :func:`copy_thumbnails` may write a run's pictures, relative to the output folder, by kind."""
    return {"samples": f"{ASSETS}/{run_id}/final.png", "spectra": f"{ASSETS}/{run_id}/spectra.png",
            "tile": f"{ASSETS}/{run_id}/tile.png", "crop": f"{ASSETS}/{run_id}/crop.png",
            "error": f"{ASSETS}/{run_id}/error.png"}


def picture_sides(image_size: int) -> dict[str, int]:
    """The side in pixels of each picture :func:`derive_pictures` cuts from a grid of ``image_size`` samples."""
    return {"tile": min(image_size, TILE_SIDE), "crop": min(image_size, CROP_SIDE),
            "error": min(image_size, TILE_SIDE)}


def _last_spectra(run_dir: Path) -> Path | None:
    """The last ``spectra/*.png`` by name, when ``spectra/`` is a folder inside ``run_dir``."""
    try:
        folder = resolve_inside(run_dir / "spectra", run_dir)
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing if entry.name.endswith(".png"))
    except (OSError, UntrustedFileError):
        return None
    return run_dir / "spectra" / names[-1] if names else None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def copy_thumbnails(record: ResultRecord, run_dir: Path | None, out: Path,
                    problems: list[tuple[str, str]] | None = None,
                    strengths: dict[str, float] | None = None) -> dict[str, str]:
    """Copy the run's final sample grid and last spectra plot, cut its pictures; relative paths by kind.

    Args:
        record: the run's record (its run id names the folder, its task and image size the cuts).
        run_dir: the run directory the pictures must lie in; ``None``: no pictures.
        out: the leaderboard folder.
        problems: where to append ``(picture, one-line reason)`` for every picture skipped.
        strengths: where to put the run's strongest local period-2 amplitude (8-bit levels), by run id.
    """
    if run_dir is None:
        return {}
    problems = [] if problems is None else problems
    targets = thumbnail_paths(record.run_id)
    written = {}
    grid = run_dir / "samples" / "final.png"
    spectra = _last_spectra(run_dir)
    for kind, source in (("samples", grid), ("spectra", spectra)):
        if source is None or not os.path.lexists(source):
            continue
        try:
            with open_image(source, root=run_dir, max_pixels=MAX_PICTURE_PIXELS) as image:
                image = image.convert("RGB")
                data = {kind: _png(_grid_copy(image, record.image_size) if kind == "samples" else image)}
                if kind == "samples":
                    derived, strength = derive_pictures(image, record.task, record.image_size)
                    data.update(derived)
                    if strengths is not None and derived:
                        strengths[record.run_id] = strength
            for name, payload in data.items():
                atomic_write_bytes(path_inside(out, *targets[name].split("/")), payload)
        except (UntrustedFileError, OutsideFolderError) as err:
            problems.append((str(source), f"{_one_line(err)} Picture skipped."))
            continue
        except Exception as err:  # Pillow's decoders raise many kinds (OSError, SyntaxError, zlib.error…)
            problems.append((str(source), f"{source}: not a picture that can be decoded ({_one_line(err)[:200]}). "
                                          "Picture skipped."))
            continue
        written.update({name: targets[name] for name in data})
    return written


def _grid_copy(image, image_size: int):
    """The grid, or its top-left tiles that fit in :data:`MAX_GRID_SIDE` when it is larger."""
    if image.width <= MAX_GRID_SIDE and image.height <= MAX_GRID_SIDE:
        return image
    step = image_size + _PAD
    tiles = max(1, (MAX_GRID_SIDE - _PAD) // step)
    side = _PAD + tiles * step
    return image.crop((0, 0, min(side, image.width), min(side, image.height)))


def _tiles(image, image_size: int, column: int, columns: int) -> list:
    """Every complete sample of grid column ``column`` of ``columns`` (repeated along each row), as arrays."""
    import numpy as np

    array = np.asarray(image.convert("RGB"), dtype=np.float64)
    step = image_size + _PAD
    per_row, rows = (image.width - _PAD) // step, (image.height - _PAD) // step
    tiles = []
    for r in range(rows):
        for c in range(per_row):
            if c % columns == column and c + (columns - 1 - column) < per_row:
                top, left = _PAD + r * step, _PAD + c * step
                tiles.append((array[top:top + image_size, left:left + image_size], r, c))
    return tiles


def window_energies(grey, side: int):
    """The period-2 energy of every ``side``-pixel window of ``grey`` that starts on even pixels.

    The energy is that of the three period-2 patterns ((-1)^(i+j), (-1)^i, (-1)^j) over the window,
    whose sums ignore the window's mean, taken over the picture's second difference (which keeps a
    period-2 pattern, ×4 per direction, and removes ramps, whose alternating sums would otherwise
    read as a pattern proportional to their slope). ``energies[a, b]`` is the window at ``(2a, 2b)``;
    ``sqrt(energy) / (8 side²)`` is a checkerboard's amplitude in the picture's levels.
    """
    import numpy as np

    padded = np.pad(grey, 1, mode="edge")
    grey = 4 * grey - padded[:-2, 1:-1] - padded[2:, 1:-1] - padded[1:-1, :-2] - padded[1:-1, 2:]
    h, w = grey.shape
    i, j = np.indices(grey.shape)
    tops, lefts = np.arange(0, h - side + 1, 2), np.arange(0, w - side + 1, 2)
    energies = np.zeros((len(tops), len(lefts)))
    for sign in ((-1.0) ** (i + j), (-1.0) ** i, (-1.0) ** j):
        total = np.zeros((h + 1, w + 1))
        total[1:, 1:] = np.cumsum(np.cumsum(grey * sign, axis=0), axis=1)
        sums = (total[np.ix_(tops + side, lefts + side)] - total[np.ix_(tops, lefts + side)]
                - total[np.ix_(tops + side, lefts)] + total[np.ix_(tops, lefts)])
        energies += sums ** 2
    return energies


def _strongest_window(grey, side: int) -> tuple[int, int, float]:
    """The ``side``-pixel window of ``grey`` with the most period-2 energy (:func:`window_energies`):
    ``(top, left, amplitude in the picture's levels)``."""
    import numpy as np

    energies = window_energies(grey, side)
    a, b = np.unravel_index(int(np.argmax(energies)), energies.shape)
    return 2 * int(a), 2 * int(b), float(np.sqrt(energies[a, b])) / (8 * side * side)


def grid_samples(image, task: str, image_size: int) -> dict[str, list]:
    """The complete samples of a run's grid, by column name (:data:`GRID_COLUMNS`), as float arrays in
    0–255, in reading order; entry ``k`` of every column belongs to the same sample."""
    names = GRID_COLUMNS.get(task, GRID_COLUMNS["gan"])
    columns = {name: _tiles(image, image_size, index, len(names)) for index, name in enumerate(names)}
    starts = {(r, c) for r, c in ((r, c) for _, r, c in columns[names[0]])}
    return {name: [a for a, r, c in tiles if (r, c - index) in starts]
            for index, (name, tiles) in enumerate(columns.items())}


def derive_pictures(image, task: str, image_size: int) -> tuple[dict[str, bytes], float]:
    """The page's pictures cut from a run's sample grid, as PNG bytes by kind, and the strongest local
    period-2 amplitude found (8-bit levels, the ``crop`` window's).

    ``tile``: the first output sample, or its :data:`TILE_SIDE`-pixel window with the strongest
    pattern; ``crop``: the :data:`CROP_SIDE`-pixel window with the strongest pattern over every output
    sample; ``error`` (super-resolution): ``ERROR_GAIN × (output − target) + 128`` over the tile's
    window. A grid too small for one sample gives nothing.

    Args:
        image: the grid (a PIL image).
        task: the record's task (see :data:`GRID_COLUMNS`; other tasks read as ``gan``).
        image_size: the side of one sample.
    """
    import numpy as np
    from PIL import Image

    names = GRID_COLUMNS.get(task, GRID_COLUMNS["gan"])
    output = names.index("output")
    samples = _tiles(image, image_size, output, len(names))
    if not samples:
        return {}, 0.0
    sides = picture_sides(image_size)
    grey = lambda a: a @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    first, r0, c0 = samples[0]
    top, left, _ = _strongest_window(grey(first), sides["tile"])
    picture = lambda a, t, l, s: Image.fromarray(a[t:t + s, l:l + s].round().clip(0, 255).astype(np.uint8))  # noqa: E731
    pictures = {"tile": _png(picture(first, top, left, sides["tile"]))}
    best = max(((_strongest_window(grey(a), sides["crop"]), a) for a, _, _ in samples), key=lambda x: x[0][2])
    (ctop, cleft, strength), array = best
    pictures["crop"] = _png(picture(array, ctop, cleft, sides["crop"]))
    if "target" in names:
        targets = {(r, c): a for a, r, c in _tiles(image, image_size, names.index("target"), len(names))}
        target = targets.get((r0, c0 + names.index("target") - output))
        if target is not None:
            error = ERROR_GAIN * (first - target) + 128.0
            pictures["error"] = _png(picture(error, top, left, sides["error"]))
    return pictures, strength
