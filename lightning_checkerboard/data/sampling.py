"""The training batch stream: which images each batch holds, and how they are scaled."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

__all__ = ["ResumableBatchSampler", "to_signed_unit"]


class ResumableBatchSampler(Sampler[list[int]]):
    """Endless batches of indices, reshuffled every epoch, addressable by iteration.

    Batch ``p`` of the stream is a pure function of ``(seed, p)``: epoch ``e = p // batches_per_epoch``
    uses the permutation seeded by ``(seed, e)``. Starting at ``start`` therefore continues a run
    exactly, which plain shuffling (whose position lives in a generator's hidden state) cannot.
    With ``world_size > 1`` each step's ``world_size · batch_size`` images are split between
    the processes, so they never train on the same image in the same step.

    Args:
        size: number of training images.
        batch_size: images per batch and process.
        seed: shuffling seed.
        start: index of the first batch to yield.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(self, size: int, batch_size: int, *, seed: int = 0, start: int = 0, rank: int = 0, world_size: int = 1):
        if size < batch_size * world_size:
            raise ValueError(
                f"need at least batch_size × world_size = {batch_size * world_size} images; got {size}."
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.rank, self.world_size = start, rank, world_size
        self.per_epoch = size // (batch_size * world_size)

    def _permutation(self, epoch: int) -> torch.Tensor:
        # Python hashes tuples of ints deterministically, so every process and run agrees.
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(hash((self.seed, epoch)) & (2**62 - 1)))

    def __iter__(self):
        position, epoch, perm = self.start, None, None
        step = self.batch_size * self.world_size
        while True:
            this_epoch, offset = divmod(position, self.per_epoch)
            if this_epoch != epoch:
                epoch, perm = this_epoch, self._permutation(this_epoch)
            first = offset * step + self.rank * self.batch_size
            yield perm[first : first + self.batch_size].tolist()
            position += 1


def to_signed_unit(batch: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """``uint8`` batch to ``float32`` in [-1, 1]; top-level (not a lambda) so DataLoader workers can pickle it."""
    if isinstance(batch, list):
        batch = torch.stack(batch)
    return batch.float().div_(127.5).sub_(1.0)
