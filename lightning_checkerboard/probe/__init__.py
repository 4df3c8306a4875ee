"""Probe a decoder (a VAE's, an autoencoder's, any latent-to-image module) for grid artifacts.

``lightning-checkerboard probe SPEC`` (or ``python -m lightning_checkerboard.probe``) decodes
photographs (a round trip through the encoder), constant images and latents, and linear ramps, and
reads the grid pattern of the decodes at every period ``2, 4, ..., stride`` with its 95 % bound;
it lists the decoder's upsampling sites (:func:`~lightning_checkerboard.adapt.audit`) and, with
``--tile SIZE --overlap N``, reads the seams of a tiled decode at the tile period. In Python:
:func:`load_decoder` → :class:`DecoderAdapter` → :func:`probe_decoder` → :func:`format_report`.
"""

from lightning_checkerboard.probe.decoder import DecoderAdapter, ProbeError, check_tiling, tiled_decode
from lightning_checkerboard.probe.inputs import INPUT_KINDS, make_inputs
from lightning_checkerboard.probe.loading import DIFFUSERS_LAYOUTS, LoadedDecoder, load_decoder
from lightning_checkerboard.probe.probing import (
    KindReading,
    PeriodReading,
    ProbeOptions,
    ProbeReport,
    SeamReading,
    default_size,
    default_tile_image_size,
    probe_decoder,
    read_seam,
    read_seams,
)
from lightning_checkerboard.probe.report import format_report, summary_line, to_json

__all__ = [
    "DIFFUSERS_LAYOUTS",
    "INPUT_KINDS",
    "DecoderAdapter",
    "KindReading",
    "LoadedDecoder",
    "PeriodReading",
    "ProbeError",
    "ProbeOptions",
    "ProbeReport",
    "SeamReading",
    "check_tiling",
    "default_size",
    "default_tile_image_size",
    "format_report",
    "load_decoder",
    "make_inputs",
    "probe_decoder",
    "read_seam",
    "read_seams",
    "summary_line",
    "tiled_decode",
    "to_json",
]
