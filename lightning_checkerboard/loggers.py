"""Choosing and building the run's logger: W&B online when it can be reached, offline otherwise.

W&B online mode with an API key but no network blocks for minutes before failing. This module
decides up front, in a few seconds at most: online only when a key is configured *and* the server
answers; otherwise offline, with a one-line note on how to upload later (``wandb sync``).
"""

from __future__ import annotations

import netrc
import os
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOGGERS", "LoggerChoice", "build_logger", "choose_wandb_mode", "wandb_server_problem",
           "wandb_server_reachable"]

LOGGERS = ("wandb", "csv", "tensorboard", "none")
DEFAULT_WANDB_URL = "https://api.wandb.ai"


_GUARDED_METHODS = ("log_metrics", "log_hyperparams", "log_image", "log_table", "save")


def _guard(logger):
    """Make a logger's logging calls warn instead of raise: a failing backend never stops training.

    The wrapped methods are replaced on the instance, so the logger keeps its type (callbacks and
    Lightning still recognise a ``WandbLogger``).
    """
    from lightning_checkerboard._lightning import rank_zero_warn

    warned: set[str] = set()

    def wrap(name, method):
        def guarded(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except Exception as err:  # any backend failure: network, disk, server, bad payload
                if name not in warned:
                    warned.add(name)
                    rank_zero_warn(
                        f"{type(logger).__name__}.{name} failed ({type(err).__name__}: {err}); training goes on and "
                        "the run's result.json still gets every number."
                    )
                return None

        guarded.__wrapped__ = method
        return guarded

    for name in _GUARDED_METHODS:
        method = getattr(logger, name, None)
        if callable(method):
            setattr(logger, name, wrap(name, method))
    return logger


@dataclass
class LoggerChoice:
    """The logger a run got, and why (printed by the recipes)."""

    logger: object  # a Lightning logger, or False for none
    kind: str
    wandb_mode: str | None = None  # "online" | "offline" for W&B
    note: str = ""


def _api_key_configured(base_url: str) -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urllib.parse.urlparse(base_url).hostname or ""
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_server_problem(base_url: str | None = None, timeout: float = 3.0) -> str | None:
    """Why a TCP connection to the W&B server does not open within ``timeout`` seconds; ``None`` when it does.

    A connection is what online mode needs first; a name that does not resolve, a closed port or a
    missing route fails here at once, and a silent network fails after ``timeout``, instead of
    W&B's own long retries. The reason says which, after ``"the W&B server <url> "``:
    ``"did not answer within 10 s"``, ``"cannot be found: its name example.org does not resolve …"``,
    ``"refused the connection …"`` or ``"cannot be reached (<the system's reason>)"``.
    """
    shown = base_url or os.environ.get("WANDB_BASE_URL") or DEFAULT_WANDB_URL
    url = urllib.parse.urlparse(shown)
    try:
        host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    except ValueError:  # a port that is not a number
        host = None
    if not host:
        return f"the W&B server {shown} is not a URL with a host name"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:  # socket.timeout: nothing answered
        return f"the W&B server {shown} did not answer within {timeout:g} s"
    except socket.gaierror as err:
        return (f"the W&B server {shown} cannot be found: its name {host} does not resolve "
                f"({err.strerror or err}; no network, or no DNS)")
    except ConnectionRefusedError:
        return f"the W&B server {shown} refused the connection (nothing listens on port {port})"
    except OSError as err:
        return f"the W&B server {shown} cannot be reached ({err.strerror or err})"


def wandb_server_reachable(base_url: str | None = None, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the W&B server opens within ``timeout`` seconds (see :func:`wandb_server_problem`)."""
    return wandb_server_problem(base_url, timeout) is None


def choose_wandb_mode(timeout: float = 3.0) -> tuple[str, str]:
    """``(mode, reason)``: ``"online"`` only with a configured key and a reachable server.

    An explicit ``WANDB_MODE`` (``offline``, ``disabled``, ``online``) is respected; an explicit
    ``online`` is still checked, because a run that hangs helps nobody.
    """
    base_url = os.environ.get("WANDB_BASE_URL") or DEFAULT_WANDB_URL
    requested = os.environ.get("WANDB_MODE", "").strip().lower()
    if requested in ("offline", "dryrun"):
        return "offline", "WANDB_MODE=offline"
    if requested == "disabled":
        return "disabled", "WANDB_MODE=disabled"
    if not _api_key_configured(base_url):
        return "offline", "no W&B API key configured (run `wandb login` to log online)"
    problem = wandb_server_problem(base_url, timeout)
    if problem is not None:
        return "offline", problem
    return "online", f"logged in, {base_url} reachable"


def build_logger(
    kind: str,
    run_dir: str | os.PathLike,
    *,
    run_name: str,
    project: str = "lightning-checkerboard",
    entity: str | None = None,
    tags: list[str] | None = None,
    run_id: str | None = None,
) -> LoggerChoice:
    """Build the Lightning logger for ``kind`` (one of :data:`LOGGERS`) writing under ``run_dir``.

    Raises:
        ValueError: an unknown ``kind``, or ``tensorboard`` without the ``tensorboard`` package.
    """
    if kind not in LOGGERS:
        raise ValueError(f"logger must be one of {', '.join(LOGGERS)}; got {kind!r}.")
    run_dir = Path(run_dir)
    if kind == "none":
        return LoggerChoice(False, kind)
    if kind == "csv":
        from lightning_checkerboard._lightning import CSVLogger

        return LoggerChoice(_guard(CSVLogger(run_dir, name="csv", version="")), kind, note=f"metrics in {run_dir / 'csv'}")
    if kind == "tensorboard":
        try:
            from lightning_checkerboard._lightning import TensorBoardLogger

            logger = TensorBoardLogger(run_dir, name="tensorboard", version="")
            logger.experiment  # noqa: B018 - fails now, not mid-run, when no backend is installed
        except (ImportError, ModuleNotFoundError) as err:
            raise ValueError(f"logger: 'tensorboard' needs the tensorboard package: pip install tensorboard ({err})") from None
        return LoggerChoice(_guard(logger), kind, note=f"tensorboard --logdir {run_dir / 'tensorboard'}")

    from lightning_checkerboard._lightning import WandbLogger

    mode, reason = choose_wandb_mode()
    if mode == "disabled":
        return LoggerChoice(False, kind, wandb_mode=mode, note="W&B disabled (WANDB_MODE=disabled)")
    logger = WandbLogger(
        name=run_name,
        project=project,
        entity=entity,
        save_dir=str(run_dir),
        offline=mode == "offline",
        tags=tags,
        id=run_id,
        resume="allow",  # a resumed run continues the same W&B run
    )
    # Lightning always passes W&B's deprecated `anonymous` setting (None when not asked for), and W&B
    # warns about it on every run; leaving it out changes nothing else.
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and init.get("anonymous") is None:
        init.pop("anonymous", None)
    _guard(logger)
    note = f"W&B {mode}: {reason}"
    if mode == "offline":
        note += f"; upload later with: wandb sync {run_dir / 'wandb'}/offline-run-*"
    return LoggerChoice(logger, kind, wandb_mode=mode, note=note)
