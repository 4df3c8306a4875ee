"""The package's tasks, datamodule and callbacks through Lightning's own ``LightningCLI``.

``lightning-checkerboard fit --model GANTask --data ImageDataModule --trainer.max_steps 10`` (or
``python -m lightning_checkerboard.lightning_cli fit …``) is ``LightningCLI`` as Lightning documents it:
its subcommands (``fit``, ``validate``, ``test``, ``predict``), ``--config FILE.yaml``,
``--print_config``, and every ``__init__`` argument of the model, the datamodule and each callback
settable from YAML or flags (``--model.init_args.upsampler nearest_conv``,
``--trainer.callbacks+=ArtifactMetrics --trainer.callbacks.every_n_steps 5``). The models it offers
are this package's tasks and any other ``LightningModule`` by import path; the data is
:class:`~lightning_checkerboard.data.ImageDataModule` or any other by import path.

It is an alternative to the recipes (``recipes/gan.py`` …), which add the run directory, result
record, resume and the one-line errors on top. It needs ``jsonargparse[signatures]``:
``pip install "lightning-checkerboard[cli]"``.
"""

from __future__ import annotations

import sys

from lightning_checkerboard import callbacks as _callbacks  # noqa: F401 - the callbacks LightningCLI can name
from lightning_checkerboard._lightning import NAMESPACE, LightningDataModule, LightningModule
from lightning_checkerboard.data import ImageDataModule  # noqa: F401 - the datamodule LightningCLI can name
from lightning_checkerboard.tasks import GANTask, StyleTransferTask, SuperResolutionTask  # noqa: F401

__all__ = ["main"]


def main(args: list[str] | None = None) -> int:
    """Run ``LightningCLI`` on the package's tasks and datamodule with ``args`` (default: ``sys.argv[1:]``).

    Returns:
        0 once the subcommand ran (``LightningCLI`` exits by itself on ``--help`` and on bad arguments).
    """
    import importlib

    try:
        cli_module = importlib.import_module(f"{NAMESPACE}.cli")
        cli_module.LightningCLI  # noqa: B018 - its import checks for jsonargparse only when it is built
        import jsonargparse  # noqa: F401
    except ImportError as err:
        print(f"error: LightningCLI needs jsonargparse: pip install \"lightning-checkerboard[cli]\" ({err})",
              file=sys.stderr)
        return 2
    cli_module.LightningCLI(LightningModule, LightningDataModule, subclass_mode_model=True,
                            subclass_mode_data=True, args=sys.argv[1:] if args is None else list(args),
                            save_config_kwargs={"overwrite": True},
                            parser_kwargs={"allow_abbrev": False})  # a flag's prefix is never taken for the flag
    return 0


if __name__ == "__main__":
    sys.exit(main())
