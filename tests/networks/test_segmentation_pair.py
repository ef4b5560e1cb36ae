from __future__ import annotations

import pytest
import torch

from monai_ssl.networks import SegmentationPair, split_pair_logits
from monai_ssl.transforms import SplitPairPredictiond


def _pair(output="cnn"):
    torch.manual_seed(0)
    return SegmentationPair(torch.nn.Conv2d(3, 2, 1), torch.nn.Conv2d(3, 2, 1), output=output)


def test_outputs_by_setting():
    pair, x = _pair(), torch.rand(2, 3, 8, 8)
    cnn, transformer = pair.members["cnn"](x), pair.members["transformer"](x)
    torch.testing.assert_close(pair(x), cnn)
    pair.output = "transformer"
    torch.testing.assert_close(pair(x), transformer)
    pair.output = "all"
    torch.testing.assert_close(pair(x), torch.cat([cnn, transformer], dim=1))
    pair.output = "mean"
    mean = (cnn.softmax(1) + transformer.softmax(1)) / 2
    torch.testing.assert_close(pair(x).softmax(1), mean)
    torch.testing.assert_close(pair(x).argmax(1), mean.argmax(1))
    with pytest.raises(ValueError, match="output must be one of"):
        pair.output = "unet"


def test_one_state_dict_with_both_members():
    keys = set(_pair().state_dict())
    assert keys == {"members.cnn.weight", "members.cnn.bias", "members.transformer.weight", "members.transformer.bias"}


def test_traced_pair_follows_its_output_and_split_per_network():
    pair, x = _pair("cnn"), torch.rand(1, 3, 8, 8)
    traced = torch.jit.trace(pair, x)
    torch.testing.assert_close(traced(x), pair.members["cnn"](x))
    pair.output = "all"
    parts = split_pair_logits(pair(x)[0])
    torch.testing.assert_close(parts["transformer"], pair.members["transformer"](x)[0])
    with pytest.raises(ValueError, match="cannot be split"):
        split_pair_logits(torch.zeros(3, 4, 4))


@pytest.mark.parametrize("output", ["cnn", "transformer", "mean"])
def test_split_pair_prediction_transform(output):
    pair, x = _pair("all"), torch.rand(1, 3, 8, 8)
    out = SplitPairPredictiond(keys="pred", output=output)({"pred": pair(x)[0]})
    cnn = pair.members["cnn"](x)[0].softmax(0)
    transformer = pair.members["transformer"](x)[0].softmax(0)
    torch.testing.assert_close(out["pred_cnn"], cnn)
    torch.testing.assert_close(out["pred_transformer"], transformer)
    expected = {"cnn": cnn, "transformer": transformer, "mean": (cnn + transformer) / 2}[output]
    torch.testing.assert_close(out["pred"], expected)
    with pytest.raises(ValueError, match="output must be one of"):
        SplitPairPredictiond(output="all")
