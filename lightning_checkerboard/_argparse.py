"""An ``argparse`` parser whose mistakes are one line: ``<prog>: error: <message> (see --help)``, exit 2.

argparse's own ``error()`` prints the whole usage block before the message; for a command with
twenty flags that buries the one line that matters. :class:`OneLineParser` prints only the message
and points at ``--help``, which still shows the full usage. It also turns off prefix matching
(``allow_abbrev=False``), so ``--size`` is never silently taken for ``--size-policy`` or the like.

Example:
    >>> parser = OneLineParser(prog="demo")
    >>> _ = parser.add_argument("--count", type=int)
    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         parser.parse_args(["--count", "x"])
    ...     except SystemExit as exit:
    ...         print(exit.code)
    2
    >>> err.getvalue()
    "demo: error: argument --count: invalid int value: 'x' (see --help)\\n"
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

__all__ = ["EXIT_USAGE", "OneLineParser"]

#: The exit status of a command-line mistake.
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that reports a mistake in one line and never matches flag prefixes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        text = " ".join(str(message).split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see --help)\n")
