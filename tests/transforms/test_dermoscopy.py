"""Tests for the dermoscopy transforms: RGB / one-channel loading, orientation, mask binarization, red channel."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import SaveImaged
from PIL import Image

from monai_ssl.transforms import (
    BinarizeMaskd,
    LoadDermoscopyd,
    NormalizeRedChanneld,
    log_mask_threshold_summary,
    mask_threshold_summary,
    reset_mask_threshold_summary,
    to_mask_channel,
    to_rgb,
)
from monai_ssl.transforms import dermoscopy_intensity

W, H = 7, 5  # non-square, so that a swapped axis shows


@pytest.fixture(autouse=True)
def _fresh_threshold_summary():
    reset_mask_threshold_summary()
    yield
    reset_mask_threshold_summary()


def _rgb() -> np.ndarray:
    """A ``(H, W, 3)`` uint8 image with distinct values per pixel and channel."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([10 * x + 3 * y + 20, 200 - 5 * y, 30 + 2 * x * y], axis=-1).astype(np.uint8)


def _lesion() -> np.ndarray:
    """A ``(H, W)`` 0/255 mask."""
    mask = np.zeros((H, W), np.uint8)
    mask[1:4, 2:6] = 255
    return mask


def _save(path: Path, image: Image.Image, **kwargs) -> str:
    image.save(path, **kwargs)
    return str(path)


def _whc(array: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` or ``(H, W)`` as MONAI's PILReader orders it: ``(C, W, H)``."""
    array = array if array.ndim == 3 else array[..., None]
    return torch.as_tensor(np.ascontiguousarray(array.transpose(2, 1, 0)), dtype=torch.float32)


# --------------------------------------------------------------------------------------------------- loading
def test_rgb_image_and_mask_load_in_monai_orientation(tmp_path):
    image = _save(tmp_path / "a.png", Image.fromarray(_rgb()))
    mask = _save(tmp_path / "a_segmentation.png", Image.fromarray(_lesion()))
    out = LoadDermoscopyd()({"id": "a", "image": image, "label": mask})
    assert isinstance(out["image"], MetaTensor) and out["image"].dtype == torch.float32
    assert out["image"].shape == (3, W, H) and out["label"].shape == (1, W, H)
    assert torch.equal(out["image"].as_tensor(), _whc(_rgb()))
    assert torch.equal(out["label"].as_tensor(), _whc(_lesion()))
    assert out["image"].meta["filename_or_obj"] == image and out["label"].meta["filename_or_obj"] == mask
    assert out["id"] == "a"


@pytest.mark.parametrize("mode", ["RGBA", "CMYK", "L", "P", "LA", "I;16", "1"])
def test_every_image_mode_loads_as_three_channels(tmp_path, mode):
    rgb = _rgb()
    if mode in ("L", "LA"):
        source = Image.fromarray(rgb[..., 0]).convert(mode)
        expected = np.repeat(rgb[..., :1], 3, axis=-1)
    elif mode == "I;16":
        source = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # full 16-bit range: divided by 257
        expected = np.repeat(rgb[..., :1], 3, axis=-1)
    elif mode == "RGBA":
        source = Image.fromarray(np.concatenate([rgb, np.full((H, W, 1), 7, np.uint8)], axis=-1))  # alpha dropped
        expected = rgb
    elif mode == "1":
        source = Image.fromarray(_lesion()).convert("1")
        expected = np.repeat(_lesion()[..., None], 3, axis=-1)
    elif mode == "P":
        source = Image.fromarray(rgb).quantize(colors=256)
        expected = np.asarray(source.convert("RGB"))
    else:
        source = Image.fromarray(rgb).convert(mode)
        expected = np.asarray(source.convert("RGB"))
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = _save(tmp_path / f"image{suffix}", source, **({"quality": 100} if suffix == ".jpg" else {}))
    with Image.open(path) as check:
        assert check.mode == mode
        if suffix == ".jpg":
            expected = np.asarray(check.convert("RGB"))  # what PIL decodes; lossy, so compare with that
    out = LoadDermoscopyd(label_key=None)({"image": path})["image"]
    assert out.shape == (3, W, H)
    assert torch.equal(out.as_tensor(), _whc(expected))


def test_eight_bit_values_stored_as_sixteen_bit_are_kept():
    image = Image.fromarray(np.array([[0, 100], [200, 255]], np.uint16))
    assert image.mode == "I;16"
    assert np.array_equal(np.asarray(to_rgb(image))[..., 1], [[0, 100], [200, 255]])


@pytest.mark.parametrize("kind", ["L", "1", "RGB", "gray palette", "index palette", "I;16", "zero-one"])
def test_every_mask_mode_loads_as_one_channel(tmp_path, kind):
    lesion = _lesion()
    expected = lesion
    if kind == "L":
        source = Image.fromarray(lesion)
    elif kind == "1":
        source = Image.fromarray(lesion).convert("1")
    elif kind == "RGB":  # a lesion drawn in red: the largest channel counts
        source = Image.fromarray(np.stack([lesion, lesion // 5, np.zeros_like(lesion)], axis=-1))
    elif kind == "gray palette":
        source = Image.fromarray(lesion).convert("P")
    elif kind == "index palette":  # indices 0 / 1 with a black / red palette: the index counts
        source = Image.fromarray((lesion // 255).astype(np.uint8)).convert("P")
        source.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 254)
        expected = lesion // 255
    elif kind == "I;16":
        source = Image.fromarray(lesion.astype(np.uint16) * 257)
    else:  # 0/1 stays 0/1
        source = Image.fromarray(lesion // 255)
        expected = lesion // 255
    path = _save(tmp_path / "mask.png", source)
    image = _save(tmp_path / "i.png", Image.fromarray(_rgb()))
    out = LoadDermoscopyd(image_key="image")({"image": image, "label": path})
    assert out["label"].shape == (1, W, H)
    assert torch.equal(out["label"].as_tensor(), _whc(expected))


def test_float_images_convert_and_unknown_modes_name_the_file():
    floating = Image.fromarray(np.array([[0.0, 100.4], [-3.0, 255.0]], np.float32))
    assert floating.mode == "F"
    assert np.array_equal(np.asarray(to_rgb(floating))[..., 0], [[0, 100], [0, 255]])
    assert np.array_equal(np.asarray(to_mask_channel(floating)), [[0, 100], [0, 255]])
    odd = Image.new("La", (3, 2))
    odd.filename = "odd.png"  # as an opened file has
    with pytest.raises(ValueError, match="cannot convert image odd.png of mode 'La' to RGB"):
        to_rgb(odd)
    with pytest.raises(ValueError, match="cannot convert mask odd.png of mode 'La' to one channel"):
        to_mask_channel(odd)


def test_unlabeled_item_loads_without_label(tmp_path):
    image = _save(tmp_path / "u.jpg", Image.fromarray(_rgb()))
    out = LoadDermoscopyd()({"id": "u", "image": image})
    assert set(out) == {"id", "image"} and out["image"].shape == (3, W, H)
    with pytest.raises(KeyError):
        LoadDermoscopyd(allow_missing_label=False)({"id": "u", "image": image})
    with pytest.raises(KeyError, match="item 'u' has no 'image' key"):
        LoadDermoscopyd()({"id": "u", "label": image})


def test_mask_round_trips_through_save_imaged(tmp_path):
    mask = _save(tmp_path / "m_segmentation.png", Image.fromarray(_lesion()))
    loaded = LoadDermoscopyd(label_key="label", image_key="image")(
        {"image": _save(tmp_path / "m.png", Image.fromarray(_rgb())), "label": mask}
    )
    SaveImaged(keys="label", output_dir=tmp_path / "out", output_ext=".png", writer="PILWriter", scale=None,
               output_dtype=np.uint8, separate_folder=False, resample=False, output_postfix="copy", print_log=False)(
        loaded
    )
    written = np.asarray(Image.open(tmp_path / "out" / "m_segmentation_copy.png"))
    assert np.array_equal(written, _lesion())


@pytest.mark.filterwarnings("ignore:.*nvImageCodec")  # MONAI's optional GPU DICOM decoder, never used here
def test_bundle_json_preprocessing(tmp_path):
    image = _save(tmp_path / "ISIC_1.jpg", Image.fromarray(_rgb()))
    mask = _save(tmp_path / "ISIC_1_segmentation.png", Image.fromarray(_lesion()))
    config = {
        "imports": ["$import monai", "$import monai_ssl"],
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "monai_ssl.transforms.LoadDermoscopyd", "image_key": "image", "label_key": "label"},
                {"_target_": "monai_ssl.transforms.BinarizeMaskd", "keys": "label"},
                {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": 0, "a_max": 255, "b_min": 0.0,
                 "b_max": 1.0},
            ],
        },
        "plain": {
            "_target_": "LoadImaged", "keys": "image", "ensure_channel_first": True,
            "reader": "$monai.data.PILReader(converter=monai_ssl.transforms.to_rgb)",
        },
    }
    parser = ConfigParser(config)
    parser.get_parsed_content("imports")
    labeled = parser.get_parsed_content("preprocessing")({"id": "ISIC_1", "image": image, "label": mask})
    assert labeled["image"].shape == (3, W, H) and float(labeled["image"].max()) <= 1.0
    assert set(torch.unique(labeled["label"]).tolist()) == {0.0, 1.0}
    unlabeled = parser.get_parsed_content("preprocessing")({"id": "ISIC_1", "image": image})
    assert set(unlabeled) == {"id", "image"}
    assert parser.get_parsed_content("plain")({"image": image})["image"].shape == (3, W, H)


# ------------------------------------------------------------------------------------------------ binarization
def test_binary_masks_pass_without_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        out = BinarizeMaskd()({"label": MetaTensor(torch.tensor([[[0.0, 255.0], [255.0, 0.0]]]))})["label"]
        assert isinstance(out, MetaTensor) and out.dtype == torch.float32
        assert out.tolist() == [[[0.0, 1.0], [1.0, 0.0]]]
        zero_one = BinarizeMaskd()({"label": np.array([[0, 1], [1, 1]], np.uint8)})["label"]
        assert zero_one.dtype == np.float32 and zero_one.tolist() == [[0.0, 1.0], [1.0, 1.0]]
        empty = BinarizeMaskd()({"label": torch.zeros(1, 2, 2)})["label"]
        assert empty.sum() == 0
    assert not caplog.records
    assert mask_threshold_summary() == (0, None)
    assert BinarizeMaskd()({"id": "u", "image": "x"}) == {"id": "u", "image": "x"}  # an unlabeled item


def test_jpeg_masks_are_thresholded_with_one_warning_and_counted(tmp_path, caplog):
    lesion = _lesion()
    paths = [_save(tmp_path / f"m{i}.jpg", Image.fromarray(np.roll(lesion, i, axis=1)), quality=60) for i in range(3)]
    image = _save(tmp_path / "i.png", Image.fromarray(_rgb()))
    loader, binarize = LoadDermoscopyd(), BinarizeMaskd(threshold=128)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        outputs = [binarize(loader({"image": image, "label": p}))["label"] for p in paths]
    raw = np.asarray(Image.open(paths[0]))
    assert not set(np.unique(raw).tolist()) <= {0, 255}  # JPEG made it non-binary
    assert torch.equal(outputs[0].as_tensor(), _whc((raw >= 128).astype(np.uint8)))
    warnings = [r for r in caplog.records if r.name == "monai_ssl" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert paths[0] in warnings[0].getMessage() and "counted" in warnings[0].getMessage()
    assert mask_threshold_summary() == (3, paths[0])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        assert log_mask_threshold_summary() == 3
    assert "3 lesion mask(s)" in caplog.text and paths[0] in caplog.text
    reset_mask_threshold_summary()
    assert mask_threshold_summary() == (0, None)
    caplog.clear()
    assert log_mask_threshold_summary() == 0 and not caplog.records


def test_in_memory_masks_are_named_by_item():
    BinarizeMaskd()({"id": "ISIC_9", "label": np.array([[0, 130, 250]], np.uint8)})
    assert mask_threshold_summary() == (1, "'label' of item 'ISIC_9'")


def test_bad_threshold():
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 255\]"):
        BinarizeMaskd(threshold=0)


# ------------------------------------------------------------------------------------------------- red channel
def test_red_channel_is_standardized_and_green_blue_kept():
    image = torch.stack([torch.tensor([[0.0, 2.0], [4.0, 6.0]]), torch.full((2, 2), 9.0), torch.eye(2)])
    out = NormalizeRedChanneld()({"image": MetaTensor(image, meta={"filename_or_obj": "x.jpg"})})["image"]
    expected = (torch.tensor([[0.0, 2.0], [4.0, 6.0]]) - 3.0) / 5.0**0.5  # mean 3, population std sqrt(5)
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "x.jpg"
    assert torch.allclose(out[0], expected, atol=1e-6)
    assert torch.equal(out[1:], image[1:])
    assert torch.equal(image[0], torch.tensor([[0.0, 2.0], [4.0, 6.0]]))  # the input is not changed
    array = NormalizeRedChanneld()({"image": image.numpy()})["image"]
    assert isinstance(array, np.ndarray) and np.allclose(array[0], expected.numpy(), atol=1e-6)


def test_constant_red_channel_becomes_zero():
    out = NormalizeRedChanneld()({"image": torch.full((3, 4, 4), 200.0)})["image"]
    assert torch.equal(out[0], torch.zeros(4, 4)) and torch.equal(out[1:], torch.full((2, 4, 4), 200.0))


def test_red_channel_needs_three_channels():
    with pytest.raises(ValueError, match=r"'image' of item 'g' has shape \(1, 2, 2\); expected 3 channels first"):
        NormalizeRedChanneld()({"id": "g", "image": torch.zeros(1, 2, 2)})
    with pytest.raises(ValueError, match="eps must be a positive number"):
        NormalizeRedChanneld(eps=0)


def test_dermoscopy_intensity():
    assert len(dermoscopy_intensity(False)) == 1
    both = dermoscopy_intensity(True)
    assert len(both) == 2 and isinstance(both[1], NormalizeRedChanneld)
