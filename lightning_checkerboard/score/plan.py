"""The size policy: which pixels of each image are scored, at how many grid levels, in which groups.

Images are never resampled: resampling makes or destroys exactly the grid patterns the score
measures. They are centre-cropped instead, under one of two declared policies:

- ``size=N``: every image is centre-cropped to ``N x N``; images smaller than ``N`` on either side are
  skipped and counted (``too_small``), and every set is then one group.
- ``size=None`` (the default): images are grouped by their own size, each centre-cropped to the
  largest multiple of ``2**levels`` that fits (at most ``2**levels - 1`` rows and columns, which
  leaves the power at the grid frequencies unchanged), and every group is scored on its own.

``levels`` left to the plan is, without ``size``, the largest of 3, 2, 1 that the smallest generated
image allows (a side of at least ``4 * 2**levels`` pixels), the same for every group so that their
scores measure the same periods. With ``size`` it is 3, and a ``size`` that does not fit 3 levels
(at least 32 and a multiple of 8) is an error that names the levels it fits: the crop was chosen, so
the periods measured are not silently changed. ``levels`` is at most :data:`MAX_LEVELS`. Reference images are cropped by the
same rule; those of sizes no generated group has are left unused. Greyscale images are repeated to RGB when
any image of either set is in colour (repeating a channel leaves the score unchanged), so that both
sets reach the distance metrics with the same channels.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_checkerboard._validation import check_int
from lightning_checkerboard.score.reading import Entry, ScoreError, SkipReport

__all__ = ["DEFAULT_LEVELS", "MAX_LEVELS", "MAX_SIZE", "Group", "Plan", "make_plan", "min_side"]

#: Levels chosen when the images allow it: periods 2, 4 and 8, the patterns of three stacked stride-2 stages.
DEFAULT_LEVELS = 3
#: The most levels: periods up to 2**16, which need sides of at least 262144 pixels.
MAX_LEVELS = 16
#: The largest ``size`` (a side of 65536 pixels).
MAX_SIZE = 65_536
# The score needs 4 frequency bins between grid bins: a side of at least 4 * 2**levels pixels.
_BINS_PER_CELL = 4


def min_side(levels: int) -> int:
    """The smallest image side the score measures at ``levels`` (four repeats of the longest period)."""
    return _BINS_PER_CELL * 2**levels


@dataclass
class Group:
    """Images of one scored size.

    Attributes:
        height, width: the scored (cropped) size.
        generated: the generated images' entries.
        reference: the reference images' entries; empty for ``photos`` or without a reference.
    """

    height: int
    width: int
    generated: list[Entry]
    reference: list[Entry]

    @property
    def size(self) -> str:
        return f"{self.height}x{self.width}"


@dataclass
class Plan:
    """What will be scored: the levels, the channel count and the groups, largest first."""

    levels: int
    channels: int
    groups: list[Group]
    size: int | None


def _fits(entry: Entry, size: int) -> bool:
    return entry.height >= size and entry.width >= size


def _size_fits(size: int, levels: int) -> bool:
    return size >= min_side(levels) and size % 2**levels == 0


def _choose_levels(smallest: int, size: int | None, levels: int | None, example: str) -> int:
    if size is not None:
        chosen = DEFAULT_LEVELS if levels is None else levels
        if not _size_fits(size, chosen):
            fitting = [str(k) for k in range(MAX_LEVELS, 0, -1) if _size_fits(size, k)]
            which = "the default --levels" if levels is None else "--levels"
            hint = (f"--levels {' or '.join(fitting)} {'fits' if len(fitting) == 1 else 'fit'} it: pass one of "
                    "them, or another --size" if fitting
                    else f"no level fits it (the least, 1, needs an even size of at least {min_side(1)}): pass "
                    "another --size")
            raise ScoreError(
                f"--size {size} does not fit {which} {chosen}: the size must be a multiple of 2**levels = "
                f"{2**chosen} and at least {min_side(chosen)}; {hint}."
            )
        return chosen
    if levels is not None:
        return levels
    for candidate in range(DEFAULT_LEVELS, 0, -1):
        if smallest >= min_side(candidate):
            return candidate
    what = f"--size {size}" if size is not None else f"the smallest image ({example})"
    raise ScoreError(
        f"{what} is too small to score: the score needs sides of at least {min_side(1)} pixels and even "
        "(periods 2 need 4 repeats)."
    )


def _check_large_enough(entries: list[Entry], levels: int) -> None:
    need = min_side(levels)
    small = [e for e in entries if min(e.height, e.width) < need]
    if small:
        first = small[0]
        raise ScoreError(
            f"{len(small)} generated image(s) are smaller than the {need}x{need} that --levels {levels} needs "
            f"(4 repeats of the period {2**levels}), e.g. {first.label} is {first.height}x{first.width}; "
            "lower --levels, leave it out to choose from the sizes, or remove the small images."
        )


def _sizes_of(entries: list[Entry], levels: int, size: int | None, shown: int = 5) -> str:
    """The real sizes of ``entries`` (most common first), each with the size it is scored at when cropped."""
    counts: dict[tuple[int, int], int] = {}
    for entry in entries:
        counts[(entry.height, entry.width)] = counts.get((entry.height, entry.width), 0) + 1
    ordered = sorted(counts, key=lambda key: (-counts[key], key))
    parts = []
    for h, w in ordered[:shown]:
        sh, sw = _scored_size(Entry(0, "", h, w, 0), levels, size)
        scored = "" if (sh, sw) == (h, w) else (f", scored as {sh}x{sw}" if sh and sw
                                                else f", too small for --levels {levels}")
        parts.append(f"{h}x{w} ({counts[(h, w)]} image{'s' if counts[(h, w)] > 1 else ''}{scored})")
    more = f", … {len(ordered) - shown} more" if len(ordered) > shown else ""
    return ", ".join(parts) + more


def _scored_size(entry: Entry, levels: int, size: int | None) -> tuple[int, int]:
    if size is not None:
        return size, size
    cell = 2**levels
    return entry.height - entry.height % cell, entry.width - entry.width % cell


def _by_size(entries: list[Entry], levels: int, size: int | None) -> dict[tuple[int, int], list[Entry]]:
    groups: dict[tuple[int, int], list[Entry]] = {}
    for entry in entries:
        groups.setdefault(_scored_size(entry, levels, size), []).append(entry)
    return groups


def make_plan(
    generated: list[Entry],
    reference: list[Entry] | None,
    *,
    photos_reference: bool,
    size: int | None,
    levels: int | None,
    skipped: tuple[SkipReport, SkipReport],
) -> Plan:
    """Crop, level and group the surveyed images as the module docstring says.

    Args:
        generated: entries of the generated set.
        reference: entries of the reference set, ``None`` without one (or for ``photos``).
        photos_reference: whether the reference is the embedded photos (cut at every group's size).
        size: ``N`` for the ``N x N`` crop policy, ``None`` to group by size.
        levels: the grid levels, ``None`` to choose them from the sizes.
        skipped: the generated and the reference set's skip reports; images too small for ``size``
            are added to them.

    Raises:
        ScoreError: no image at least ``size``; images too small for ``levels``; a generated size the
            reference does not have.
    """
    if size is not None:
        check_int(size, "--size", minimum=1, maximum=MAX_SIZE)
    if levels is not None:
        check_int(levels, "--levels", minimum=1, maximum=MAX_LEVELS)
    reference = reference or []
    if size is not None:
        for entries, report in ((generated, skipped[0]), (reference, skipped[1])):
            report.too_small.extend(e.label for e in entries if not _fits(e, size))
        kept = [e for e in generated if _fits(e, size)]
        if not kept:
            raise ScoreError(f"no generated image is at least {size}x{size}; lower --size or leave it out.")
        if reference and not any(_fits(e, size) for e in reference):
            raise ScoreError(f"no reference image is at least {size}x{size}; lower --size or leave it out.")
        generated, reference = kept, [e for e in reference if _fits(e, size)]
    everything = generated + reference
    smallest = min(generated, key=lambda e: min(e.height, e.width))
    levels = _choose_levels(
        min(smallest.height, smallest.width), size, levels, f"{smallest.label}, {smallest.height}x{smallest.width}"
    )
    if size is None:
        _check_large_enough(generated, levels)
    generated_groups = _by_size(generated, levels, size)
    reference_groups = _by_size(reference, levels, size)
    if reference and not photos_reference:
        missing = [key for key in generated_groups if key not in reference_groups]
        if missing:
            h, w = missing[0]
            raise ScoreError(
                f"the reference has no images of size {h}x{w} to compare the generated ones with (its sizes: "
                f"{_sizes_of(reference, levels, size)}); pass --size N to crop both sets to one size, or give a "
                "reference of that size."
            )
    channels = 3 if photos_reference or any(e.channels == 3 for e in everything) else 1
    groups = [
        Group(h, w, entries, reference_groups.get((h, w), []))
        for (h, w), entries in sorted(generated_groups.items(), key=lambda item: (-len(item[1]), item[0]))
    ]
    return Plan(levels, channels, groups, size)
