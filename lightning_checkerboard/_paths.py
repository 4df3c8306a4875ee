"""Paths built from names that users and result records supply: safe components, and a containment check.

A dataset name (``folder:/data/../cats``, ``hf:owner/repo``), an upsampler spec or a run id read from
someone else's record must never place a file outside the folder it is meant for. Names become path
components through :func:`slug`; every path built from them goes through
:func:`path_inside`, which resolves it and refuses one that lands outside its root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["OutsideFolderError", "path_inside", "slug"]


class OutsideFolderError(ValueError):
    """A path that would land outside the folder it was built for."""


def slug(name: str, max_chars: int | None = 80, *, keep: str = "._+-", trim: str = ".-") -> str:
    """``name`` as file-name-safe text: letters, digits and the characters of ``keep`` stay; every run of
    other characters becomes one ``-``.

    The result is cut to ``max_chars`` (``None``: never cut), loses the characters of ``trim`` at both
    ends, and is ``"x"`` when nothing is left. The defaults make a whole path component: never ``.``
    or ``..``, never empty, at most 80 characters. The leaderboard joins slugs into longer names
    (``<task>-<dataset>``) and makes them with ``keep="._-"``, ``trim="-"`` and no cut, the rule its
    page names and table keys have always followed.

    Args:
        name: any text, such as a dataset name or an upsampler spec from a record.
        max_chars: the longest result before trimming; ``None`` for no limit.
        keep: punctuation kept as it is (ASCII letters and digits always are).
        trim: characters removed from both ends.

    Example:
        >>> slug("folder:/data/../cats"), slug("hf:owner/repo"), slug("..")
        ('folder-data-..-cats', 'hf-owner-repo', 'x')
        >>> slug("../../escaped", None, keep="._-", trim="-")
        '..-..-escaped'
    """
    return re.sub(f"[^A-Za-z0-9{re.escape(keep)}]+", "-", name)[:max_chars].strip(trim) or "x"


def path_inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root`` joined with ``parts``, once its resolved form is checked to lie strictly inside ``root``'s.

    Symbolic links are followed on both sides, so a link inside ``root`` that points elsewhere is
    refused as well.

    Args:
        root: the folder the path must stay in.
        parts: path components below it.

    Returns:
        ``Path(root, *parts)`` as given (not resolved), so messages show the paths the user knows.

    Raises:
        OutsideFolderError: the path resolves to ``root`` itself or to somewhere outside it.

    Example:
        >>> path_inside("out", "assets", "run1", "final.png").as_posix()
        'out/assets/run1/final.png'
        >>> path_inside("out", "assets", "../../escaped")
        Traceback (most recent call last):
        ...
        lightning_checkerboard._paths.OutsideFolderError: out/assets/../../escaped lies outside out; refusing to write there.
    """
    path = Path(root, *parts)
    base = Path(root).resolve()
    resolved = path.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise OutsideFolderError(f"{path.as_posix()} lies outside {Path(root).as_posix()}; refusing to write there.")
    return path
