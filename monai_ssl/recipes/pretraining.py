"""Self-supervised pre-training by method name (``--method byol|byol_plus|dino|cass``): one recipe for both 2D bundles.

A bundle's ``train.json`` holds every method's settings under ``methods`` (one short block per method)
and names the one to run with ``method``. :func:`method_settings` picks and checks that block; the other
functions build what :class:`~monai_ssl.engines.SelfSupervisedTrainer` runs from it:

==============  =====================================  ===========================================  ==========================
method          network                                views per image                              optimizers
==============  =====================================  ===========================================  ==========================
``byol``        :class:`~monai_ssl.networks.BYOL`      2 (BYOL's ``T`` and ``T'``)                  one (Adam)
``byol_plus``   the same                               2, with BYOL+'s cutout, contrast, brightness  one (Adam)
``dino``        :class:`~monai_ssl.networks.DINO`      2 global + ``local_views`` local crops       one (AdamW), clipped
``cass``        :class:`~monai_ssl.networks.CASS`      1 (both networks see the same image)         one per network (Adam)
==============  =====================================  ===========================================  ==========================

Every method's encoder ``f`` is the bundle's ``encoder`` (:mod:`monai_ssl.recipes.encoders`); CASS adds its
Transformer (``transformer``). What pre-training exports is described beside the encoder file by
:func:`exported_encoder_settings`, so fine-tuning builds the same architecture without being told.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.transforms import MapTransform
from torch import nn
from torch.optim.optimizer import Optimizer

from monai_ssl.methods import METHODS, CASSMethod, DINOMethod, SelfSupervisedMethod, method_optimizers
from monai_ssl.networks import BYOL, CASS, DINO

from .encoders import TRANSFORMER_ENCODERS, encoder_features

__all__ = [
    "PRETRAINING_METHODS",
    "exported_encoder_settings",
    "method_settings",
    "other_encoder_settings",
    "pretraining_method",
    "pretraining_network",
    "pretraining_optimizers",
    "pretraining_prepare_batch",
    "pretraining_views",
    "training_state",
]

PRETRAINING_METHODS = tuple(METHODS)  # ("byol", "byol_plus", "dino", "cass")
_BYOL_LIKE = ("byol", "byol_plus")
logger = logging.getLogger("monai_ssl")


def method_settings(
    method: str,
    methods: Mapping[str, Mapping[str, Any]],
    refused: Mapping[str, str] | None = None,
    byol_plus: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """The settings of ``method`` from a config's ``methods`` block, with the non-null ``overrides`` on top.

    Args:
        method: the ``--method`` value.
        methods: method name -> its settings (the config's ``methods``).
        refused: method name -> why this bundle cannot pre-train with it (one sentence).
        byol_plus: the bundles' older ``--byol_plus True`` flag: ``byol`` then means ``byol_plus``.
        overrides: top-level settings that apply to whichever method runs (``learning_rate``,
            ``weight_decay``); ``None`` keeps the method's own value.

    Returns:
        A new dict: the method's settings, the overrides, and ``method`` itself.

    Raises:
        ValueError: an unknown method (the message lists the choices), a method the bundle refuses (with
            its reason), or a method missing from ``methods``.
    """
    name = str(method).lower()
    if byol_plus and name == "byol":
        name = "byol_plus"
    if name not in PRETRAINING_METHODS:
        raise ValueError(f"`method` must be one of {PRETRAINING_METHODS}, got {method!r}.")
    if refused and name in refused:
        choices = [m for m in PRETRAINING_METHODS if m not in refused and m in methods]
        raise ValueError(f"--method {name} is not available here: {refused[name]} Choose one of {choices}.")
    if name not in methods:
        raise ValueError(f"`methods` has no settings for {name!r} (it has {sorted(methods)}); add a `methods#{name}` block.")
    settings = dict(methods[name])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings["method"] = name
    return settings


def _local_size(settings: Mapping[str, Any], image_size: int) -> int:
    """DINO's local crop side: ``local_size``, or 96/224 of ``image_size`` when null (96 at 224)."""
    size = settings.get("local_size")
    return int(size) if size else max(8, round(int(image_size) * 96 / 224))


def _check_patch_multiples(settings: Mapping[str, Any], encoder: str, image_size: int) -> None:
    """A ViT's 16 px patches must divide every crop it sees (naming the setting)."""
    vit = [name for name in (encoder, settings.get("transformer")) if name in TRANSFORMER_ENCODERS]
    if not vit:
        return
    sizes = {"image_size": int(image_size)}
    if settings["method"] == "dino" and int(settings.get("local_views", 0)) > 0:
        sizes[f"methods#dino#local_size (now {_local_size(settings, image_size)})"] = _local_size(settings, image_size)
    bad = [f"{name}={value}" for name, value in sizes.items() if value % 16]
    if bad:
        raise ValueError(
            f"{vit[0]} cuts images into 16x16 patches, so every crop side must be a multiple of 16: {', '.join(bad)}."
        )


def pretraining_method(settings: Mapping[str, Any]) -> SelfSupervisedMethod:
    """The :class:`~monai_ssl.methods.SelfSupervisedMethod` of ``settings`` (from :func:`method_settings`)."""
    name = settings["method"]
    if name in _BYOL_LIKE:
        return METHODS[name](tau_base=float(settings.get("tau_base", 0.99)))
    if name == "dino":
        loss_kwargs = {k: settings[k] for k in ("student_temperature", "teacher_temperature", "warmup_teacher_temperature",
                                                 "warmup_teacher_temperature_epochs", "center_momentum") if k in settings}
        return DINOMethod(
            out_features=int(settings["out_features"]),
            global_views=int(settings.get("global_views", 2)),
            local_views=int(settings.get("local_views", 0)),
            teacher_momentum=float(settings.get("teacher_momentum", 0.996)),
            freeze_last_layer_epochs=int(settings.get("freeze_last_layer_epochs", 1)),
            loss_kwargs=loss_kwargs,
        )
    return CASSMethod(export=settings.get("export", "cnn"))


def pretraining_network(
    settings: Mapping[str, Any], encoder: str, in_channels: int, image_size: int, small_images: bool = False
) -> nn.Module:
    """The network ``settings["method"]`` trains, over the encoder named ``encoder``.

    Raises:
        ValueError: a setting the encoders refuse, or a ViT whose patches do not divide a crop size.
    """
    name = settings["method"]
    _check_patch_multiples(settings, encoder, image_size)
    build = functools.partial(encoder_features, in_channels=in_channels, image_size=image_size)
    if name in _BYOL_LIKE:
        return BYOL(build(encoder, small_images=small_images), hidden_dim=int(settings.get("hidden_dim", 4096)),
                    projection_dim=int(settings.get("projection_dim", 256)))
    if name == "dino":
        return DINO(
            build(encoder, small_images=small_images, interpolate_position=True),
            out_features=int(settings["out_features"]),
            hidden_features=int(settings.get("hidden_dim", 2048)),
            bottleneck_features=int(settings.get("bottleneck_dim", 256)),
            norm_last_layer=bool(settings.get("norm_last_layer", True)),
            use_bn_in_head=bool(settings.get("use_bn_in_head", False)),
            export=settings.get("export", "teacher"),
        )
    if encoder in TRANSFORMER_ENCODERS or encoder == "slice_resnet18":
        raise ValueError(f"CASS trains a CNN with a Transformer: `encoder` must be a 2D CNN (resnet18, resnet50), got {encoder!r}.")
    transformer = settings.get("transformer", "vit_b16")
    if transformer not in TRANSFORMER_ENCODERS:
        raise ValueError(f"`methods#cass#transformer` must be one of {TRANSFORMER_ENCODERS}, got {transformer!r}.")
    return CASS(build(encoder, small_images=small_images), build(transformer),
                out_features=int(settings.get("out_features", 1000)))


def pretraining_views(settings: Mapping[str, Any], image_size: int, on_device: bool, source: str = "image") -> MapTransform:
    """The loader transform that makes the method's views of ``source`` (or, ``on_device``, their parameters).

    BYOL (and BYOL+): :class:`~monai_ssl.transforms.BYOLViewsd` / ``BYOLViewParamsd``, exactly as before
    methods were plug-ins. DINO: :class:`~monai_ssl.transforms.MultiCropViewsd` / ``MultiCropViewParamsd``
    with ``global_views`` crops at ``image_size`` and ``local_views`` at ``local_size``. CASS: one view
    (``MultiCropViewsd`` with one global crop of ``crop_scale``, ``blur_prob`` and ``solarize_prob``).
    """
    from monai_ssl.transforms import BYOLViewParamsd, BYOLViewsd, MultiCropViewParamsd, MultiCropViewsd

    name, size = settings["method"], int(image_size)
    if name in _BYOL_LIKE:
        if on_device:
            return BYOLViewParamsd(keys=source, param_keys=("view1_params", "view2_params"), spatial_size=size,
                                   byol_plus=name == "byol_plus")
        return BYOLViewsd(keys=source, view_keys=("view1", "view2"), spatial_size=size, byol_plus=name == "byol_plus")
    if name == "dino":
        crops = dict(global_views=int(settings.get("global_views", 2)), global_size=size,
                     global_scale=tuple(settings.get("global_scale", (0.4, 1.0))),
                     local_views=int(settings.get("local_views", 0)), local_size=_local_size(settings, size),
                     local_scale=tuple(settings.get("local_scale", (0.05, 0.4))))
    else:
        crops = dict(global_views=1, global_size=size, global_scale=tuple(settings.get("crop_scale", (0.08, 1.0))),
                     local_views=0, global_blur_probs=float(settings.get("blur_prob", 0.5)),
                     global_solarize_probs=float(settings.get("solarize_prob", 0.0)))
    return (MultiCropViewParamsd if on_device else MultiCropViewsd)(keys=source, **crops)


def pretraining_prepare_batch(settings: Mapping[str, Any], views_on_device: bool) -> Callable:
    """The trainer's ``prepare_batch``: views made on the device, or views moved from the loader."""
    from monai_ssl.engines import DeviceViews, MultiCropDeviceViews, prepare_view_list

    if not views_on_device:
        return prepare_view_list
    return DeviceViews() if settings["method"] in _BYOL_LIKE else MultiCropDeviceViews()


def pretraining_optimizers(method: SelfSupervisedMethod, network: nn.Module, settings: Mapping[str, Any]) -> list[Optimizer]:
    """One optimizer per parameter group of ``method`` (CASS: one per network), of class ``settings["optimizer"]``.

    ``weight_decay`` is the starting value of the schedule
    (:class:`~monai_ssl.handlers.OptimizerSchedules`); with ``exclude_bias_and_norm_from_weight_decay``
    biases and normalisation parameters get none (DINO's reference ``get_params_groups``).

    Raises:
        ValueError: an optimizer name that ``torch.optim`` does not have.
    """
    name = str(settings.get("optimizer", "Adam"))
    optimizer_class = getattr(torch.optim, name, None)
    if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
        raise ValueError(f"`methods#{settings['method']}#optimizer` must name a torch.optim optimizer (Adam, AdamW, SGD), got {name!r}.")
    make = functools.partial(optimizer_class, lr=float(settings["learning_rate"]), weight_decay=float(settings.get("weight_decay", 0.0)))
    exclude = bool(settings.get("exclude_bias_and_norm_from_weight_decay", False))
    return method_optimizers(method, network, make, exclude_bias_and_norm_from_weight_decay=exclude)


def training_state(network: nn.Module, optimizers: Sequence[Optimizer], method: SelfSupervisedMethod) -> dict[str, Any]:
    """What a checkpoint holds and a resumed run loads: the network, every optimizer, the method's state.

    One optimizer is saved as ``optimizer`` (the key of runs before methods were plug-ins); several as
    ``optimizer_<group>`` (CASS: ``optimizer_cnn``, ``optimizer_transformer``). DINO adds ``dino_loss`` (its
    center).
    """
    groups = list(method.parameter_groups(network))
    if len(optimizers) != len(groups):
        raise ValueError(f"{method.name}: {len(optimizers)} optimizer(s) for {len(groups)} parameter group(s) {groups}.")
    state: dict[str, Any] = {"network": network}
    if len(optimizers) == 1:
        state["optimizer"] = optimizers[0]
    else:
        state.update({f"optimizer_{group}": optimizer for group, optimizer in zip(groups, optimizers)})
    state.update(method.state_modules())
    return state


def exported_encoder_settings(
    settings: Mapping[str, Any], encoder: str, in_channels: int, image_size: int, small_images: bool = False
) -> dict[str, Any]:
    """What the exported encoder file holds, written beside it (``encoder.settings.json``) for fine-tuning.

    ``encoder`` is the architecture of the exported network (CASS exporting its Transformer: the
    Transformer's name); ``projector`` says whether BYOL's projector is exported too (``projector.pt``).
    """
    name = settings["method"]
    exported = settings.get("transformer", "vit_b16") if name == "cass" and settings.get("export") == "transformer" else encoder
    values: dict[str, Any] = {"method": name, "encoder": exported, "in_channels": int(in_channels),
                              "image_size": int(image_size), "small_images": bool(small_images and exported not in TRANSFORMER_ENCODERS),
                              "projector": name in _BYOL_LIKE}
    if name in _BYOL_LIKE:
        values.update(hidden_dim=int(settings.get("hidden_dim", 4096)), projection_dim=int(settings.get("projection_dim", 256)))
    return values


def other_encoder_settings(
    settings: Mapping[str, Any], encoder: str, in_channels: int, image_size: int, small_images: bool = False
) -> dict[str, dict[str, Any]]:
    """What each other exported encoder holds (CASS: the network not exported as ``encoder.pt``), by member name.

    Written beside ``encoder_<member>.pt`` (:class:`~monai_ssl.handlers.EncoderExporter`), so either CASS network
    fine-tunes with ``--pretrained_encoder models/encoder_<member>.pt``. Empty for the other methods.
    """
    if settings["method"] != "cass":
        return {}
    other = "cnn" if settings.get("export") == "transformer" else "transformer"
    swapped = {**settings, "export": other}
    return {other: exported_encoder_settings(swapped, encoder, in_channels, image_size, small_images)}

