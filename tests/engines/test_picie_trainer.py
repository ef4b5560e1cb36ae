"""PiCIETrainer and its clustering step on tiny in-memory images: labels per image per epoch, training, final clusters."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from torch.utils.data import DataLoader

from monai_ssl.engines import PiCIEEvents, PiCIETrainer
from monai_ssl.engines.picie_clustering import PiCIEViewFeatures, cluster_epoch
from monai_ssl.networks import PiCIENet
from monai_ssl.transforms import PiCIEAugmentation

def _items(n: int = 6, size: int = 32) -> list[dict]:
    """Images with a dark square ('lesion') on a light background, numbered by index."""
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        image = 0.8 + 0.05 * torch.rand(3, size, size, generator=g)
        top = int(torch.randint(0, size // 2, (1,), generator=g))
        image[:, top:top + size // 3, top:top + size // 3] = 0.2
        items.append({"image": image, "index": i})
    return items


def _net() -> PiCIENet:
    torch.manual_seed(0)
    return PiCIENet(num_clusters=2, backbone="resnet18", feature_size=8)


def test_clustering_is_reproducible_and_fills_every_image():
    items = _items()
    net = _net()
    views = PiCIEViewFeatures(net, PiCIEAugmentation(), seed=3)
    loader = DataLoader(items, batch_size=4)
    first = cluster_epoch(views, loader, len(items), epoch=2, num_clusters=2, device=torch.device("cpu"),
                          show_progress=False, preview_images=2)
    shuffled = DataLoader(list(reversed(items)), batch_size=5)
    again = cluster_epoch(views, shuffled, len(items), epoch=2, num_clusters=2, device=torch.device("cpu"),
                          show_progress=False)
    assert first.labels.shape == (6, 2, 8, 8) and first.labels.dtype == torch.uint8
    assert int(first.labels.max()) <= 1
    assert all(torch.isclose(s.sum(), torch.tensor(1.0)) for s in first.shares)
    # the shares are those of the label bank: no cluster is empty, so an agreement below cannot come from one label
    for v, share in enumerate(first.shares):
        expected = torch.bincount(first.labels[:, v].flatten().long(), minlength=2).float() / first.labels[:, v].numel()
        assert torch.allclose(share, expected) and float(share.min()) > 0
    assert first.preview[0].shape == (2, 3, 32, 32) and first.preview[1].shape == (2, 8, 8)
    # another batch order and size: the same views per image; k-means may name the clusters the other way round
    agree = (first.labels == again.labels).float().mean()
    assert agree > 0.95 or agree < 0.05
    later = cluster_epoch(views, loader, len(items), epoch=3, num_clusters=2, device=torch.device("cpu"),
                          show_progress=False)
    assert not torch.equal(later.labels, first.labels)  # another epoch draws other views


def test_a_bad_index_or_weighting_is_named():
    items = _items(3)
    views = PiCIEViewFeatures(_net(), PiCIEAugmentation())
    with pytest.raises(ValueError, match="outside"):
        cluster_epoch(views, DataLoader(items, batch_size=3), 2, 1, 2, torch.device("cpu"), show_progress=False)
    with pytest.raises(ValueError, match="cluster_weighting"):
        cluster_epoch(views, DataLoader(items, batch_size=3), 3, 1, 2, torch.device("cpu"), cluster_weighting="inverse")
    with pytest.raises(KeyError, match="index"):
        cluster_epoch(views, DataLoader([{"image": i["image"]} for i in items], batch_size=3), 3, 1, 2,
                      torch.device("cpu"), show_progress=False)


def test_trainer_clusters_each_epoch_trains_and_sets_the_model_clusters():
    items = _items()
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    trainer = PiCIETrainer(device="cpu", max_epochs=2, train_data_loader=DataLoader(items, batch_size=3, shuffle=True),
                           cluster_data_loader=DataLoader(items, batch_size=6), network=net, optimizer=optimizer,
                           seed=1, show_progress=False)
    assert trainer.num_clusters == 2  # the network's
    clustered, losses = [], []
    trainer.add_event_handler(PiCIEEvents.CLUSTERING_COMPLETED, lambda e: clustered.append(e.state.iteration))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output))
    before = [p.detach().clone() for p in net.parameters()]
    trainer.run()
    assert clustered == [0, 2]  # before each epoch's iterations (2 per epoch)
    assert len(losses) == 4 and all(torch.isfinite(o["loss"]) for o in losses)
    assert {"within_loss", "cross_loss", "lr"} <= set(losses[0])
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert net.centroids.abs().sum() > 0  # set from the plain images when the run completed
    assert trainer.state.optimizer_steps == 4


def test_num_clusters_must_match_the_network():
    items = _items(2)
    net = _net()
    with pytest.raises(ValueError, match="num_clusters"):
        PiCIETrainer(device="cpu", max_epochs=1, train_data_loader=DataLoader(items), cluster_data_loader=DataLoader(items),
                     network=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), num_clusters=3)
    with pytest.raises(ValueError, match="at least 2"):
        PiCIETrainer(device="cpu", max_epochs=1, train_data_loader=DataLoader(items), cluster_data_loader=DataLoader(items),
                     network=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), num_clusters=1)


def test_clustering_with_batch_statistics_leaves_the_running_ones_and_the_mode():
    from monai_ssl.engines.picie_clustering import clustering_mode

    net = _net()
    net.train()
    bn = net.backbone.bn1
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    restore = clustering_mode(net, batch_statistics=True)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        z_batch = net.features(x)
    assert net.training and bn.momentum == 0.0
    restore()
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2] and bn.momentum == 0.1 and net.training
    restore = clustering_mode(net, batch_statistics=False)
    assert not net.training
    with torch.no_grad():
        z_running = net.features(x)
    restore()
    assert net.training
    assert not torch.allclose(z_batch, z_running)  # an untrained network's running statistics are the initial 0 and 1
