"""The one place that picks which Lightning the package builds on: ``lightning.pytorch`` or ``pytorch_lightning``.

Lightning ships under two names that do not mix: the ``lightning`` package (``import lightning as L``,
``L.Trainer``) and the standalone ``pytorch-lightning`` package (``import pytorch_lightning as pl``).
A ``lightning.pytorch.Trainer`` refuses a ``pytorch_lightning.LightningModule`` and the reverse, so
every task, datamodule and callback of this package must subclass the classes of the Trainer that runs
them. The choice is made once, when this module is first imported (that is, when the first part of
the package that needs Lightning is imported), by this rule:

1. ``LCB_LIGHTNING=lightning`` or ``LCB_LIGHTNING=pytorch_lightning`` in the environment forces that
   namespace (``lightning.pytorch`` also accepted for the first);
2. otherwise, the namespace the program already imported: ``lightning.pytorch`` if it is in
   ``sys.modules``, else ``pytorch_lightning`` if that is;
3. otherwise ``lightning.pytorch`` when the ``lightning`` package is installed, else
   ``pytorch_lightning`` (the package's declared dependency).

So ``import lightning as L`` (or ``import pytorch_lightning as pl``) *before* importing the package's
tasks and callbacks is enough; a program that imports the package first and the other namespace later
sets ``LCB_LIGHTNING``. :data:`NAMESPACE` says which one was chosen.

Everything the package uses from Lightning is re-exported here; no other module imports either
namespace by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

__all__ = [
    "NAMESPACE",
    "CSVLogger",
    "Callback",
    "LightningDataModule",
    "LightningModule",
    "TensorBoardLogger",
    "TorchCheckpointIO",
    "Trainer",
    "WandbLogger",
    "choose_namespace",
    "pl",
    "rank_zero_info",
    "rank_zero_only",
    "rank_zero_warn",
    "seed_everything",
]

#: The environment variable that forces the namespace.
ENV_VAR = "LCB_LIGHTNING"
_FORCED = {"lightning": "lightning.pytorch", "lightning.pytorch": "lightning.pytorch",
           "pytorch_lightning": "pytorch_lightning"}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def choose_namespace(environ: dict[str, str] | None = None, modules: dict | None = None) -> str:
    """The module name of the Lightning namespace to build on, by the rule in the module docstring.

    Args:
        environ: the environment to read ``LCB_LIGHTNING`` from (default: ``os.environ``).
        modules: the already imported modules (default: ``sys.modules``).

    Returns:
        ``"lightning.pytorch"`` or ``"pytorch_lightning"``.

    Raises:
        ValueError: ``LCB_LIGHTNING`` set to something other than ``lightning`` or ``pytorch_lightning``.
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    forced = environ.get(ENV_VAR, "").strip()
    if forced:
        if forced not in _FORCED:
            raise ValueError(f"{ENV_VAR} must be one of lightning, pytorch_lightning; got {forced!r}.")
        return _FORCED[forced]
    for name in ("lightning.pytorch", "pytorch_lightning"):
        if name in modules:
            return name
    return "lightning.pytorch" if _installed("lightning") else "pytorch_lightning"


#: ``"lightning.pytorch"`` or ``"pytorch_lightning"``: the namespace every class of the package subclasses.
NAMESPACE = choose_namespace()
try:
    pl = importlib.import_module(NAMESPACE)
except ImportError as err:
    package = "lightning" if NAMESPACE == "lightning.pytorch" else "pytorch-lightning"
    raise ImportError(f"lightning-checkerboard builds on {NAMESPACE} here (rule: {ENV_VAR}, then the namespace already "
                      f"imported, then lightning.pytorch if installed), which cannot be imported: pip install {package} "
                      f"({err})") from None

_loggers = importlib.import_module(f"{NAMESPACE}.loggers")
_utilities = importlib.import_module(f"{NAMESPACE}.utilities")
_checkpoint_io = importlib.import_module(f"{NAMESPACE}.plugins.io")

LightningModule = pl.LightningModule
LightningDataModule = pl.LightningDataModule
Callback = pl.Callback
Trainer = pl.Trainer
seed_everything = pl.seed_everything
CSVLogger = _loggers.CSVLogger
TensorBoardLogger = _loggers.TensorBoardLogger
WandbLogger = _loggers.WandbLogger
TorchCheckpointIO = _checkpoint_io.TorchCheckpointIO
rank_zero_only = _utilities.rank_zero_only
rank_zero_warn = _utilities.rank_zero_warn
rank_zero_info = _utilities.rank_zero_info
