from __future__ import annotations

import torch
from ignite.metrics import Accuracy

from monai_ssl.metrics import class_scores_and_indices


def test_decollated_and_batched_outputs_give_multiclass_accuracy():
    preds = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 1, 1, 2])
    decollated = [{"pred": p, "label": torch.tensor([int(l)])} for p, l in zip(preds, labels)]
    for output in (decollated, {"pred": preds, "label": labels.view(-1, 1)}):
        scores, indices = class_scores_and_indices(output)
        assert scores.shape == (4, 3) and indices.tolist() == [0, 1, 1, 2]
        metric = Accuracy()
        metric.update((scores, indices))
        assert metric.compute() == 0.5  # 2 of 4 right; per-channel one-hot accuracy would say 0.67


def test_python_number_labels_follow_the_scores_device():
    # MONAI decollates a scalar label into a Python int; on a GPU run the scores are on cuda and
    # the labels must follow them ("meta" stands for a device other than the CPU here)
    scores = torch.rand(3, 4, device="meta")
    decollated = [{"pred": p, "label": label} for p, label in zip(scores, [1, 2, 3])]
    for output in (decollated, {"pred": scores, "label": [1, 2, 3]}):
        _, indices = class_scores_and_indices(output)
        assert indices.device == scores.device and indices.shape == (3,)
