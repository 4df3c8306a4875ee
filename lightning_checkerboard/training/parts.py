"""What a recipe builds for a run (:class:`RunParts`), and the pieces every recipe builds the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lightning_checkerboard._lightning import Callback, pl
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.training.config import RunConfig
from lightning_checkerboard.upsamplers import create_upsampler, parse_upsampler_spec

__all__ = ["RunParts", "image_datamodule", "upsampler_stages"]


@dataclass
class RunParts:
    """What a recipe builds for one run; :func:`~lightning_checkerboard.training.train` adds the rest.

    Attributes:
        datamodule: the training data: a ``LightningDataModule`` with ``name`` and ``fingerprint``
            (an :class:`~lightning_checkerboard.data.ImageDataModule`, see :func:`image_datamodule`);
            ``train`` calls its ``prepare_data`` and ``setup("fit")``.
        make_task: makes the ``LightningModule``; called after the data is set up and the seed is set,
            so the model's initial weights follow ``config.seed``. A task that makes several optimizer
            steps per training iteration (a GAN's two updates) says so in its
            ``optimizer_steps_per_iteration`` attribute: ``config.max_steps`` counts iterations.
        stages: the upsampler of each upsampling stage (recorded and tagged), see :func:`upsampler_stages`.
        callbacks: the measurement callbacks, in the order they run (samples, metrics …); ``train``
            appends the checkpoint and the result recorder.
        headline: what trains, for the first line printed: ``run <id>: <headline>``.
        tags: logger tags beyond the ``task:``, ``dataset:``, ``upsampler:`` and ``stage:`` ones.
        protocol: how the run measures, known before training (the record's ``protocol``).
        recorded: settings to record next to the config's fields, or resolved values that replace
            them (the style size a run used when the config left it to the image size).
        strategy: Lightning strategy instead of ``config.strategy`` (``None``: the config's).
    """

    datamodule: Any
    make_task: Callable[[], pl.LightningModule]
    stages: list[str]
    callbacks: list[Callback]
    headline: str
    tags: list[str] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    recorded: dict[str, Any] = field(default_factory=dict)
    strategy: str | None = None


def upsampler_stages(config: RunConfig, num_stages: int) -> list[str]:
    """The upsampler of each of ``num_stages`` stages from ``config.upsampler``, checked to take the options.

    Every named layer is made once (1 channel in and out) with ``config.upsampler_options()``, so an
    option a stage's layer does not take fails now, not after the data is prepared.

    Raises:
        ValueError: an unknown name, a list of the wrong length, or an option a layer does not take.
    """
    stages = parse_upsampler_spec(config.upsampler, num_stages)
    for name in dict.fromkeys(stages):
        create_upsampler(name, 1, 1, **config.upsampler_options())
    return stages


def image_datamodule(config: RunConfig, *, heldout_samples: int, **options: Any) -> ImageDataModule:
    """The run's :class:`~lightning_checkerboard.data.ImageDataModule` from the config's data fields.

    ``dataset``, ``image_size``, ``batch_size``, ``data_seed`` (as the datamodule's ``seed``),
    ``num_workers``, ``corrupt`` and ``data_cache`` come from ``config``; ``options`` are other datamodule arguments
    (``channels=3``).
    """
    return ImageDataModule(dataset=config.dataset, image_size=config.image_size, batch_size=config.batch_size,
                           seed=config.data_seed, num_workers=config.num_workers, heldout_samples=heldout_samples,
                           corrupt=config.corrupt, data_cache=config.data_cache, **options)
