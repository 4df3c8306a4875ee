"""Numbers into report text: mean ± std over seeds, Markdown cells, provenance and the "far above" test.

The recipes that write reports (``recipes/reports/init_probe.py``, ``gradient_probe.py``, ``article_report.py``,
``style_figure.py``, ``detection_limits.py``, ``gan_defaults.py``) format their numbers and stamp their
provenance with these helpers, so every report reads the same way. Only the standard library and
torch (for the provenance line) are imported.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

__all__ = [
    "far_above",
    "format_mean_std",
    "format_number",
    "mean_std",
    "provenance",
    "replace_marked_section",
    "summarize",
    "summary_cells",
]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_number(value: object, digits: int, unit: str = "") -> str:
    """``value`` with ``digits`` decimals and ``unit``, or ``"unavailable"`` when it is not a number.

    Example:
        >>> format_number(32.2871, 2, " dB"), format_number(None, 2)
        ('32.29 dB', 'unavailable')
    """
    return f"{value:.{digits}f}{unit}" if isinstance(value, (int, float)) else "unavailable"


def format_mean_std(stats: Sequence[float], digits: int = 2) -> str:
    """``"m ± s"`` of a :func:`mean_std` pair (or its JSON list).

    Example:
        >>> format_mean_std((2.0, 0.5), 1)
        '2.0 ± 0.5'
    """
    return f"{stats[0]:.{digits}f} ± {stats[1]:.{digits}f}"


def summary_cells(summary: Mapping[str, Sequence[float]], periods: Sequence[int], digits: int = 2) -> str:
    """Markdown cells ``score | amplitude per period | PNR per period`` of a per-config summary.

    Example:
        >>> summary_cells({"score": (1.0, 0.1), "amplitude_period_2": (1.0, 0.1), "pnr_db_period_2": (3.0, 0.5)}, [2])
        '1.00 ± 0.10 | 1.00 ± 0.10 | 3.0 ± 0.5'
    """
    return " | ".join(
        [format_mean_std(summary["score"], digits)]
        + [format_mean_std(summary[f"amplitude_period_{p}"], digits) for p in periods]
        + [format_mean_std(summary[f"pnr_db_period_{p}"], 1) for p in periods]
    )


def provenance(script: str, argv: Sequence[str] | None) -> dict[str, str]:
    """Where and how a report was made: the command that regenerates it, the machine, the date.

    Args:
        script: the recipe's path from the repository root, e.g. ``"recipes/reports/init_probe.py"``.
        argv: the arguments it was given (``None`` or empty for the defaults).
    """
    from lightning_checkerboard import __version__

    return {
        "command": " ".join(["python", script, *(argv or [])]),
        "machine": f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
                   f"{torch.__version__}, {torch.get_num_threads()} threads, lightning-checkerboard {__version__}",
        "date": dt.date.today().isoformat(),
    }


def summarize(runs: Iterable[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Per-key mean ± std over runs (seeds) of diagnostics dicts with the same keys.

    Example:
        >>> summarize([{"score": 1.0}, {"score": 3.0}])
        {'score': (2.0, 1.4142135623730951)}
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs must hold at least one diagnostics dict; got none.")
    return {key: mean_std([run[key] for run in runs]) for key in runs[0]}


def far_above(high: Sequence[float], low: Sequence[float], factor: float = 10.0, floor: float = 1e-3) -> bool:
    """Whether every value of ``high`` exceeds ``factor`` times every value of ``low`` (floored).

    The one predicate behind "far stronger" in the report and the tests; the floor keeps a clean
    side that reads exactly 0 from making any positive value "infinitely" stronger.
    """
    return min(high) > factor * max(max(low), floor) and not math.isnan(min(high))


def replace_marked_section(path: str | os.PathLike, section: str, start: str, end: str) -> None:
    r"""Replace the part of ``path`` from ``start`` to ``end`` (markers included) by ``section``, or append it.

    Everything else in the file is kept, so several scripts can each own a section of one page
    (``leaderboards/speed.md``). The file is written atomically; a missing file (or folder) is created.

    Example:
        >>> import tempfile
        >>> page = Path(tempfile.mkdtemp()) / "page.md"
        >>> replace_marked_section(page, "<!-- a -->\nold\n<!-- /a -->\n", "<!-- a -->", "<!-- /a -->")
        >>> replace_marked_section(page, "<!-- a -->\nnew\n<!-- /a -->\n", "<!-- a -->", "<!-- /a -->")
        >>> page.read_text()
        '<!-- a -->\nnew\n<!-- /a -->\n'
    """
    from lightning_checkerboard._io import atomic_write_text

    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text + ("\n" if text and not text.endswith("\n\n") else "") + section
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
