"""The one error type of the data layer."""

from __future__ import annotations

__all__ = ["DatasetError"]


class DatasetError(ValueError):
    """A dataset cannot be found, read or used as asked.

    The message is one line that names the dataset and says how to fix the problem, so a recipe can
    print it and exit with code 2 instead of showing a traceback.
    """
