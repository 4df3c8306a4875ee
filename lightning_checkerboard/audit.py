"""``python -m lightning_checkerboard.audit``: the name the ``audit`` command had first, kept working.

The command lives in :mod:`lightning_checkerboard.adapt.__main__` (``lightning-checkerboard audit``).
Importing this module makes Python bind ``lightning_checkerboard.audit`` to it instead of the function
:func:`lightning_checkerboard.audit`, so the module is callable and forwards to the function:
``lightning_checkerboard.audit(model, x)`` works either way.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from lightning_checkerboard.adapt.__main__ import main as _main
from lightning_checkerboard.adapt.audit import audit

__all__ = ["main"]


def main(argv: list[str] | None = None, prog: str = "python -m lightning_checkerboard.audit") -> int:
    """Run the ``audit`` command (see :mod:`lightning_checkerboard.adapt.__main__`); returns its exit status."""
    return _main(argv, prog=prog)


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
