"""Datasets as MONAI datalists: MRNet knee MRI, class-folder images (OCT2017), MedMNIST, ISIC 2017 skin-lesion
segmentation, synthetic demos, labeled subsets, class balancing."""

from __future__ import annotations

from .classification import classification_datalist, image_datalist
from .folders import VOLUME_SUFFIXES, volume_datalist
from .image_folder import IMAGE_SUFFIXES, image_folder_datalist, validate_image_file
from .isic import ISIC_IMAGE_GLOB, ISIC_MASK_NAME, ISIC_SPLITS, segmentation_datalist, unlabeled_image_datalist
from .labeled_pool import require_unlabeled_pool, split_labeled_pool, unlabeled_stream_datalist
from .label_split import LabelBudgetError, split_labeled
from .medmnist import MEDMNIST_SPLITS, medmnist_class_count, medmnist_datalist
from .mrnet import (
    MRNET_PLANES,
    MRNET_SPLITS,
    MRNET_TASKS,
    mrnet_class_names,
    mrnet_datalist,
    mrnet_findings,
    mrnet_multi_label,
    read_mrnet_labels,
    validate_volume_file,
)
from .sampling import oversample_minority
from .synthetic import DEMO_MARKER, ensure_mrnet_demo, is_mrnet_demo, make_mrnet_demo
from .validation_split import check_selection_split, has_split, train_val_datalists
from .synthetic_oct import OCT_CLASSES, ensure_oct_demo, is_oct_demo, make_oct_demo
from .segmentation_splits import segmentation_splits, segmentation_unlabeled_stream
from .label_free import indexed_images, label_free_datalist
from .mrnet_splits import mrnet_splits
from .splits import OPTIMISTIC_NOTE, SelectionSplitError, SplitOverlapError, Splits, evaluation_split_note, reserved_ids
from .synthetic_isic import ensure_isic_demo, is_isic_demo, make_isic_demo
from .synthetic_common import dataset_or_demo, demo_or_dataset_value
from .label_csv import label_csv_datalist, read_label_csv
from .isic_classification import ISIC_CLASSES, isic2017_classification_datalists
from .class_folders import class_folder_datalists, stratified_splits
from .classification_layouts import CLASSIFICATION_LAYOUTS, classification_layout, skin_lesion_datalists
from .synthetic_skin_lesion import ensure_skin_lesion_demo, is_skin_lesion_demo, make_skin_lesion_demo

__all__ = [
    "CLASSIFICATION_LAYOUTS",
    "classification_layout",
    "skin_lesion_datalists",
    "DEMO_MARKER",
    "IMAGE_SUFFIXES",
    "ISIC_IMAGE_GLOB",
    "ISIC_MASK_NAME",
    "ISIC_SPLITS",
    "LabelBudgetError",
    "MEDMNIST_SPLITS",
    "MRNET_PLANES",
    "MRNET_SPLITS",
    "MRNET_TASKS",
    "OCT_CLASSES",
    "VOLUME_SUFFIXES",
    "check_selection_split",
    "classification_datalist",
    "ensure_isic_demo",
    "ensure_mrnet_demo",
    "ensure_oct_demo",
    "has_split",
    "image_datalist",
    "image_folder_datalist",
    "is_isic_demo",
    "is_mrnet_demo",
    "is_oct_demo",
    "make_isic_demo",
    "make_mrnet_demo",
    "make_oct_demo",
    "medmnist_class_count",
    "medmnist_datalist",
    "mrnet_class_names",
    "mrnet_datalist",
    "mrnet_findings",
    "mrnet_multi_label",
    "oversample_minority",
    "read_mrnet_labels",
    "require_unlabeled_pool",
    "segmentation_datalist",
    "dataset_or_demo",
    "demo_or_dataset_value",
    "segmentation_splits",
    "segmentation_unlabeled_stream",
    "indexed_images",
    "label_free_datalist",
    "mrnet_splits",
    "SelectionSplitError",
    "SplitOverlapError",
    "Splits",
    "reserved_ids",
    "evaluation_split_note",
    "OPTIMISTIC_NOTE",
    "split_labeled",
    "split_labeled_pool",
    "train_val_datalists",
    "unlabeled_image_datalist",
    "unlabeled_stream_datalist",
    "validate_image_file",
    "validate_volume_file",
    "volume_datalist",
    "label_csv_datalist",
    "read_label_csv",
    "ISIC_CLASSES",
    "isic2017_classification_datalists",
    "class_folder_datalists",
    "stratified_splits",
    "ensure_skin_lesion_demo",
    "is_skin_lesion_demo",
    "make_skin_lesion_demo",
]
