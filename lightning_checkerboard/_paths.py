"""Paths built from names that users and result records supply: safe components, and a containment check.

A dataset name (``folder:/data/../cats``, ``hf:owner/repo``), an upsampler spec or a run id read from
someone else's record must never place a file outside the folder it is meant for. Names become path
components through :func:`path_component`; every path built from them goes through
:func:`path_inside`, which resolves it and refuses one that lands outside its root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["OutsideFolderError", "path_component", "path_inside"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class OutsideFolderError(ValueError):
    """A path that would land outside the folder it was built for."""


def path_component(name: str, max_chars: int = 80) -> str:
    """``name`` as one file or directory name: runs of other characters than letters, digits, ``.``,
    ``_``, ``+`` and ``-`` become ``-``; no leading or trailing dot or dash (so never ``.`` or ``..``),
    at most ``max_chars`` characters, never empty (``"x"``).

    Example:
        >>> path_component("folder:/data/../cats"), path_component("hf:owner/repo"), path_component("..")
        ('folder-data-..-cats', 'hf-owner-repo', 'x')
    """
    return _UNSAFE.sub("-", name)[:max_chars].strip(".-") or "x"


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
