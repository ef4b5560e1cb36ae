"""Recipes: what a bundle computes from a few named settings, as tested Python (the configs only name them)."""

from __future__ import annotations

from .class_balance import (
    CLASS_BALANCE_MODES,
    class_balance,
    class_balanced_sampler,
    class_counts,
    class_labels,
    class_loss_weights,
)
from .classification_task import MULTI_LABEL_VALUES, classification_task, multi_label_setting, require_single_label
from .thresholds import THRESHOLD_MODES, report_thresholds, validation_thresholds
from .model_thresholds import model_thresholds, record_validation_thresholds
from .mrnet_findings import mrnet_training_datalist, mrnet_validation_selection
from .byol_views import view_collate, view_transforms, working_spatial_size
from .cross_teaching import labeled_batch_size, unlabeled_batch_size
from .dermoscopy_preprocessing import dermoscopy_evaluation_transforms, dermoscopy_training_transforms
from .evaluation_loader import evaluation_loader
from .image_preprocessing import image_transforms, image_view_transforms
from .cluster_naming import (
    CLUSTER_NAMING_NOTE,
    ClusterNames,
    checked_cluster_map,
    cluster_map_file,
    model_fingerprint,
    name_clusters,
    read_cluster_map,
    resolve_cluster_map,
    write_cluster_map,
)
from .lesion_evaluation import lesion_evaluation_datalist, lesion_postprocessing
from .picie_preprocessing import picie_training_transforms
from .lesion_clusters import (
    cluster_mapping,
    cluster_report_entries,
    inference_cluster_map,
    lesion_cluster_names,
)
from .saliency_run import attach_masks, saliency_run
from .skin_lesion_preprocessing import skin_lesion_prepare_batch, skin_lesion_transforms, skin_lesion_view_transforms
from .pretraining import (
    PRETRAINING_METHODS,
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
from .fine_tuning_architecture import fine_tuning_architecture, pretrained_encoder_settings
from .lesion_networks import (
    lesion_model_file,
    lesion_network,
    lesion_network_name,
    lesion_outputs_clusters,
    lesion_selection_split,
    lesion_trained_by,
    served_architecture,
)
from .encoder_networks import byol_network, classifier_network
from .encoders import ENCODERS, encoder_features
from .volume_preprocessing import volume_transforms, volume_view_transforms

__all__ = [
    "fine_tuning_architecture",
    "MULTI_LABEL_VALUES",
    "THRESHOLD_MODES",
    "classification_task",
    "multi_label_setting",
    "require_single_label",
    "report_thresholds",
    "model_thresholds",
    "record_validation_thresholds",
    "mrnet_training_datalist",
    "mrnet_validation_selection",
    "validation_thresholds",
    "pretrained_encoder_settings",
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
    "ENCODERS",
    "CLASS_BALANCE_MODES",
    "class_balance",
    "class_balanced_sampler",
    "class_counts",
    "class_labels",
    "class_loss_weights",
    "attach_masks",
    "byol_network",
    "classifier_network",
    "dermoscopy_evaluation_transforms",
    "dermoscopy_training_transforms",
    "evaluation_loader",
    "image_transforms",
    "image_view_transforms",
    "labeled_batch_size",
    "lesion_model_file",
    "lesion_network",
    "lesion_network_name",
    "lesion_outputs_clusters",
    "lesion_selection_split",
    "lesion_evaluation_datalist",
    "lesion_postprocessing",
    "picie_training_transforms",
    "cluster_mapping",
    "cluster_report_entries",
    "inference_cluster_map",
    "lesion_cluster_names",
    "CLUSTER_NAMING_NOTE",
    "ClusterNames",
    "checked_cluster_map",
    "cluster_map_file",
    "model_fingerprint",
    "name_clusters",
    "read_cluster_map",
    "resolve_cluster_map",
    "write_cluster_map",
    "lesion_trained_by",
    "served_architecture",
    "saliency_run",
    "skin_lesion_prepare_batch",
    "skin_lesion_transforms",
    "skin_lesion_view_transforms",
    "encoder_features",
    "unlabeled_batch_size",
    "view_collate",
    "view_transforms",
    "volume_transforms",
    "volume_view_transforms",
    "working_spatial_size",
]
