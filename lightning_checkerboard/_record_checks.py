"""The checks every result record read goes through: limits, field types, and one-line errors.

Kept apart from :mod:`lightning_checkerboard.records` (the schema and its files) so that the table of
field checks is one screen: :data:`FIELD_CHECKS` names a check for every field of a record, and a test
fails when a field has none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "FIELD_CHECKS",
    "MAX_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_NESTING",
    "MAX_RECORD_BYTES",
    "MAX_TEXT_CHARS",
    "RUN_ID_PATTERN",
    "STATUSES",
    "RecordError",
    "checked_fields",
]

#: ``running`` is written when training starts, so a run killed without warning still leaves a
#: record; the leaderboard averages only ``finished`` runs.
STATUSES = ("running", "finished", "failed", "interrupted", "diverged")

#: What a run id may be: it names the run's files (W&B run ids and
#: :func:`~lightning_checkerboard.training.run_dir.new_run_id` ids both match).
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: The longest name (task, dataset, upsampler, stage, mapping key, URL …) a record may hold.
MAX_NAME_CHARS = 512
#: The longest other string (the message, a config value) a record may hold.
MAX_TEXT_CHARS = 65_536
#: How deep lists and mappings may nest inside one field (``config``, ``protocol`` …).
MAX_NESTING = 8
#: How many list items and mapping entries one record may hold in all.
MAX_ITEMS = 10_000
#: The largest ``result.json`` read; also the most characters of text one record may hold.
MAX_RECORD_BYTES = 4 * 1024 * 1024
_URL_SCHEMES = ("http", "https")
_INT_RANGE = 2**63  # a 64-bit integer: seeds and step counts fit, absurd numbers do not


class RecordError(ValueError):
    """A result file that is not a record this version can read."""


RecordError.__module__ = "lightning_checkerboard.records"  # its public home



def _shown(value: Any) -> str:
    """A short one-line picture of ``value`` for an error message (never a 10 MB string)."""
    if isinstance(value, (list, tuple, Mapping)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    text = repr(value) if isinstance(value, (str, int, float, type(None))) else f"a {type(value).__name__}"
    return text if len(text) <= 80 else f"{text[:60]}… ({len(text)} characters)"


class _Checker:
    """Checks the fields of one record, counting its entries and characters against the limits."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items = 0
        self.chars = 0

    def fail(self, where: str, expected: str, value: Any) -> RecordError:
        return RecordError(f"{self.source}: field {where} must be {expected}; got {_shown(value)}.")

    def _count(self, items: int = 0, chars: int = 0) -> None:
        self.items += items
        self.chars += chars
        if self.items > MAX_ITEMS:
            raise RecordError(f"{self.source}: more than {MAX_ITEMS} list items and mapping entries.")
        if self.chars > MAX_RECORD_BYTES:
            raise RecordError(f"{self.source}: more than {MAX_RECORD_BYTES} characters of text.")

    def integer(self, where: str, value: Any, low: int = -_INT_RANGE, high: int = _INT_RANGE - 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(where, f"an int from {low} to {high}", value)
        return value

    def name(self, where: str, value: Any, *, empty: bool = True) -> str:
        if (not isinstance(value, str) or len(value) > MAX_NAME_CHARS or not value.isprintable()
                or (not empty and not value)):
            kind = "a" if empty else "a non-empty"
            raise self.fail(where, f"{kind} printable one-line str of at most {MAX_NAME_CHARS} characters", value)
        self._count(chars=len(value))
        return value

    def optional_name(self, where: str, value: Any) -> str | None:
        return None if value is None else self.name(where, value)

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
            raise self.fail(where, f"a str of at most {MAX_TEXT_CHARS} characters", value)
        self._count(chars=len(value))
        return value

    def run_id(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not RUN_ID_PATTERN.fullmatch(value):
            raise self.fail(where, "1 to 128 letters, digits, '-' or '_'", value)
        return value

    def status(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or value not in STATUSES:
            raise self.fail(where, f"one of {', '.join(STATUSES)}", value)
        return value

    def number(self, where: str, value: Any) -> int | float | None:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, "a number or null", value)
        return self.integer(where, value) if isinstance(value, int) else value

    def url(self, where: str, value: Any) -> str | None:
        if value is None:
            return None
        text = self.name(where, value)
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in _URL_SCHEMES or not parts.netloc or " " in text:
            raise self.fail(where, "an http(s) URL", value)
        return text

    def mapping(self, where: str, value: Any, item: Callable[[str, Any], Any],
                by_key: Mapping[str, Callable[[str, Any], Any]] | None = None) -> dict[str, Any]:
        """A mapping with name keys, each value checked by ``by_key[key]`` or else ``item``."""
        if not isinstance(value, Mapping):
            raise self.fail(where, "a mapping", value)
        self._count(items=len(value))
        checked = {}
        for key, entry in value.items():
            key = self.name(f"{where} key", key, empty=False)
            checked[key] = (by_key or {}).get(key, item)(f"{where}.{key}", entry)
        return checked

    def names(self, where: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(where, "a list of names", value)
        self._count(items=len(value))
        return [self.name(f"{where}[{index}]", entry, empty=False) for index, entry in enumerate(value)]

    def data(self, where: str, value: Any, depth: int = 0) -> Any:
        """JSON data: null, bool, number (non-finite as ``None``), str, list or mapping."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return self.number(where, value)
        if isinstance(value, str):
            return self.text(where, value)
        if isinstance(value, (list, tuple, Mapping)) and depth >= MAX_NESTING:
            raise RecordError(f"{self.source}: field {where} nests lists or mappings more than {MAX_NESTING} deep.")
        if isinstance(value, (list, tuple)):
            self._count(items=len(value))
            return [self.data(f"{where}[{index}]", entry, depth + 1) for index, entry in enumerate(value)]
        if isinstance(value, Mapping):
            return self.mapping(where, value, lambda inner, entry: self.data(inner, entry, depth + 1))
        raise self.fail(where, "JSON data (null, bool, number, str, list or mapping)", value)

    def settings(self, where: str, value: Any) -> dict[str, Any]:
        return self.mapping(where, value, self.data)

    def numbers(self, where: str, value: Any) -> dict[str, int | float | None]:
        return self.mapping(where, value, self.number)

    def wandb(self, where: str, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        return self.mapping(where, value, self.data,
                            {"url": self.url, "path": self.optional_name, "mode": self.optional_name})


# One check per field; a field added to ResultRecord adds its line here (a test holds the two equal).
FIELD_CHECKS: dict[str, Callable[[_Checker, str, Any], Any]] = {
    "run_id": _Checker.run_id,
    "task": lambda c, where, value: c.name(where, value, empty=False),
    "status": _Checker.status,
    "dataset": _Checker.name,
    "image_size": lambda c, where, value: c.integer(where, value, 1, 65_536),
    "upsampler": lambda c, where, value: c.name(where, value, empty=False),
    "upsampler_stages": _Checker.names,
    "seed": _Checker.integer,
    "max_steps": lambda c, where, value: c.integer(where, value, 0),
    "steps": lambda c, where, value: c.integer(where, value, 0),
    "dataset_fingerprint": _Checker.name,
    "upsampler_options": _Checker.settings,
    "protocol": _Checker.settings,
    "metrics": _Checker.numbers,
    "baseline": lambda c, where, value: c.mapping(where, value, c.number, {"kind": c.name}),
    "throughput": _Checker.numbers,
    "config": _Checker.settings,
    "message": _Checker.text,
    "wandb": _Checker.wandb,
    "package_version": _Checker.name,
    "git_revision": _Checker.optional_name,
    "started_at": _Checker.name,
    "finished_at": _Checker.optional_name,
    "schema_version": _Checker.integer,
}


def checked_fields(payload: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The fields of ``payload`` that a record has, each checked; non-finite numbers become ``None``."""
    checker = _Checker(source)
    return {key: FIELD_CHECKS[key](checker, key, value) for key, value in payload.items() if key in FIELD_CHECKS}

