"""Networks: BYOL, its heads, the BYOLMed2D slice encoder, the standard ResNet-18, classifiers, the
cross-teaching segmentation pair."""

from __future__ import annotations

from .byol import BYOL
from .cass import CASS
from .model_settings import check_model_settings, model_setting, publish_model, read_model_settings, write_model_settings
from .classifier import EncoderClassifier, init_from_pretrained, load_pretrained_encoder, trainable_parameters
from .dino import DINO, group_views_by_shape
from .dino_head import DINOHead, cancel_last_layer_gradients
from .distributed import maybe_sync_batchnorm, unwrap_parallel
from .heads import MLPHead
from .momentum import cosine_momentum, momentum_update
from .picie import PICIE_BACKBONES, PiCIENet, centroid_logits
from .placement import place_network
from .pretrained_weights import (
    PretrainedLoadReport,
    convert_pretrained_state,
    load_imagenet_weights,
    read_checkpoint,
    require_pretrained_weights,
)
from .resnet import ResNetEncoder, resnet18_encoder, resnet34_encoder, resnet50_encoder
from .segmentation_pair import SegmentationPair, split_pair_logits
from .slice_encoder import SliceEncoder
from .vit_encoder import ViTEncoder, interpolate_position_embeddings, vit_encoder
from .weights import load_weights

__all__ = [
    "BYOL",
    "CASS",
    "DINO",
    "DINOHead",
    "group_views_by_shape",
    "cancel_last_layer_gradients",
    "EncoderClassifier",
    "MLPHead",
    "PICIE_BACKBONES",
    "PiCIENet",
    "centroid_logits",
    "ResNetEncoder",
    "SegmentationPair",
    "SliceEncoder",
    "cosine_momentum",
    "init_from_pretrained",
    "check_model_settings",
    "model_setting",
    "publish_model",
    "read_model_settings",
    "write_model_settings",
    "trainable_parameters",
    "load_pretrained_encoder",
    "load_weights",
    "maybe_sync_batchnorm",
    "unwrap_parallel",
    "momentum_update",
    "place_network",
    "PretrainedLoadReport",
    "convert_pretrained_state",
    "load_imagenet_weights",
    "read_checkpoint",
    "require_pretrained_weights",
    "resnet18_encoder",
    "resnet34_encoder",
    "resnet50_encoder",
    "split_pair_logits",
    "ViTEncoder",
    "vit_encoder",
    "interpolate_position_embeddings",
]
