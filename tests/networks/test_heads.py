from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_ssl.networks import MLPHead


def test_layers_and_shape():
    head = MLPHead(512, 4096, 256)
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head[0].out_features == 4096 and head[3].out_features == 256
    assert head(torch.randn(3, 512)).shape == (3, 256)


def test_batch_of_one_in_training_is_a_clear_error():
    head = MLPHead(8, 16, 4)
    with pytest.raises(ValueError, match="at least 2 samples"):
        head(torch.randn(1, 8))
    head.eval()
    assert head(torch.randn(1, 8)).shape == (1, 4)
