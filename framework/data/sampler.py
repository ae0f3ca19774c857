"""A sampler whose order depends only on (seed, epoch), and that can start in the middle of an epoch.

It yields ``(epoch, position)`` keys, position in ``[0, num_samples * enlarge_ratio)``; the dataset loads image
``position % num_samples`` and derives the sample's augmentation randomness from the key, so
resuming mid-epoch skips the first samples without loading them and every later sample is bit-identical.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler):
    """Shuffled (or sequential) keys over ``num_samples * enlarge_ratio`` positions, sliced per process."""

    def __init__(self, num_samples: int, seed: int, enlarge_ratio: int = 1, shuffle: bool = True,
                 num_replicas: int = 1, rank: int = 0) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.enlarge_ratio = enlarge_ratio
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.skip = 0

    def set_position(self, epoch: int, skip: int = 0) -> None:
        """The next iteration covers ``epoch`` from its ``skip``-th sample (of this process) on."""
        self.epoch = epoch
        self.skip = skip

    @property
    def per_epoch(self) -> int:
        """Samples this process sees in a whole epoch."""
        return (self.num_samples * self.enlarge_ratio) // self.num_replicas

    def __len__(self) -> int:
        return max(0, self.per_epoch - self.skip)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        total = self.num_samples * self.enlarge_ratio
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(total, generator=gen)
        else:
            order = torch.arange(total)
        order = order[self.rank:self.per_epoch * self.num_replicas:self.num_replicas][self.skip:]
        epoch = self.epoch
        for pos in order.tolist():  # positions in the enlarged epoch: repeats of an image get their own crops
            yield epoch, pos
