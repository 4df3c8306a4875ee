"""``digits``: scikit-learn's bundled 8x8 handwritten digits, for tiny smoke runs."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["load_digit_images"]


def load_digit_images(image_size: int) -> torch.Tensor:
    """All 1797 digits as greyscale ``uint8`` images ``(1797, 1, image_size, image_size)``.

    The 0..16 intensities are stretched to 0..255 and the images resized with PIL's bilinear filter
    (antialiased when shrinking).

    Args:
        image_size: output side in pixels.
    """
    from sklearn.datasets import load_digits

    raw = load_digits().images  # (N, 8, 8) float, 0..16
    levels = np.rint(raw * (255.0 / 16.0)).astype(np.uint8)
    out = np.empty((len(levels), 1, image_size, image_size), dtype=np.uint8)
    for i, digit in enumerate(levels):
        image = Image.fromarray(digit, "L")
        if image_size != 8:
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        out[i, 0] = np.asarray(image)
    return torch.from_numpy(out)
