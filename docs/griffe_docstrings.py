"""A griffe extension for the reference pages: the package's docstrings as the site renders them.

The docstrings are written for ``help()`` and the source as much as for the site, in two habits the
Google-style parser reads differently from what they mean:

- ``Example:`` heads a doctest; the parser takes the singular form for an admonition and renders the
  doctest as prose, so it is read as the ``Examples:`` section it is.
- Sphinx roles (``:func:`~lightning_checkerboard.functional.overlap_map```) name code; they become
  inline code showing the name as Sphinx would (the last part after ``~``).

Only the rendered text changes; the docstrings in the source stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const|py:\w+):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def rewrite(text: str) -> str:
    """The docstring ``text`` with ``Example:`` read as ``Examples:`` and Sphinx roles as inline code.

    Example:
        >>> rewrite("See :func:`~a.b.overlap_map`.\\n\\nExample:\\n    >>> 1\\n    1")
        'See `overlap_map`.\\n\\nExamples:\\n    >>> 1\\n    1'
    """
    return _ROLE.sub(_role, _EXAMPLE.sub(r"\1Examples:", text))


class HouseDocstrings(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`rewrite`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
