"""A run's settings as a YAML file: written into every run directory, read back by ``--config``.

The file is a flat YAML mapping, one ``key: value`` per setting, keyed as the flags' ``dest`` (the
recipe's ``--max-steps`` is ``max_steps``) — the form LightningCLI and jsonargparse print and read for
a flat parser. Paths are written as text, unset values as ``null``; ``resume`` is never written.

A config file is input from anywhere: it is read as data only (``yaml.safe_load``, a regular file of
at most :data:`MAX_CONFIG_BYTES`), every value must be a plain scalar, and the recipe's command line
checks it with the type and choices of the flag it stands for.

Example:
    >>> import tempfile, pathlib
    >>> from lightning_checkerboard.training import GANConfig
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "config.yaml"
    >>> write_config_file(GANConfig(max_steps=7, lr_g=1e-4), path)
    >>> values = read_config_file(path)
    >>> values["max_steps"], values["lr_g"], values["fid_weights"]
    (7, 0.0001, None)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lightning_checkerboard._untrusted import UntrustedFileError, read_bytes
from lightning_checkerboard.training.config import ConfigError, RunConfig

__all__ = ["CONFIG_FILE_NAME", "MAX_CONFIG_BYTES", "config_text", "read_config_file", "write_config_file"]

#: The name of the resolved settings in a run directory.
CONFIG_FILE_NAME = "config.yaml"

#: The largest config file read (a recipe's is about 1 kB).
MAX_CONFIG_BYTES = 1 << 20


def config_text(config: RunConfig) -> str:
    """The YAML text of ``config``: every field but ``resume``, in field order, keyed as the flags are."""
    return yaml.safe_dump(config.record_config(), sort_keys=False, allow_unicode=True, width=1000)


def write_config_file(config: RunConfig, path: str | os.PathLike) -> None:
    """Write :func:`config_text` of ``config`` to ``path``."""
    Path(path).write_text(config_text(config), encoding="utf-8")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The settings in the YAML file ``path``, by key; values are scalars (text, numbers, booleans, ``None``).

    Raises:
        ConfigError: the file cannot be read (missing, not a regular file, over :data:`MAX_CONFIG_BYTES`),
            is not YAML, is not a mapping of names to scalars. The message starts with ``config: <path>``.
    """
    where = f"config: {path}"
    try:
        data = read_bytes(path, max_bytes=MAX_CONFIG_BYTES)
    except UntrustedFileError as err:
        raise ConfigError(f"config: {err}") from None
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{where} is not valid YAML{at}: {' '.join(str(problem).split())}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{where} must hold a mapping of settings (key: value); got a {type(loaded).__name__}")
    values: dict[str, Any] = {}
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: setting names are text; got {str(key)[:80]!r}")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"{where}: {key[:80]} must be a single value (text, a number, true/false or null); "
                              f"got a {type(value).__name__}")
        values[key] = value
    return values
