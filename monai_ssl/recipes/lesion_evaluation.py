"""The postprocessing of a lesion segmentation's evaluation, shared by ``evaluate.json``, ``inference.json`` and the
validation inside training, so that the model chosen during training is chosen on the figure ``evaluate.json``
reports.

The network's logits at the working size become probabilities, are brought back to the image's original size
by inverting the preprocessing's resize (``Invertd``, bilinear on the probabilities), then become a label map
``(1, H, W)`` by arg-max. The true mask, loaded at the original size, moves to the evaluator's device so that
a metric gets both on one device.

For a network whose channels are clusters (PiCIE), ``cluster_map`` renames the arg-max's cluster values to
class values (MONAI's ``MapLabelValued``, on the prediction's device) before anything reads the prediction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import torch
from monai.transforms import Activationsd, AsDiscreted, Compose, EnsureTyped, Invertd, MapLabelValued

from .cluster_naming import checked_cluster_map
from .lesion_networks import lesion_outputs_clusters

__all__ = ["lesion_evaluation_datalist", "lesion_postprocessing"]


def lesion_postprocessing(preprocessing: Compose, device: str | torch.device | None = None, labeled: bool = True,
                          writer: Callable | None = None, cluster_map: Sequence[int] | None = None) -> Compose:
    """Softmax, ``Invertd`` of ``preprocessing``, arg-max; then the label to ``device`` and/or ``writer``.

    Args:
        preprocessing: the evaluation chain the images went through
            (:func:`~monai_ssl.recipes.dermoscopy_evaluation_transforms`), the same object.
        device: the evaluator's device, for the true mask.
        labeled: the items have a true mask (``label``) to move to ``device``; inference has none.
        writer: a last transform, e.g. MONAI's ``SaveImaged`` of inference (MONAI Label leaves it out by type).
        cluster_map: for a network that outputs clusters (PiCIE), the class of each cluster
            (:func:`~monai_ssl.recipes.resolve_cluster_map`); applied right after the arg-max. ``None``: the
            network outputs classes and the chain is unchanged.

    Raises:
        ValueError: ``cluster_map`` is not a non-empty list of whole numbers >= 0.
    """
    transforms: list[Callable] = [
        Activationsd(keys="pred", softmax=True),
        Invertd(keys="pred", transform=preprocessing, orig_keys="image", nearest_interp=False, to_tensor=True),
        AsDiscreted(keys="pred", argmax=True),
    ]
    if cluster_map is not None:
        mapping = checked_cluster_map(cluster_map)
        transforms.append(MapLabelValued(keys="pred", orig_labels=list(range(len(mapping))), target_labels=mapping,
                                         dtype=torch.float32))  # a torch dtype keeps the map on the prediction's device
    if labeled:
        transforms.append(EnsureTyped(keys="label", device=device))
    if writer is not None:
        transforms.append(writer)
    return Compose(transforms)


def lesion_evaluation_datalist(data_root: str | os.PathLike, split: str, architecture: str = "cross_teaching",
                               image_glob: str = "ISIC_*.jpg", mask_name: str = "{stem}_segmentation.png") -> list[dict]:
    """The image/mask pairs ``evaluate.json`` reports on (:func:`~monai_ssl.data.segmentation_datalist`).

    Raises:
        FileNotFoundError: the split's masks are missing; the message says what needs them (the report's scores,
            and for a cluster architecture such as PiCIE the Hungarian match that names its clusters) and that
            inference needs none. Other errors of the datalist pass unchanged.
        ValueError: an image of the split has no mask (the same message).
    """
    from monai_ssl.data import segmentation_datalist

    try:
        return segmentation_datalist(data_root, split, image_glob=image_glob, mask_name=mask_name)
    except (FileNotFoundError, ValueError) as err:
        if "mask" not in str(err).lower() and "ground-truth" not in str(err).lower():
            raise
        needs = ("names its clusters with the masks (the Hungarian match) and scores them"
                 if lesion_outputs_clusters(architecture) else "scores the predictions against the masks")
        found = re.sub(r" \(pass require_masks=False[^)]*\)", "", str(err))  # a hint for another caller
        raise type(err)(f"evaluate.json on split {split!r} {needs}, and the masks are missing: {found}. Images without "
                        "masks can be segmented with inference.json.") from err
