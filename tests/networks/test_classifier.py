from __future__ import annotations

import pytest
import torch
from helpers import TinyEncoder

from monai_ssl.networks import BYOL, EncoderClassifier, MLPHead, init_from_pretrained, load_pretrained_encoder
from monai_ssl.networks import trainable_parameters


def test_loads_exported_encoder_and_byol_checkpoint(tiny_encoder, tmp_path):
    byol = BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)
    torch.save(byol.online_encoder.state_dict(), tmp_path / "encoder.pt")
    torch.save({"network": byol.state_dict(), "optimizer": {}}, tmp_path / "checkpoint.pt")
    for name in ("encoder.pt", "checkpoint.pt"):
        torch.manual_seed(1)
        fresh = TinyEncoder()
        load_pretrained_encoder(fresh, tmp_path / name)
        for a, b in zip(fresh.state_dict().values(), tiny_encoder.state_dict().values()):
            torch.testing.assert_close(a, b)


def test_missing_file_and_mismatch_are_clear(tiny_encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match="train.json"):
        load_pretrained_encoder(tiny_encoder, tmp_path / "nope.pt")
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not match"):
        load_pretrained_encoder(tiny_encoder, tmp_path / "bad.pt")
    for no_file in (None, "", "none", "null"):
        assert load_pretrained_encoder(tiny_encoder, no_file) is tiny_encoder


def test_an_encoder_with_nan_weights_is_refused(tiny_encoder, tmp_path):
    state = {k: v.clone() for k, v in tiny_encoder.state_dict().items()}
    next(v for v in state.values() if v.is_floating_point()).view(-1)[0] = float("nan")
    torch.save(state, tmp_path / "encoder.pt")
    with pytest.raises(ValueError, match=r"encoder\.pt holds NaN/inf weights .*diverged"):
        load_pretrained_encoder(TinyEncoder(), tmp_path / "encoder.pt")


def test_classifier_shapes_and_frozen_encoder(tiny_encoder):
    model = EncoderClassifier(tiny_encoder, out_channels=3, freeze_encoder=True)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    model.train()
    assert not model.encoder.training and model.head.training
    assert all(not p.requires_grad for p in model.encoder.parameters())


def _pretrained(tiny_encoder, tmp_path):
    """A BYOL with online != target, its exported encoder and projector files, and a full training checkpoint."""
    byol = BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)
    with torch.no_grad():
        for p in byol.online_parameters():
            p.add_(torch.randn_like(p))
    torch.save(byol.online_encoder.state_dict(), tmp_path / "encoder.pt")
    torch.save(byol.online_projector.state_dict(), tmp_path / "projector.pt")
    torch.save({"network": byol.state_dict(), "optimizer": {}}, tmp_path / "checkpoint.pt")
    return byol


def _projector_classifier(**kwargs):
    torch.manual_seed(1)
    return EncoderClassifier(TinyEncoder(), out_channels=3, head_input="projector", hidden_dim=16, projection_dim=4,
                             **kwargs)


def _assert_loaded(model, byol):
    for mine, theirs in ((model.encoder, byol.online_encoder), (model.projector, byol.online_projector)):
        for (key, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
            torch.testing.assert_close(a, b, msg=key)


def test_head_on_the_projector_output(tiny_encoder):
    model = EncoderClassifier(tiny_encoder, out_channels=3, head_input="projector", hidden_dim=16, projection_dim=4)
    assert isinstance(model.projector, MLPHead)
    assert (model.projector.in_features, model.projector.out_features, model.head.in_features) == (8, 4, 4)
    x = torch.rand(2, 1, 8, 8)
    model.eval()
    logits = model(x)
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, model.head(model.projector(model.encoder(x))))
    assert EncoderClassifier(tiny_encoder, out_channels=3).projector is None  # default: head on the encoder


def test_a_training_batch_of_one_goes_through_the_projector_with_running_statistics(tiny_encoder):
    model = EncoderClassifier(tiny_encoder, out_channels=3, head_input="projector", hidden_dim=16, projection_dim=4)
    model.train()
    model(torch.rand(4, 1, 8, 8))  # moves the running statistics away from their start
    x = torch.rand(1, 1, 8, 8)
    logits = model(x)  # batch statistics of one sample would raise
    assert model.projector.training
    features = model.encoder(x)  # the encoder keeps its batch statistics (its maps have 8 x 8 values)
    model.projector.eval()
    torch.testing.assert_close(logits, model.head(model.projector(features)))
    model.train()
    pair = torch.cat([x, x + 1])
    model.projector.eval()
    with_running = model(pair)
    model.projector.train()
    assert not torch.allclose(model(pair), with_running)  # two samples use their batch statistics


def test_custom_projector_and_bad_settings_raise(tiny_encoder):
    custom = torch.nn.Linear(8, 5)
    model = EncoderClassifier(tiny_encoder, 2, head_input="projector", projection_dim=5, projector=custom)
    assert model.projector is custom and model.eval()(torch.rand(1, 1, 8, 8)).shape == (1, 2)
    with pytest.raises(ValueError, match="head_input"):
        EncoderClassifier(tiny_encoder, head_input="predictor")
    with pytest.raises(ValueError, match="head_input='projector'"):
        EncoderClassifier(tiny_encoder, projector=custom)


def test_linear_probe_freezes_encoder_and_projector(tiny_encoder):
    model = EncoderClassifier(tiny_encoder, 3, freeze_encoder=True, head_input="projector", hidden_dim=16,
                              projection_dim=4)
    model.train()
    assert not model.encoder.training and not model.projector.training and model.head.training
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable == list(model.head.parameters())
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    head = model.head.weight.clone()
    opt = torch.optim.SGD(trainable, lr=0.5)
    torch.nn.functional.cross_entropy(model(torch.rand(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    assert not torch.equal(model.head.weight, head)
    for key, value in model.state_dict().items():
        if key in frozen:  # weights and batch-norm statistics alike
            torch.testing.assert_close(value, frozen[key], msg=key)


def test_fine_tuning_trains_the_projector_too(tiny_encoder):
    model = EncoderClassifier(tiny_encoder, 3, head_input="projector", hidden_dim=16, projection_dim=4).train()
    torch.nn.functional.cross_entropy(model(torch.rand(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
    assert all(p.grad is not None for p in model.projector.parameters())


def test_init_from_pretrained_loads_encoder_and_projector(tiny_encoder, tmp_path):
    byol = _pretrained(tiny_encoder, tmp_path)
    files = (("encoder.pt", "projector.pt"), ("checkpoint.pt", None), ("encoder.pt", "checkpoint.pt"))
    for path, projector_path in files:
        model = _projector_classifier()
        projector_file = tmp_path / projector_path if projector_path else None
        assert init_from_pretrained(model, tmp_path / path, projector_path=projector_file) is model
        _assert_loaded(model, byol)


def test_init_from_pretrained_projector_choices_and_errors(tiny_encoder, tmp_path):
    byol = _pretrained(tiny_encoder, tmp_path)
    random_projector = _projector_classifier().projector.state_dict()
    model = init_from_pretrained(_projector_classifier(), tmp_path / "encoder.pt", projector_path="none")
    for key, value in model.projector.state_dict().items():  # kept as initialised, encoder loaded
        torch.testing.assert_close(value, random_projector[key])
    torch.testing.assert_close(model.encoder[0].weight, byol.online_encoder[0].weight)
    scratch = init_from_pretrained(_projector_classifier(), None, projector_path=tmp_path / "projector.pt")
    torch.testing.assert_close(scratch.projector[0].weight, random_projector["0.weight"])  # from scratch: nothing
    with pytest.raises(ValueError, match="projector_path"):
        init_from_pretrained(_projector_classifier(), tmp_path / "encoder.pt")
    with pytest.raises(FileNotFoundError, match="projector_path"):
        init_from_pretrained(_projector_classifier(), tmp_path / "encoder.pt", projector_path=tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="does not match the projector"):
        init_from_pretrained(_projector_classifier(), tmp_path / "encoder.pt", projector_path=tmp_path / "encoder.pt")
    plain = EncoderClassifier(TinyEncoder(), 3)  # no projector: projector_path is ignored
    init_from_pretrained(plain, tmp_path / "encoder.pt", projector_path=tmp_path / "projector.pt")
    torch.testing.assert_close(plain.encoder[0].weight, byol.online_encoder[0].weight)


@pytest.mark.parametrize("head_input", ["encoder", "projector"])
def test_classifier_compiles_with_torchscript_for_bundle_export(tiny_encoder, head_input):
    model = EncoderClassifier(tiny_encoder, 3, head_input=head_input, hidden_dim=16, projection_dim=4).eval()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(torch.jit.script(model)(x), model(x))


def test_trainable_parameters_leave_out_frozen_ones():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    net[0].requires_grad_(False)
    assert [p.shape for p in trainable_parameters(net)] == [torch.Size([1, 2]), torch.Size([1])]
