"""The package's one user cache directory, shared by the data caches and FID's real statistics."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "user_cache_dir"]

#: Set to move every cache of the package (datasets, FID statistics) to another folder.
CACHE_ENV = "LIGHTNING_CHECKERBOARD_CACHE"


def user_cache_dir(*parts: str) -> Path:
    """``$LIGHTNING_CHECKERBOARD_CACHE/<parts>``; without it ``$XDG_CACHE_HOME/lightning_checkerboard/<parts>``
    (``~/.cache/lightning_checkerboard/<parts>`` when ``XDG_CACHE_HOME`` is unset as well).

    Read at call time, so a test or a job can point it elsewhere after import. Nothing is created.

    >>> import os
    >>> os.environ[CACHE_ENV] = "/tmp/lcb-cache"
    >>> str(user_cache_dir("fid"))
    '/tmp/lcb-cache/fid'
    >>> del os.environ[CACHE_ENV]
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser().joinpath(*parts)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "lightning_checkerboard", *parts)
