"""Shared command-line plumbing for the recipes: flat flags, checked values, one-line user errors.

A user mistake (an unknown upsampler, a size the model cannot make, a dataset that is not there, a
flag argparse does not know) ends a recipe with one line on stderr and exit code 2 — never a
traceback, never the usage block (``--help`` shows it). Flags are never matched by prefix:
``--upsample`` is an unknown flag, not ``--upsampler``. Errors during training
are not user mistakes: they keep their traceback and the run's record says ``failed``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._validation import (
    check_non_negative_int,
    check_number,
    check_positive_int,
    check_unit_interval,
    describe_int,
)
from lightning_checkerboard.loggers import LOGGERS
from lightning_checkerboard.upsamplers import list_upsamplers

if TYPE_CHECKING:
    from lightning_checkerboard.training import Recipe, RunConfig

__all__ = [
    "RUN_FLAG_HELP",
    "HelpFormatter",
    "UsageError",
    "apply_config_file",
    "flag_message",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "recipe_main",
    "recipe_parser",
    "run_cli",
    "run_recipe",
    "unit_interval",
    "upsampler_help",
]

EXIT_USAGE = 2


class UsageError(Exception):
    """A user mistake found before training: printed as one line, exit code 2."""


def _number_type(convert: Callable[[str], Any], check: Callable[[Any, str], Any], what: str) -> Callable[[str], Any]:
    """An argparse ``type=``: ``convert`` the text, then ``check`` it; the message in the package's vocabulary.

    argparse puts the flag in front: ``argument --batch-size: must be a positive integer; got '0'.``
    """

    def parse(text: str):
        try:
            return check(convert(text), "value")
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}.") from None

    parse.__name__ = what.replace(" ", "_")
    parse.__doc__ = f"An argparse ``type``: the flag's text as {what}, or an ``ArgumentTypeError`` saying so."
    return parse


def _positive_number(value: float, name: str) -> float:
    return check_number(value, name, minimum=0.0, strict_minimum=True)


def _non_negative_number(value: float, name: str) -> float:
    return check_number(value, name, minimum=0.0)


#: argparse types: an integer >= 1, an integer >= 0, a finite number > 0, a finite number >= 0, a number
#: in [0, 1) (NaN, inf and values out of range rejected).
positive_int = _number_type(int, check_positive_int, describe_int(1))
non_negative_int = _number_type(int, check_non_negative_int, describe_int(0))
positive_float = _number_type(float, _positive_number, "a finite number > 0")
non_negative_float = _number_type(float, _non_negative_number, "a finite number >= 0")
unit_interval = _number_type(float, check_unit_interval, "a finite number >= 0 and < 1")


def upsampler_help() -> str:
    """The ``--upsampler`` help: one name or one per stage, and the registered names."""
    return (
        "one registered upsampler for every stage, or a comma-separated list with one per stage; "
        f"registered: {', '.join(list_upsamplers())}"
    )


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with "(default: …)" after a flag's help, unless the help already says its default or it has none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.default == "" or (
                action.default is argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


#: The help of the flags that every training recipe has; a recipe may give its own wording for any.
RUN_FLAG_HELP = {
    "padding": "padding of the resize-convolution upsamplers (default: the layer's own, zeros)",
    "image_size": "side of the images trained on, in pixels",
    "dataset": "photos (embedded), digits, cifar10, mnist, fashion_mnist, celeba, hf:<repo>[:split], folder:<path>",
    "corrupt": "unreadable images in folder:/hub data: skip and count them, or stop with an error",
    "data_cache": "keep folder:/hub images decoded and resized in the user cache, so later runs skip the decode "
                  "(--no-data-cache decodes in every run)",
    "batch_size": "images per training batch",
    "max_steps": "training iterations",
    "seed": "seed of the model and the training noise",
    "data_seed": "seed of the embedded data's crops and of every dataset's held-out split",
    "num_workers": "data-loader worker processes (cached or in-memory data: 0 is usually fastest; with "
                   "--no-data-cache on data too large for memory they decode batches in parallel)",
    "eval_every": "measure artifacts, save samples and a checkpoint every N iterations (0: only at the end)",
    "eval_samples": "images per measurement",
    "logger": "wandb (online when logged in and reachable, else offline), csv, tensorboard or none",
    "wandb_project": "W&B project",
    "wandb_entity": "W&B entity (team or user; default: yours)",
    "tags": "extra comma-separated run tags",
    "output_dir": "where run directories go",
    "resume": "continue an interrupted run from its checkpoints/last.ckpt, with its recorded settings (a weights "
              "file it names is not reused: give that flag again)",
    "accelerator": "cpu, gpu, mps or auto",
    "devices": "number of devices, a comma-separated list of device indices, or auto",
    "num_nodes": "machines for multi-node DDP",
    "strategy": "auto, ddp, ddp_spawn, …",
    "precision": "32-true, 16-mixed, bf16-mixed, …",
}


def recipe_parser(
    config_class: type[RunConfig],
    *,
    prog: str,
    description: str,
    help: Mapping[str, str] | None = None,  # noqa: A002 - the word argparse uses
    groups: Sequence[str] = (),
) -> tuple[argparse.ArgumentParser, Callable[..., argparse.Action]]:
    """A training recipe's parser with a flag for every :class:`RunConfig` field, and the function that adds more.

    Every flag is ``--<key with dashes>`` with ``dest=<key>`` (``key = config_class.key(field)``) and the
    field's default in ``config_class``, so ``config_class.from_namespace(parser.parse_args())`` is the
    run's config and ``GANConfig()`` is the run made without flags.

    Args:
        config_class: the recipe's config class.
        prog: the program name (``recipes/gan.py``).
        description: the first line of ``--help``.
        help: the recipe's wording of shared flags' help, by field name (``image_size``, ``dataset`` …).
        groups: titles of the recipe's own argument groups, shown between "model" and "training".

    Returns:
        The parser, and ``add(group, field, help, **kwargs)`` that adds the flag of one of the config
        class's own fields to the group of that title (``model``, one of ``groups``, ``training``,
        ``metrics``, ``logging and output``, ``hardware (Lightning Trainer)``); ``kwargs`` go to
        ``add_argument`` (``type``, ``choices``, ``metavar``).

    Example:
        >>> from lightning_checkerboard.training import GANConfig
        >>> parser, add = recipe_parser(GANConfig, prog="gan", description="A GAN.")
        >>> _ = add("model", "latent_dim", "length of the noise vector", type=positive_int)
        >>> parser.parse_args(["--latent-dim", "64"]).latent_dim, parser.get_default("latent_dim")
        (64, 100)
    """
    # Imported here: the data package loads Lightning, which the other commands of this module do not need.
    from lightning_checkerboard.data.decode import CORRUPT_POLICIES
    from lightning_checkerboard.upsamplers.layers import PADDING_MODES

    defaults = config_class()
    parser = OneLineParser(prog=prog, description=description, formatter_class=HelpFormatter)
    titles = ["model", *groups, "training", "metrics", "logging and output", "hardware (Lightning Trainer)"]
    made = {title: parser.add_argument_group(title) for title in titles}

    def add(group: str, name: str, help: str, **kwargs: Any) -> argparse.Action:  # noqa: A002
        key = config_class.key(name)
        return made[group].add_argument("--" + key.replace("_", "-"), dest=key, default=getattr(defaults, name),
                                        help=help, **kwargs)

    words = {**RUN_FLAG_HELP, "upsampler": upsampler_help(), **(help or {})}
    shared: list[tuple[str, str, dict[str, Any]]] = [
        ("model", "upsampler", {}),
        ("model", "padding", {"choices": PADDING_MODES}),
        ("model", "image_size", {"type": positive_int}),
        ("training", "dataset", {}),
        ("training", "corrupt", {"choices": CORRUPT_POLICIES}),
        ("training", "data_cache", {"action": argparse.BooleanOptionalAction}),
        ("training", "batch_size", {"type": positive_int}),
        ("training", "max_steps", {"type": positive_int}),
        ("training", "seed", {"type": non_negative_int}),
        ("training", "data_seed", {"type": non_negative_int}),
        ("training", "num_workers", {"type": non_negative_int}),
        ("metrics", "eval_every", {"type": non_negative_int}),
        ("metrics", "eval_samples", {"type": positive_int}),
        ("logging and output", "logger", {"choices": LOGGERS}),
        ("logging and output", "wandb_project", {}),
        ("logging and output", "wandb_entity", {}),
        ("logging and output", "tags", {}),
        ("logging and output", "output_dir", {"type": Path}),
        ("logging and output", "resume", {"type": Path, "metavar": "RUN_DIR"}),
        ("hardware (Lightning Trainer)", "accelerator", {}),
        ("hardware (Lightning Trainer)", "devices", {}),
        ("hardware (Lightning Trainer)", "num_nodes", {"type": positive_int}),
        ("hardware (Lightning Trainer)", "strategy", {}),
        ("hardware (Lightning Trainer)", "precision", {}),
    ]
    for group, name, kwargs in shared:
        add(group, name, words[name], **kwargs)
    files = parser.add_argument_group("config file")
    files.add_argument("--config", type=Path, metavar="FILE.yaml", default=None,
                       help="take the settings from a YAML file (key: value, keyed as --print-config writes them, "
                            "e.g. a run directory's config.yaml); flags on the command line win; a weights file it "
                            "names is not read: give that flag again")
    files.add_argument("--print-config", action="store_true",
                       help="print the resolved settings as YAML (what --config reads) and exit without training")
    return parser, add


#: The ``dest`` of the flags that are no config field's.
_FILE_FLAGS = ("config", "print_config")
_BOOLEAN_ACTIONS = (argparse.BooleanOptionalAction, argparse._StoreTrueAction, argparse._StoreFalseAction)


def _config_value(action: argparse.Action, key: str, value: Any, where: str) -> Any:
    """``value`` from a config file, checked and converted as the flag of ``action`` would take it as text."""
    if isinstance(action, _BOOLEAN_ACTIONS):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {key} must be true or false; got {value!r}")
        return value
    if value is None:
        if action.default is None:
            return None
        raise UsageError(f"{where}: {key} cannot be null (leave it out for the default, {action.default!s})")
    if isinstance(value, bool):
        raise UsageError(f"{where}: {key} takes the value of {action.option_strings[0]}, not true/false; got {value!r}")
    text = value if isinstance(value, str) else repr(value)
    try:
        converted = action.type(text) if action.type is not None else text
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"{where}: {key} {err}") from None
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {key} cannot be {value!r}") from None
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{where}: {key} must be one of {', '.join(map(str, action.choices))}; got {value!r}")
    return converted


def apply_config_file(parser: argparse.ArgumentParser, config_class: type[RunConfig], path: Path,
                      argv: Sequence[str] | None) -> argparse.Namespace:
    """The flags of ``argv`` parsed over the settings of the config file ``path``: a flag given wins.

    Every key must be one of the parser's settings, every value pass the check of its flag; ``resume``
    cannot come from a file, and a weights file (``LOCAL_FILES``) the file names is not used unless the
    command line names it too (a note says so): a received file never chooses what is loaded.

    Raises:
        UsageError: the file cannot be read, or holds an unknown key or a value its flag refuses.
    """
    from lightning_checkerboard.training import ConfigError
    from lightning_checkerboard.training.config_file import read_config_file

    where = f"--config {path}"
    try:
        values = read_config_file(path)
    except ConfigError as err:
        raise UsageError("--config " + str(err).removeprefix("config: ")) from None
    actions = {action.dest: action for action in parser._actions if action.option_strings}
    local = {config_class.key(name) for name in config_class.LOCAL_FILES}
    given = vars(parser.parse_args(argv))
    defaults: dict[str, Any] = {}
    for key, value in values.items():
        if key in (*_FILE_FLAGS, "resume"):
            flag = actions[key].option_strings[0]
            raise UsageError(f"{where}: {key} cannot come from a config file (give {flag} on the command line)")
        action = actions.get(key)
        if action is None or action.dest == "help":
            raise UsageError(f"{where}: unknown setting {key[:80]!r} (--print-config lists the settings)")
        if key in local:
            if value is not None and given[key] is None:
                from lightning_checkerboard.training import print_rank_zero

                flag = action.option_strings[0]
                print_rank_zero(f"note: {path} names {flag} {str(value)[:200]!r}; a config file chooses no file "
                                f"to read, so the run goes without (give {flag} again to use it)", file=sys.stderr)
            continue
        defaults[key] = _config_value(action, key, value, where)
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each ``dest`` of the parser's flags -> the flag (``max_steps`` -> ``--max-steps``)."""
    return {action.dest: action.option_strings[-1] for action in parser._actions if action.option_strings}


def flag_message(message: str, parser: argparse.ArgumentParser, config_class: type[RunConfig]) -> str:
    """``message`` with its leading config field named by its flag: ``resume: …`` -> ``--resume: …``.

    Library messages name config fields (``<field> must be …``, ``<field>: …``); a command line's user
    knows flags.
    """
    flags = _flags(parser)
    for name in sorted(config_class.field_names(), key=len, reverse=True):
        flag = flags.get(config_class.key(name))
        if flag and message.startswith((f"{name} must ", f"{name}: ")):
            return flag + message[len(name):]
    return message


def recipe_main(recipe: Recipe, build_parser: Callable[[], argparse.ArgumentParser]) -> Callable[[list[str] | None], int]:
    """A training recipe's ``main(argv=None)``: :func:`run_recipe` with the parser ``build_parser`` makes."""

    def main(argv: list[str] | None = None) -> int:
        return run_recipe(recipe, build_parser(), argv)

    main.__doc__ = f"Parse the flags of {type(recipe).__name__}, train it, and return the exit code."
    return main


def run_recipe(recipe: Recipe, parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """A training recipe's ``main``: parse the flags, make the config, :func:`~lightning_checkerboard.training.train`.

    ``--config FILE.yaml`` sets the flags' defaults from that file (:func:`apply_config_file`), and
    ``--print-config`` prints the resolved settings in the same form and trains nothing.
    With ``--resume`` no other flag may be given (the run continues with its recorded settings), but
    those of the config's ``LOCAL_FILES`` (``--fid-weights``): a received record never names a file to load.
    Settings that cannot work end as a :class:`UsageError` naming the flag; an interrupted run prints
    the command that continues it.

    Returns:
        0 when the run finished, 1 when it stopped otherwise (interrupted, diverged).
    """
    from lightning_checkerboard.training import ConfigError, print_rank_zero, train

    from lightning_checkerboard.training.config_file import config_text

    args = parser.parse_args(argv)
    if args.config is not None and args.resume is None:
        args = apply_config_file(parser, recipe.config_class, args.config, argv)
    if args.resume is not None:
        flags = _flags(parser)
        config_class = recipe.config_class
        # Weights files are this machine's: they may (must, to be used) be named again.
        local = {config_class.key(name) for name in config_class.LOCAL_FILES}
        changed = sorted(flags[k] for k, v in vars(args).items()
                         if k != "resume" and k not in local and v != parser.get_default(k))
        if changed:
            raise UsageError("--resume continues a run with its recorded settings; drop " + ", ".join(changed))
    settings = {key: value for key, value in vars(args).items() if key not in _FILE_FLAGS}
    try:
        config = recipe.config_class.from_namespace(settings)
    except ValueError as err:  # settings that no flag's type can check alone (a size and a scale together)
        raise UsageError(flag_message(str(err), parser, recipe.config_class)) from None
    if args.print_config:
        print(config_text(config), end="")
        return 0
    try:
        result = train(recipe, config)
    except ConfigError as err:
        raise UsageError(flag_message(str(err), parser, recipe.config_class)) from None
    if result.record.status == "interrupted":
        print_rank_zero(f"continue it with: python {parser.prog} --resume {result.run_dir}")
    return 0 if result.finished else 1


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a recipe's ``main``; turn user mistakes into one line on stderr and exit code 2."""
    from lightning_checkerboard.data import DatasetError

    try:
        return main(argv)
    except (UsageError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
