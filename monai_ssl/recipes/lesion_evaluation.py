"""The postprocessing of a lesion segmentation's evaluation, shared by ``evaluate.json``, ``inference.json`` and the
validation inside training, so that the model chosen during training is chosen on the figure ``evaluate.json``
reports.

The network's logits at the working size become probabilities, are brought back to the image's original size
by inverting the preprocessing's resize (``Invertd``, bilinear on the probabilities), then become a label map
``(1, H, W)`` by arg-max. The true mask, loaded at the original size, moves to the evaluator's device so that
a metric gets both on one device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.transforms import Activationsd, AsDiscreted, Compose, EnsureTyped, Invertd

__all__ = ["lesion_postprocessing"]


def lesion_postprocessing(preprocessing: Compose, device: str | torch.device | None = None, labeled: bool = True,
                          writer: Callable | None = None) -> Compose:
    """Softmax, ``Invertd`` of ``preprocessing``, arg-max; then the label to ``device`` and/or ``writer``.

    Args:
        preprocessing: the evaluation chain the images went through
            (:func:`~monai_ssl.recipes.dermoscopy_evaluation_transforms`), the same object.
        device: the evaluator's device, for the true mask.
        labeled: the items have a true mask (``label``) to move to ``device``; inference has none.
        writer: a last transform, e.g. MONAI's ``SaveImaged`` of inference (MONAI Label leaves it out by type).
    """
    transforms: list[Callable] = [
        Activationsd(keys="pred", softmax=True),
        Invertd(keys="pred", transform=preprocessing, orig_keys="image", nearest_interp=False, to_tensor=True),
        AsDiscreted(keys="pred", argmax=True),
    ]
    if labeled:
        transforms.append(EnsureTyped(keys="label", device=device))
    if writer is not None:
        transforms.append(writer)
    return Compose(transforms)
