"""Command line for :func:`lightning_checkerboard.audit`: the upsampling sites of a model, as a table.

Usage::

    python -m lightning_checkerboard.audit package.module:factory --input-shape 1,100,1,1 [--json]

``factory`` names a module-level callable that returns the ``nn.Module`` (a class with default arguments
or a function), or a module instance itself. Errors in the arguments print one ``error: ...`` line and
exit with status 2.

This module is only the command, and the package's ``__init__`` never imports it. Importing it
explicitly makes Python bind ``lightning_checkerboard.audit`` to this module instead of the function;
the module is therefore callable and forwards to the function, so ``lightning_checkerboard.audit(model,
x)`` works either way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_checkerboard.adapt.audit import audit

__all__ = ["load_factory", "main", "parse_shape"]


class _UsageError(ValueError):
    pass


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,100,1,1"`` → ``(1, 100, 1, 1)``; raises ``ValueError`` on anything but positive integers.

    Example:
        >>> parse_shape("2, 3,8,8")
        (2, 3, 8, 8)
    """
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(size < 1 for size in shape):
        raise _UsageError(f"--input-shape must be comma-separated positive integers such as 1,100,1,1; got {text!r}")
    return shape


def load_factory(spec: str) -> nn.Module:
    """Build the model named by ``"package.module:attribute"`` (a callable returning a module, or a module)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise _UsageError(f"the model must be given as package.module:factory; got {spec!r}")
    try:
        namespace = importlib.import_module(module_name)
    except ImportError as error:
        raise _UsageError(f"cannot import {module_name!r}: {error}") from None
    target = namespace
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise _UsageError(f"{module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    model = target
    if not isinstance(target, nn.Module) and callable(target):
        try:
            model = target()
        except Exception as error:  # a factory that needs arguments, or fails: say so in one line
            raise _UsageError(f"calling {spec!r} failed: {type(error).__name__}: {error}") from None
    if not isinstance(model, nn.Module):
        raise _UsageError(f"{spec!r} must be a torch.nn.Module or return one; got {type(model).__name__}")
    return model


def main(argv: Sequence[str] | None = None, prog: str = "python -m lightning_checkerboard.audit") -> int:
    """Run the command (``prog`` names it in usage lines); returns the exit status (0, or 2 for bad arguments)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="List the upsampling sites of a model with their overlap, fusability and checkerboard score.",
    )
    parser.add_argument("model", help="package.module:factory, a callable returning the nn.Module")
    parser.add_argument("--input-shape", required=True, help="shape of a random example input, e.g. 1,100,1,1")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's initialisation and the input")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        shape = parse_shape(args.input_shape)
        torch.manual_seed(args.seed)
        model = load_factory(args.model)
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        report = audit(model, torch.randn(shape))
    except (RuntimeError, ValueError, TypeError) as error:  # most often an input the model cannot take
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: the model failed on an input of shape {shape}: {first}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
