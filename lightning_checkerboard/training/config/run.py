"""The settings every training run shares: :class:`RunConfig`, :class:`ConfigError` and the limits they check.

A config is a plain dataclass, checked when it is made: a wrong value raises ``ValueError`` naming the
field (``batch_size must be a positive integer; got 0.``). The recipes build one from their parsed
flags in one call (:meth:`RunConfig.from_namespace`: a flag's ``dest`` is the field's name), the run's
record keeps it (:meth:`RunConfig.record_config`) and a resumed run gets it back from there
(:meth:`RunConfig.from_record`). Each task's settings subclass it in a module of their own beside this one.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lightning_checkerboard._validation import (
    check_choice,
    check_int,
    check_non_negative_int,
    check_number,
    check_positive_int,
)
from lightning_checkerboard.data.decode import CORRUPT_POLICIES
from lightning_checkerboard.loggers import LOGGERS
from lightning_checkerboard.upsamplers.layers import PADDING_MODES

__all__ = [
    "MAX_SEED",
    "WANDB_NAME_FORBIDDEN",
    "ConfigError",
    "RunConfig",
]

#: The largest seed: NumPy's seeds are 32-bit, and every seed reaches NumPy.
MAX_SEED = 2**32 - 1

#: Characters W&B refuses in a project or entity name.
WANDB_NAME_FORBIDDEN = "/\\#?%:"
_WANDB_NAME_MAX = 128

C = TypeVar("C", bound="RunConfig")


class ConfigError(ValueError):
    """Settings that cannot make a run, found before any training.

    The message is one line and starts with the field it is about (``resume: …``,
    ``eval_samples must be …``), so a command line can put the flag's name in its place.
    """


def _check_text(value: object, name: str, *, optional: bool = False) -> Any:
    if (value is None and optional) or isinstance(value, str):
        return value
    raise ValueError(f"{name} must be {'text or None' if optional else 'text'}; got {value!r}.")


def _check_positive_float(value: object, name: str) -> float:
    return check_number(value, name, minimum=0.0, strict_minimum=True)


def _check_wandb_name(value: object, name: str) -> None:
    if value is None:
        return
    if (not isinstance(value, str) or not 0 < len(value) <= _WANDB_NAME_MAX or not value.isprintable()
            or any(c in WANDB_NAME_FORBIDDEN for c in value)):
        shown = " ".join(WANDB_NAME_FORBIDDEN)
        raise ValueError(f"{name} must be a W&B name: 1 to {_WANDB_NAME_MAX} printable characters, none of "
                         f"{shown}; got {value!r}.")


@dataclass
class RunConfig:
    """The settings every training recipe shares.

    Attributes:
        upsampler: one registered upsampler for every stage, or a comma-separated list, one per stage.
        padding: padding of the resize-convolution upsamplers (``None``: the layer's own).
        image_size: side of the images trained on, in pixels.
        dataset: the training data (``photos``, ``digits``, ``hf:<repo>[:split]``, ``folder:<path>`` …).
        corrupt: unreadable images in folder or hub data: ``"skip"`` (counted) or ``"error"``.
        data_cache: keep folder and hub images decoded and resized in the package's data cache, so
            later runs skip the decode (``False``: decode in every run).
        batch_size: images per training batch.
        max_steps: training iterations.
        seed: seed of the model and of the training noise and batch order (at most :data:`MAX_SEED`).
        data_seed: seed of the embedded data's crops and splits (at most :data:`MAX_SEED`).
        num_workers: data-loader worker processes.
        eval_every: measure artifacts, save samples and a checkpoint every N iterations (0: only at the end).
        eval_samples: images per measurement.
        logger: ``"wandb"``, ``"csv"``, ``"tensorboard"`` or ``"none"``.
        wandb_project: the W&B project (1 to 128 characters, none of ``/ \\ # ? % :``).
        wandb_entity: the W&B team or user (``None``: yours; the same characters as a project).
        tags: extra comma-separated logger tags.
        output_dir: where run directories are made.
        accelerator: Lightning's ``accelerator`` (``"cpu"``, ``"gpu"``, ``"auto"`` …).
        devices: Lightning's ``devices``: a count, a comma-separated list, or ``"auto"``.
        num_nodes: machines of a multi-node run.
        strategy: Lightning's ``strategy`` (``"auto"``, ``"ddp"`` …).
        precision: Lightning's ``precision`` (``"32-true"``, ``"bf16-mixed"`` …).
        resume: the run directory of an interrupted run to continue; every other field then comes from
            its record, except those of :attr:`LOCAL_FILES`.
    """

    upsampler: str = "nearest_conv"
    padding: str | None = None
    image_size: int = 32
    dataset: str = "photos"
    corrupt: str = "skip"
    data_cache: bool = True
    batch_size: int = 64
    max_steps: int = 1000
    seed: int = 0
    data_seed: int = 0
    num_workers: int = 0
    eval_every: int = 250
    eval_samples: int = 256
    logger: str = "wandb"
    wandb_project: str = "lightning-checkerboard"
    wandb_entity: str | None = None
    tags: str = ""
    output_dir: Path = Path("runs")
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    resume: Path | None = None

    #: Fields whose flag (``dest``) and record key differ from the field's name: field -> key.
    KEYS: ClassVar[Mapping[str, str]] = {}
    #: Fields that name a file on the machine that runs, read as weights: a resumed run never takes
    #: them from the record (a received run directory must not choose what is loaded); they come from
    #: the command line again, or are left unset.
    LOCAL_FILES: ClassVar[tuple[str, ...]] = ()
    #: The ``dest`` of the recipes' flags that name a settings file or print the settings: no field's.
    FILE_FLAGS: ClassVar[tuple[str, ...]] = ("config", "print_config")
    #: Values for settings that a record made before they existed lacks, where today's default would
    #: change how such a run continues: field -> the value that reproduces the behaviour of then.
    LEGACY_DEFAULTS: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        for name in self._path_fields():
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, Path(value))
            elif value is not None and not isinstance(value, Path):
                raise ValueError(f"{name} must be a path; got {value!r}.")
        self.validate()

    def validate(self) -> None:
        """Check every field (a subclass adds its own after ``super().validate()``).

        Raises:
            ValueError: a field's value, naming the field.
        """
        for name in ("upsampler", "dataset", "wandb_project", "tags", "accelerator", "devices", "strategy",
                     "precision"):
            _check_text(getattr(self, name), name)
        _check_text(self.wandb_entity, "wandb_entity", optional=True)
        if self.padding is not None:
            check_choice(self.padding, "padding", PADDING_MODES)
        check_choice(self.corrupt, "corrupt", CORRUPT_POLICIES)
        if not isinstance(self.data_cache, bool):
            raise ValueError(f"data_cache must be True or False; got {self.data_cache!r}.")
        check_choice(self.logger, "logger", LOGGERS)
        for name in ("image_size", "batch_size", "max_steps", "eval_samples", "num_nodes"):
            check_positive_int(getattr(self, name), name)
        for name in ("num_workers", "eval_every"):
            check_non_negative_int(getattr(self, name), name)
        for name in ("seed", "data_seed"):
            check_int(getattr(self, name), name, minimum=0, maximum=MAX_SEED)
        _check_wandb_name(self.wandb_project, "wandb_project")
        _check_wandb_name(self.wandb_entity, "wandb_entity")

    # ---- names

    @classmethod
    def key(cls, name: str) -> str:
        """The flag ``dest`` and record key of field ``name`` (usually ``name`` itself)."""
        return cls.KEYS.get(name, name)

    @classmethod
    def field_names(cls) -> list[str]:
        """The fields, in order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def _path_fields(cls) -> list[str]:
        hints = typing.get_type_hints(cls)
        return [name for name in cls.field_names()
                if hints[name] is Path or Path in typing.get_args(hints[name])]

    # ---- making and keeping configs

    @classmethod
    def from_namespace(cls: type[C], values: argparse.Namespace | Mapping[str, Any]) -> C:
        """The config of parsed flags (or any mapping keyed like them); absent fields keep their defaults.

        The recipes' ``--config`` and ``--print-config`` (:attr:`FILE_FLAGS`) are no settings and are left out.

        Raises:
            TypeError: ``values`` holds a key that is no field's (a flag without a field).
            ValueError: a value a field does not accept.
        """
        values = dict(vars(values) if isinstance(values, argparse.Namespace) else values)
        for flag in cls.FILE_FLAGS:
            values.pop(flag, None)
        keys = {cls.key(name): name for name in cls.field_names()}
        unknown = sorted(set(values) - set(keys))
        if unknown:
            raise TypeError(f"{cls.__name__} has no field for {', '.join(unknown)}.")
        return cls(**{keys[key]: value for key, value in values.items()})

    def record_config(self) -> dict[str, Any]:
        """Every field but ``resume``, paths as text, keyed as the flags are: what a record keeps."""
        config = {}
        for name in self.field_names():
            if name != "resume":
                value = getattr(self, name)
                config[self.key(name)] = str(value) if isinstance(value, Path) else value
        return config

    @classmethod
    def from_record(cls: type[C], config: Mapping[str, Any], *, resume: Path,
                    local: Mapping[str, Any] | None = None) -> C:
        """The config a recorded run ran with, set to resume it from ``resume``.

        Keys that are no field's are ignored (a record also keeps ``stages`` and the package version);
        a field the record lacks takes its :attr:`LEGACY_DEFAULTS` value, else today's default. The
        fields of :attr:`LOCAL_FILES` never come from the record: they take their value in ``local``
        (the command line's), else their default.

        Raises:
            ValueError: a recorded value a field does not accept.
        """
        local = dict(local or {})
        values = {name: config[cls.key(name)] for name in cls.field_names()
                  if cls.key(name) in config and name not in cls.LOCAL_FILES}
        values.update({name: local[name] for name in cls.LOCAL_FILES if local.get(name) is not None})
        for name, value in cls.LEGACY_DEFAULTS.items():
            values.setdefault(name, value)
        values["resume"] = Path(resume)
        return cls(**values)

    # ---- derived settings

    def values(self, *names: str) -> dict[str, Any]:
        """The named fields as keyword arguments: ``GANTask(stages, **config.values("loss", "lr_g"))``."""
        return {name: getattr(self, name) for name in names}

    def upsampler_options(self) -> dict[str, Any]:
        """Keyword options for every upsampling stage (``{"padding": …}`` when set)."""
        return {"padding": self.padding} if self.padding else {}

    def sample_counts(self) -> dict[str, int]:
        """Image counts that every process measures a share of: each must be at least the number of processes."""
        return {"eval_samples": self.eval_samples}
