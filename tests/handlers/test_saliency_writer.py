from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd
from PIL import Image
from torch import nn

from monai_ssl.handlers import ClassificationReportWriter, SaliencyWriter, resolve_saliency_method
from monai_ssl.metrics import mean_ci95
from monai_ssl.metrics.saliency_overlap import wilson_interval95
from monai_ssl.recipes import classifier_network
from monai_ssl.visualize import confidence_extremes


def _squares(n: int = 8, size: int = 32) -> list[dict]:
    """Images with a bright 8x8 square at a varying place, its mask, a label and an id."""
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        image = torch.rand(1, size, size, generator=g) * 0.2
        mask = torch.zeros(1, size, size)
        r, c = 2 + 3 * (i % 4), 4 + 2 * (i // 4)
        image[:, r : r + 8, c : c + 8] += 0.8
        mask[:, r : r + 8, c : c + 8] = 1
        items.append({"image": image, "mask": mask, "label": torch.tensor(i % 2), "id": f"img{i}"})
    return items


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return classifier_network("resnet18", in_channels=1, out_channels=2, small_images=True, image_size=32).eval()


def _evaluator(network: nn.Module, items: list[dict], handlers: list, batch_size: int = 4,
               device: str = "cpu") -> SupervisedEvaluator:
    loader = DataLoader(Dataset(items), batch_size=batch_size, num_workers=0)
    return SupervisedEvaluator(
        device=torch.device(device), val_data_loader=loader, network=network,
        postprocessing=Activationsd(keys="pred", softmax=True), val_handlers=handlers,
    )


def test_extremes_json_metrics_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    items, net = _squares(), _resnet()
    out = tmp_path / "eval"
    tb = SummaryWriter(log_dir=str(tmp_path / "tb"))
    report = ClassificationReportWriter(output_dir=out, class_names=["no", "yes"], overwrite=False)
    writer = SaliencyWriter(out, net, num_images=2, class_names=["no", "yes"], summary_writer=tb)
    assert writer.method == "gradcam"
    _evaluator(net, items, [report, writer]).run()
    tb.close()

    with torch.no_grad():
        probs = torch.softmax(net(torch.stack([it["image"] for it in items])), dim=1)
    most, least = confidence_extremes(probs, 2)
    expected = {f"{r + 1}_most_confident_img{i}.png" for r, i in enumerate(most)}
    expected |= {f"{r + 1}_least_confident_img{i}.png" for r, i in enumerate(least)}
    folder = out / "saliency"
    assert {p.name for p in folder.glob("*.png")} == expected
    assert Image.open(sorted(folder.glob("*.png"))[0]).size == (960, 480)

    saved = json.loads((folder / "saliency.json").read_text())
    assert saved["method"] == "gradcam" and len(saved["images"]) == 4
    assert saved["images"][0]["why"] == "most confident #1" and saved["images"][0]["label"] in ("no", "yes")
    measured = saved["measured"]
    assert measured["n"] == 8 and measured["n_without_object"] == 0
    shares = [p["in_mask_share"] for p in measured["per_image"]]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert measured["in_mask_share_mean"] == pytest.approx(np.mean(shares))
    lo, hi = measured["in_mask_share_ci"]
    assert 0.0 <= lo <= measured["in_mask_share_mean"] <= hi <= 1.0
    assert 0.0 <= measured["pointing_game_hit_rate"] <= 1.0
    assert all(math.isfinite(p["in_mask_share"]) for p in saved["images"])

    metrics = json.loads((out / "metrics.json").read_text())
    assert "macro_recall" in metrics or "accuracy" in metrics  # the report is still there
    assert metrics["saliency"]["n"] == 8
    assert metrics["saliency"]["in_mask_share_mean"] == pytest.approx(measured["in_mask_share_mean"])
    assert set(metrics["saliency"]) == {"method", "in_mask_share_mean", "in_mask_share_ci", "pointing_game_hit_rate",
                                        "pointing_game_ci", "n"}

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert "saliency/examples" in events.Tags()["images"]


class _Linear(nn.Module):
    """Logits of an 8x8 image: class 1 weighs a 2x2 block by 1 and four other pixels by 0.5 (bias +10)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 2)
        w = torch.zeros(2, 8, 8)
        w[1, 1:3, 1:3] = 1.0
        w[1, 5:7, 5:7] = 0.5
        with torch.no_grad():
            self.linear.weight.copy_(w.reshape(2, 64))
            self.linear.bias.copy_(torch.tensor([0.0, 10.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def test_in_mask_share_on_a_hand_made_case(tmp_path):
    # gradient saliency of a linear model is |w| of the predicted class (1), min-max scaled: 1 on the block,
    # 0.5 on the four other pixels. Mask on the block: share 4 / (4 + 4 * 0.5) = 2/3, a hit; mask on the
    # other pixels: share 2 / 6 = 1/3, a miss.
    m1, m2 = torch.zeros(1, 8, 8), torch.zeros(1, 8, 8)
    m1[:, 1:3, 1:3] = 1
    m2[:, 5:7, 5:7] = 1
    items = [{"image": torch.rand(1, 8, 8), "mask": m, "id": f"case{k}", "label": torch.tensor(1)} for k, m in enumerate([m1, m2])]
    net = _Linear()
    assert resolve_saliency_method(net) == "gradient"
    writer = SaliencyWriter(tmp_path, net, num_images=1)
    _evaluator(net, items, [writer], batch_size=2).run()
    measured = json.loads((tmp_path / "saliency" / "saliency.json").read_text())["measured"]
    assert [p["in_mask_share"] for p in measured["per_image"]] == pytest.approx([2 / 3, 1 / 3])
    assert [p["pointing_game_hit"] for p in measured["per_image"]] == [True, False]
    assert measured["in_mask_share_mean"] == pytest.approx(0.5)
    half = mean_ci95([2 / 3, 1 / 3])[1]  # 12.706 * 0.2357 / sqrt(2) = 2.118: clipped to [0, 1]
    assert half == pytest.approx(12.706205 * (math.sqrt(2) / 6) / math.sqrt(2))
    assert measured["in_mask_share_ci"] == [0.0, 1.0]
    assert measured["pointing_game_hit_rate"] == 0.5
    assert measured["pointing_game_ci"] == pytest.approx(list(wilson_interval95(1, 2)))
    assert not (tmp_path / "metrics.json").exists()  # no report: saliency.json only


def test_given_ids_unknown_ids_and_id_fallback(tmp_path):
    net, items = _Linear(), [{"image": torch.rand(1, 8, 8), "id": f"a{k}"} for k in range(3)]
    writer = SaliencyWriter(tmp_path / "ok", net, image_ids=["a2", "a0"])
    _evaluator(net, items, [writer]).run()
    assert sorted(p.name for p in (tmp_path / "ok" / "saliency").glob("*.png")) == ["1_given_a2.png", "2_given_a0.png"]
    saved = json.loads((tmp_path / "ok" / "saliency" / "saliency.json").read_text())
    assert saved["measured"] is None and [i["why"] for i in saved["images"]] == ["given id", "given id"]

    with pytest.raises(ValueError, match=r"`class_names` has 3 names .* predictions are of 2 classes"):
        _evaluator(net, items, [SaliencyWriter(tmp_path / "names", net, num_images=1, class_names=["x", "y", "z"])]).run()

    writer = SaliencyWriter(tmp_path / "bad", net, image_ids=["a1", "zz9", "qq"])
    with pytest.raises(ValueError, match=r"image_ids \['zz9', 'qq'\] were not among the 3 evaluated images"):
        _evaluator(net, items, [writer]).run()

    image = MetaTensor(torch.zeros(1, 8, 8), meta={"filename_or_obj": "/data/ISIC_0000001.jpg"})
    assert writer._id({"image": image}, image, 5) == "ISIC_0000001.jpg"
    assert writer._id({"image": torch.zeros(1)}, torch.zeros(1), 5) == "5"


def test_overwrite_refused_then_replaced(tmp_path):
    # class-1 logit 10 (a0, zeros) and 10 + 4 + 2 (a1, ones): a1 is the more confident
    net, items = _Linear(), [{"image": torch.full((1, 8, 8), float(k)), "id": f"a{k}"} for k in range(2)]
    (tmp_path / "saliency").mkdir()
    (tmp_path / "saliency" / "old.png").write_bytes(b"x")
    evaluator = _evaluator(net, items, [])
    with pytest.raises(FileExistsError, match=r"already holds saliency maps.*--output_dir <new folder>.*--overwrite True"):
        SaliencyWriter(tmp_path, net).attach(evaluator)
    SaliencyWriter(tmp_path, net, overwrite=True, num_images=1).attach(evaluator)
    evaluator.run()
    assert sorted(p.name for p in (tmp_path / "saliency").iterdir()) == [
        "1_least_confident_a0.png", "1_most_confident_a1.png", "saliency.json"]
    evaluator.run()  # a second run of the same handler replaces its own folder
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_settings():
    net = _Linear()
    with pytest.raises(ValueError, match="`num_images` must be an integer >= 1 or None"):
        SaliencyWriter(".", net, num_images=0)
    with pytest.raises(ValueError, match="only 'gradient' saliency is computed on volumes"):
        SaliencyWriter(".", net, method="gradcam", slice_axis=2)
    with pytest.raises(ValueError, match="`measure` must be 'auto', True or False"):
        SaliencyWriter(".", net, measure="yes")
    with pytest.raises(ValueError, match="must be a list of names"):
        SaliencyWriter(".", net, class_names="abc")


def test_measure_true_needs_masks_and_probabilities_needed(tmp_path):
    net, items = _Linear(), [{"image": torch.rand(1, 8, 8), "id": "a"}]
    with pytest.raises(ValueError, match="measure=True needs a mask under key 'mask'"):
        _evaluator(net, items, [SaliencyWriter(tmp_path / "a", net, measure=True)]).run()
    loader = DataLoader(Dataset(items), batch_size=1)
    evaluator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=loader, network=net,
                                    val_handlers=[SaliencyWriter(tmp_path / "b", net)])
    with pytest.raises(ValueError, match="must hold probabilities in \\[0, 1\\]"):
        evaluator.run()  # logits (bias 10), no softmax in postprocessing


def test_volume_path(tmp_path):
    torch.manual_seed(0)
    net = classifier_network("slice_resnet18", in_channels=1, out_channels=2, small_images=True, image_size=16).eval()
    assert resolve_saliency_method(net, slice_axis=2) == "gradient"
    items = []
    for k in range(2):
        volume, mask = torch.rand(1, 10, 16, 16) * 0.2, torch.zeros(1, 10, 16, 16)
        volume[:, 3 + k, 4:10, 4:10] += 1.0
        mask[:, 3 + k, 4:10, 4:10] = 1
        items.append({"image": volume, "mask": mask, "id": f"vol{k}", "label": torch.tensor(k)})
    writer = SaliencyWriter(tmp_path, net, num_images=1, slice_axis=2)
    _evaluator(net, items, [writer], batch_size=2).run()
    pngs = sorted((tmp_path / "saliency").glob("*.png"))
    assert len(pngs) == 2
    assert Image.open(pngs[0]).size[0] == 8 * 2 * 120  # the 8 most salient of 10 slices, 2 inches each
    measured = json.loads((tmp_path / "saliency" / "saliency.json").read_text())["measured"]
    assert measured["n"] == 2 and all(0.0 <= p["in_mask_share"] <= 1.0 for p in measured["per_image"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda(tmp_path):
    net = _resnet().cuda()
    report = ClassificationReportWriter(output_dir=tmp_path, overwrite=False)
    _evaluator(net, _squares(), [report, SaliencyWriter(tmp_path, net, num_images=1)], device="cuda").run()
    measured = json.loads((tmp_path / "saliency" / "saliency.json").read_text())["measured"]
    assert measured["n"] == 8 and 0.0 <= measured["in_mask_share_mean"] <= 1.0
    assert json.loads((tmp_path / "metrics.json").read_text())["saliency"]["n"] == 8


def test_multi_label_explains_the_most_probable_label(tmp_path):
    torch.manual_seed(0)
    net = classifier_network("resnet18", in_channels=1, out_channels=3, small_images=True, image_size=32).eval()
    items = _squares(4)
    for k, item in enumerate(items):
        item["label"] = torch.tensor([1.0, 0.0, float(k % 2)])
    loader = DataLoader(Dataset(items), batch_size=4)
    evaluator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=loader, network=net,
                                    postprocessing=Activationsd(keys="pred", sigmoid=True),
                                    val_handlers=[SaliencyWriter(tmp_path, net, image_ids=["img1"], class_names=["a", "b", "c"])])
    evaluator.run()
    with torch.no_grad():
        probs = torch.sigmoid(net(items[1]["image"][None]))[0]
    record = json.loads((tmp_path / "saliency" / "saliency.json").read_text())["images"][0]
    assert record["predicted"] == "abc"[int(probs.argmax())]
    assert record["probability"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert record["label"] == "a+c"


def test_the_pictures_show_the_display_image_not_the_network_input(tmp_path, monkeypatch):
    """``display_key``: the figure gets the item's uint8 picture (as a person sees it), the map the network's input."""
    import monai_ssl.handlers.saliency_writer as module

    drawn = []
    real = module.saliency_figure
    monkeypatch.setattr(module, "saliency_figure", lambda image, *a, **k: drawn.append(image) or real(image, *a, **k))
    items = _squares(4)
    for i, item in enumerate(items):
        item["display"] = torch.full((3, 32, 32), 10 * i, dtype=torch.uint8)
    writer = SaliencyWriter(tmp_path / "eval", _resnet(), num_images=1, image_ids=None, display_key="display")
    _evaluator(_resnet(), items, [writer]).run()
    assert len(drawn) == 2 and all(d.dtype == torch.uint8 and d.shape == (3, 32, 32) for d in drawn)
    assert {int(d[0, 0, 0]) for d in drawn} <= {0, 10, 20, 30}

    drawn.clear()
    SaliencyWriter(tmp_path / "plain", _resnet(), num_images=1).attach(engine := _evaluator(_resnet(), items, []))
    engine.run()
    assert len(drawn) == 2 and all(d.dtype == torch.float32 and d.shape == (1, 32, 32) for d in drawn)


def test_with_few_images_each_is_drawn_once(tmp_path):
    """3 images, num_images=2: the 2 most confident, then the one image left as the least confident."""
    items, net = _squares(3), _resnet()
    _evaluator(net, items, [SaliencyWriter(tmp_path, net, num_images=2)]).run()
    with torch.no_grad():
        probs = torch.softmax(net(torch.stack([it["image"] for it in items])), dim=1)
    most, _ = confidence_extremes(probs, 2)
    (rest,) = set(range(3)) - set(most.tolist())
    names = sorted(p.name for p in (tmp_path / "saliency").glob("*.png"))
    assert names == sorted([f"{r + 1}_most_confident_img{i}.png" for r, i in enumerate(most)]
                           + [f"1_least_confident_img{rest}.png"])
