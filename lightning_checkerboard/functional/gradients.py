"""Input gradients of a discriminator: where the article's "artifacts in gradients" are measured."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["discriminator_input_gradient"]


def discriminator_input_gradient(discriminator: nn.Module, real: Tensor, batch_size: int = 64) -> Tensor:
    """Gradient of the summed logits with respect to the input images, each image on its own.

    The discriminator runs in eval mode so BatchNorm does not mix the images of a batch (each
    gradient is that of its own image); its mode is restored afterwards.

    Args:
        discriminator: maps ``(B, C, H, W)`` images in [-1, 1] to one logit per image.
        real: images in [0, 1] (scaled to [-1, 1] here, as the GAN sees them).
        batch_size: images per backward pass.

    Returns:
        Gradients, the shape of ``real``, on the CPU.

    Example:
        >>> disc = nn.Sequential(nn.Conv2d(3, 1, 4, 2, 1), nn.Flatten(), nn.LazyLinear(1))
        >>> discriminator_input_gradient(disc, torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """
    was_training = discriminator.training
    device = next(discriminator.parameters()).device
    discriminator.eval()
    grads = []
    try:
        with torch.enable_grad():
            for chunk in real.split(batch_size):
                x = (chunk.to(device) * 2 - 1).requires_grad_(True)
                (grad,) = torch.autograd.grad(discriminator(x).sum(), x)
                grads.append(grad.detach().cpu())
    finally:
        discriminator.train(was_training)
    return torch.cat(grads)
