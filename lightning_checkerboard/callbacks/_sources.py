"""Where the measuring callbacks get their images: the module or a ``sample_fn``, and real held-out images.

Also the one-line errors that name what a module lacks, raised from the callbacks' ``setup`` hooks.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightning_checkerboard._lightning import pl
from lightning_checkerboard.callbacks.protocols import SampleFn, SupportsHeldoutImages
from lightning_checkerboard.functional._validation import check_image_batch, to_unit_range

__all__ = [
    "ModelDiverged",
    "batch_generator",
    "check_image_source",
    "check_real_images",
    "check_real_source",
    "check_sample_fn",
    "check_shares",
    "diverging_together",
    "draw_samples",
    "heldout_images",
    "metric_images",
    "missing_real_images_error",
    "require_finite",
]

_SAMPLE_FN = "sample_fn(num, generator) -> (num, C, H, W) images in [0, 1]"


class ModelDiverged(RuntimeError):
    """The model's output (images, losses) holds NaN or infinity: its weights have diverged.

    Raised by :func:`require_finite`; the measuring callbacks' schedule catches it and stops the run as
    ``diverged`` instead of failing it.
    """


def require_finite(values: Tensor, what: str) -> Tensor:
    """``values`` unchanged when every one is finite (always, for integer tensors).

    Raises:
        ModelDiverged: naming ``what`` and how many values are NaN or infinite.
    """
    if values.is_floating_point() and values.numel() and not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise ModelDiverged(f"{what} became non-finite ({bad} of {values.numel()} values NaN or infinite)")
    return values


@contextlib.contextmanager
def diverging_together(device: torch.device | str, world_size: int) -> Iterator[None]:
    """Run a measurement's per-process part so that every process stops together when any diverged.

    A :class:`ModelDiverged` raised in the block is held back until every process has left its block;
    then all processes raise it (those that saw finite values with a note that another did). Without this,
    the process whose share came out non-finite would leave the measurement while the others waited for it
    in the collective that follows. The block must not itself contain a collective. With one process, or
    without ``torch.distributed`` initialised, it only re-raises.

    Example:
        >>> with diverging_together("cpu", 1):
        ...     require_finite(torch.tensor([float("nan")]), "the loss")
        Traceback (most recent call last):
            ...
        lightning_checkerboard.callbacks._sources.ModelDiverged: the loss became non-finite (1 of 1 values NaN or infinite)
    """
    failure: ModelDiverged | None = None
    try:
        yield
    except ModelDiverged as err:
        failure = err
    distributed = world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()
    if distributed:
        flag = torch.tensor([0 if failure is None else 1], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if failure is None and int(flag.item()):
            failure = ModelDiverged("another process's output became non-finite")
    if failure is not None:
        raise failure


def _accepts(function: object, *args: object, **kwargs: object) -> bool:
    """Whether ``function`` can be called with these arguments (``True`` when its signature cannot be read)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _shown_signature(function: Any) -> str:
    """``function``'s parameters as written, without annotations: ``(num, generator)``."""
    signature = inspect.signature(function)
    plain = [parameter.replace(annotation=inspect.Parameter.empty) for parameter in signature.parameters.values()]
    return str(signature.replace(parameters=plain, return_annotation=inspect.Signature.empty))


def check_sample_fn(sample_fn: object) -> SampleFn | None:
    """Return ``sample_fn`` if it is ``None`` or callable as ``sample_fn(num, generator)``, else raise ``TypeError``."""
    if sample_fn is None:
        return None
    if not callable(sample_fn):
        raise TypeError(f"sample_fn must be a callable {_SAMPLE_FN}, or None; got {type(sample_fn).__name__}.")
    if not _accepts(sample_fn, 1, torch.Generator()):
        shown = _shown_signature(sample_fn)
        raise TypeError(f"sample_fn must be a callable {_SAMPLE_FN}; got one with signature {shown}.")
    return sample_fn


def check_shares(callback: str, num_samples: int, world_size: int) -> None:
    """Raise a ``ValueError`` when ``num_samples`` leaves a process without a share of the images."""
    if num_samples < world_size:
        raise ValueError(
            f"{callback} num_samples must be at least the number of processes ({world_size}), so that each "
            f"measures a share; got {num_samples}."
        )


def check_real_images(real_images: object) -> Tensor | None:
    """Return ``real_images`` as ``(N, C, H, W)`` floats in [0, 1] (uint8 is divided by 255), or ``None``."""
    if real_images is None:
        return None
    images = check_image_batch(real_images, name="real_images")
    return to_unit_range(images.detach(), name="real_images")


# What a module defines instead of a sample_fn: how to write it, and example arguments to check its signature.
_MODULE_METHODS: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "metric_samples": (
        "metric_samples(num, *, seed, batch_size, rank, world_size) -> images in [0, 1]",
        (1,),
        {"seed": 0, "batch_size": 1, "rank": 0, "world_size": 1},
    ),
    "sample": ("sample() -> (N, C, H, W) images in [0, 1]", (), {}),
}


def check_image_source(callback: str, module: pl.LightningModule, sample_fn: SampleFn | None, method: str) -> None:
    """Raise the setup-time ``TypeError`` when there is no ``sample_fn`` and ``module`` lacks a usable ``method``.

    ``method`` is ``"metric_samples"`` (:class:`~lightning_checkerboard.callbacks.protocols.SupportsMetricSamples`)
    or ``"sample"`` (:class:`~lightning_checkerboard.callbacks.protocols.SupportsSampleGrid`); a method of that
    name that cannot be called that way counts as missing.
    """
    if sample_fn is not None:
        return
    usage, args, kwargs = _MODULE_METHODS[method]
    name = type(module).__name__
    found = getattr(module, method, None)
    if found is None:
        problem = f"{name} has no {method}"
    elif not callable(found) or not _accepts(found, *args, **kwargs):
        shown = _shown_signature(found) if callable(found) else f" of type {type(found).__name__}"
        problem = f"{name}.{method}{shown} cannot be called that way"
    else:
        return
    raise TypeError(
        f"{callback} needs images: define {usage} on {name}, or pass {callback}(sample_fn=...) with {_SAMPLE_FN} "
        f"({problem})."
    )


def batch_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator for batch ``index`` of a measurement seeded with ``seed``.

    Seeds of different ``(seed, index)`` pairs come from NumPy's ``SeedSequence``, so they are well
    apart: two callbacks with nearby seeds never share a batch of noise.
    """
    state = np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module | None) -> Iterator[None]:
    if module is None:
        yield
        return
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@torch.no_grad()
def draw_samples(
    sample_fn: SampleFn,
    num: int,
    *,
    seed: int,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    module: torch.nn.Module | None = None,
) -> Tensor:
    """Process ``rank``'s share of ``num`` images from ``sample_fn``, the same images on every call.

    The ``num`` images are cut into batches of ``batch_size``; batch ``j`` comes from
    ``sample_fn(n_j, batch_generator(seed, j))``. Process ``rank`` of ``world_size`` keeps the
    contiguous rows ``[rank·num // world_size, (rank+1)·num // world_size)`` and calls ``sample_fn``
    only for the batches that overlap them, so the processes together measure exactly the images one
    process would, each generating about ``num / world_size`` of them. ``module`` (the LightningModule)
    is put in eval mode for the calls.

    Args:
        sample_fn: the :class:`~lightning_checkerboard.callbacks.protocols.SampleFn`.
        num: images in all processes together, at least ``world_size``.
        seed: the measurement's seed.
        batch_size: most images per call of ``sample_fn``.
        rank: this process.
        world_size: number of processes.
        module: put in eval mode while sampling, then back in its previous mode.

    Returns:
        ``(n, C, H, W)`` floats in [0, 1], on the device ``sample_fn`` used.

    Raises:
        ValueError: if ``num < world_size`` or ``sample_fn`` returns a wrong count, shape or range.
        TypeError: if ``sample_fn`` returns no tensor or a tensor of another dtype than float or uint8.

    Example:
        >>> def sample_fn(num, generator):
        ...     return torch.rand(num, 3, 8, 8, generator=generator)
        >>> one = draw_samples(sample_fn, 10, seed=0, batch_size=4)
        >>> halves = [draw_samples(sample_fn, 10, seed=0, batch_size=4, rank=r, world_size=2) for r in (0, 1)]
        >>> torch.equal(torch.cat(halves), one)
        True
    """
    if num < world_size:
        raise ValueError(f"num_samples must be at least the number of processes ({world_size}); got {num}.")
    start, stop = rank * num // world_size, (rank + 1) * num // world_size
    parts = []
    with _eval_mode(module):
        for index in range(start // batch_size, -(-stop // batch_size)):
            first = index * batch_size
            count = min(batch_size, num - first)
            images = sample_fn(count, batch_generator(seed, index))
            if isinstance(images, Tensor):
                require_finite(images, "the generated images")
            images = check_image_batch(images, name=f"sample_fn({count}, generator) output")
            if images.shape[0] != count:
                raise ValueError(
                    f"sample_fn(num, generator) must return num images; sample_fn({count}, generator) "
                    f"returned shape {tuple(images.shape)}."
                )
            images = to_unit_range(images, name=f"sample_fn({count}, generator) output")
            parts.append(images[max(start - first, 0) : stop - first])
    return torch.cat(parts)


def metric_images(
    module: pl.LightningModule,
    sample_fn: SampleFn | None,
    num: int,
    *,
    seed: int,
    batch_size: int,
    rank: int,
    world_size: int,
) -> Tensor:
    """This process's share of ``num`` images for a metric: from ``sample_fn``, else from ``module.metric_samples``.

    Raises:
        ModelDiverged: an image holds NaN or infinity, in this process or another (every process raises).
    """
    with diverging_together(module.device, world_size):
        if sample_fn is not None:
            return draw_samples(sample_fn, num, seed=seed, batch_size=batch_size, rank=rank, world_size=world_size,
                                module=module)
        images = module.metric_samples(num, seed=seed, batch_size=batch_size, rank=rank, world_size=world_size)
        return require_finite(images, "the generated images")


def missing_real_images_error(callback: str, trainer: pl.Trainer) -> TypeError:
    """The error for ``callback`` without real images: no ``real_images``, no datamodule with ``heldout_images()``."""
    datamodule = getattr(trainer, "datamodule", None)
    have = "no datamodule" if datamodule is None else f"{type(datamodule).__name__} has no heldout_images()"
    return TypeError(
        f"{callback} needs real images: pass {callback}(real_images=...) as (N, C, H, W) in [0, 1] or train "
        f"with a datamodule that defines heldout_images() -> (N, C, H, W) in [0, 1] ({have})."
    )


def check_real_source(callback: str, trainer: pl.Trainer, real_images: Tensor | None) -> None:
    """Raise the setup-time ``TypeError`` when there are no ``real_images`` and no datamodule that has them."""
    if real_images is None and not isinstance(getattr(trainer, "datamodule", None), SupportsHeldoutImages):
        raise missing_real_images_error(callback, trainer)


def heldout_images(trainer: pl.Trainer, real_images: Tensor | None, count: int) -> Tensor | None:
    """The first ``count`` real images, from ``real_images`` or the datamodule's ``heldout_images()``, or ``None``.

    Every process gets the same images; each takes its own share.
    """
    if real_images is not None:
        return real_images[:count]
    datamodule = getattr(trainer, "datamodule", None)
    if not isinstance(datamodule, SupportsHeldoutImages):
        return None
    return datamodule.heldout_images()[:count]
