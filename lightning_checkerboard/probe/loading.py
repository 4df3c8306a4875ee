"""The decoder a probe spec names: ``module:factory``, ``diffusers:<folder or Hub id>``, ``diffusers-layout:<name>``.

- ``package.module:factory``: imported and called as the ``audit`` command does; it must be (or
  return) a module that maps latents to images or an object with a ``decode`` method. Importing runs
  that module's code, so name only code you chose to run.
- ``diffusers:<folder>``: diffusers' ``AutoencoderKL`` from a local folder (or its ``vae/`` subfolder,
  as in a pipeline folder). The folder is received data and runs no code: its ``config.json`` must be a
  regular file inside it (links out are refused, at most 1 MB) asking for bounded sizes
  (:data:`CONFIG_LIMITS`), its weights one ``diffusion_pytorch_model.safetensors`` likewise (an index
  of shards is refused: it names other files); pickled weights (``.bin``, ``.ckpt``, ``.pt``) are
  refused. A folder with a config and no weights is built with random weights only when asked
  (``random_weights=True``), and the report says so.
- ``diffusers:<owner>/<name>[/<subfolder>]``: the same from the Hugging Face Hub (safetensors only).
  Offline (``HF_HUB_OFFLINE=1``), or when the Hub does not answer within a few seconds, only the local
  cache is used; what is not there is one clear error, never a wait.
- ``diffusers-layout:<name>``: an ``AutoencoderKL`` of a known layout (:data:`DIFFUSERS_LAYOUTS`) with
  seeded random weights, built offline.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lightning_checkerboard._untrusted import UntrustedFileError, is_regular_file, read_bytes
from lightning_checkerboard.probe.decoder import ProbeError

__all__ = ["DIFFUSERS_LAYOUTS", "LoadedDecoder", "load_decoder"]

#: The largest ``config.json`` read from a received folder.
MAX_CONFIG_BYTES = 1 << 20
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
PICKLED_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w.-]+)*$")


def _layout(widths: tuple[int, ...], layers: int, latent: int, groups: int = 32, **extra: Any) -> dict[str, Any]:
    return {"block_out_channels": widths, "layers_per_block": layers, "latent_channels": latent,
            "down_block_types": ("DownEncoderBlock2D",) * len(widths),
            "up_block_types": ("UpDecoderBlock2D",) * len(widths),
            "norm_num_groups": groups, **extra}


#: Known ``AutoencoderKL`` layouts: name -> (what it is, constructor arguments). Built with random weights.
DIFFUSERS_LAYOUTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sd": ("the VAE layout of Stable Diffusion 1.x/2.x and SDXL: widths 128-256-512-512, 2 layers per block, "
           "4-channel latent, stride 8", _layout((128, 256, 512, 512), 2, 4)),
    "sd3": ("the VAE layout of Stable Diffusion 3 and FLUX.1: widths 128-256-512-512, 2 layers per block, "
            "16-channel latent, no quant convs, stride 8",
            _layout((128, 256, 512, 512), 2, 16, use_quant_conv=False, use_post_quant_conv=False)),
    "small": ("the SD layout at a quarter of its widths (32-64-128-128), 1 layer per block, 4-channel latent, "
              "stride 8", _layout((32, 64, 128, 128), 1, 4)),
    "tiny": ("a tiny AutoencoderKL for tests: widths 8-16-16, 1 layer per block, 4-channel latent, stride 4",
             _layout((8, 16, 16), 1, 4, groups=4)),
}


@dataclass(frozen=True)
class LoadedDecoder:
    """A model and how it was had: ``source`` (the spec), ``weights`` (``pretrained``, ``random`` or ``factory``)."""

    model: Any
    source: str
    weights: str
    note: str = ""


def _autoencoder_kl():
    try:
        from diffusers import AutoencoderKL
    except ImportError as error:
        raise ProbeError(f"diffusers is needed for diffusers specs ({error}); pip install diffusers") from None
    return AutoencoderKL


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """diffusers' and the Hub client's warnings and log lines silenced: the probe reports in its own lines."""
    import logging

    loggers = [logging.getLogger(name) for name in ("diffusers", "huggingface_hub")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR + 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:240]}" if text else type(error).__name__


def _from_config(config: dict[str, Any], seed: int, what: str):
    kl = _autoencoder_kl()
    torch.manual_seed(seed)
    try:
        with _quiet_loading():
            return kl.from_config(config).eval()
    except Exception as error:  # an unknown block type, a width the groups do not divide, ...
        raise ProbeError(f"{what}: cannot build an AutoencoderKL from its config ({_one_line(error)})") from None


def _from_layout(name: str, seed: int) -> LoadedDecoder:
    if name not in DIFFUSERS_LAYOUTS:
        raise ProbeError(f"diffusers-layout must be one of {', '.join(DIFFUSERS_LAYOUTS)}; got {name!r}")
    about, config = DIFFUSERS_LAYOUTS[name]
    model = _from_config(dict(config), seed, f"diffusers-layout:{name}")
    return LoadedDecoder(model, f"diffusers-layout:{name}", "random", f"{about}; random weights (seed {seed})")


#: The largest sizes a received config may ask for: a small file must not make the probe allocate without bound.
CONFIG_LIMITS = {"block_out_channels": 4096, "layers_per_block": 16, "latent_channels": 1024, "in_channels": 64,
                 "out_channels": 64, "norm_num_groups": 4096}


def _check_config(config: dict[str, Any], what: str) -> dict[str, Any]:
    for key, limit in CONFIG_LIMITS.items():
        value = config.get(key)
        values = value if isinstance(value, (list, tuple)) else [value]
        if key == "block_out_channels" and isinstance(value, (list, tuple)) and len(value) > 8:
            raise ProbeError(f"{what}: block_out_channels lists {len(value)} blocks, more than 8")
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= limit:
                raise ProbeError(f"{what}: {key} must be integers from 1 to {limit}; got {value!r}"[:300])
    widths = config.get("block_out_channels", (64,))  # diffusers' defaults: one block of each kind
    for key in ("down_block_types", "up_block_types"):
        types = config.get(key, ("one",))
        if isinstance(types, (list, tuple)) and isinstance(widths, (list, tuple)) and len(types) != len(widths):
            raise ProbeError(f"{what}: {key} lists {len(types)} block(s) and block_out_channels {len(widths)}; "
                             "they must match")
    return config


def _folder_config(folder: Path, text: str) -> tuple[Path, dict[str, Any]]:
    """The folder holding the VAE's ``config.json`` (the folder or its ``vae/``) and the config."""
    for where in (folder, folder / "vae"):
        path = where / "config.json"
        if is_regular_file(path, root=folder):
            try:
                config = json.loads(read_bytes(path, max_bytes=MAX_CONFIG_BYTES, root=folder))
            except UntrustedFileError as error:
                raise ProbeError(str(error)) from None
            except ValueError as error:
                raise ProbeError(f"{path}: not a JSON config ({error})") from None
            if not isinstance(config, dict):
                raise ProbeError(f"{path}: not a JSON object")
            kind = config.get("_class_name", "AutoencoderKL")
            if kind != "AutoencoderKL":
                raise ProbeError(f"{path} describes a {kind!r}, not an AutoencoderKL (name the VAE's folder)")
            return where, _check_config(config, str(path))
    raise ProbeError(f"diffusers:{text}: no config.json (a regular file inside the folder) in it or in its vae/ "
                     "subfolder")


def _from_folder(text: str, folder: Path, random_weights: bool, seed: int) -> LoadedDecoder:
    if not folder.is_dir():
        raise ProbeError(f"diffusers:{text}: not a folder")
    where, config = _folder_config(folder, text)
    weights = where / WEIGHTS_NAME
    if random_weights:
        model = _from_config(config, seed, f"diffusers:{text}")
        return LoadedDecoder(model, f"diffusers:{text}", "random",
                             f"the folder's config with random weights (seed {seed}), as --random-weights asks")
    if (where / f"{WEIGHTS_NAME}.index.json").exists():
        raise ProbeError(f"diffusers:{text}: holds sharded weights (an index naming other files); the probe loads one "
                         f"{WEIGHTS_NAME} only")
    if not is_regular_file(weights, root=folder):
        pickled = sorted(p.name for p in where.iterdir() if p.suffix in PICKLED_SUFFIXES)
        if pickled:
            raise ProbeError(f"diffusers:{text}: holds pickled weights ({', '.join(pickled[:3])}), which can run code "
                             f"when loaded; refusing them: convert them to {WEIGHTS_NAME}")
        raise ProbeError(f"diffusers:{text}: no {WEIGHTS_NAME} (a regular file inside the folder); pass "
                         "--random-weights to probe its layout with random weights")
    kl = _autoencoder_kl()
    try:
        with _quiet_loading():
            model = kl.from_pretrained(str(where), use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False)
    except Exception as error:  # weights that do not fit the config, a damaged file, ...
        raise ProbeError(f"diffusers:{text}: cannot load the weights ({_one_line(error)})") from None
    return LoadedDecoder(model.eval(), f"diffusers:{text}", "pretrained", f"pretrained weights from {WEIGHTS_NAME}")


def _from_hub(text: str, random_weights: bool, seed: int) -> LoadedDecoder:
    from lightning_checkerboard.data.hub import _hub_reachable, hub_is_offline

    parts = text.split("/")
    repo, subfolder = "/".join(parts[:2]), "/".join(parts[2:]) or None
    offline = hub_is_offline()
    local_only = offline or not _hub_reachable()
    why = ("the Hub is offline (HF_HUB_OFFLINE=1)" if offline else "the Hugging Face Hub cannot be reached")
    kl = _autoencoder_kl()
    try:
        with _quiet_loading():
            if random_weights:
                config = kl.load_config(repo, subfolder=subfolder, local_files_only=local_only)
            else:
                model = kl.from_pretrained(repo, subfolder=subfolder, use_safetensors=True,
                                           local_files_only=local_only, low_cpu_mem_usage=False)
        if random_weights:
            model = _from_config(_check_config(dict(config), f"diffusers:{text}"), seed, f"diffusers:{text}")
            return LoadedDecoder(model, f"diffusers:{text}", "random",
                                 f"the Hub config with random weights (seed {seed}), as --random-weights asks")
    except ProbeError:
        raise
    except Exception as error:
        if local_only:
            raise ProbeError(f"diffusers:{text}: no folder of that name here, and as a Hub id: {why} and {repo} is "
                             "not in the local cache; run once with network access, or give a local folder") from None
        hint = "" if subfolder else "; for a pipeline repository name its VAE folder, e.g. diffusers:owner/name/vae"
        raise ProbeError(f"diffusers:{text}: cannot load an AutoencoderKL from the Hub ({_one_line(error)}){hint}") \
            from None
    note = "pretrained weights from the Hub" + (" (local cache)" if local_only else "")
    return LoadedDecoder(model.eval(), f"diffusers:{text}", "pretrained", note)


def load_decoder(spec: str, *, random_weights: bool = False, seed: int = 0) -> LoadedDecoder:
    """The model a probe spec names (see the module docstring).

    Args:
        spec: ``package.module:factory``, ``diffusers:<folder or Hub id>`` or ``diffusers-layout:<name>``.
        random_weights: build a ``diffusers:`` model from its config alone, with random weights.
        seed: seeds random weights (and the factory's initialisation).

    Raises:
        ProbeError: every mistake, in one line: a spec without a colon, a module that cannot be
            imported, a factory that fails, a missing folder, a folder without a config or weights,
            pickled weights, a Hub model that cannot be had.
    """
    kind, sep, rest = spec.partition(":")
    if not sep or not kind or not rest:
        raise ProbeError(f"the decoder must be package.module:factory, diffusers:<folder or owner/name> or "
                         f"diffusers-layout:<{'|'.join(DIFFUSERS_LAYOUTS)}>; got {spec!r}")
    if kind == "diffusers-layout":
        return _from_layout(rest, seed)
    if kind == "diffusers":
        path = Path(rest).expanduser()
        dotted = any(part in (".", "..") for part in rest.split("/"))  # no Hub id (nor cache path) climbs out
        if path.exists() or rest.startswith((".", "/", "~")) or dotted or not _HUB_ID.match(rest):
            if not path.exists():
                raise ProbeError(f"diffusers:{rest}: the folder does not exist (nor is it a Hub id owner/name)")
            return _from_folder(rest, path, random_weights, seed)
        return _from_hub(rest, random_weights, seed)
    if random_weights:
        raise ProbeError("--random-weights applies to diffusers: specs only; a factory builds its own weights")
    from lightning_checkerboard.adapt.__main__ import _call_factory

    torch.manual_seed(seed)
    try:
        model = _call_factory(spec)
    except ValueError as error:
        raise ProbeError(str(error)) from None
    if not isinstance(model, torch.nn.Module) and not callable(getattr(model, "decode", None)):
        raise ProbeError(f"{spec!r} must be a torch.nn.Module that maps latents to images or an object with a "
                         f"decode(latents) method, or return one; got {type(model).__name__}")
    return LoadedDecoder(model, spec, "factory")
