"""Direct loop implementations of the content-aware upsamplers, one output value at a time.

They share nothing with the layers but their parameters: no ``grid_sample``, ``unfold``,
``pixel_shuffle`` or fused convolution, only indexing and sums written out from the papers'
definitions. Slow; for inputs of a few pixels.
"""

from __future__ import annotations

import math

import torch


def conv1x1(x, weight, bias):
    batch, channels, height, width = x.shape
    out = torch.zeros(batch, weight.shape[0], height, width, dtype=x.dtype)
    for b in range(batch):
        for o in range(weight.shape[0]):
            for i in range(height):
                for j in range(width):
                    total = sum(weight[o, c, 0, 0] * x[b, c, i, j] for c in range(channels))
                    out[b, o, i, j] = total + (bias[o] if bias is not None else 0)
    return out


def conv_same(x, weight, bias):
    """A k×k convolution with zero padding k//2 (odd k)."""
    batch, channels, height, width = x.shape
    k = weight.shape[-1]
    r = k // 2
    out = torch.zeros(batch, weight.shape[0], height, width, dtype=x.dtype)
    for b in range(batch):
        for o in range(weight.shape[0]):
            for i in range(height):
                for j in range(width):
                    total = bias[o].clone() if bias is not None else torch.zeros((), dtype=x.dtype)
                    for c in range(channels):
                        for u in range(k):
                            for v in range(k):
                                y, z = i + u - r, j + v - r
                                if 0 <= y < height and 0 <= z < width:
                                    total = total + weight[o, c, u, v] * x[b, c, y, z]
                    out[b, o, i, j] = total
    return out


def _bilinear_at(image, py, px):
    """Bilinear value of a 2-D ``image`` at index coordinates (py, px), clamped to the border."""
    height, width = image.shape
    py = min(max(py, 0.0), height - 1.0)
    px = min(max(px, 0.0), width - 1.0)
    y0, x0 = int(math.floor(py)), int(math.floor(px))
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    wy, wx = py - y0, px - x0
    return ((1 - wy) * (1 - wx) * image[y0, x0] + (1 - wy) * wx * image[y0, x1]
            + wy * (1 - wx) * image[y1, x0] + wy * wx * image[y1, x1])


@torch.no_grad()
def dysample(layer, x):
    """DySample: offsets per sub-pixel from a 1×1 conv, bilinear sampling, optional 1×1 channel map."""
    s, groups = layer.scale, layer.groups
    batch, channels, height, width = x.shape
    per_group = channels // groups
    if layer.style == "pl":
        # Pixel-shuffle the input, 1×1 conv at high resolution, then unshuffle back per sub-pixel.
        shuffled = torch.zeros(batch, channels // s**2, s * height, s * width, dtype=x.dtype)
        for c in range(channels):
            for i in range(height):
                for j in range(width):
                    shuffled[:, c // s**2, i * s + (c % s**2) // s, j * s + c % s] = x[:, c, i, j]
        raw_hr = conv1x1(shuffled, layer.offset.weight, layer.offset.bias)
        scope_hr = conv1x1(shuffled, layer.scope.weight, None) if layer.dynamic_scope else None

        def raw(b, xy, g, a, d, i, j):
            channel = xy * groups + g
            value = raw_hr[b, channel, i * s + a, j * s + d]
            if scope_hr is None:
                return value * 0.25
            return value * 0.5 * torch.sigmoid(scope_hr[b, channel, i * s + a, j * s + d])
    else:
        raw_lr = conv1x1(x, layer.offset.weight, layer.offset.bias)
        scope_lr = conv1x1(x, layer.scope.weight, None) if layer.dynamic_scope else None

        def raw(b, xy, g, a, d, i, j):
            channel = (xy * groups + g) * s * s + a * s + d
            if scope_lr is None:
                return raw_lr[b, channel, i, j] * 0.25
            return raw_lr[b, channel, i, j] * 0.5 * torch.sigmoid(scope_lr[b, channel, i, j])

    out = torch.zeros(batch, channels, s * height, s * width, dtype=x.dtype)
    for b in range(batch):
        for out_y in range(s * height):
            for out_x in range(s * width):
                i, a = divmod(out_y, s)
                j, d = divmod(out_x, s)
                for g in range(groups):
                    px = j + (d + 0.5) / s - 0.5 + float(raw(b, 0, g, a, d, i, j))
                    py = i + (a + 0.5) / s - 0.5 + float(raw(b, 1, g, a, d, i, j))
                    for c in range(g * per_group, (g + 1) * per_group):
                        out[b, c, out_y, out_x] = _bilinear_at(x[b, c], py, px)
    if layer.proj is not None:
        out = conv1x1(out, layer.proj.weight, layer.proj.bias)
    return out


@torch.no_grad()
def carafe(layer, x):
    """CARAFE: compressor, encoder, per-sub-pixel softmax kernels, k×k reassembly with zero padding."""
    s, k = layer.scale, layer.kernel_size
    r = k // 2
    encoded = conv_same(conv1x1(x, layer.compressor.weight, layer.compressor.bias),
                        layer.encoder.weight, layer.encoder.bias)
    features = x if layer.proj is None else conv1x1(x, layer.proj.weight, layer.proj.bias)
    batch, channels, height, width = features.shape
    out = torch.zeros(batch, channels, s * height, s * width, dtype=x.dtype)
    for b in range(batch):
        for out_y in range(s * height):
            for out_x in range(s * width):
                i, a = divmod(out_y, s)
                j, d = divmod(out_x, s)
                logits = [encoded[b, n * s * s + a * s + d, i, j] for n in range(k * k)]
                top = max(float(v) for v in logits)
                exps = [math.exp(float(v) - top) for v in logits]
                weights = [e / sum(exps) for e in exps]
                for c in range(channels):
                    total = 0.0
                    for n, w in enumerate(weights):
                        y, z = i + n // k - r, j + n % k - r
                        if 0 <= y < height and 0 <= z < width:
                            total += w * float(features[b, c, y, z])
                    out[b, c, out_y, out_x] = total
    return out


def bilinear_resize(x, s):
    """Bilinear ×s with half-pixel centres (``align_corners=False``), edges clamped."""
    batch, channels, height, width = x.shape
    out = torch.zeros(batch, channels, s * height, s * width, dtype=x.dtype)
    for b in range(batch):
        for c in range(channels):
            for out_y in range(s * height):
                for out_x in range(s * width):
                    py = max((out_y + 0.5) / s - 0.5, 0.0)
                    px = max((out_x + 0.5) / s - 0.5, 0.0)
                    out[b, c, out_y, out_x] = _bilinear_at(x[b, c], py, px)
    return out


@torch.no_grad()
def bilinear_additive(layer, x):
    """Bilinear resize, sum every ``reduction`` consecutive channels, then the 3×3 conv (zero padding)."""
    resized = bilinear_resize(x, layer.scale)
    batch, channels, height, width = resized.shape
    r = layer.reduction
    summed = torch.zeros(batch, channels // r, height, width, dtype=x.dtype)
    for c in range(channels):
        summed[:, c // r] += resized[:, c]
    if layer.conv is None:
        return summed
    return conv_same(summed, layer.conv.conv.weight, layer.conv.conv.bias)
