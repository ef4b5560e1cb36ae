from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from monai_ssl.recipes import attach_masks, classifier_network, saliency_run, skin_lesion_transforms


def _folder(tmp_path, n: int = 4, masks: bool = True):
    images, mask_dir = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    mask_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        picture = (rng.random((32, 32, 3)) * 60).astype(np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        picture[4 + 4 * i : 14 + 4 * i, 8:18] = 230
        mask[4 + 4 * i : 14 + 4 * i, 8:18] = 255
        Image.fromarray(picture).save(images / f"ISIC_000000{i}.jpg")
        if masks:
            Image.fromarray(mask).save(mask_dir / f"ISIC_000000{i}_segmentation.png")
    return images, mask_dir


def _network(out_channels: int = 3):
    torch.manual_seed(0)
    return classifier_network("resnet18", in_channels=3, out_channels=out_channels, small_images=True, image_size=32)


def test_every_image_with_masks_and_weights_file(tmp_path):
    images, masks = _folder(tmp_path)
    model_file = tmp_path / "model.pt"
    torch.save(_network().state_dict(), model_file)
    out = tmp_path / "out"
    saved = saliency_run(images, out, skin_lesion_transforms(image_size=32, working_size=32), _network(),
                         model_file=model_file, device="cpu", mask_dir=masks, batch_size=3,
                         class_names=["melanoma", "seborrheic_keratosis", "nevus"])
    assert sorted(p.name for p in (out / "saliency").glob("*.png")) == [f"{i + 1}_ISIC_000000{i}.png" for i in range(4)]
    assert saved["method"] == "gradcam" and saved["selection"] == {"kind": "every image"}
    assert [r["id"] for r in saved["images"]] == [f"ISIC_000000{i}.jpg" for i in range(4)]
    assert {r["predicted"] for r in saved["images"]} <= {"melanoma", "seborrheic_keratosis", "nevus"}
    measured = saved["measured"]
    assert measured["n"] == 4
    assert all(0.0 <= r["in_mask_share"] <= 1.0 for r in saved["images"])
    assert 0.0 <= measured["in_mask_share_mean"] <= 1.0
    with pytest.raises(FileExistsError, match="--overwrite True"):
        saliency_run(images, out, skin_lesion_transforms(image_size=32, working_size=32), _network(), device="cpu")


def test_binary_given_ids_without_masks(tmp_path):
    images, _ = _folder(tmp_path, n=3, masks=False)
    out = tmp_path / "out"
    saved = saliency_run(images, out, skin_lesion_transforms(image_size=32, working_size=32), _network(1),
                         device="cpu", image_ids=["ISIC_0000002.jpg"], method="gradient")
    assert [p.name for p in (out / "saliency").glob("*.png")] == ["1_given_ISIC_0000002.png"]
    assert saved["measured"] is None and saved["method"] == "gradient"
    assert saved["images"][0]["predicted"] in ("0", "1") and 0.5 <= saved["images"][0]["probability"] <= 1.0


def test_attach_masks_errors(tmp_path):
    images, masks = _folder(tmp_path, n=2, masks=False)
    items = [{"image": str(p), "id": p.name} for p in sorted(images.iterdir())]
    with pytest.raises(FileNotFoundError, match=r"2 of 2 images have no mask .*ISIC_0000000.jpg"):
        attach_masks(items, masks)
    with pytest.raises(FileNotFoundError, match="mask_dir .* is not a folder"):
        attach_masks(items, tmp_path / "nowhere")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(masks / "ISIC_0000000.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(masks / "ISIC_0000001_segmentation.png")
    found = attach_masks(items, masks)
    assert [p["mask"].rsplit("/", 1)[1] for p in found] == ["ISIC_0000000.png", "ISIC_0000001_segmentation.png"]
