"""Argument checks shared by every layer of the package, with one message form.

Each check returns the value it accepted (converted where that is harmless) and raises ``ValueError``
(``TypeError`` for a value of the wrong kind altogether is not used: a user passing ``"3"`` for an
integer reads the same one-line message either way) in the form::

    <name> must be <what>; got <value!r>.

Only the standard library is imported here, so ``functional/`` and ``upsamplers/`` can use it and
still import nothing beyond torch.

>>> check_positive_int(3, "batch_size")
3
>>> check_choice("reflect", "padding", ("zeros", "reflect"))
'reflect'
>>> check_positive_int(0, "batch_size")
Traceback (most recent call last):
    ...
ValueError: batch_size must be a positive integer; got 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

__all__ = [
    "check_choice",
    "check_int",
    "check_non_negative_int",
    "check_number",
    "check_positive_int",
    "check_unit_interval",
    "describe_int",
]

T = TypeVar("T")


def describe_int(minimum: int) -> str:
    """The words for "an integer of at least ``minimum``" used by every message."""
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    return f"an integer >= {minimum}"


def check_int(value: object, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) within ``[minimum, maximum]``, else ``ValueError``."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and minimum is not None and value < minimum:  # type: ignore[operator]
        ok = False
    if ok and maximum is not None and value > maximum:  # type: ignore[operator]
        ok = False
    if not ok:
        if minimum is not None and maximum is not None:
            what = f"an integer in [{minimum}, {maximum}]"
        elif minimum is not None:
            what = describe_int(minimum)
        elif maximum is not None:
            what = f"an integer <= {maximum}"
        else:
            what = "an integer"
        raise ValueError(f"{name} must be {what}; got {value!r}.")
    return value  # type: ignore[return-value]


def check_positive_int(value: object, name: str) -> int:
    """``value`` if it is an integer >= 1."""
    return check_int(value, name, minimum=1)


def check_non_negative_int(value: object, name: str) -> int:
    """``value`` if it is an integer >= 0."""
    return check_int(value, name, minimum=0)


def check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    strict_maximum: bool = False,
) -> float:
    """``value`` as a ``float`` if it is a finite real number within the bounds, else ``ValueError``.

    ``strict_minimum``/``strict_maximum`` exclude the bound itself (``minimum=0, strict_minimum=True``
    is "a positive number").
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None and (value < minimum or (strict_minimum and value == minimum)):  # type: ignore[operator]
        ok = False
    if ok and maximum is not None and (value > maximum or (strict_maximum and value == maximum)):  # type: ignore[operator]
        ok = False
    if not ok:
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if strict_minimum else '>='} {minimum:g}")
        if maximum is not None:
            parts.append(f"{'<' if strict_maximum else '<='} {maximum:g}")
        what = "a finite number" + (" " + " and ".join(parts) if parts else "")
        raise ValueError(f"{name} must be {what}; got {value!r}.")
    return float(value)  # type: ignore[arg-type]


def check_unit_interval(value: object, name: str) -> float:
    """``value`` as a float in ``[0, 1)`` (a decay or a rate)."""
    return check_number(value, name, minimum=0.0, maximum=1.0, strict_maximum=True)


def check_choice(value: T, name: str, choices: Iterable[T]) -> T:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    allowed = tuple(choices)
    if value not in allowed:
        listed = ", ".join(repr(choice) for choice in allowed)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}.")
    return value
