"""Plain 2D BYOL on real ultrasound images (MedMNIST BreastMNIST), end to end through a DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, EnsureChannelFirstd, ScaleIntensityd

from helpers import SHARED_DATA
from monai_ssl.engines import BYOLTrainer
from monai_ssl.networks import BYOL, resnet18_encoder
from monai_ssl.transforms import BYOLViewsd

BREASTMNIST = SHARED_DATA / "breastmnist.npz"


@pytest.mark.skipif(not BREASTMNIST.is_file(), reason="../shared/data/breastmnist.npz is not present")
def test_byol_on_breastmnist_images():
    images = np.load(BREASTMNIST)["train_images"][:24]
    assert images.shape == (24, 28, 28) and images.dtype == np.uint8
    transform = Compose([
        EnsureChannelFirstd("image", channel_dim="no_channel"),
        ScaleIntensityd("image"),
        BYOLViewsd("image", spatial_size=32),
    ])
    transform.set_random_state(0)
    loader = DataLoader(Dataset([{"image": im.astype(np.float32)} for im in images], transform),
                        batch_size=8, shuffle=True, drop_last=True)
    torch.manual_seed(0)
    net = BYOL(resnet18_encoder(spatial_dims=2, in_channels=1), hidden_dim=128, projection_dim=32)
    trainer = BYOLTrainer("cpu", 2, loader, net, torch.optim.Adam(net.parameters(), 1e-3))
    trainer.run()
    out = trainer.state.output
    assert trainer.state.optimizer_steps == 6
    assert out["view1"].shape == (8, 1, 32, 32) and not torch.equal(out["view1"], out["view2"])
    assert 0.0 <= float(out["loss"]) <= 8.0 and float(out["projection_std"]) > 0.0
