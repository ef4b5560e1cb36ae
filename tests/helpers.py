"""Shared test helpers: tiny networks and the path of the shared real data."""

from __future__ import annotations

from pathlib import Path

from torch import nn

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class TinyEncoder(nn.Sequential):
    """Conv - BN - ReLU - global pool: a stand-in for ResNet-18 with ``out_features`` = 8."""

    def __init__(self, in_channels: int = 1, out_features: int = 8, pool: bool = True) -> None:
        layers = [nn.Conv2d(in_channels, out_features, 3, padding=1), nn.BatchNorm2d(out_features), nn.ReLU()]
        if pool:
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        super().__init__(*layers)
        self.out_features = out_features
