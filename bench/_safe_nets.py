"""Importable torch modules for ``bench/safe_formats.py`` (by reference, as users' own are)."""

from __future__ import annotations

import torch
from torch import nn


class SmallMLP(nn.Module):
    """4 -> 64 -> 3: a few kB of weights."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class BigMLP(nn.Module):
    """4 -> 4096 -> 3 x (4096 -> 4096) -> 3: 201.5 MB of float32 weights."""

    def __init__(self, width: int = 4096, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(4, width), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
