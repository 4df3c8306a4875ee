"""Fields of untrusted records made safe for the markdown, CSV and HTML the leaderboard writes.

Records come from other people's folders and W&B projects. Markdown cells have ``|``, newlines,
backticks, brackets and angle brackets escaped, so a name cannot break a table, open a link or inject
HTML; CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) get a leading ``'`` unless they are plain numbers; links are kept only when
they are ``http(s)``.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["csv_cell", "href", "md_code", "md_text"]

# Spreadsheets run a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]<>|])")


def md_text(value: Any) -> str:
    r"""``value`` as inline markdown text on one line: no table break, link, code span or HTML.

    Example:
        >>> md_text("a|b\n<img src=x onerror=alert(1)> [x](javascript:y)")
        'a\\|b \\<img src=x onerror=alert(1)\\> \\[x\\](javascript:y)'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).splitlines()))


def md_code(value: Any) -> str:
    r"""``value`` as a markdown code span on one line, inside a table cell.

    The fence is one backtick longer than the longest run of backticks inside, so none closes it.

    Example:
        >>> md_code("nearest_conv"), md_code("a`b|c")
        ('`nearest_conv`', '`` a`b\\|c ``')
    """
    text = " ".join(str(value).splitlines()).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def csv_cell(value: Any) -> Any:
    r"""``value`` for a CSV cell: a string a spreadsheet would run as a formula gets a leading ``'``.

    Numbers, and strings that are plain numbers, stay as they are.

    Example:
        >>> csv_cell("=HYPERLINK(\"http://x\")"), csv_cell("-1"), csv_cell(-2.5), csv_cell("deconv")
        ('\'=HYPERLINK("http://x")', '-1', -2.5, 'deconv')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def href(url: Any) -> str | None:
    """``url`` escaped for an ``href`` attribute when it is an ``http(s)`` link, else ``None``."""
    if not isinstance(url, str) or not re.match(r"https?://[^\s]", url, flags=re.IGNORECASE):
        return None
    return html.escape(url, quote=True)
