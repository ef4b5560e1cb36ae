"""The pre-training recipe: settings by method name, and the method, network, views and optimizers each one gets."""

from __future__ import annotations

import pytest
import torch

from monai_ssl.engines import DeviceViews, MultiCropDeviceViews, prepare_view_list
from monai_ssl.methods import BYOLMethod, CASSMethod, DINOMethod
from monai_ssl.networks import BYOL, CASS, DINO
from monai_ssl.recipes import (
    exported_encoder_settings,
    method_settings,
    other_encoder_settings,
    pretraining_method,
    pretraining_network,
    pretraining_optimizers,
    pretraining_prepare_batch,
    pretraining_views,
    training_state,
)
from monai_ssl.transforms import BYOLViewParamsd, BYOLViewsd, MultiCropViewParamsd, MultiCropViewsd

METHODS = {
    "byol": {"optimizer": "Adam", "learning_rate": 0.001, "weight_decay": 1e-6, "hidden_dim": 32, "projection_dim": 8},
    "byol_plus": {"optimizer": "Adam", "learning_rate": 0.001, "hidden_dim": 32, "projection_dim": 8},
    "dino": {"optimizer": "AdamW", "learning_rate": 0.0005, "weight_decay": 0.04, "out_features": 64, "hidden_dim": 32,
             "bottleneck_dim": 16, "local_views": 3, "exclude_bias_and_norm_from_weight_decay": True},
    "cass": {"optimizer": "Adam", "learning_rate": 0.0003, "transformer": "vit_s16", "out_features": 10},
}


def test_method_settings_take_the_non_null_overrides_and_name_the_method():
    settings = method_settings("dino", METHODS, learning_rate=0.01, weight_decay=None)
    assert settings["learning_rate"] == 0.01 and settings["weight_decay"] == 0.04 and settings["method"] == "dino"
    assert METHODS["dino"]["learning_rate"] == 0.0005  # the config's block is not changed


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [("simclr", {}, "`method` must be one of ('byol', 'byol_plus', 'dino', 'cass'), got 'simclr'"),
     ("cass", {"refused": {"cass": "no Transformer here."}}, "--method cass is not available here: no Transformer here. "
                                                             "Choose one of ['byol', 'byol_plus', 'dino']"),
     ("dino", {"methods": {"byol": {}}}, "`methods` has no settings for 'dino'")],
)
def test_method_settings_errors_name_the_choices(method, kwargs, message):
    methods = kwargs.pop("methods", METHODS)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        method_settings(method, methods, **kwargs)


@pytest.mark.parametrize(
    ("method", "method_type", "network_type", "num_views"),
    [("byol", BYOLMethod, BYOL, 2), ("byol_plus", BYOLMethod, BYOL, 2), ("dino", DINOMethod, DINO, 5),
     ("cass", CASSMethod, CASS, 1)],
)
def test_each_method_gets_its_network_and_views(method, method_type, network_type, num_views):
    settings = method_settings(method, METHODS)
    ssl_method = pretraining_method(settings)
    assert isinstance(ssl_method, method_type) and ssl_method.name == method and ssl_method.num_views == num_views
    network = pretraining_network(settings, "resnet18", in_channels=1, image_size=32, small_images=True)
    assert isinstance(network, network_type)
    item = pretraining_views(settings, 32, on_device=False)({"image": torch.rand(1, 40, 40)})
    views = [torch.as_tensor(item[k])[None].repeat(2, 1, 1, 1) for k in ssl_method.view_keys]
    state = type("S", (), {"epoch": 0, "iteration": 1, "optimizer_steps": 0, "total_optimizer_steps": 4})()
    loss, _ = ssl_method.loss(network, views, state)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_dino_views_are_global_then_local_at_96_224_of_the_image_size():
    settings = method_settings("dino", METHODS)
    item = pretraining_views(settings, 224, on_device=False)({"image": torch.rand(1, 256, 256)})
    sizes = [tuple(item[f"view{i}"].shape[-2:]) for i in range(1, 6)]
    assert sizes == [(224, 224)] * 2 + [(96, 96)] * 3


@pytest.mark.parametrize(
    ("method", "on_device", "transform_type"),
    [("byol", False, BYOLViewsd), ("byol", True, BYOLViewParamsd), ("dino", False, MultiCropViewsd),
     ("dino", True, MultiCropViewParamsd), ("cass", True, MultiCropViewParamsd)],
)
def test_the_views_are_made_in_the_workers_or_their_parameters_drawn_for_the_device(method, on_device, transform_type):
    transform = pretraining_views(method_settings(method, METHODS), 32, on_device=on_device)
    assert type(transform) is transform_type


def test_byol_plus_views_add_the_byol_plus_augmentations():
    plus = pretraining_views(method_settings("byol_plus", METHODS), 32, on_device=False)
    plain = pretraining_views(method_settings("byol", METHODS), 32, on_device=False)
    assert plus.view1.cutout_prob > 0 and plain.view1.cutout_prob == 0


def test_prepare_batch_by_method_and_path():
    assert pretraining_prepare_batch({"method": "dino"}, views_on_device=False) is prepare_view_list
    assert isinstance(pretraining_prepare_batch({"method": "byol"}, views_on_device=True), DeviceViews)
    assert isinstance(pretraining_prepare_batch({"method": "cass"}, views_on_device=True), MultiCropDeviceViews)


def test_cass_gets_one_optimizer_per_network_and_its_checkpoint_names_them():
    settings = method_settings("cass", METHODS)
    method = pretraining_method(settings)
    network = pretraining_network(settings, "resnet18", 1, 32)
    optimizers = pretraining_optimizers(method, network, settings)
    assert len(optimizers) == 2 and all(type(o) is torch.optim.Adam for o in optimizers)
    cnn = {id(p) for p in network.members["cnn"].parameters()}
    assert {id(p) for g in optimizers[0].param_groups for p in g["params"]} == cnn
    assert set(training_state(network, optimizers, method)) == {"network", "optimizer_cnn", "optimizer_transformer"}


def test_dino_optimizer_leaves_biases_and_norms_without_weight_decay_and_checkpoints_its_center():
    settings = method_settings("dino", METHODS)
    method = pretraining_method(settings)
    network = pretraining_network(settings, "resnet18", 1, 32)
    (optimizer,) = pretraining_optimizers(method, network, settings)
    assert type(optimizer) is torch.optim.AdamW
    decays = {(g["weight_decay"], all(p.ndim <= 1 for p in g["params"])) for g in optimizer.param_groups}
    assert decays == {(0.04, False), (0.0, True)}
    state = training_state(network, [optimizer], method)
    assert set(state) == {"network", "optimizer", "dino_loss"} and "center" in state["dino_loss"].state_dict()


@pytest.mark.parametrize(
    ("method", "encoder", "kwargs", "message"),
    [("dino", "vit_s16", {"image_size": 40}, "every crop side must be a multiple of 16: image_size=40"),
     ("cass", "vit_b16", {}, "`encoder` must be a 2D CNN"),
     ("cass", "slice_resnet18", {}, "`encoder` must be a 2D CNN")],
)
def test_a_backbone_that_does_not_fit_the_method_is_named(method, encoder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pretraining_network(method_settings(method, METHODS), encoder, 1, kwargs.get("image_size", 32))


def test_an_optimizer_torch_does_not_have_is_named():
    settings = method_settings("byol", {"byol": {**METHODS["byol"], "optimizer": "Adamm"}})
    with pytest.raises(ValueError, match="`methods#byol#optimizer` must name a torch.optim optimizer"):
        pretraining_optimizers(pretraining_method(settings), pretraining_network(settings, "resnet18", 1, 32), settings)


def test_exported_encoder_settings_name_the_architecture_that_is_kept():
    cass = method_settings("cass", {"cass": {**METHODS["cass"], "export": "transformer"}})
    assert exported_encoder_settings(cass, "resnet50", 3, 224, small_images=True) == {
        "method": "cass", "encoder": "vit_s16", "in_channels": 3, "image_size": 224, "small_images": False,
        "projector": False}
    byol = exported_encoder_settings(method_settings("byol", METHODS), "resnet18", 1, 64, small_images=True)
    assert byol["projector"] and byol["small_images"] and (byol["hidden_dim"], byol["projection_dim"]) == (32, 8)


def test_the_older_byol_plus_flag_turns_byol_into_byol_plus_only():
    assert method_settings("byol", METHODS, byol_plus=True)["method"] == "byol_plus"
    assert method_settings("dino", METHODS, byol_plus=True)["method"] == "dino"


def test_the_other_cass_network_is_described_for_its_own_fine_tuning():
    cass = method_settings("cass", METHODS)
    assert other_encoder_settings(cass, "resnet50", 1, 64)["transformer"]["encoder"] == "vit_s16"
    swapped = method_settings("cass", {"cass": {**METHODS["cass"], "export": "transformer"}})
    assert other_encoder_settings(swapped, "resnet50", 1, 64)["cnn"]["encoder"] == "resnet50"
    assert other_encoder_settings(method_settings("dino", METHODS), "resnet18", 1, 64) == {}
