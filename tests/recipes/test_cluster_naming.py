"""Naming a clustering network's clusters on a labeled split, and the cluster maps of evaluate/inference."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.inferers import SimpleInferer
from PIL import Image

from monai_ssl.recipes import (
    CLUSTER_NAMING_NOTE,
    ClusterNames,
    cluster_map_file,
    dermoscopy_evaluation_transforms,
    lesion_postprocessing,
    model_fingerprint,
    name_clusters,
    read_cluster_map,
    resolve_cluster_map,
    write_cluster_map,
)

SIDE, WORKING = 16, 8  # 16 x 16 files, halved by the preprocessing, brought back by Invertd
LESION, SKIN = 230, 30
# id: (lesion drawn in the image = where the network puts cluster 0, true mask); boxes (top, left, height, width),
# on even pixels so that halving and bilinear upsampling keep the boxes exact
CASES = {
    "ISIC_a": ((4, 4, 8, 8), (4, 4, 8, 8)),  # cluster 0 on the 64 lesion pixels, cluster 1 on the 192 others
    "ISIC_b": ((0, 0, 8, 16), (0, 0, 4, 16)),  # cluster 0: 64 lesion + 64 skin; cluster 1: 128 skin
    "ISIC_c": (None, (2, 2, 4, 4)),  # cluster 1 everywhere: 16 lesion + 240 skin
}
# rows: cluster 0, 1; columns: background, lesion
CONFUSION = [[0 + 64 + 0, 64 + 64 + 0], [192 + 128 + 240, 0 + 0 + 16]]


def _box(box) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), dtype=bool)
    if box is not None:
        top, left, height, width = box
        mask[top : top + height, left : left + width] = True
    return mask


def _items(folder, labeled=True) -> list[dict]:
    items = []
    for name, (drawn, truth) in CASES.items():
        rgb = np.full((SIDE, SIDE, 3), SKIN, np.uint8)
        rgb[_box(drawn)] = LESION
        Image.fromarray(rgb).save(folder / f"{name}.png")
        Image.fromarray(_box(truth).astype(np.uint8) * 255).save(folder / f"{name}_segmentation.png")
        item = {"image": str(folder / f"{name}.png")}
        if labeled:
            item["label"] = str(folder / f"{name}_segmentation.png")
        items.append(item)
    return items


def _cluster_network() -> torch.nn.Module:
    """1 x 1 convolution: cluster 0 where the image is bright (the drawn lesion), cluster 1 elsewhere."""
    net = torch.nn.Conv2d(3, 2, kernel_size=1)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0] = 20.0 / 3.0  # 20 * (mean intensity - 0.5)
        net.weight[1] = -20.0 / 3.0
        net.bias.copy_(torch.tensor([-10.0, 10.0]))
    return net


def _name(tmp_path, labeled=True, **kwargs) -> ClusterNames:
    preprocessing = dermoscopy_evaluation_transforms(working_size=WORKING, labeled=labeled)
    loader = DataLoader(Dataset(_items(tmp_path, labeled), transform=preprocessing), batch_size=2)  # batches of 2 and 1
    return name_clusters(_cluster_network(), loader, SimpleInferer(), lesion_postprocessing(preprocessing, device="cpu"),
                         num_clusters=2, num_classes=2, device="cpu", **kwargs)


def test_the_clusters_are_named_by_the_hungarian_match_at_full_resolution(tmp_path):
    names = _name(tmp_path)
    assert names.confusion == CONFUSION  # 768 = 3 x 16 x 16 pixels: counted at the files' size
    assert names.mapping == [1, 0]  # cluster 0 is the lesion
    assert names.pixel_accuracy == pytest.approx((128 + 560) / 768)
    summary = names.summary()
    assert summary["cluster_map"] == [1, 0] and summary["cluster_naming"] == CLUSTER_NAMING_NOTE
    json.dumps(summary)


def test_naming_runs_in_eval_mode_without_gradient_and_restores_the_mode(tmp_path):
    preprocessing = dermoscopy_evaluation_transforms(working_size=WORKING)
    loader = DataLoader(Dataset(_items(tmp_path), transform=preprocessing), batch_size=3)
    net, seen = _cluster_network().train(), []
    net.register_forward_hook(lambda module, args, out: seen.append((module.training, torch.is_grad_enabled())))
    name_clusters(net, loader, SimpleInferer(), lesion_postprocessing(preprocessing, device="cpu"), 2, 2, "cpu")
    assert seen == [(False, False)] and net.training


def test_fewer_clusters_than_classes_are_refused(tmp_path):
    preprocessing = dermoscopy_evaluation_transforms(working_size=WORKING)
    loader = DataLoader(Dataset(_items(tmp_path), transform=preprocessing), batch_size=3)
    with pytest.raises(ValueError, match="every class needs a cluster"):
        name_clusters(_cluster_network(), loader, SimpleInferer(), lesion_postprocessing(preprocessing, device="cpu"),
                      2, 3, "cpu")


@pytest.mark.gpu
def test_naming_and_renaming_on_the_device(tmp_path):
    device = "cpu" if os.environ.get("MONAI_SSL_TEST_DEVICE", "cuda") == "cpu" else "cuda"
    preprocessing = dermoscopy_evaluation_transforms(working_size=WORKING)
    loader = DataLoader(Dataset(_items(tmp_path), transform=preprocessing), batch_size=2)
    names = name_clusters(_cluster_network().to(device), loader, SimpleInferer(),
                          lesion_postprocessing(preprocessing, device=device), 2, 2, device, amp=device == "cuda")
    assert names.confusion == CONFUSION and names.mapping == [1, 0]
    item = preprocessing(_items(tmp_path)[0])
    logits = _cluster_network().to(device)(item["image"][None].to(device))[0]
    out = lesion_postprocessing(preprocessing, device=device, cluster_map=[1, 0])({**item, "pred": logits})
    assert out["pred"].device.type == device == out["label"].device.type
    assert torch.equal(out["pred"].as_tensor().cpu(), out["label"].as_tensor().cpu().float())


def test_naming_without_masks_is_refused_with_the_file_name(tmp_path):
    with pytest.raises(ValueError, match=r"needs the masks of the evaluated split; .*ISIC_a\.png has none; .*inference\.json"):
        _name(tmp_path, labeled=False)


def test_postprocessing_with_a_cluster_map_renames_the_clusters(tmp_path):
    preprocessing = dermoscopy_evaluation_transforms(working_size=WORKING)
    item = preprocessing(_items(tmp_path)[0])  # ISIC_a
    logits = _cluster_network()(item["image"][None])[0]
    plain = lesion_postprocessing(preprocessing, device="cpu")({**item, "pred": logits})["pred"]
    mapped = lesion_postprocessing(preprocessing, device="cpu", cluster_map=[1, 0])({**item, "pred": logits})["pred"]
    truth = torch.as_tensor(_box(CASES["ISIC_a"][1]).T[None], dtype=torch.float32)  # the loader's (W, H) order
    assert mapped.shape == (1, SIDE, SIDE)
    assert torch.equal(plain.as_tensor(), 1.0 - truth)  # cluster 0 on the lesion
    assert torch.equal(mapped.as_tensor(), truth)  # renamed: class 1 on the lesion


@pytest.mark.parametrize("bad", [[], "01", [0, -1], [0.5, 1], [True, False]])
def test_postprocessing_refuses_a_malformed_cluster_map(bad):
    with pytest.raises(ValueError, match="cluster_map"):
        lesion_postprocessing(dermoscopy_evaluation_transforms(working_size=WORKING), cluster_map=bad)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "models" / "picie.pt"
    path.parent.mkdir()
    path.write_bytes(b"weights " * 10)
    return path


NAMES = ClusterNames(mapping=[1, 0], confusion=[[64, 128], [560, 16]], pixel_accuracy=688 / 768)


def test_a_cluster_map_round_trip(tmp_path, model_file):
    path = cluster_map_file(model_file)
    assert path == str(model_file.parent / "picie_cluster_map.json")
    write_cluster_map(path, NAMES, split="test", model_file=model_file, class_names=["background", "lesion"])
    content = json.loads(open(path).read())
    assert content["split"] == "test" and content["confusion"] == NAMES.confusion
    assert content["model_fingerprint"] == {"size": 80, "sha256_first_mib": model_fingerprint(model_file)["sha256_first_mib"]}
    assert read_cluster_map(path, model_file) == [1, 0]
    assert resolve_cluster_map(path, model_file) == [1, 0]
    assert not [p for p in os.listdir(model_file.parent) if p.startswith(".")]  # no temporary file left


def test_a_map_of_another_model_is_refused(tmp_path, model_file):
    path = tmp_path / "map.json"
    write_cluster_map(path, NAMES, "test", model_file, ["background", "lesion"])
    other = model_file.with_name("retrained.pt")
    other.write_bytes(b"weights " * 9 + b"changed!")  # same size, other bytes
    with pytest.raises(ValueError, match=r"made for the model file .*picie\.pt, not for .*retrained\.pt"):
        read_cluster_map(path, other)


def test_missing_and_malformed_maps(tmp_path, model_file):
    with pytest.raises(FileNotFoundError, match=r"run evaluate\.json first.*--cluster_map"):
        read_cluster_map(tmp_path / "none.json", model_file)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json is not a cluster map"):
        read_cluster_map(bad, model_file)
    bad.write_text(json.dumps({"mapping": [1, 0]}))  # no fingerprint
    with pytest.raises(ValueError, match=r"bad\.json is not a cluster map"):
        read_cluster_map(bad, model_file)
    bad.write_text(json.dumps({"mapping": "x", "model_fingerprint": {}, "model_file": "m"}))
    with pytest.raises(ValueError, match=r"the mapping of .*bad\.json"):
        read_cluster_map(bad, model_file)
    with pytest.raises(ValueError, match="one name per class"):
        write_cluster_map(tmp_path / "m.json", NAMES, "test", model_file, ["lesion"])


def test_the_inference_setting(model_file):
    assert resolve_cluster_map(None, model_file) is None
    assert resolve_cluster_map([1, 0], model_file) == [1, 0]
    assert resolve_cluster_map("[1, 0]", model_file) == [1, 0]
    with pytest.raises(ValueError, match="whole class indices"):
        resolve_cluster_map([1, -2], model_file)
