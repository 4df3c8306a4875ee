"""Where learned-sampling upsamplers sample: the phase structure of DySample's sampling grid.

Bilinear upsampling samples every output pixel at its own sub-pixel centre, an even grid with
spacing ``1/scale`` input pixels. DySample moves each sample by a learned offset, predicted per
sub-pixel phase (the ``scale²`` positions inside an input pixel) through a pixel shuffle — the
structure that gives sub-pixel convolution its checkerboards. If training makes the mean offset
depend on the phase, the grid is no longer even: samples bunch in pairs and the output carries a
period-``scale`` pattern. :func:`sampling_phases` measures that for one layer and
:func:`model_sampling_phases` for every DySample layer of a model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_checkerboard.upsamplers.content_aware import DySampleUpsample

__all__ = ["model_sampling_phases", "sampling_phases"]


@torch.no_grad()
def sampling_phases(layer: DySampleUpsample, x: Tensor) -> dict[str, float | list[float]]:
    """The phase structure of ``layer``'s sampling positions on the input ``x``.

    The displacement of a sample is its position minus bilinear upsampling's, in input pixels.

    Returns:
        ``phase_mean_x`` / ``phase_mean_y``: mean displacement of each of the ``scale²`` phases
        (row-major sub-pixel order) over the batch, channel groups and positions; ``spread``: the
        largest difference between two phases' means on either axis, in input pixels;
        ``relative_spread``: the spread as a share of the sample spacing ``1/scale``. 0 is an even
        grid. Any difference between phases is a period-``scale`` structure: between phases of one
        row it bunches samples (at scale 2, x means 0.05 px apart make the gaps 0.45 and 0.55 px, a
        relative spread of 0.1); between rows it shears alternate rows against each other;
        ``rms_displacement``: how far samples move at all.

    Example:
        >>> import torch
        >>> from lightning_checkerboard import create_upsampler
        >>> layer = create_upsampler("dysample", 8, 8)
        >>> round(sampling_phases(layer, torch.randn(2, 8, 6, 6))["relative_spread"], 2)
        0.0
    """
    if not isinstance(layer, DySampleUpsample):
        raise TypeError(f"layer must be a DySampleUpsample; got {type(layer).__name__}.")
    s, groups = layer.scale, layer.groups
    moved = layer.displacements(x).double()
    batch, _, height, width = moved.shape
    displacement = moved.view(batch, 2, groups, s * s, height, width)
    means = displacement.mean(dim=(0, 2, 4, 5))  # (2, s²)
    spread = float((means.max(dim=1).values - means.min(dim=1).values).max())
    return {
        "phase_mean_x": [float(v) for v in means[0]],
        "phase_mean_y": [float(v) for v in means[1]],
        "spread": spread,
        "relative_spread": spread * s,
        "rms_displacement": float(displacement.square().mean().sqrt()),
    }


@torch.no_grad()
def model_sampling_phases(model: nn.Module, *inputs: Tensor) -> list[dict[str, object]]:
    """:func:`sampling_phases` of every DySample layer of ``model`` on one forward pass of ``inputs``.

    The pass runs in the model's current mode, without gradients: a model in training mode updates its
    BatchNorm running statistics, as any forward pass would.

    Returns:
        one dict per layer, in module order, with its ``layer`` name, ``scale``, input ``size`` and the
        measurements. Empty when the model has no DySample layer.
    """
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, DySampleUpsample)]
    seen: dict[str, Tensor] = {}
    hooks = [
        module.register_forward_pre_hook(lambda _module, args, name=name: seen.__setitem__(name, args[0]))
        for name, module in layers
    ]
    try:
        model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return [
        {"layer": name, "scale": module.scale, "size": list(seen[name].shape[-2:]), **sampling_phases(module, seen[name])}
        for name, module in layers
        if name in seen
    ]
