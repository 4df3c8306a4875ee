"""KID and improved precision/recall from Inception features, through torch-fidelity's own implementations.

:meth:`~lightning_checkerboard.metrics.fid.FID.diagnostics` reports these next to FID, from the same
features (:class:`~lightning_checkerboard.metrics.fid.FID` defines them). Added here to
torch-fidelity's functions: features are put in a canonical order first (:func:`canonical_order`),
so KID's random subsets, and so KID, do not depend on batching or on how images were spread over
processes; and a KID subset never asks for more images than a set holds.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

from lightning_checkerboard.metrics._inception import FEATURES

__all__ = ["canonical_order", "kid_precision_recall"]

# Rows of the distance matrices torch-fidelity's precision/recall holds at a time: 1024 x N floats.
_PRC_BATCH = 1024


@functools.lru_cache(maxsize=1)
def _ordering_direction() -> Tensor:
    return torch.randn(FEATURES, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def canonical_order(features: Tensor) -> Tensor:
    """Rows of ``features`` sorted by their projection on a fixed random direction.

    KID draws its subsets by row index; sorting first makes the subsets, and so KID, independent of
    the order in which images were batched or gathered from processes.

    Shape:
        - ``features``: (N, 2048); output: the same rows, reordered.
    """
    key = features.double() @ _ordering_direction().to(features.device)
    return features[torch.argsort(key, stable=True)]


def kid_precision_recall(
    real: Tensor, fake: Tensor, *, kid_subsets: int, kid_subset_size: int, prc_neighborhood: int
) -> dict[str, float | Tensor]:
    """KID (mean and std over subsets), precision and recall of generated features against real ones.

    Args:
        real: Features of the real images, (N_real, 2048).
        fake: Features of the generated images, (N_fake, 2048).
        kid_subsets: Number of random subsets KID averages over.
        kid_subset_size: Largest number of images per set in one KID subset.
        prc_neighborhood: The k of precision/recall's k-nearest-neighbour balls; each set needs more
            than k images.

    Returns:
        ``{"kid", "kid_std", "precision", "recall"}``, as torch-fidelity returns them.
    """
    real, fake = canonical_order(real), canonical_order(fake)
    # torch-fidelity's convention: input 1 is generated, input 2 is real.
    kid = kid_features_to_metric(
        fake,
        real,
        kid_subsets=kid_subsets,
        kid_subset_size=min(kid_subset_size, len(real), len(fake)),
        verbose=False,
    )
    prc = prc_features_to_metric(
        fake, real, prc_neighborhood=prc_neighborhood, prc_batch_size=_PRC_BATCH, save_cpu_ram=True, verbose=False
    )
    return {
        "kid": kid[KEY_METRIC_KID_MEAN],
        "kid_std": kid[KEY_METRIC_KID_STD],
        "precision": prc[KEY_METRIC_PRECISION],
        "recall": prc[KEY_METRIC_RECALL],
    }
