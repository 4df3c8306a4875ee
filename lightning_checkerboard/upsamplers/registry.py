"""The upsampler registry: ``register_upsampler`` / ``create_upsampler`` / ``list_upsamplers``.

Layers register under a short, stable name that users type on the command line
(``--upsampler nearest_conv``). Third-party packages add layers through the entry-point
group :data:`ENTRY_POINT_GROUP`; they are loaded lazily, the first time the registry is read.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TypeVar

from torch import nn

from lightning_checkerboard._validation import check_positive_int

__all__ = [
    "ENTRY_POINT_GROUP",
    "create_upsampler",
    "get_upsampler_class",
    "get_upsampler_factory",
    "is_upsampler",
    "list_upsamplers",
    "parse_upsampler_spec",
    "register_upsampler",
]

ENTRY_POINT_GROUP = "lightning_checkerboard.upsamplers"

_T = TypeVar("_T", bound=Callable[..., nn.Module])
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

_registry: dict[str, Callable[..., nn.Module]] = {}
_entry_points_loaded = False
_warned_class_alias = False


def register_upsampler(name: str) -> Callable[[_T], _T]:
    """Register an upsampler class (or factory) under ``name``.

    The decorated callable must accept ``(in_channels, out_channels, *, scale=2, **options)`` and
    return an ``nn.Module`` that maps ``(B, in_channels, H, W)`` to
    ``(B, out_channels, scale*H, scale*W)``.

    Args:
        name: lower-case identifier (letters, digits, underscores), unique in the registry.

    Raises:
        ValueError: if ``name`` is malformed or already registered.

    Example:
        >>> from torch import nn
        >>> from lightning_checkerboard import register_upsampler, create_upsampler
        >>> @register_upsampler("doc_nearest_only")
        ... class NearestOnly(nn.Module):
        ...     def __init__(self, in_channels, out_channels, *, scale=2):
        ...         super().__init__()
        ...         self.proj = nn.Conv2d(in_channels, out_channels, 1)
        ...         self.up = nn.Upsample(scale_factor=scale)
        ...     def forward(self, x):
        ...         return self.up(self.proj(x))
        >>> create_upsampler("doc_nearest_only", 4, 2).proj.out_channels
        2
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"name must be lower-case letters, digits and underscores, starting with a letter; got {name!r}."
        )

    def decorator(factory: _T) -> _T:
        if name in _registry:
            raise ValueError(
                f"Upsampler {name!r} is already registered (by {_describe(_registry[name])}); "
                "choose another name."
            )
        _registry[name] = factory
        return factory

    return decorator


def _describe(factory: Callable[..., nn.Module]) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', factory)}"


def _natural_key(name: str) -> list[object]:
    # "deconv_k3" sorts before "deconv_k10", as a person would expect.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _load_entry_points(force: bool = False) -> None:
    """Import the upsamplers that installed distributions declare as entry points.

    An entry point's name is the upsampler name; its object is either a class/factory (registered
    under that name unless the import already registered it) or a module whose import registers
    layers with :func:`register_upsampler`. A plugin that fails to load is reported with a warning
    and skipped, so one broken package cannot make the whole registry unusable.
    """
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return
    _entry_points_loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in _registry and not force:
            continue
        try:
            loaded = entry_point.load()
        except Exception as err:  # a third-party import can fail in any way
            warnings.warn(
                f"Skipping upsampler plugin {entry_point.name!r} ({entry_point.value}): "
                f"{type(err).__name__}: {err}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        if inspect.ismodule(loaded) or entry_point.name in _registry:
            continue
        if not callable(loaded):
            warnings.warn(
                f"Skipping upsampler plugin {entry_point.name!r}: {entry_point.value} is not "
                "callable.",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        register_upsampler(entry_point.name)(loaded)


def list_upsamplers(pattern: str = "*") -> list[str]:
    """Names of the registered upsamplers that match a shell-style ``pattern``, naturally sorted.

    Example:
        >>> from lightning_checkerboard import list_upsamplers
        >>> list_upsamplers("deconv*")[:2]
        ['deconv', 'deconv_blur']
    """
    _load_entry_points()
    names = [name for name in _registry if fnmatch.fnmatchcase(name, pattern)]
    return sorted(names, key=_natural_key)


def is_upsampler(name: str) -> bool:
    """Whether ``name`` is a registered upsampler."""
    _load_entry_points()
    return name in _registry


def _unknown_name_error(name: object) -> ValueError:
    valid = list_upsamplers()
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"Unknown upsampler {name!r}.{hint} Valid names: {', '.join(valid)}.")


def get_upsampler_factory(name: str) -> Callable[..., nn.Module]:
    """The factory registered under ``name``: a class or a function that builds the layer.

    Raises:
        ValueError: if ``name`` is not registered; the message lists the valid names and the
            closest match.

    Example:
        >>> from lightning_checkerboard.upsamplers import get_upsampler_factory
        >>> get_upsampler_factory("deconv")(4, 2).scale
        2
    """
    _load_entry_points()
    try:
        return _registry[name]
    except (KeyError, TypeError):
        raise _unknown_name_error(name) from None


def get_upsampler_class(name: str) -> Callable[..., nn.Module]:
    """Deprecated name of :func:`get_upsampler_factory` (what is registered need not be a class).

    Warns ``FutureWarning`` the first time it is called.
    """
    global _warned_class_alias
    if not _warned_class_alias:
        _warned_class_alias = True
        warnings.warn(
            "get_upsampler_class is deprecated and will be removed; use get_upsampler_factory, "
            "which returns the same class or factory.",
            FutureWarning,
            stacklevel=2,
        )
    return get_upsampler_factory(name)


def create_upsampler(name: str, in_channels: int, out_channels: int, **options: object) -> nn.Module:
    """Build the upsampler registered under ``name``.

    Args:
        name: a name from :func:`list_upsamplers`.
        in_channels: channels of the input feature map.
        out_channels: channels of the output feature map.
        **options: layer options, e.g. ``scale=2``, ``padding="reflect"``, ``impl="reference"``.

    Raises:
        ValueError: unknown ``name`` (the message lists valid names), or a bad option value.
        TypeError: an option the layer does not take (the message lists those it takes).

    Example:
        >>> import torch
        >>> from lightning_checkerboard import create_upsampler
        >>> up = create_upsampler("nearest_conv", 64, 32)
        >>> up(torch.randn(1, 64, 8, 8)).shape
        torch.Size([1, 32, 16, 16])
    """
    factory = get_upsampler_factory(name)
    check_positive_int(in_channels, "in_channels")
    check_positive_int(out_channels, "out_channels")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have no signature; let the call decide
        signature = None
    if signature is not None and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    ):
        accepted = [
            p for p in signature.parameters if p not in ("self", "in_channels", "out_channels")
        ]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise TypeError(
                f"Upsampler {name!r} got unknown option(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(accepted) or 'no options'}."
            )
    return factory(in_channels, out_channels, **options)


def parse_upsampler_spec(spec: str | Sequence[str], num_stages: int) -> list[str]:
    """Turn a per-stage upsampler spec into one registered name per stage.

    Args:
        spec: one name for every stage (``"nearest_conv"``), a comma-separated list with one name
            per stage (``"nearest_conv,nearest_conv,deconv_k3"``), or a sequence of names.
        num_stages: the number of upsampling stages of the model.

    Raises:
        ValueError: an unknown name, an empty spec, or a list whose length is not ``num_stages``.

    Example:
        >>> from lightning_checkerboard.upsamplers import parse_upsampler_spec
        >>> parse_upsampler_spec("nearest_conv", 3)
        ['nearest_conv', 'nearest_conv', 'nearest_conv']
        >>> parse_upsampler_spec("nearest_conv, deconv_k3", 2)
        ['nearest_conv', 'deconv_k3']
    """
    check_positive_int(num_stages, "num_stages")
    if isinstance(spec, str):
        names = [part.strip() for part in spec.split(",")]
    elif isinstance(spec, Sequence):
        names = [str(part).strip() for part in spec]
    else:
        raise TypeError(f"spec must be a string or a list of names; got {spec!r}.")
    if not names or any(not name for name in names):
        raise ValueError(f"spec must be upsampler names separated by commas, none of them empty; got {spec!r}.")
    for name in names:
        if not is_upsampler(name):
            raise _unknown_name_error(name)
    if len(names) == 1:
        return names * num_stages
    if len(names) != num_stages:
        raise ValueError(
            f"Upsampler spec {spec!r} names {len(names)} stages but the model has {num_stages}; "
            f"give one name for all stages or exactly {num_stages} comma-separated names."
        )
    return names
