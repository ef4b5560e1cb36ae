"""Tests of SegmentationReportWriter on a real SupervisedEvaluator reading PNG files with MONAI's PILReader."""

from __future__ import annotations

import csv
import json
import logging
import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from PIL import Image

from monai_ssl.handlers import SegmentationReportWriter
from monai_ssl.visualize.outlines import OVERLAP_COLOR, PREDICTION_COLOR, TRUTH_COLOR

H, W = 24, 40  # a non-square file: 24 rows high, 40 columns wide
LESION, SKIN = 230, 30
# id: (lesion drawn in the image = what the network predicts, true mask), boxes (top, left, height, width)
CASES = {
    "ISIC_a": ((8, 4, 8, 16), (8, 4, 8, 16)),  # perfect: IoU = Dice = 1
    "ISIC_b": ((8, 4, 8, 16), (8, 12, 8, 16)),  # two 8 x 16 boxes overlapping by half: IoU 1/3, Dice 1/2
    "ISIC_c": (None, (4, 4, 6, 6)),  # missed lesion: 0, 0
    "ISIC_d": (None, None),  # nothing to find, nothing found: 1, 1 by convention
}
EXPECTED = {"ISIC_a": (1.0, 1.0), "ISIC_b": (1 / 3, 0.5), "ISIC_c": (0.0, 0.0), "ISIC_d": (1.0, 1.0)}
T975_DF3 = 3.182446  # Student t 0.975 quantile, 3 degrees of freedom (four images)


def _box_mask(box):
    mask = np.zeros((H, W), dtype=bool)
    if box is not None:
        top, left, height, width = box
        mask[top : top + height, left : left + width] = True
    return mask


def _write_files(folder):
    """PNG images (RGB) and masks (0/1), as dermoscopy JPEGs and their masks would be read."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for name, (lesion, truth) in CASES.items():
        rgb = np.full((H, W, 3), SKIN, np.uint8)
        rgb[_box_mask(lesion)] = LESION
        Image.fromarray(rgb).save(folder / f"{name}.png")
        Image.fromarray(_box_mask(truth).astype(np.uint8)).save(folder / f"{name}_segmentation.png")
        items.append({"image": str(folder / f"{name}.png"), "label": str(folder / f"{name}_segmentation.png")})
    return items


def _evaluator(tmp_path, onehot=False):
    """SupervisedEvaluator with a 1 x 1 convolution that predicts the lesion where the image is bright."""
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedEvaluator
    from monai.transforms import AsDiscreted, Compose, CopyItemsd, LoadImaged, ScaleIntensityd

    preprocessing = Compose(
        [
            LoadImaged(keys=["image", "label"], reader="PILReader", ensure_channel_first=True),  # (C, W, H)
            CopyItemsd(keys="image", names="image_original"),
            ScaleIntensityd(keys="image"),
        ]
    )
    net = torch.nn.Conv2d(3, 2, kernel_size=1)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        net.weight[1] = 1.0 / 3.0  # foreground logit: mean intensity - 0.5
        net.bias[1] = -0.5
    data = Dataset(_write_files(tmp_path / "data"), transform=preprocessing)
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=3),  # batches of 3 and 1 images
        network=net,
        postprocessing=AsDiscreted(keys="pred", argmax=True, to_onehot=2 if onehot else None),
    )


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("onehot", [False, True], ids=["label_map", "onehot"])
def test_report_of_a_supervised_evaluator(tmp_path, onehot, caplog):
    evaluator = _evaluator(tmp_path, onehot)
    out = tmp_path / "eval"
    extra = {"split": "test", "model": "model.pt"}
    SegmentationReportWriter(out, overwrite=False, num_cases=2, summary_extra=extra).attach(evaluator)
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        evaluator.run()
    assert sorted(p.name for p in out.iterdir()) == ["cases", "metrics.json", "per_image.csv"]

    rows = _read_csv(out / "per_image.csv")
    assert list(rows[0]) == ["id", "image_file", "iou", "dice", "truth_fraction", "pred_fraction"]
    assert [r["id"] for r in rows] == list(CASES)
    for row in rows:
        assert row["image_file"].endswith(f"{row['id']}.png")
        assert (float(row["iou"]), float(row["dice"])) == pytest.approx(EXPECTED[row["id"]])
        lesion, truth = CASES[row["id"]]
        assert float(row["truth_fraction"]) == pytest.approx(_box_mask(truth).mean())
        assert float(row["pred_fraction"]) == pytest.approx(_box_mask(lesion).mean())

    metrics = json.loads((out / "metrics.json").read_text())
    ious = np.array([EXPECTED[k][0] for k in CASES])
    dices = np.array([EXPECTED[k][1] for k in CASES])
    assert metrics["n_images"] == 4 and metrics["n_empty_truth"] == 1
    assert metrics["mean_iou"] == pytest.approx(ious.mean()) and metrics["median_iou"] == pytest.approx(2 / 3)
    assert metrics["mean_dice"] == pytest.approx(dices.mean()) and metrics["median_dice"] == pytest.approx(0.75)
    for key, values in (("iou_ci95", ious), ("dice_ci95", dices)):
        half = T975_DF3 * values.std(ddof=1) / math.sqrt(len(values))
        assert metrics[key] == pytest.approx([values.mean() - half, values.mean() + half], abs=1e-5)
    assert metrics["cases"]["worst"] == ["ISIC_c", "ISIC_b"]
    assert metrics["cases"]["best"] == ["ISIC_a", "ISIC_d"]  # tie on IoU and Dice: by id
    assert "green: truth" in metrics["cases"]["legend"] and "both empty scores IoU = Dice = 1" in metrics["empty_masks"]
    assert metrics["split"] == "test" and metrics["model"] == "model.pt"
    assert evaluator.state.metrics_report == metrics
    assert "mean_iou=0.5833" in caplog.text

    cases = out / "cases"
    names = ["best_01_ISIC_a.png", "best_02_ISIC_d.png", "worst_01_ISIC_c.png", "worst_02_ISIC_b.png"]
    assert sorted(p.name for p in cases.iterdir()) == names
    picture = Image.open(cases / "worst_02_ISIC_b.png")
    assert picture.size == (W, H) and picture.mode == "RGB"  # oriented like the file, not like PILReader's array
    pixels = np.asarray(picture)
    assert tuple(pixels[12, 12]) == TRUTH_COLOR  # left edge of the true box, inside the predicted one
    assert tuple(pixels[12, 27]) == TRUTH_COLOR  # right edge of the true box
    assert tuple(pixels[12, 19]) == PREDICTION_COLOR  # right edge of the predicted box
    assert tuple(pixels[8, 15]) == OVERLAP_COLOR  # the shared top edge
    assert tuple(pixels[20, 35]) == (SKIN,) * 3 and tuple(pixels[12, 8]) == (LESION,) * 3  # the original image
    missed = np.asarray(Image.open(cases / "worst_01_ISIC_c.png"))
    assert tuple(missed[4, 6]) == TRUTH_COLOR and not np.all(missed == PREDICTION_COLOR, axis=-1).any()


def test_existing_report_refused_unless_overwrite(tmp_path):
    out = tmp_path / "eval"
    SegmentationReportWriter(out, num_cases=1).attach(evaluator := _evaluator(tmp_path))
    evaluator.run()
    (out / "inference").mkdir()  # not part of the report: carried over when the report is replaced
    (out / "cases" / "worst_09_old.png").write_bytes(b"stale")
    SegmentationReportWriter(out, num_cases=1).attach(evaluator := _evaluator(tmp_path))
    evaluator.run()  # in place: pictures of an earlier report go
    assert sorted(p.name for p in (out / "cases").iterdir()) == ["best_01_ISIC_a.png", "worst_01_ISIC_c.png"]
    (out / "cases" / "worst_09_old.png").write_bytes(b"stale")

    with pytest.raises(FileExistsError, match=r"SegmentationReportWriter: .*eval already holds an evaluation"):
        SegmentationReportWriter(out, overwrite=False).attach(_evaluator(tmp_path))
    assert (out / "cases" / "worst_09_old.png").exists()

    evaluator = _evaluator(tmp_path)
    SegmentationReportWriter(out, overwrite=True, num_cases=1, summary_extra={"run": 2}).attach(evaluator)
    evaluator.run()
    evaluator.run()  # a later evaluation of the same run replaces its own report
    assert sorted(p.name for p in (out / "cases").iterdir()) == ["best_01_ISIC_a.png", "worst_01_ISIC_c.png"]
    assert (out / "inference").is_dir() and json.loads((out / "metrics.json").read_text())["run"] == 2
    with pytest.raises(ValueError, match="overwrite"):
        SegmentationReportWriter(out, overwrite="yes")
    with pytest.raises(ValueError, match=r"\['n_images'\]"):
        SegmentationReportWriter(out, summary_extra={"n_images": 3})
    with pytest.raises(ValueError, match="JSON-serialisable"):
        SegmentationReportWriter(out, summary_extra={"model": tmp_path})


def _engine_run(handler, outputs):
    engine = Engine(lambda engine, output: output)
    handler.attach(engine)
    engine.run([outputs], max_epochs=1)
    return engine


def test_hw_order_batched_output_and_bounded_memory(tmp_path):
    # a dict of batched tensors (decollate=False), arrays already (H, W), ids in the meta dict
    rng = np.random.default_rng(0)
    truth = torch.from_numpy(rng.random((6, 1, 10, 16)) > 0.5).float()
    pred = truth.clone()
    for i in range(6):
        pred[i, 0, : i + 1] = 1 - pred[i, 0, : i + 1]  # image i is wrong on its first i + 1 rows
    image = torch.rand(6, 3, 10, 16)
    files = [f"/data/ISIC_{i:07d}.jpg" for i in range(6)]
    output = {"pred": pred, "label": truth, "image": image, "image_meta_dict": {"filename_or_obj": files}}
    handler = SegmentationReportWriter(tmp_path / "eval", num_cases=2, spatial_order="HW")
    _engine_run(handler, output)
    rows = _read_csv(tmp_path / "eval" / "per_image.csv")
    assert [r["id"] for r in rows] == [f"ISIC_{i:07d}" for i in range(6)]
    ious = [float(r["iou"]) for r in rows]
    assert ious == sorted(ious, reverse=True)
    names = sorted(p.name for p in (tmp_path / "eval" / "cases").iterdir())
    best = ["best_01_ISIC_0000000.png", "best_02_ISIC_0000001.png"]
    assert names == best + ["worst_01_ISIC_0000005.png", "worst_02_ISIC_0000004.png"]
    assert Image.open(tmp_path / "eval" / "cases" / names[0]).size == (16, 10)  # HW kept as it is
    assert len(handler._worst) == len(handler._best) == 2  # only the kept cases hold a picture
    assert all(case.picture is None for case in handler._cases)


def test_explicit_ids_and_missing_keys(tmp_path):
    items = [{"pred": torch.ones(1, 4, 5), "label": torch.ones(1, 4, 5), "image": torch.rand(1, 4, 5), "id": "p1"}]
    _engine_run(SegmentationReportWriter(tmp_path / "a", num_cases=1), items)
    assert _read_csv(tmp_path / "a" / "per_image.csv")[0]["id"] == "p1"
    with pytest.raises(KeyError, match="key 'label' not in the output item"):
        _engine_run(SegmentationReportWriter(tmp_path / "b"), [{"pred": torch.ones(1, 4, 5)}])
    with pytest.raises(ValueError, match=r"'pred' \(4, 5\) and 'label' \(5, 4\) differ in size"):
        item = {"pred": torch.ones(1, 4, 5), "label": torch.ones(1, 5, 4)}
        _engine_run(SegmentationReportWriter(tmp_path / "c"), [item])


def test_distributed_gather_counts_a_padded_sample_once(tmp_path, monkeypatch):
    import monai_ssl.handlers.segmentation_report as module

    def item(name, wrong_rows):
        truth = torch.zeros(1, 8, 8)
        truth[0, 2:6, 2:6] = 1
        pred = truth.clone()
        pred[0, :wrong_rows] = 1
        return {"pred": pred, "label": truth, "image": torch.rand(1, 8, 8), "id": name}

    other_rank = SegmentationReportWriter(tmp_path / "unused", num_cases=1, spatial_order="HW")
    _engine_run(other_rank, [item("c", 3), item("a", 0)])  # "a" again: the sampler's padding
    from_other_rank = (other_rank._cases, other_rank._worst, other_rank._best)
    monkeypatch.setattr(module.idist, "get_world_size", lambda: 2)
    monkeypatch.setattr(module.idist, "all_gather", lambda own: [own, from_other_rank])
    engine = _engine_run(SegmentationReportWriter(tmp_path / "eval", num_cases=1), [item("a", 0), item("b", 1)])
    assert [r["id"] for r in _read_csv(tmp_path / "eval" / "per_image.csv")] == ["a", "b", "c"]
    cases = engine.state.metrics_report["cases"]
    assert (cases["worst"], cases["best"]) == (["c"], ["a"])
    assert sorted(p.name for p in (tmp_path / "eval" / "cases").iterdir()) == ["best_01_a.png", "worst_01_c.png"]
