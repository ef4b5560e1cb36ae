"""Tests of monai_ssl.networks.load_weights: loading, and errors that name the file and the way out."""

from __future__ import annotations

import pytest
import torch
from helpers import TinyEncoder

from monai_ssl.networks import EncoderClassifier, load_weights

PRODUCED_BY = "pseudolabel.json (or finetune.json with --model_file)"


def _classifier(classes: int = 4, **kwargs) -> EncoderClassifier:
    torch.manual_seed(0)
    return EncoderClassifier(TinyEncoder(), out_channels=classes, **kwargs)


def test_other_head_size_names_file_config_mismatch_and_model_file(tmp_path):
    # a model trained with projection_dim 4, loaded by a config with projection_dim 8
    path = tmp_path / "best_model.pt"
    torch.save(_classifier(head_input="projector", hidden_dim=16, projection_dim=4).state_dict(), path)
    network = _classifier(head_input="projector", hidden_dim=16, projection_dim=8)
    with pytest.raises(ValueError) as info:
        load_weights(network, path, produced_by=PRODUCED_BY)
    message = str(info.value)
    assert f"the weights in {path} do not fit the network" in message
    assert f"comes from {PRODUCED_BY}" in message
    assert "projector.3.weight has shape (4, 16) in the file but (8, 16) in the network" in message
    assert "pass --model_file <the model to evaluate>" in message
    assert "hidden_dim, projection_dim, the number of classes" in message
    assert "\n" not in message and "Error(s) in loading state_dict" not in message


def test_other_number_of_classes_names_the_head(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(_classifier(classes=2).state_dict(), path)
    with pytest.raises(ValueError, match=r"head\.weight has shape \(2, 8\) in the file but \(4, 8\) in the network"):
        load_weights(_classifier(classes=4), path, produced_by="finetune.json")


def test_missing_and_unexpected_keys(tmp_path):
    # head_input="encoder" has no projector: its file lacks every projector entry of a head_input="projector" network
    path = tmp_path / "model.pt"
    torch.save(_classifier().state_dict(), path)
    with pytest.raises(ValueError, match=r"'projector\.0\.weight' is missing from the file \(and \d+ more\)") as info:
        load_weights(_classifier(head_input="projector", hidden_dim=16, projection_dim=8), path)
    assert "pass --model_file" in str(info.value) and "comes from" not in str(info.value)
    state = _classifier().state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"'extra\.weight' is in the file but not in the network\. "):
        load_weights(_classifier(), path, produced_by="finetune.json")


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint at all", "half"],
    ids=["empty", "text", "truncated"],
)
def test_unreadable_file_is_one_line_naming_it(tmp_path, content):
    path = tmp_path / "best_model.pt"
    if content == "half":
        torch.save(_classifier().state_dict(), path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_weights(_classifier(), path, produced_by=PRODUCED_BY)
    message = str(info.value)
    assert message.startswith(f"cannot read the trained weights in {path} (")
    assert "truncated or not a saved state dict" in message and "pass --model_file" in message
    assert "\n" not in message and len(message) < 400


def test_a_file_that_is_not_a_state_dict(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt holds a list, not a state dict"):
        load_weights(_classifier(), tmp_path / "list.pt", produced_by="finetune.json")

