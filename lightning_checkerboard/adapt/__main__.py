"""The ``audit`` command: the upsampling sites of a model, as a table (:func:`lightning_checkerboard.audit`).

Usage::

    lightning-checkerboard audit package.module:factory --input-shape 1,100,1,1 [--json]
        [--input-kwargs '{"timestep": 10, "encoder_hidden_states": {"randn": [1, 77, 32]}}'] [--seed 0]

(``python -m lightning_checkerboard.adapt`` and ``python -m lightning_checkerboard.audit`` run the same
command.)

``factory`` names a module-level callable that returns the ``nn.Module`` (a class with default arguments
or a function), or a module instance itself. A model that takes more than one input (a UNet's timestep
and conditioning) is given them either way:

- ``--input-kwargs``: a JSON object of keyword inputs; a value ``{"randn": [shape]}`` or
  ``{"zeros": [shape]}`` becomes a tensor of that shape, other values are passed as they are;
- or the factory returns ``(model, args)`` or ``(model, args, kwargs)``: the complete positional inputs
  (the first one a tensor) and keyword inputs; ``--input-shape`` is then left out.

Importing the factory runs its module's code: name only code you chose to run. Every mistake (a bad
flag or value, a relative module name, a module that cannot be imported or raises on import, a factory
that fails, exits or returns something else than a model, a model on the meta device, a model that
fails on the input) prints one ``error: ...`` line and exits with status 2, without a traceback. A
site whose output holds NaN is reported with a NaN score, not as an error.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_checkerboard._argparse import EXIT_USAGE, OneLineParser
from lightning_checkerboard.adapt.audit import audit

__all__ = ["load_factory", "main", "parse_input_kwargs", "parse_shape"]

#: The largest seed: torch's generators take any 64-bit seed, NumPy's and most others 32 bits.
MAX_SEED = 2**32 - 1


class _UsageError(ValueError):
    pass


def _first_line(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"it called exit (SystemExit with code {error.code!r})"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


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


def _tensor_spec(name: str, value: dict) -> Tensor:
    (kind, shape), = value.items()
    if kind not in ("randn", "zeros") or not isinstance(shape, list) or not shape or not all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in shape):
        raise _UsageError(f"--input-kwargs {name!r} must be {{\"randn\": [sizes]}} or {{\"zeros\": [sizes]}} "
                          f"with positive integer sizes; got {json.dumps(value)}")
    return torch.randn(shape) if kind == "randn" else torch.zeros(shape)


def parse_input_kwargs(text: str) -> dict[str, Any]:
    """The model's keyword inputs from a JSON object; ``{"randn": [shape]}`` values become tensors.

    Example:
        >>> kwargs = parse_input_kwargs('{"timestep": 10, "cond": {"zeros": [1, 4, 8]}}')
        >>> kwargs["timestep"], tuple(kwargs["cond"].shape)
        (10, (1, 4, 8))
    """
    try:
        value = json.loads(text)
    except ValueError as error:
        raise _UsageError(f"--input-kwargs must be a JSON object; got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise _UsageError(f"--input-kwargs must be a JSON object of keyword inputs; got {type(value).__name__}")
    return {name: _tensor_spec(name, item) if isinstance(item, dict) and len(item) == 1 else item
            for name, item in value.items()}


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise _UsageError(f"--seed must be an integer from 0 to {MAX_SEED}; got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise _UsageError(f"--seed must be an integer from 0 to {MAX_SEED}; got {seed}")
    return seed


def _call_factory(spec: str) -> Any:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise _UsageError(f"the model must be given as package.module:factory; got {spec!r}")
    if module_name.startswith("."):
        raise _UsageError(f"the model's module must be an absolute name (package.module), not relative; got {spec!r}")
    try:
        namespace = importlib.import_module(module_name)
    except ImportError as error:
        raise _UsageError(f"cannot import {module_name!r}: {error}") from None
    except (Exception, SystemExit) as error:  # a module that fails (or exits) on import: say so in one line
        raise _UsageError(f"importing {module_name!r} failed: {_first_line(error)}") from None
    target = namespace
    for part in attribute.split("."):
        if not part or not hasattr(target, part):
            raise _UsageError(f"{module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if isinstance(target, nn.Module) or not callable(target):
        return target
    try:
        return target()
    except (Exception, SystemExit) as error:  # a factory that needs arguments, fails or exits: one line
        raise _UsageError(f"calling {spec!r} failed: {_first_line(error)}") from None


def _unpack(spec: str, made: Any) -> tuple[nn.Module, tuple | None, dict]:
    if isinstance(made, nn.Module):
        return made, None, {}
    if isinstance(made, tuple) and len(made) in (2, 3) and isinstance(made[0], nn.Module):
        args, kwargs = made[1], made[2] if len(made) == 3 else {}
        if (isinstance(args, (tuple, list)) and args and isinstance(args[0], Tensor) and isinstance(kwargs, dict)
                and all(isinstance(k, str) for k in kwargs)):
            return made[0], tuple(args), dict(kwargs)
        raise _UsageError(f"{spec!r} returned (model, args[, kwargs]) whose args are not a non-empty tuple starting "
                          "with a tensor, or whose kwargs are not a dict")
    raise _UsageError(f"{spec!r} must be a torch.nn.Module or return one (or (model, args[, kwargs])); "
                      f"got {type(made).__name__}")


def load_factory(spec: str) -> nn.Module:
    """Build the model named by ``"package.module:attribute"`` (a callable returning a module, or a module)."""
    model, _, _ = _unpack(spec, _call_factory(spec))
    return model


def _parser(prog: str) -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description="List the upsampling sites of a model with their overlap, fusability and checkerboard score.",
        epilog="The factory's module is imported, which runs its code: name only code you chose to run.",
    )
    parser.add_argument("model", help="package.module:factory, a callable returning the nn.Module "
                        "(or (model, args[, kwargs]): the model's inputs)")
    parser.add_argument("--input-shape", default=None, help="shape of a random example input, e.g. 1,100,1,1 "
                        "(required unless the factory returns the inputs)")
    parser.add_argument("--input-kwargs", default=None, metavar="JSON",
                        help='the model\'s keyword inputs as a JSON object; {"randn": [sizes]} or {"zeros": [sizes]} '
                        "values become tensors, e.g. '{\"timestep\": 10}'")
    parser.add_argument("--seed", default="0",
                        help=f"seed of the model's initialisation and the input (0 to {MAX_SEED})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m lightning_checkerboard.adapt") -> int:
    """Run the command (``prog`` names it in usage lines); returns the exit status (0, or 2 for any mistake).

    ``--help`` and a bad flag end in ``SystemExit`` (0 and 2), as ``argparse`` does, after one line for the latter.
    """
    args = _parser(prog).parse_args(argv)  # --help exits 0; a bad flag one line and exit 2 (SystemExit)
    try:
        shape = parse_shape(args.input_shape) if args.input_shape is not None else None
        kwargs = parse_input_kwargs(args.input_kwargs) if args.input_kwargs is not None else {}
        torch.manual_seed(_seed(args.seed))
        model, inputs, made_kwargs = _unpack(args.model, _call_factory(args.model))
        if inputs is None and shape is None:
            raise _UsageError("--input-shape is required (or a factory that returns (model, args[, kwargs]))")
        if inputs is not None and shape is not None:
            raise _UsageError(f"{args.model!r} returned the model's inputs: leave --input-shape out")
        inputs = inputs if inputs is not None else (torch.randn(shape),)
        kwargs = {**made_kwargs, **kwargs}
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = audit(model, *inputs, **kwargs)
    except (Exception, SystemExit) as error:  # the model's own failure on this input, whatever it raises
        if isinstance(error, ValueError) and str(error).startswith("cannot audit"):
            print(f"error: {error}", file=sys.stderr)  # audit's own one-line refusal (a meta-device model)
            return EXIT_USAGE
        where = f"an input of shape {tuple(inputs[0].shape)}"
        where += f" and keyword inputs {sorted(kwargs)}" if kwargs else ""
        print(f"error: the model failed on {where}: {_first_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0

if __name__ == "__main__":
    sys.exit(main())
