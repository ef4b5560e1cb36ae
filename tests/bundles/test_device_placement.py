"""Device placement of the bundles' validation and evaluation outputs, checked without a GPU.

On a GPU an evaluator's predictions are on ``cuda``; a label that a postprocessing transform or a
metric's ``output_transform`` turns into a new tensor without a device lands on the CPU, and the
metric fails (this broke every OCT fine-tuning run on an H100: MONAI's ``decollate_batch(detach=True)``
turns the 0-d class labels into Python ints). CPU-only CI cannot see that, as everything is on the
CPU there. These tests build each config's postprocessing and metrics with ``device`` set to the
``meta`` device instead, feed them per-sample outputs exactly as MONAI's ``SupervisedEvaluator``
hands them over (predictions on the device, labels decollated), and require every tensor the
metrics receive to be on ``meta``: a tensor made on the CPU stands out as it would next to ``cuda``.
The ISIC evaluation configs invert their resizing (``Invertd``) to score each mask at its image's
size; their outputs come from the config's own preprocessing (after the file loader) applied to
random arrays. No file is read and no network is built.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor, decollate_batch, list_data_collate
from monai.engines.utils import engine_apply_transform
from monai.transforms import Compose, EnsureTyped

from bundle_helpers import BYOLMED2D, ISIC, OCT

DEVICE = "$torch.device('meta')"

# labels as the datasets give them: OCT class indices (ints), MRNet one float per exam in a (1,) array
OCT_LABELS: list[Any] = [0, 3, 1]
MRNET_LABELS: list[Any] = [np.array([1.0], dtype=np.float32), np.array([0.0], dtype=np.float32),
                           np.array([1.0], dtype=np.float32)]
OCT_OVERRIDES = {"num_classes": 4}  # data-dependent in the config (the class folders)


def evaluator_outputs(labels: Sequence[Any] | None, num_outputs: int | Sequence[int]) -> list[dict[str, Any]]:
    """Per-sample outputs as a ``SupervisedEvaluator`` passes them to its postprocessing, on ``meta``.

    The labels go through the preprocessing's last step (``EnsureTyped``) and the ``DataLoader``'s
    collation; the evaluator moves the batch to its device and decollates ``{"label", "pred"}`` with
    ``detach=True``, which turns 0-d tensors into Python numbers. That decollation is done here on
    the CPU, then the tensors are moved to ``meta`` (Python numbers stay numbers, as on a GPU).

    Args:
        labels: one dataset label per sample; ``None`` for unlabeled data (inference).
        num_outputs: size of the network's output per sample, or its shape (``(channels, H, W)`` for segmentation).
    """
    count = len(labels) if labels is not None else 2
    shape = (num_outputs,) if isinstance(num_outputs, int) else tuple(num_outputs)
    batch: dict[str, Any] = {"pred": torch.randn(count, *shape)}
    if labels is not None:
        items = [EnsureTyped(keys="label", track_meta=False)({"label": label}) for label in labels]
        batch["label"] = list_data_collate(items)["label"]
    decollated = decollate_batch(batch, detach=True)
    return [{k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in d.items()} for d in decollated]


def _leaves(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` of every non-container value in nested tuples, lists and dicts."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{where}[{i}]")
    else:
        yield where, value


def _parser(config_files: Sequence[Path], overrides: Mapping[str, Any]) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(f) for f in config_files])  # merged as `monai.bundle run --config_file [...]` does
    parser["device"] = DEVICE
    for key, value in overrides.items():
        parser[key] = value
    return parser


def misplaced_metric_inputs(
    config_files: Sequence[Path],
    labels: Sequence[Any],
    num_outputs: int,
    overrides: Mapping[str, Any] | None = None,
    section: str = "validate",
) -> list[str]:
    """What the metrics of ``section`` would receive off the evaluator's device; empty when all is placed right.

    Builds ``{section}#postprocessing``, ``{section}#key_metric`` and ``{section}#additional_metrics``
    with ``device`` on ``meta``, applies the postprocessing to :func:`evaluator_outputs` and runs each
    metric's ``output_transform`` on the result. Every value the metrics get must be a tensor on
    ``meta``: a tensor elsewhere, or a Python number (a metric would make a CPU tensor of it), is reported.
    """
    parser = _parser(config_files, overrides or {})
    postprocessing = parser.get_parsed_content(f"{section}#postprocessing")
    metrics: dict[str, Any] = {}
    for group in ("key_metric", "additional_metrics"):
        if f"{section}#{group}" in parser:
            metrics.update(parser.get_parsed_content(f"{section}#{group}"))
    assert metrics, f"{section} of {config_files} has no metrics"
    outputs = [postprocessing(o) for o in evaluator_outputs(labels, num_outputs)]
    problems = []
    for name, metric in metrics.items():
        for where, value in _leaves(metric._output_transform(outputs), name):
            if not isinstance(value, torch.Tensor):
                problems.append(f"{where} is of type {type(value).__name__}, not a tensor on the evaluator's device")
            elif value.device.type != "meta":
                problems.append(f"{where} is on {value.device}, not on the evaluator's device")
    return problems


def misplaced_postprocessed_tensors(
    config_files: Sequence[Path], labels: Sequence[Any] | None, num_outputs: int
) -> list[str]:
    """Tensors that an evaluate/inference config's ``postprocessing`` moves off the device.

    These configs have no Ignite metric: ``ClassificationReportWriter`` moves what it gets to the CPU
    itself (Python-number labels included), so only the tensors must stay where the evaluator put them.
    """
    postprocessing = _parser(config_files, {}).get_parsed_content("postprocessing")
    problems = []
    for i, output in enumerate(evaluator_outputs(labels, num_outputs)):
        result = postprocessing(output)
        assert "pred" in result
        for where, value in _leaves(result, f"sample {i}"):
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                problems.append(f"{where} is on {value.device}, not on the evaluator's device")
    return problems


def inverted_evaluator_outputs(
    preprocessing: Compose, labeled: bool, channels: int, size: tuple[int, int] = (40, 30)
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(batch item, output item)`` pairs of a segmentation evaluator whose postprocessing inverts its preprocessing.

    Two images of ``size`` (as the loader gives them, with a mask when ``labeled``) go through
    ``preprocessing`` after its first transform (the file loader; the same transform objects, so
    ``Invertd`` finds their records) and the ``DataLoader``'s collation on the CPU. The evaluator
    moves the image and label to its device (``meta``), the prediction has the network input's
    transform record (as ``SlidingWindowInferer`` gives it), and batch and output are decollated.
    """
    rng = np.random.default_rng(0)
    items = []
    for index in range(2):
        image = torch.as_tensor(rng.integers(0, 256, (3, *size)), dtype=torch.float32)
        item: dict[str, Any] = {"image": MetaTensor(image, meta={"filename_or_obj": f"case{index}.jpg"})}
        if labeled:
            item["label"] = MetaTensor(torch.as_tensor(rng.integers(0, 2, (1, *size)) * 255.0, dtype=torch.float32))
        items.append(Compose(preprocessing.transforms[1:])(item))
    batch = list_data_collate(items)
    inputs = batch["image"].to("meta")
    pred = MetaTensor(torch.randn(inputs.shape[0], channels, *inputs.shape[2:], device="meta"))
    pred.copy_meta_from(inputs)
    output = {"image": inputs, "pred": pred, **({"label": batch["label"].to("meta")} if labeled else {})}
    return list(zip(decollate_batch(batch, detach=True), decollate_batch(output, detach=True)))


def misplaced_inverted_tensors(
    config_files: Sequence[Path],
    labeled: bool,
    channels: int,
    overrides: Mapping[str, Any] | None = None,
    section: str = "",
) -> list[str]:
    """Tensors that a segmentation config's ``postprocessing`` (and metrics) put off the device.

    The postprocessing of ``section`` (``""``: evaluate/inference; ``"validate"``: the validation inside
    training) sees each output item merged over its batch item (MONAI's ``engine_apply_transform``); the
    output's tensors must stay on ``meta``, and so must every value the section's metrics get from their
    ``output_transform``. ``SaveImaged`` is left out: it writes files, and moves what it writes to the CPU
    itself. The prediction must come back at the loaded image's size.
    """
    prefix = f"{section}#" if section else ""
    parser = _parser(config_files, overrides or {})
    transforms = parser.get_parsed_content(f"{prefix}postprocessing").transforms
    postprocessing = Compose([t for t in transforms if type(t).__name__ != "SaveImaged"])
    metrics: dict[str, Any] = {}
    for group in ("key_metric", "additional_metrics"):
        if f"{prefix}{group}" in parser:
            metrics.update(parser.get_parsed_content(f"{prefix}{group}"))
    problems = []
    outputs = inverted_evaluator_outputs(parser.get_parsed_content(f"{prefix}preprocessing"), labeled, channels)
    for i, (batch, output) in enumerate(outputs):
        _, result = engine_apply_transform(batch, output, postprocessing)
        assert result["pred"].shape == (1, 40, 30), result["pred"].shape  # inverted to the original size
        leaves = list(_leaves(result, f"sample {i}"))
        for name, metric in metrics.items():
            leaves += list(_leaves(metric._output_transform([result]), f"{name} of sample {i}"))
        for where, value in leaves:
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                problems.append(f"{where} is on {value.device}, not on the evaluator's device")
    return problems


def test_decollated_labels_are_what_the_bundles_get():
    """The premise: OCT labels reach the postprocessing as Python ints, MRNet labels as (1,) tensors."""
    oct_outputs = evaluator_outputs(OCT_LABELS, 4)
    assert [o["label"] for o in oct_outputs] == OCT_LABELS and all(type(o["label"]) is int for o in oct_outputs)
    mrnet_outputs = evaluator_outputs(MRNET_LABELS, 1)
    assert all(o["label"].shape == (1,) and o["label"].device.type == "meta" for o in mrnet_outputs)
    assert all(o["pred"].device.type == "meta" for o in oct_outputs + mrnet_outputs)


@pytest.mark.parametrize(
    "overlays", [(), ("pseudolabel",), ("linear_probe",), ("few_shot",), ("supervised",)],
    ids=["finetune", "pseudolabel", "linear_probe", "few_shot", "supervised"],
)
def test_oct_validation_metrics_get_tensors_on_the_device(overlays):
    configs = [OCT / "finetune.json", *(OCT / f"{o}.json" for o in overlays)]
    assert misplaced_metric_inputs(configs, OCT_LABELS, 4, OCT_OVERRIDES) == []


def test_byolmed2d_validation_metrics_get_tensors_on_the_device():
    assert misplaced_metric_inputs([BYOLMED2D / "finetune.json"], MRNET_LABELS, 1) == []


@pytest.mark.parametrize(
    "configs", [pytest.param(["train.json"], id="cross_teaching"), pytest.param(["train.json", "supervised_train.json"], id="supervised")]
)
def test_isic_validation_metrics_get_tensors_on_the_device(configs):
    """Validation scores the served network's 2-channel logits as evaluate.json does: resize undone, IoU and Dice."""
    assert misplaced_inverted_tensors([ISIC / c for c in configs], True, 2, section="validate") == []


# evaluate.json names a cluster architecture's clusters (a pass of the trained model over the split) before it
# builds the postprocessing; a class architecture names none, which is what these checks set
NO_CLUSTERS = {"cluster_names": None}
# PiCIE's postprocessing: cluster 0 is the lesion, cluster 1 the background
SWAPPED_CLUSTERS = {"cluster_names": "$monai_ssl.recipes.ClusterNames(mapping=[1, 0], confusion=[[0, 5], [5, 0]], "
                                     "pixel_accuracy=1.0)"}


@pytest.mark.parametrize(("config", "labeled", "overrides"),
                         [("evaluate.json", True, NO_CLUSTERS), ("evaluate.json", True, SWAPPED_CLUSTERS),
                          ("inference.json", False, {}), ("inference.json", False, {"architecture": "picie",
                                                                                     "cluster_map": [1, 0]})],
                         ids=["isic-evaluate", "isic-evaluate-picie-map", "isic-inference", "isic-inference-picie-map"])
def test_isic_evaluation_postprocessing_keeps_tensors_on_the_device(config, labeled, overrides):
    assert misplaced_inverted_tensors([ISIC / config], labeled, 2, overrides) == []


def test_the_segmentation_check_flags_a_prediction_made_anew_without_a_device():
    moved = {"_target_": "Lambdad", "keys": "pred", "func": "$lambda pred: torch.zeros(pred.shape)"}
    recipe = json.loads((ISIC / "evaluate.json").read_text())["postprocessing"]
    overrides = {"lesion_postprocessing": recipe, "postprocessing": {"_target_": "Compose", "transforms": ["@lesion_postprocessing", moved]},
                 **NO_CLUSTERS}
    problems = misplaced_inverted_tensors([ISIC / "evaluate.json"], True, 2, overrides)
    assert problems == [f"sample {i}['pred'] is on cpu, not on the evaluator's device" for i in range(2)]


@pytest.mark.parametrize(
    ("config", "labels", "num_outputs"),
    [
        pytest.param(OCT / "evaluate.json", OCT_LABELS, 4, id="oct-evaluate"),
        pytest.param(OCT / "inference.json", None, 4, id="oct-inference"),
        pytest.param(BYOLMED2D / "evaluate.json", MRNET_LABELS, 1, id="byolmed2d-evaluate"),
        pytest.param(BYOLMED2D / "inference.json", None, 1, id="byolmed2d-inference"),
    ],
)
def test_evaluation_postprocessing_keeps_tensors_on_the_device(config, labels, num_outputs):
    assert misplaced_postprocessed_tensors([config], labels, num_outputs) == []


def test_the_check_flags_oct_finetune_without_the_label_device_fix(tmp_path):
    """Without moving the label to ``@device`` (``classification_task``'s ``EnsureTyped``) the ROC AUC labels are
    made on the CPU."""
    config = json.loads((OCT / "finetune.json").read_text())
    assert config["validate"]["postprocessing"] == "$@task['val_postprocessing']"
    config["validate"]["postprocessing"] = {"_target_": "Compose", "transforms": [  # the task's, without the fix
        {"_target_": "Activationsd", "keys": "pred", "softmax": True},
        {"_target_": "CopyItemsd", "keys": "label", "names": "label_onehot"},
        {"_target_": "AsDiscreted", "keys": "label_onehot", "to_onehot": "@num_classes"},
    ]}
    (tmp_path / "finetune.json").write_text(json.dumps(config))

    problems = misplaced_metric_inputs([tmp_path / "finetune.json"], OCT_LABELS, 4, OCT_OVERRIDES)
    # every one-hot label of val_auc is a CPU tensor; val_accuracy's and val_macro_recall's class_scores_and_indices
    # cope on their own
    assert len(problems) == len(OCT_LABELS), problems
    assert all(p.startswith("val_auc[1]") and "on cpu" in p for p in problems), problems


def test_the_check_flags_a_metric_that_gets_python_numbers(tmp_path):
    """A metric fed the decollated Python-int labels directly is reported too."""
    overrides = {
        **OCT_OVERRIDES,
        "validate#postprocessing": {"_target_": "Activationsd", "keys": "pred", "softmax": True},
        "validate#additional_metrics": {"val_auc": {"_target_": "ROCAUC",
                                                    "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"}},
    }
    problems = misplaced_metric_inputs([OCT / "finetune.json"], OCT_LABELS, 4, overrides)
    assert problems == [f"val_auc[1][{i}] is of type int, not a tensor on the evaluator's device" for i in range(3)]
