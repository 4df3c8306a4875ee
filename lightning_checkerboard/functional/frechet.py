"""The Fréchet distance between two Gaussians, the quantity FID reports for feature statistics."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["covariance_root", "frechet_distance"]


def covariance_root(sigma: Tensor) -> Tensor:
    """A factor L with L Lᵀ = Σ (L = U Λ^½ from ``eigh``; negative eigenvalues are round-off of zeros).

    Shape:
        - ``sigma``: (D, D), symmetric positive semi-definite.
        - Output: (D, D).
    """
    evals, evecs = torch.linalg.eigh(sigma)
    return evecs * evals.clamp(min=0).sqrt()


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor, root1: Tensor | None = None) -> Tensor:
    """‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr sqrt(Σ1 Σ2), with the last term from symmetric eigensolvers.

    With Σ1 = L Lᵀ, Σ1 Σ2 = L (Lᵀ Σ2) has the non-zero eigenvalues of Lᵀ Σ2 L, which is symmetric
    PSD. So tr sqrt(Σ1 Σ2) = Σ sqrt(eigvalsh(Lᵀ Σ2 L)): symmetric eigensolvers instead of the general
    one that torchmetrics and torch-fidelity call on Σ1 Σ2, which are much faster at 2048 features
    and leave no complex round-off to discard. Negative eigenvalues are round-off of exact zeros
    (singular covariances when there are fewer samples than features).

    Args:
        mu1, sigma1: Mean and covariance of the first Gaussian.
        mu2, sigma2: Mean and covariance of the second Gaussian.
        root1: :func:`covariance_root` of ``sigma1`` when the caller has it (e.g. the real statistics'
            factor, reused across computations); computed when ``None``.

    Shape:
        - ``mu1``, ``mu2``: (D,); ``sigma1``, ``sigma2``, ``root1``: (D, D).
        - Output: a scalar.

    Example:
        >>> mu, sigma = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
        >>> float(frechet_distance(mu, sigma, mu + 1, 4 * sigma))  # 2 + (2 + 8 - 2 * 2 * 2)
        4.0
    """
    diff = mu1 - mu2
    root1 = covariance_root(sigma1) if root1 is None else root1
    inner = root1.T @ sigma2 @ root1
    tr_sqrt = torch.linalg.eigvalsh(inner).clamp(min=0).sqrt().sum()
    return diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2.0 * tr_sqrt
